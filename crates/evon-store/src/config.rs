//! The Config singleton.

use diesel::prelude::*;
use evon_domain::builtin::CONFIG_ID;
use evon_domain::config::{Config, ConfigPatch};
use evon_domain::validate::{self, TimeOfDay, UuidList};

use crate::db::DbConnection;
use crate::error::{StoreError, StoreResult};
use crate::schema::config;

type ConfigRow = (i32, bool, String, bool, String, bool, String, String);

fn columns() -> (
    config::id,
    config::ec2_iam_role_status,
    config::timezone,
    config::auto_update,
    config::auto_update_time,
    config::discovery_mode,
    config::uuid_blacklist,
    config::uuid_whitelist,
) {
    (
        config::id,
        config::ec2_iam_role_status,
        config::timezone,
        config::auto_update,
        config::auto_update_time,
        config::discovery_mode,
        config::uuid_blacklist,
        config::uuid_whitelist,
    )
}

fn from_row(row: ConfigRow) -> StoreResult<Config> {
    let (
        id,
        ec2_iam_role_status,
        timezone,
        auto_update,
        auto_update_time,
        discovery_mode,
        blacklist,
        whitelist,
    ) = row;
    let corrupt =
        |what: &str, message: String| StoreError::Corrupt(format!("config {what}: {message}"));
    Ok(Config {
        id,
        ec2_iam_role_status,
        timezone: validate::timezone(&timezone).map_err(|m| corrupt("timezone", m))?,
        auto_update,
        auto_update_time: TimeOfDay::parse(&auto_update_time)
            .map_err(|m| corrupt("auto_update_time", m))?,
        discovery_mode,
        uuid_blacklist: UuidList::parse(&blacklist).map_err(|m| corrupt("uuid_blacklist", m))?,
        uuid_whitelist: UuidList::parse(&whitelist).map_err(|m| corrupt("uuid_whitelist", m))?,
    })
}

pub(crate) fn insert(conn: &mut DbConnection, value: &Config) -> StoreResult<()> {
    diesel::insert_into(config::table)
        .values((
            config::id.eq(value.id),
            config::ec2_iam_role_status.eq(value.ec2_iam_role_status),
            config::timezone.eq(value.timezone.name()),
            config::auto_update.eq(value.auto_update),
            config::auto_update_time.eq(value.auto_update_time.to_string()),
            config::discovery_mode.eq(value.discovery_mode),
            config::uuid_blacklist.eq(value.uuid_blacklist.to_string()),
            config::uuid_whitelist.eq(value.uuid_whitelist.to_string()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection) -> StoreResult<Config> {
    let row: Option<ConfigRow> = config::table
        .find(CONFIG_ID)
        .select(columns())
        .first(conn)
        .optional()?;
    from_row(row.ok_or(StoreError::NotInitialised)?)
}

/// A Config change and what it did to the network.
#[derive(Debug, Clone)]
pub struct ConfigChange {
    pub config: Config,
    /// Servers deleted because their UUID is now blacklisted (to be disconnected too).
    pub removed_servers: Vec<evon_domain::server::Server>,
}

/// Applies a validated patch. Servers whose UUID the blacklist now names are deleted in the same
/// transaction.
pub fn update(conn: &mut DbConnection, patch: ConfigPatch) -> StoreResult<ConfigChange> {
    let mut value = get(conn)?;
    value.apply(patch);
    diesel::update(config::table.find(CONFIG_ID))
        .set((
            config::timezone.eq(value.timezone.name()),
            config::auto_update.eq(value.auto_update),
            config::auto_update_time.eq(value.auto_update_time.to_string()),
            config::discovery_mode.eq(value.discovery_mode),
            config::uuid_blacklist.eq(value.uuid_blacklist.to_string()),
            config::uuid_whitelist.eq(value.uuid_whitelist.to_string()),
        ))
        .execute(conn)?;
    let removed_servers = crate::servers::delete_listed(conn, &value.uuid_blacklist)?;
    Ok(ConfigChange {
        config: value,
        removed_servers,
    })
}
