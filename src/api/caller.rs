//! The caller of a request as the write path takes it: the principal the guard
//! authenticated (put into the request's extensions) and the system the change comes
//! from (the token's client; without authentication, `X-Source`), with the request's
//! trace the guard put there, so a write's audit row is the request's.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::guard::Source;
use crate::auth::Principal;
use crate::store::RequestTrace;
use crate::write::Caller;

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    /// Only a route the guard let through has a caller: deny by default.
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // `/api/…` is the native API; the FHIR API is nested, so its paths lose `/fhir`.
        let default = if parts.uri.path().starts_with("/api/") {
            "api"
        } else {
            "fhir"
        };
        // The token's client, or without authentication the `X-Source` a system names.
        let source = match parts.extensions.get::<Source>() {
            Some(Source(client)) => client.clone(),
            None => parts
                .headers
                .get("x-source")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(default)
                .to_owned(),
        };
        let principal = parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .ok_or(StatusCode::UNAUTHORIZED)?;
        let caller = Caller::new(principal, source);
        Ok(match parts.extensions.get::<Arc<RequestTrace>>() {
            Some(trace) => caller.for_request(trace.clone()),
            None => caller,
        })
    }
}
