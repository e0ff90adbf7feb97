//! Connections: one diesel `MultiConnection` over SQLite and PostgreSQL, a pool whose backend is
//! picked from the URL scheme, per-connection SQLite settings, embedded migrations and the
//! write transaction every multi-row change runs in.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{StoreError, StoreResult};
use crate::generation::GenerationWatch;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// How long a writer waits for SQLite's write lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// How often a write transaction is retried after colliding with a concurrent one.
const WRITE_ATTEMPTS: usize = 8;

/// One database connection of either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

impl std::fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbConnection::Postgres(_) => "DbConnection::Postgres",
            DbConnection::Sqlite(_) => "DbConnection::Sqlite",
        })
    }
}

/// Runs one query on whichever backend the connection is, for the few statements diesel
/// cannot build for both at once through `MultiConnection` (batch inserts, `RETURNING`).
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, $inner:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($inner) => $body,
            $crate::db::DbConnection::Sqlite($inner) => $body,
        }
    };
}

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://relative/path` or `sqlite:///absolute/path`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to libpq as it is.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a database URL by its scheme. Anything but `sqlite://`, `postgres://` and
    /// `postgresql://` is refused, so a typo never becomes a new SQLite file named after it.
    pub fn parse(url: &str) -> StoreResult<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Config(
                    "database URL sqlite:// names no file".into(),
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        Err(StoreError::Config(format!(
            "unsupported database URL scheme {scheme:?}: use sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }

    /// A URL for a SQLite file.
    pub fn sqlite(path: &Path) -> Self {
        Self::Sqlite(path.to_owned())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL with any password removed, fit for logs and error messages.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_postgres(url),
        }
    }

    /// `text` with this URL and every password in it redacted: the PostgreSQL driver quotes a
    /// URL it cannot parse, password and all, in its error message.
    pub fn scrub(&self, text: &str) -> String {
        let Self::Postgres(url) = self else {
            return text.to_owned();
        };
        let mut text = text.replace(url.as_str(), &redact_postgres(url));
        for password in postgres_passwords(url) {
            if !password.is_empty() {
                text = text.replace(&password, "***");
            }
        }
        text
    }
}

/// A PostgreSQL URL without its passwords: the one in the user information and a `password`
/// query parameter (libpq takes either). A URL that does not parse keeps only its scheme and
/// what follows the user information, unless it names a password anywhere else.
fn redact_postgres(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query_pairs().any(|(key, _)| key == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if key == "password" {
                            "***".into()
                        } else {
                            value
                        };
                        (key.into_owned(), value.into_owned())
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            if rest.to_ascii_lowercase().contains("password") {
                format!("{scheme}://***")
            } else if url.contains('@') {
                format!("{scheme}://***@{rest}")
            } else {
                url.to_owned()
            }
        }
    }
}

/// Every form a password of this URL could be quoted in: as written and percent-decoded.
fn postgres_passwords(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    match url::Url::parse(url) {
        Ok(parsed) => {
            if let Some(password) = parsed.password() {
                out.push(password.to_owned());
                if let Ok(decoded) = percent_decode(password) {
                    out.push(decoded);
                }
            }
            out.extend(
                parsed
                    .query_pairs()
                    .filter(|(key, _)| key == "password")
                    .map(|(_, value)| value.into_owned()),
            );
        }
        Err(_) => {
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            if let Some((user_info, _)) = rest.rsplit_once('@') {
                if let Some((_, password)) = user_info.split_once(':') {
                    out.push(password.to_owned());
                }
            }
        }
    }
    out
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether opening a SQLite database may create its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve` and `init`: a new hub starts from nothing.
    CreateIfMissing,
    /// Every other command: a missing file means a wrong path, not a new hub.
    MustExist,
}

/// Opens connections for the pool, choosing the backend from the URL rather than trying each in
/// turn (which would let a PostgreSQL URL fall through to SQLite and create a file).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    fn establish(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgres),
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    diesel::ConnectionError::InvalidConnectionUrl("SQLite path is not UTF-8".into())
                })?;
                let mut conn = SqliteConnection::establish(path)?;
                // busy_timeout first, so that switching to WAL waits for other openers too.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.establish()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A connection handed back inside a transaction (a panic mid-change) must not be reused.
        !matches!(
            <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
                .transaction_depth(),
            Ok(None)
        )
    }
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// Pool sizing and waiting.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    /// Idle connections the pool keeps open (and opens in the background to keep).
    pub min_idle: Option<u32>,
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 8,
            min_idle: Some(1),
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// The hub's database: a connection pool, the backend it talks to, and the newest generation
/// this process knows of (shared by every clone).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    watch: Arc<GenerationWatch>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects and brings the schema up to date.
    pub fn open(url: &DatabaseUrl, mode: OpenMode, options: &PoolOptions) -> StoreResult<Self> {
        if let DatabaseUrl::Sqlite(path) = url {
            check_sqlite_path(path, mode)?;
        }
        let manager = ConnectionManager { url: url.clone() };
        // One connection is made eagerly so that an unreachable database fails here, once,
        // with the driver's reason, rather than as a timeout on the first request.
        let mut first = manager.establish().map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to {}: {}",
                url.redacted(),
                url.scrub(first_line(&e.to_string()))
            ))
        })?;
        run_migrations(&mut first)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(options.max_size)
            .min_idle(options.min_idle)
            .connection_timeout(options.connection_timeout)
            .test_on_check_out(false)
            .build(manager)?;
        Ok(Self {
            pool,
            backend: url.backend(),
            watch: Arc::new(GenerationWatch::new()),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The newest hub generation this process has seen committed. Writes through this store
    /// advance it before they return; writes by other processes only once something reads the
    /// generation (`GenerationPoller`).
    pub fn generation_watch(&self) -> &Arc<GenerationWatch> {
        &self.watch
    }

    /// A pooled connection, for reads. Blocking: call it off the async workers.
    pub fn conn(&self) -> StoreResult<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// Runs `change` in one write transaction, retried when it collides with a concurrent one.
    /// The generation it committed is known to the watch before this returns, so that the
    /// caller's next request sees the change (read-your-writes through every cache).
    pub fn write<T>(
        &self,
        change: impl FnMut(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let (value, generation) = committed_write(&mut conn, change)?;
        if let Some(generation) = generation {
            self.watch.advance(generation);
        }
        Ok(value)
    }

    /// Runs `query` on a pooled connection inside one read transaction, so that everything it
    /// reads comes from one consistent snapshot.
    pub fn read<T>(
        &self,
        query: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut pooled = self.conn()?;
        let conn: &mut DbConnection = &mut pooled;
        conn.transaction(query)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

fn check_sqlite_path(path: &Path, mode: OpenMode) -> StoreResult<()> {
    match mode {
        OpenMode::MustExist if !path.is_file() => Err(StoreError::Config(format!(
            "no hub database at {}: check the data directory or database URL, or run `evon-hub init`",
            path.display()
        ))),
        OpenMode::CreateIfMissing => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if parent.is_dir() {
                Ok(())
            } else {
                Err(StoreError::Config(format!(
                    "cannot create the hub database {}: directory {} does not exist",
                    path.display(),
                    parent.display()
                )))
            }
        }
        OpenMode::MustExist => Ok(()),
    }
}

/// Applies every pending embedded migration of the connection's backend.
pub fn run_migrations(conn: &mut DbConnection) -> StoreResult<()> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Postgres(c) => {
            // Replicas starting together must not apply the same migration twice.
            c.batch_execute("SELECT pg_advisory_lock(7361626)")?;
            let applied = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            c.batch_execute("SELECT pg_advisory_unlock(7361626)")?;
            applied
        }
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

/// One connection and no pool, for a process that makes a few queries and exits (the OpenVPN
/// hooks, hundreds of which may start at once): no pool threads, one connection per process
/// (a pool opened one to check the schema and then another), and the schema only checked with
/// one read of the applied versions, migrating only when some are missing. Running diesel's
/// migration harness on every open issued DDL (`CREATE TABLE IF NOT EXISTS`) each time.
pub fn connect_once(url: &DatabaseUrl, mode: OpenMode) -> StoreResult<DbConnection> {
    if let DatabaseUrl::Sqlite(path) = url {
        check_sqlite_path(path, mode)?;
    }
    let manager = ConnectionManager { url: url.clone() };
    let mut conn = manager.establish().map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot connect to {}: {}",
            url.redacted(),
            url.scrub(first_line(&e.to_string()))
        ))
    })?;
    if migrations_pending(&mut conn)? {
        run_migrations(&mut conn)?;
    }
    Ok(conn)
}

/// Whether any embedded migration of the connection's backend is not applied yet, from one
/// query (a database without the migrations table has everything pending).
fn migrations_pending(conn: &mut DbConnection) -> StoreResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let embedded: Vec<String> = match conn {
        DbConnection::Sqlite(_) => {
            diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(
                &SQLITE_MIGRATIONS,
            )
            .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
        }
        DbConnection::Postgres(_) => {
            diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
                .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
        }
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    let applied: Vec<Applied> =
        match diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn) {
            Ok(applied) => applied,
            // No table yet (or unreadable): let the harness decide, as `Store::open` does.
            Err(_) => return Ok(true),
        };
    let applied: std::collections::HashSet<String> =
        applied.into_iter().map(|a| a.version).collect();
    Ok(embedded.iter().any(|version| !applied.contains(version)))
}

/// Runs `query` in one read transaction on a connection of its own (`connect_once`), so that
/// everything it reads comes from one snapshot, as `Store::read` does on a pooled one.
pub fn read_transaction<T>(
    conn: &mut DbConnection,
    query: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.transaction(query)
}

/// Whether an error says the database is momentarily unable to serve (overloaded, restarting,
/// locked) rather than wrong, unreachable or misconfigured: a caller that may wait (an OpenVPN
/// hook) can try again on a new connection.
pub fn is_transient(error: &StoreError) -> bool {
    const MARKERS: [&str; 9] = [
        // PostgreSQL: max_connections reached, or only reserved slots left.
        "too many clients already",
        "remaining connection slots are reserved",
        // PostgreSQL starting, stopping or recovering (a restart under the hub).
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "deadlock detected",
        "could not serialize access",
        // SQLite: the lock outlived busy_timeout.
        "database is locked",
        "database table is locked",
    ];
    match error {
        StoreError::Conflict(_) => true,
        StoreError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            _,
        )) => true,
        StoreError::Unavailable(_) | StoreError::Migration(_) | StoreError::Database(_) => {
            let text = error.to_string();
            MARKERS.iter().any(|marker| text.contains(marker))
        }
        _ => false,
    }
}

/// One transaction for transient state that is no part of the hub's configuration (the auth
/// throttle). Unlike `write_transaction` it leaves the hub generation alone, so that a failed
/// login does not invalidate every cache keyed by it; like it, it starts with `BEGIN IMMEDIATE`
/// on SQLite so that the writer waits for the lock instead of failing half-way.
pub fn transient_transaction<T>(
    conn: &mut DbConnection,
    mut change: impl FnMut(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    match conn {
        DbConnection::Postgres(_) => conn.transaction(&mut change),
        DbConnection::Sqlite(_) => immediate_transaction(conn, &mut change),
    }
}

/// Locks that serialise one kind of allocation across concurrent transactions.
#[derive(Debug, Clone, Copy)]
pub enum TransactionLock {
    /// Choosing the lowest free user address.
    UserAddresses = 1,
    /// Choosing the lowest free server address and a free FQDN.
    ServerRegistration = 2,
}

/// Takes a lock held until the current transaction ends. On PostgreSQL, concurrent writers that
/// all read "the lowest free address" would otherwise pick the same one and all but one would
/// fail on the unique constraint, round after round; with the lock they queue. SQLite needs
/// nothing: `BEGIN IMMEDIATE` already lets one writer in at a time. The unique constraints stay
/// as the last line of defence either way.
pub fn lock_for_transaction(conn: &mut DbConnection, lock: TransactionLock) -> StoreResult<()> {
    if let DbConnection::Postgres(_) = conn {
        // Namespaced so as not to meet other applications' advisory locks on a shared server.
        let key = 0x4576_6f6e_0000_0000_i64 | lock as i64;
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({key})")).execute(conn)?;
    }
    Ok(())
}

/// Whether an error comes from two writers colliding, so that trying again can succeed.
fn is_collision(error: &StoreError) -> bool {
    match error {
        StoreError::Database(DieselError::DatabaseError(kind, info)) => match kind {
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure => true,
            // PostgreSQL (read committed): a row this transaction validated a reference to was
            // deleted by a concurrent one before the reference was written. Run again, the
            // change sees the deletion and answers as for any unknown id (400 or 404).
            DatabaseErrorKind::ForeignKeyViolation => true,
            // SQLite reports lock contention that outlived busy_timeout as an unknown error.
            _ => info.message().contains("database is locked"),
        },
        _ => false,
    }
}

/// Runs `change` in a transaction and commits it; on a collision with a concurrent writer it
/// rolls back and runs `change` again. On SQLite the transaction starts with `BEGIN IMMEDIATE`,
/// taking the write lock up front: a deferred transaction that reads and then writes can fail
/// with SQLITE_BUSY without waiting, where an immediate one waits its turn.
pub fn write_transaction<T>(
    conn: &mut DbConnection,
    change: impl FnMut(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    committed_write(conn, change).map(|(value, _)| value)
}

/// `write_transaction`, also answering the generation the transaction committed (`None` before
/// `init`, when there is no hub row to move).
fn committed_write<T>(
    conn: &mut DbConnection,
    mut change: impl FnMut(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<(T, Option<i64>)> {
    let mut attempt = 0;
    // Every committed write moves the hub's generation on, so that caches of derived state (the
    // access index, the token cache) on every replica notice. The row is locked only at the very
    // end; reading it back under that lock gives the generation this commit makes.
    let mut change = |conn: &mut DbConnection| {
        let value = change(conn)?;
        crate::hub::bump_generation(conn)?;
        let generation = crate::generation::stored(conn)?;
        Ok((value, generation))
    };
    loop {
        attempt += 1;
        let result = match conn {
            DbConnection::Postgres(_) => conn.transaction(&mut change),
            DbConnection::Sqlite(_) => immediate_transaction(conn, &mut change),
        };
        match result {
            Err(error) if attempt < WRITE_ATTEMPTS && is_collision(&error) => {
                tracing::debug!(attempt, %error, "write transaction collided; retrying");
                std::thread::sleep(Duration::from_millis(2 * attempt as u64));
            }
            Err(error) if is_collision(&error) => {
                return Err(StoreError::Conflict(error.to_string()))
            }
            other => return other,
        }
    }
}

fn immediate_transaction<T>(
    conn: &mut DbConnection,
    change: &mut impl FnMut(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    if let DbConnection::Sqlite(inner) = conn {
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
    }
    match change(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) =
                <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::error!(%rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/hub.db").unwrap(),
            DatabaseUrl::Sqlite("data/hub.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/hub.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/hub.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        for bad in ["mysql://u@h/db", "hub.db", "sqlite://", "sqlite:hub.db"] {
            assert!(
                matches!(DatabaseUrl::parse(bad), Err(StoreError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn redaction() {
        let url = DatabaseUrl::parse("postgres://evon:s3cret@db.example.com/hub").unwrap();
        assert_eq!(url.redacted(), "postgres://evon:***@db.example.com/hub");
        let url = DatabaseUrl::parse(
            "postgres://evon@db.example.com/hub?password=s3cret&sslmode=require",
        )
        .unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://evon@db.example.com/hub?password=***&sslmode=require"
        );
        // The driver quotes a URL it cannot parse; neither the URL nor its password survives.
        let raw = "postgres://evon:s3cr%40t@[::1/hub";
        let url = DatabaseUrl::parse(raw).unwrap();
        assert_eq!(url.redacted(), "postgres://***@[::1/hub");
        let message = format!("invalid connection string in URI: \"{raw}\"; password s3cr%40t");
        let scrubbed = url.scrub(&message);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        assert!(scrubbed.contains("postgres://***@[::1/hub"), "{scrubbed}");
        let url = DatabaseUrl::parse("postgres://evon:p%40ss@db.example.com/hub").unwrap();
        assert_eq!(
            url.scrub("auth failed for p@ss and p%40ss"),
            "auth failed for *** and ***"
        );
    }

    /// A driver error for a URL it cannot parse quotes the URL; the error reaching the caller
    /// (and the log) must not carry the password.
    #[test]
    fn connection_errors_carry_no_password() {
        let url = DatabaseUrl::parse("postgres://evon:Never-Logged-9@[::1/hub").unwrap();
        let error = Store::open(&url, OpenMode::MustExist, &PoolOptions::default())
            .expect_err("an unparseable URL does not connect")
            .to_string();
        assert!(!error.contains("Never-Logged-9"), "{error}");
        let error = connect_once(&url, OpenMode::MustExist)
            .expect_err("an unparseable URL does not connect")
            .to_string();
        assert!(!error.contains("Never-Logged-9"), "{error}");
    }

    #[test]
    fn sqlite_never_creates_files_where_it_must_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.sqlite3");
        let url = DatabaseUrl::sqlite(&missing);
        assert!(matches!(
            Store::open(&url, OpenMode::MustExist, &PoolOptions::default()),
            Err(StoreError::Config(_))
        ));
        assert!(!missing.exists());
        let nested = DatabaseUrl::sqlite(&dir.path().join("no/such/dir/hub.sqlite3"));
        assert!(matches!(
            Store::open(&nested, OpenMode::CreateIfMissing, &PoolOptions::default()),
            Err(StoreError::Config(_))
        ));
        let store = Store::open(&url, OpenMode::CreateIfMissing, &PoolOptions::default()).unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        assert!(missing.exists());
    }

    #[test]
    fn unreachable_postgres_is_a_clear_error() {
        let url =
            DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/nothing?connect_timeout=2").unwrap();
        match Store::open(&url, OpenMode::MustExist, &PoolOptions::default()) {
            Err(StoreError::Unavailable(message)) => {
                assert!(message.contains("127.0.0.1"), "{message}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
