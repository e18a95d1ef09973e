//! What a write answers when it does not happen: one error type for every way in (FHIR,
//! the native API, sync, the CLI), each variant rendered by the HTTP layer as
//! documented here and in the README's table.

use crate::domain::{Contract, Version, Violations};
use crate::fhir::outcome::Issue;
use crate::store::StoreError;

/// Why a write was not done. Nothing of it was stored.
///
/// | variant | HTTP | OperationOutcome `issue.code` |
/// |---|---|---|
/// | `BadRequest` | 400 | `invalid` |
/// | `Forbidden` | 403 | `forbidden` |
/// | `NotFound` | 404 | `not-found` |
/// | `NotSupported` | 405 | `not-supported` |
/// | `Conflict`, `MergeConflict` | 409 | `conflict` |
/// | `Gone` | 410 | `deleted` |
/// | `Stale` | 412 | `conflict` |
/// | `Invalid` | 422 | `structure` (or as each issue says) |
/// | `Rules` | 422 | `invariant` |
/// | `Store` | 503 (database unreachable) or 500 | `transient` / `exception` |
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The request itself is malformed: a url, an id, a condition. `field` names it.
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// The caller may not make this change.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource, or one the caller may not see (the same answer for both).
    #[error("{0}")]
    NotFound(String),
    /// The interaction is not offered for this resource type.
    #[error("{0}")]
    NotSupported(String),
    /// The resource exists already, or the contract kept changing under the write.
    #[error("{0}")]
    Conflict(String),
    /// A syncing system's edit of an older version changed parts that were changed
    /// meanwhile: one issue per part. The edit is kept as a conflict record.
    #[error("the edit conflicts with changes it had not seen")]
    MergeConflict(Vec<Issue>),
    /// The contract was deleted.
    #[error("{0}")]
    Gone(String),
    /// `If-Match` names another version than the resource's current one.
    #[error(
        "{resource} is at version {current}, not {named}; read it again and reapply the change"
    )]
    Stale {
        resource: String,
        named: Version,
        current: Version,
    },
    /// Content that cannot be kept exactly as sent; one issue per element.
    #[error("the content cannot be stored as sent")]
    Invalid(Vec<Issue>),
    /// The contract the change would make breaks its rules (the domain invariants).
    #[error("{0}")]
    Rules(Violations, Box<Contract>),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl WriteError {
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    /// 404 for `name` (`CarePlan/…`): it does not exist, or the caller may not see it.
    pub fn not_known(name: &str) -> Self {
        Self::NotFound(format!("{name} is not known"))
    }

    /// One issue of the received content.
    pub fn invalid(code: &'static str, message: impl Into<String>, expression: String) -> Self {
        Self::Invalid(vec![Issue::error(code, message, Some(expression))])
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} is not known")),
            StoreError::Deleted(id) => Self::Gone(format!("CarePlan/{id} was deleted")),
            StoreError::AlreadyExists(id) => {
                Self::Conflict(format!("CarePlan/{id} already exists"))
            }
            e @ StoreError::IdentifierTaken { .. } => Self::Conflict(e.to_string()),
            other => Self::Store(other),
        }
    }
}
