//! What can go wrong in the store, in terms the HTTP layer and the CLI can act on.

use evon_domain::FieldErrors;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object addressed does not exist.
    #[error("not found")]
    NotFound,
    /// The request is well-formed but its values do not fit the stored state (a taken name, a
    /// reference to nothing, a protected built-in).
    #[error("invalid: {0}")]
    Validation(FieldErrors),
    /// The actor may not make this change: it would escalate privileges or harm a built-in.
    #[error("forbidden")]
    Forbidden,
    /// Concurrent writers kept colliding; the change was not made.
    #[error("conflicting concurrent change, not applied: {0}")]
    Conflict(String),
    /// The hub has not been initialised (run `evon-hub init`).
    #[error("the hub is not initialised; run `evon-hub init`")]
    NotInitialised,
    /// The database URL or file is unusable.
    #[error("{0}")]
    Config(String),
    /// The database could not be reached or no connection was free in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// Stored data that the domain rejects: a corrupt or hand-edited database.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Crypto(String),
    /// A backup document that cannot be imported: one sentence per problem, naming the object
    /// (at most `backup::MAX_PROBLEMS`, then `and N more`).
    #[error("invalid backup document: {}", .0.join("; "))]
    InvalidDocument(Vec<String>),
    /// An import into a hub that holds more than a fresh `init` makes.
    #[error("{0}")]
    TargetNotEmpty(String),
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The outcome of a statement that must touch exactly the row it addresses: the row was read
/// earlier in the transaction, but on PostgreSQL (read committed) a concurrent transaction may
/// have deleted it since, and a DELETE or UPDATE that waited for that one's lock then touches
/// nothing. Two concurrent deletes of one object must not both answer success.
pub(crate) fn touched_one(rows: usize) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
