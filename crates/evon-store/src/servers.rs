//! Servers: registration when they connect, their groups, connection state, deletion.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use evon_domain::builtin::ALL_SERVERS_GROUP_ID;
use evon_domain::pagination::Page;
use evon_domain::server::{self, groups_with_all_servers, Refusal, Server};
use evon_domain::validate::{ServerUuid, UuidList};
use evon_domain::{AddressPool, FieldErrors, OverlayRange};

use crate::db::{lock_for_transaction, DbConnection, TransactionLock};
use crate::error::{touched_one, StoreError, StoreResult};
use crate::relations::{self, first_missing, invalid_pk};
use crate::schema::{server_groups, servers};
use crate::{to_i64, to_u64};

#[derive(Queryable, Selectable)]
#[diesel(table_name = servers)]
struct ServerRow {
    id: i32,
    uuid: String,
    fqdn: String,
    ipv4_address: String,
    connected: bool,
    disconnected_since: Option<NaiveDateTime>,
}

impl ServerRow {
    fn into_server(self, server_groups: Vec<i32>) -> StoreResult<Server> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("server {} has {what}", self.id));
        Ok(Server {
            id: self.id,
            uuid: ServerUuid::parse(&self.uuid).map_err(|_| corrupt("an invalid UUID"))?,
            ipv4_address: self
                .ipv4_address
                .parse()
                .map_err(|_| corrupt("an invalid address"))?,
            fqdn: self.fqdn,
            connected: self.connected,
            disconnected_since: self.disconnected_since.map(|t| t.and_utc()),
            server_groups,
        })
    }
}

fn hydrate(conn: &mut DbConnection, rows: Vec<ServerRow>) -> StoreResult<Vec<Server>> {
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let mut groups = relations::server_groups_of_server::load(conn, &ids)?;
    rows.into_iter()
        .map(|row| {
            let id = row.id;
            row.into_server(groups.remove(&id).unwrap_or_default())
        })
        .collect()
}

pub fn count(conn: &mut DbConnection) -> StoreResult<u64> {
    let count: i64 = servers::table.count().get_result(conn)?;
    Ok(to_u64(count))
}

/// One page of servers, ordered by id.
pub fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Server>> {
    let rows = servers::table
        .order(servers::id)
        .offset(to_i64(page.offset))
        .limit(to_i64(page.limit))
        .select(ServerRow::as_select())
        .load(conn)?;
    hydrate(conn, rows)
}

/// The servers with these ids, ordered by id.
pub fn by_ids(conn: &mut DbConnection, ids: &[i32]) -> StoreResult<Vec<Server>> {
    let rows = servers::table
        .filter(servers::id.eq_any(ids))
        .order(servers::id)
        .select(ServerRow::as_select())
        .load(conn)?;
    hydrate(conn, rows)
}

pub fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Server> {
    by_ids(conn, &[id])?.pop().ok_or(StoreError::NotFound)
}

pub fn by_uuid(conn: &mut DbConnection, uuid: &ServerUuid) -> StoreResult<Option<Server>> {
    let row = servers::table
        .filter(servers::uuid.eq(uuid.as_str()))
        .select(ServerRow::as_select())
        .first(conn)
        .optional()?;
    Ok(match row {
        Some(row) => hydrate(conn, vec![row])?.pop(),
        None => None,
    })
}

/// The ids among `ids` that name servers.
pub(crate) fn existing_ids(conn: &mut DbConnection, ids: &[i32]) -> StoreResult<Vec<i32>> {
    Ok(servers::table
        .filter(servers::id.eq_any(ids))
        .select(servers::id)
        .load(conn)?)
}

/// Every server id, ascending.
pub fn all_ids(conn: &mut DbConnection) -> StoreResult<Vec<i32>> {
    Ok(servers::table
        .order(servers::id)
        .select(servers::id)
        .load(conn)?)
}

/// Sets a server's groups (All Servers always stays). `errors` holds what validation found.
pub fn set_groups(
    conn: &mut DbConnection,
    id: i32,
    groups: Option<&[i32]>,
    errors: &FieldErrors,
) -> StoreResult<Server> {
    get(conn, id)?;
    let mut errors = errors.clone();
    if let Some(groups) = groups {
        let existing: Vec<i32> = server_groups::table
            .filter(server_groups::id.eq_any(groups))
            .select(server_groups::id)
            .load(conn)?;
        if let Some(missing) = first_missing(groups, &existing) {
            errors.add("server_groups", invalid_pk(missing));
        }
    }
    errors.into_result().map_err(StoreError::Validation)?;
    if let Some(groups) = groups {
        relations::server_groups_of_server::replace(
            conn,
            id,
            &groups_with_all_servers(groups.to_vec()),
        )?;
    }
    get(conn, id)
}

pub fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<Server> {
    let server = get(conn, id)?;
    touched_one(diesel::delete(servers::table.find(id)).execute(conn)?)?;
    Ok(server)
}

