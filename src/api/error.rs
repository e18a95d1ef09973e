//! Errors as the API answers them: the right status and a JSON body that names the field
//! and says why. 5xx bodies say nothing internal; the detail goes to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::{Version, Violations};
use crate::store::StoreError;
use crate::write::WriteError;

/// One problem with a request: the field (a JSON path, a header or a parameter) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Issue {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a bad parameter or header. 400.
    #[error("{}: {}", .0.field, .0.message)]
    BadRequest(Issue),
    /// Well-formed but not a valid contract. 422.
    #[error("the contract is not valid")]
    Invalid(Vec<Issue>),
    /// 401: no valid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token's scopes or limits do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 429: too many requests from this client.
    #[error("too many requests from this client; try again in {0} s")]
    TooManyRequests(u64),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The id is taken. 409.
    #[error("{0}")]
    Conflict(String),
    /// The contract was deleted through the FHIR API and takes no more changes. 410.
    #[error("{0}")]
    Gone(String),
    /// If-Match names an old version. 412.
    #[error(
        "the contract is at version {current}, not {expected}; read it again and reapply the change"
    )]
    Stale { expected: Version, current: Version },
    /// An update without If-Match. 428.
    #[error("updates must say which version they change: send If-Match with the version's ETag")]
    PreconditionRequired,
    /// A body that is not JSON. 415.
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// A body over the size limit. 413.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The body did not arrive in time. 408.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// The database is unreachable. 503.
    #[error("the service is unavailable, try again shortly")]
    Unavailable,
    /// The database has no room left. 507.
    #[error(
        "the database has no room left for this change, so nothing was written; try again once the operator has freed space"
    )]
    InsufficientStorage,
    /// A bug or damaged data. 500.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, message: impl ToString) -> Self {
        Self::BadRequest(Issue {
            field: field.into(),
            message: message.to_string(),
        })
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::Stale { .. } => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn issues(&self) -> Vec<Issue> {
        match self {
            Self::BadRequest(issue) => vec![issue.clone()],
            Self::Invalid(issues) => issues.clone(),
            _ => Vec::new(),
        }
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        Self::Invalid(
            v.iter()
                .map(|v| Issue {
                    field: v.field(),
                    message: v.to_string(),
                })
                .collect(),
        )
    }
}

/// Renders the write path's errors; the table of statuses is on [`WriteError`].
impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::BadRequest { field, message } => Self::bad_request(field, message),
            WriteError::Forbidden(m) => Self::Forbidden(m),
            WriteError::NotFound(m) => Self::NotFound(m),
            WriteError::NotSupported(_) => Self::MethodNotAllowed,
            WriteError::Conflict(m) => Self::Conflict(m),
            WriteError::MergeConflict(issues) | WriteError::Invalid(issues) => Self::Invalid(
                issues
                    .into_iter()
                    .map(|i| Issue {
                        field: i.expression.unwrap_or_default(),
                        message: i.diagnostics,
                    })
                    .collect(),
            ),
            WriteError::Gone(m) => Self::Gone(m),
            WriteError::Stale { named, current, .. } => Self::Stale {
                expected: named,
                current,
            },
            WriteError::Rules(violations, _) => violations.into(),
            WriteError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("contract {what} not found")),
            StoreError::VersionConflict {
                expected, current, ..
            } => Self::Stale { expected, current },
            StoreError::AlreadyExists(id) => {
                Self::Conflict(format!("contract {id} already exists"))
            }
            StoreError::Deleted(id) => Self::Gone(format!("contract {id} was deleted")),
            e @ StoreError::IdentifierTaken { .. } => Self::Conflict(e.to_string()),
            StoreError::Invalid(v) => v.into(),
            e if e.is_full() => {
                tracing::error!(error = %e, "the database is full");
                Self::InsufficientStorage
            }
            StoreError::Database(e) => {
                tracing::error!(error = %e, "database error");
                Self::Unavailable
            }
            e @ (StoreError::Corrupt(_) | StoreError::Config(_) | StoreError::Migrate(_)) => {
                tracing::error!(error = %e, "store failure");
                Self::Internal
            }
        }
    }
}

/// Every error's body: `{"error": {status, message, issues}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody<'a> {
    error: Detail<'a>,
}

/// What went wrong: the HTTP status, a message, and for a bad or invalid request the
/// field of each problem.
#[derive(Serialize, utoipa::ToSchema)]
struct Detail<'a> {
    status: u16,
    message: String,
    #[serde(skip_serializing_if = "<[Issue]>::is_empty")]
    #[schema(value_type = Vec<Issue>)]
    issues: &'a [Issue],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let issues = self.issues();
        let body = ErrorBody {
            error: Detail {
                status: status.as_u16(),
                message: self.to_string(),
                issues: &issues,
            },
        };
        (status, Json(body)).into_response()
    }
}
