//! Throw-away databases for tests: a SQLite file in a temporary directory, or a PostgreSQL
//! database created on the server named by `EVON_TEST_POSTGRES_URL` (default: the local server
//! with trust auth) and dropped when the guard goes out of scope.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;
use rand::Rng;

use crate::db::{Backend, DatabaseUrl};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database that disappears with this value.
#[derive(Debug)]
pub struct TestDatabase {
    url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A new empty database. Panics with a clear message when PostgreSQL is unreachable: a test
    /// that cannot reach its database must fail, never pass silently.
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory for a test database");
                let url = DatabaseUrl::sqlite(&dir.path().join("evon-hub.sqlite3"));
                Self {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let admin_url = admin_url();
                let name = format!(
                    "evon_test_{}_{}_{:08x}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    rand::thread_rng().gen::<u32>()
                );
                let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
                    panic!("PostgreSQL for tests is unreachable at {admin_url} ({e}); start it or set EVON_TEST_POSTGRES_URL")
                });
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                let url = DatabaseUrl::Postgres(with_database(&admin_url, &name));
                Self {
                    url,
                    _dir: None,
                    postgres: Some((admin_url, name)),
                }
            }
        }
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// The PostgreSQL server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("EVON_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

fn with_database(admin_url: &str, name: &str) -> String {
    match url::Url::parse(admin_url) {
        Ok(mut url) => {
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        Err(_) => format!("{}/{name}", admin_url.trim_end_matches('/')),
    }
}
