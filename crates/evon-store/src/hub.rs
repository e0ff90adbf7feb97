//! Initialising a hub, and the settings fixed then.

use chrono::Utc;
use diesel::prelude::*;
use evon_crypto::TokenDigest;
use evon_domain::builtin::{
    ADMIN_USERNAME, ADMIN_USER_ID, ALL_SERVERS_GROUP_DESCRIPTION, ALL_SERVERS_GROUP_ID,
    ALL_SERVERS_GROUP_NAME, ALL_USERS_GROUP_ID, ALL_USERS_GROUP_NAME, DEPLOYER_USERNAME,
    DEPLOYER_USER_ID,
};
use evon_domain::config::{Config, HubSettings};
use evon_domain::{SubnetKey, UserPatch};

use crate::db::DbConnection;
use crate::error::{StoreError, StoreResult};
use crate::schema::{hub, server_groups, user_groups};
use crate::users::{self, NewAccount};

/// What `init` writes, with the secrets already hashed.
#[derive(Debug)]
pub struct InitRequest {
    pub settings: HubSettings,
    pub admin_password_hash: String,
    pub admin_token: TokenDigest,
    pub deployer_token: TokenDigest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    Initialised,
    AlreadyInitialised,
}

/// Whether `init` has run against this database.
pub fn is_initialised(conn: &mut DbConnection) -> StoreResult<bool> {
    let rows: i64 = hub::table.count().get_result(conn)?;
    Ok(rows > 0)
}

/// The hub's generation: it changes with every committed write.
pub fn generation(conn: &mut DbConnection) -> StoreResult<i64> {
    let generation: Option<i64> = hub::table.select(hub::generation).first(conn).optional()?;
    generation.ok_or(StoreError::NotInitialised)
}

/// Moves the generation on; part of every write transaction (see `db::write_transaction`).
pub(crate) fn bump_generation(conn: &mut DbConnection) -> StoreResult<()> {
    diesel::update(hub::table)
        .set(hub::generation.eq(hub::generation + 1))
        .execute(conn)?;
    Ok(())
}

/// The settings fixed at initialisation.
pub fn settings(conn: &mut DbConnection) -> StoreResult<HubSettings> {
    let row: Option<(String, i32)> = hub::table
        .select((hub::domain, hub::subnet_key))
        .first(conn)
        .optional()?;
    let (domain, key) = row.ok_or(StoreError::NotInitialised)?;
    let key = u8::try_from(key).map_err(|_| StoreError::Corrupt(format!("subnet key {key}")))?;
    Ok(HubSettings {
        domain,
        subnet_key: SubnetKey::new(key),
    })
}

/// Creates the built-in objects of a new hub: user 1 `admin` (superuser), user 2 `deployer`,
/// group 1 `All Users`, server group 1 `All Servers` and Config 1. Run it inside one write
/// transaction; on an initialised hub it changes nothing.
pub fn initialise(conn: &mut DbConnection, request: &InitRequest) -> StoreResult<InitOutcome> {
    if is_initialised(conn)? {
        return Ok(InitOutcome::AlreadyInitialised);
    }
    diesel::insert_into(hub::table)
        .values((
            hub::id.eq(1),
            hub::domain.eq(&request.settings.domain),
            hub::subnet_key.eq(i32::from(request.settings.subnet_key.get())),
            hub::initialised_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    diesel::insert_into(user_groups::table)
        .values((
            user_groups::id.eq(ALL_USERS_GROUP_ID),
            user_groups::name.eq(ALL_USERS_GROUP_NAME),
        ))
        .execute(conn)?;
    diesel::insert_into(server_groups::table)
        .values((
            server_groups::id.eq(ALL_SERVERS_GROUP_ID),
            server_groups::name.eq(ALL_SERVERS_GROUP_NAME),
            server_groups::description.eq(Some(ALL_SERVERS_GROUP_DESCRIPTION)),
        ))
        .execute(conn)?;
    crate::config::insert(conn, &Config::initial())?;

    let admin = NewAccount {
        fields: UserPatch {
            username: Some(ADMIN_USERNAME.into()),
            is_superuser: Some(true),
            ..UserPatch::default()
        },
        password_hash: Some(request.admin_password_hash.clone()),
        token: request.admin_token.clone(),
    };
    let deployer = NewAccount {
        fields: UserPatch {
            username: Some(DEPLOYER_USERNAME.into()),
            ..UserPatch::default()
        },
        password_hash: None,
        token: request.deployer_token.clone(),
    };
    for (account, expected_id) in [(admin, ADMIN_USER_ID), (deployer, DEPLOYER_USER_ID)] {
        let id = users::insert_account(conn, &request.settings, &account)?;
        if id != expected_id {
            return Err(StoreError::Corrupt(format!(
                "built-in user {:?} got id {id}, not {expected_id}: the database was not empty",
                account.fields.username
            )));
        }
    }
    reset_identity_sequences(conn)?;
    Ok(InitOutcome::Initialised)
}

/// On PostgreSQL, rows inserted with explicit ids leave identity sequences behind; move each
/// table's sequence just past its highest id (to 1 for an empty table), so that the next insert
/// cannot collide.
pub fn reset_identity_sequences(conn: &mut DbConnection) -> StoreResult<()> {
    if let DbConnection::Postgres(_) = conn {
        for table in [
            "users",
            "user_groups",
            "server_groups",
            "servers",
            "rules",
            "policies",
        ] {
            // `false`: the value given is the next one handed out, not the last one used.
            diesel::sql_query(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ))
            .execute(conn)?;
        }
    }
    Ok(())
}
