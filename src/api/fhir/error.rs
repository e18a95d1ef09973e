//! FHIR errors: every one is an `OperationOutcome` with the right status, an issue code,
//! a message and, where there is one, the `expression` of the element or parameter.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::respond::fhir_json;
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// 400: a bad parameter or body.
    #[error("{message}")]
    BadRequest {
        message: String,
        expression: Option<String>,
    },
    /// 404: no such resource, version or type.
    #[error("{0}")]
    NotFound(String),
    /// 404 for a resource type the server does not serve.
    #[error("resource type {0} is not supported")]
    UnknownType(String),
    /// 405.
    #[error("this interaction is not supported here")]
    MethodNotAllowed,
    /// 406: a format other than JSON was asked for.
    #[error("only JSON is supported (application/fhir+json)")]
    NotAcceptable,
    /// 503: the database is unreachable.
    #[error("the service is unavailable, try again shortly")]
    Unavailable,
    /// 500: details are in the log.
    #[error("internal error")]
    Internal,
}

impl FhirError {
    pub fn bad_param(name: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            expression: Some(name.to_owned()),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Self::UnknownType(_) => (StatusCode::NOT_FOUND, "not-supported"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "not-supported"),
            Self::NotAcceptable => (StatusCode::NOT_ACCEPTABLE, "not-supported"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "transient"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
        }
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
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
        let (status, code) = self.status_and_code();
        let expression = match &self {
            Self::BadRequest { expression, .. } => expression.clone(),
            _ => None,
        };
        let outcome = operation_outcome(&[Issue::error(code, self.to_string(), expression)]);
        fhir_json(status, &outcome, false)
    }
}