/// Deletes every server whose UUID is on `blacklist`, returning them (to be disconnected).
pub fn delete_listed(conn: &mut DbConnection, blacklist: &UuidList) -> StoreResult<Vec<Server>> {
    let uuids: Vec<&str> = blacklist.iter().map(ServerUuid::as_str).collect();
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = servers::table
        .filter(servers::uuid.eq_any(&uuids))
        .select(ServerRow::as_select())
        .load(conn)?;
    let doomed = hydrate(conn, rows)?;
    diesel::delete(servers::table.filter(servers::uuid.eq_any(&uuids))).execute(conn)?;
    Ok(doomed)
}

/// What a registration came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The server may connect; it was created now or updated.
    Allowed {
        server: Server,
        created: bool,
    },
    Refused(Refusal),
}

/// Registers a connecting server: creates it, or updates its name, after the admission checks.
/// Its address is the lowest free one in the server range, for life; its FQDN is the hostname
/// it asks for, suffixed with the account domain and deduplicated with `-N`. Run inside a write
/// transaction; concurrent registrations queue on a lock and the unique constraints back it up.
pub fn register(conn: &mut DbConnection, uuid: &str, hostname: &str) -> StoreResult<Registration> {
    let uuid = match ServerUuid::parse(uuid.trim()) {
        Ok(uuid) => uuid,
        Err(message) => return Ok(Registration::Refused(Refusal::InvalidUuid(message))),
    };
    lock_for_transaction(conn, TransactionLock::ServerRegistration)?;
    let settings = crate::hub::settings(conn)?;
    let config = crate::config::get(conn)?;
    let existing = by_uuid(conn, &uuid)?;
    if let Err(refusal) = server::admission(&uuid, &config, existing.is_some()) {
        return Ok(Registration::Refused(refusal));
    }
    let desired = match server::desired_fqdn(hostname, &settings.domain) {
        Ok(fqdn) => fqdn,
        Err(message) => return Ok(Registration::Refused(Refusal::InvalidName(message))),
    };
    let mut lookup_error = None;
    let fqdn = server::deduplicated_fqdn(&desired, |candidate| {
        match servers::table
            .filter(servers::fqdn.eq(candidate))
            .filter(servers::uuid.ne(uuid.as_str()))
            .count()
            .get_result::<i64>(conn)
        {
            Ok(n) => n > 0,
            Err(e) => {
                lookup_error = Some(e);
                false
            }
        }
    });
    if let Some(error) = lookup_error {
        return Err(error.into());
    }
    let Some(fqdn) = fqdn else {
        return Ok(Registration::Refused(Refusal::InvalidName(
            "Please provide a valid FQDN".into(),
        )));
    };
    let now = Utc::now().naive_utc();
    if let Some(server) = existing {
        if server.fqdn != fqdn {
            diesel::update(servers::table.find(server.id))
                .set(servers::fqdn.eq(&fqdn))
                .execute(conn)?;
        }
        return Ok(Registration::Allowed {
            server: get(conn, server.id)?,
            created: false,
        });
    }
    let pool = AddressPool::new(settings.subnet_key, OverlayRange::Servers);
    let used: Vec<String> = servers::table.select(servers::ipv4_address).load(conn)?;
    let Some(address) = pool.lowest_free(used.iter().filter_map(|a| a.parse().ok())) else {
        return Ok(Registration::Refused(Refusal::AddressesExhausted));
    };
    diesel::insert_into(servers::table)
        .values((
            servers::uuid.eq(uuid.as_str()),
            servers::fqdn.eq(&fqdn),
            servers::ipv4_address.eq(address.to_string()),
            servers::connected.eq(false),
            servers::created_at.eq(now),
        ))
        .execute(conn)?;
    let id: i32 = servers::table
        .filter(servers::uuid.eq(uuid.as_str()))
        .select(servers::id)
        .first(conn)?;
    relations::server_groups_of_server::replace(conn, id, &[ALL_SERVERS_GROUP_ID])?;
    Ok(Registration::Allowed {
        server: get(conn, id)?,
        created: true,
    })
}

/// Marks a registered server connected; `disconnected_since` is cleared.
pub fn mark_connected(conn: &mut DbConnection, uuid: &ServerUuid) -> StoreResult<Server> {
    let updated = diesel::update(servers::table.filter(servers::uuid.eq(uuid.as_str())))
        .set((
            servers::connected.eq(true),
            servers::disconnected_since.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    by_uuid(conn, uuid)?.ok_or(StoreError::NotFound)
}

/// Marks a server disconnected since `at`.
pub fn mark_disconnected(
    conn: &mut DbConnection,
    uuid: &ServerUuid,
    at: DateTime<Utc>,
) -> StoreResult<Server> {
    let updated = diesel::update(servers::table.filter(servers::uuid.eq(uuid.as_str())))
        .set((
            servers::connected.eq(false),
            servers::disconnected_since.eq(Some(at.naive_utc())),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    by_uuid(conn, uuid)?.ok_or(StoreError::NotFound)
}
