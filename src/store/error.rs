//! What can go wrong in the store.

use crate::domain::{ContractId, Version, Violations};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such contract (or version). HTTP 404.
    #[error("contract {0} not found")]
    NotFound(String),
    /// The update was based on an old version. HTTP 412 (If-Match) or 409.
    #[error("contract {id} is at version {current}, not {expected}")]
    VersionConflict {
        id: ContractId,
        expected: Version,
        current: Version,
    },
    /// The contract was deleted (revoked through a delete) and takes no more changes.
    /// HTTP 410.
    #[error("contract {0} was deleted")]
    Deleted(ContractId),
    /// The contract id is taken. HTTP 409.
    #[error("contract {0} already exists")]
    AlreadyExists(ContractId),
    /// Another live contract's CarePlan carries this business identifier. HTTP 409.
    #[error("the identifier {system}|{value} is another contract's")]
    IdentifierTaken { system: String, value: String },
    /// The contract breaks an invariant. HTTP 422.
    #[error("{0}")]
    Invalid(#[from] Violations),
    /// Bad settings, e.g. an unknown database URL scheme. Fatal at start.
    #[error("{0}")]
    Config(String),
    /// Stored data that does not parse; a bug or a damaged database. HTTP 500.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable. HTTP 503.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the database refused for want of room: SQLite's `SQLITE_FULL` (the disk,
    /// or its size limit), PostgreSQL's `disk_full` (53100). Nothing was written.
    pub fn is_full(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(e)) = self else {
            return false;
        };
        match e.code().as_deref() {
            Some("53100") => true,
            // SQLite's primary code is the low byte of its extended one.
            Some(code) => code.parse::<i32>().is_ok_and(|c| c & 0xff == 13),
            None => false,
        }
    }
}
