//! FHIR errors: every one is an `OperationOutcome` with the right status, an issue code,
//! a message and, where there is one, the `expression` of the element or parameter.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::respond::fhir_json;
use crate::fhir::expression_for;
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::store::StoreError;
use crate::write::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// 400: a bad parameter or body.
    #[error("{message}")]
    BadRequest {
        message: String,
        expression: Option<String>,
    },
    /// 401: no valid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token's scopes or limits do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 429: the client made too many requests; try again after the seconds given.
    #[error("too many requests from this client; try again in {0} s")]
    TooManyRequests(u64),
    /// 404: no such resource, version or type.
    #[error("{0}")]
    NotFound(String),
    /// 404 for a resource type the server does not serve.
    #[error("resource type {0} is not supported")]
    UnknownType(String),
    /// 410: the resource was deleted.
    #[error("{0}")]
    Gone(String),
    /// 405.
    #[error("this interaction is not supported here")]
    MethodNotAllowed,
    /// 406: a format other than JSON was asked for.
    #[error("only JSON is supported (application/fhir+json)")]
    NotAcceptable,
    /// 412: `If-Match` names an old version.
    #[error(
        "the resource is at version {current}, not {expected}; read it again and reapply the change"
    )]
    PreconditionFailed { expected: String, current: String },
    /// 409: e.g. a create for an id that exists.
    #[error("{0}")]
    Conflict(String),
    /// 409: a syncing system's edit changed parts that were changed meanwhile; one issue
    /// per part.
    #[error("the edit conflicts with changes it had not seen")]
    MergeConflict(Vec<Issue>),
    /// 413.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 413: a Bundle with more entries than one request may carry.
    #[error("at most {0} entries in one Bundle; send the rest in another")]
    TooManyEntries(usize),
    /// 408: the body did not arrive within the seconds given.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// 400 `too-costly`: the answer would be over the gateway's size limit.
    #[error("{message}")]
    TooCostly {
        message: String,
        expression: Option<String>,
    },
    /// 415.
    #[error("send the body as application/fhir+json")]
    UnsupportedMediaType,
    /// 422: the content breaks the contract's rules or cannot be mapped.
    #[error("the resource is not a valid Patientkontrakt")]
    Invalid(Vec<Issue>),
    /// 500: a bulk export job failed.
    #[error("the export failed: {0}")]
    Export(String),
    /// 503: the database is unreachable.
    #[error("the service is unavailable, try again shortly")]
    Unavailable,
    /// 507: the database has no room left.
    #[error(
        "the database has no room left for this change, so nothing was written; try again once the operator has freed space"
    )]
    InsufficientStorage,
    /// 500: details are in the log.
    #[error("internal error")]
    Internal,
}

impl FhirError {
    /// 422 with one issue of `code` at `expression` (`AppointmentResponse.start`, say).
    pub fn invalid_at(code: &'static str, expression: String, message: impl Into<String>) -> Self {
        Self::Invalid(vec![crate::fhir::outcome::Issue::error(
            code,
            message.into(),
            Some(expression),
        )])
    }

    pub fn bad_param(name: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            expression: Some(name.to_owned()),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            Self::TooCostly { .. } => (StatusCode::BAD_REQUEST, "too-costly"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "login"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Self::UnknownType(_) => (StatusCode::NOT_FOUND, "not-supported"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "not-supported"),
            Self::PreconditionFailed { .. } => (StatusCode::PRECONDITION_FAILED, "conflict"),
            Self::Conflict(_) | Self::MergeConflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Gone(_) => (StatusCode::GONE, "deleted"),
            Self::PayloadTooLarge | Self::TooManyEntries(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too-costly")
            }
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-supported"),
            Self::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invariant"),
            Self::NotAcceptable => (StatusCode::NOT_ACCEPTABLE, "not-supported"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "transient"),
            Self::InsufficientStorage => (StatusCode::INSUFFICIENT_STORAGE, "no-store"),
            Self::Internal | Self::Export(_) => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
        }
    }
}

impl FhirError {
    /// The status and the `OperationOutcome` this error answers with.
    pub fn outcome(&self) -> (StatusCode, serde_json::Value) {
        (self.status_and_code().0, operation_outcome(&self.issues()))
    }

    /// The issues of the OperationOutcome this error answers with.
    pub fn issues(&self) -> Vec<Issue> {
        let (_, code) = self.status_and_code();
        match self {
            Self::Invalid(issues) | Self::MergeConflict(issues) => issues.clone(),
            Self::BadRequest { expression, .. } | Self::TooCostly { expression, .. } => {
                vec![Issue::error(code, self.to_string(), expression.clone())]
            }
            Self::TooManyEntries(_) => {
                vec![Issue::error(
                    code,
                    self.to_string(),
                    Some("Bundle.entry".into()),
                )]
            }
            _ => vec![Issue::error(code, self.to_string(), None)],
        }
    }
}

/// Renders the write path's errors; the table of statuses and issue codes is on
/// [`WriteError`].
impl From<WriteError> for FhirError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::BadRequest { field, message } => Self::bad_param(&field, message),
            WriteError::Forbidden(m) => Self::Forbidden(m),
            WriteError::NotFound(m) => Self::NotFound(m),
            WriteError::NotSupported(_) => Self::MethodNotAllowed,
            WriteError::Conflict(m) => Self::Conflict(m),
            WriteError::MergeConflict(issues) => Self::MergeConflict(issues),
            WriteError::Gone(m) => Self::Gone(m),
            WriteError::Stale { named, current, .. } => Self::PreconditionFailed {
                expected: named.to_string(),
                current: current.to_string(),
            },
            WriteError::Invalid(issues) => Self::Invalid(issues),
            WriteError::Rules(violations, contract) => Self::Invalid(
                violations
                    .iter()
                    .map(|v| {
                        let expression = expression_for(&v.field(), &contract);
                        Issue::error("invariant", v.to_string(), Some(expression))
                    })
                    .collect(),
            ),
            WriteError::Store(e) => e.into(),
        }
    }
}

impl From<crate::fhir::UnknownType> for FhirError {
    fn from(e: crate::fhir::UnknownType) -> Self {
        Self::UnknownType(e.0)
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Deleted(id) => Self::Gone(format!("contract {id} was deleted")),
            e @ StoreError::IdentifierTaken { .. } => Self::Conflict(e.to_string()),
            e if e.is_full() => {
                tracing::error!(error = %e, "the database is full");
                Self::InsufficientStorage
            }
            StoreError::Database(e) => {
                tracing::error!(error = %e, "database error");
                Self::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let (status, outcome) = self.outcome();
        fhir_json(status, &outcome, false)
    }
}
