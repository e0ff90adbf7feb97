//! Evon Hub's persistence.
//!
//! Owns the diesel schema, the queries and the embedded migrations, for SQLite and PostgreSQL
//! from one code base through one `MultiConnection`. Operations are plain functions over a
//! `&mut DbConnection`; every multi-row change runs inside [`Store::write`], one transaction.
//! Values are validated by `evon-domain` before they arrive here; this crate checks what only
//! the stored state can tell (taken names, references to nothing, who holds what).

pub mod auth;
pub mod backup;
pub mod config;
pub mod db;
pub mod error;
pub mod generation;
pub mod groups;
pub mod hub;
pub mod network;
pub mod policies;
mod relations;
pub mod rules;
pub mod schema;
pub mod server_groups;
pub mod servers;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod throttle;
pub mod users;

pub use db::{Backend, DatabaseUrl, DbConnection, OpenMode, PoolOptions, Store};
pub use error::{StoreError, StoreResult};

/// Converts an offset or count from the database's signed integers.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Converts a page offset or size to the database's signed integers.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
