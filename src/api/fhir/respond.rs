//! Writing FHIR responses: `application/fhir+json`, `meta`, `ETag`, `Last-Modified`,
//! `_pretty`, and refusing formats other than JSON (406).

use axum::http::header::{ACCEPT, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::FhirError;
use crate::domain::Version;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// A JSON body with the FHIR content type.
pub fn fhir_json(status: StatusCode, body: &Value, pretty: bool) -> Response {
    let bytes = if pretty {
        serde_json::to_vec_pretty(body)
    } else {
        serde_json::to_vec(body)
    }
    .unwrap_or_default();
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        bytes,
    )
        .into_response()
}

/// A resource with its version's `ETag` and `Last-Modified`.
pub fn resource(
    body: &Value,
    version: Version,
    last_modified: jiff::Timestamp,
    pretty: bool,
) -> Response {
    let mut response = fhir_json(StatusCode::OK, body, pretty);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&version.etag()) {
        headers.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(
        &last_modified
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    ) {
        headers.insert(LAST_MODIFIED, v);
    }
    response
}

/// Output options every read takes: `_format` / `Accept` and `_pretty`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format {
    pub pretty: bool,
}

impl Format {
    /// JSON unless the client asks only for something else (XML, …): then 406.
    pub fn negotiate(
        headers: &HeaderMap,
        params: &[(String, String)],
    ) -> Result<Format, FhirError> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if param("_format").is_some_and(|f| !f.contains("json")) {
            return Err(FhirError::NotAcceptable);
        }
        if let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) {
            let wants_json = accept.split(',').any(|m| {
                let m = m.split(';').next().unwrap_or_default().trim();
                m.contains("json") || m == "*/*" || m == "application/*" || m.is_empty()
            });
            if !wants_json {
                return Err(FhirError::NotAcceptable);
            }
        }
        Ok(Format {
            pretty: param("_pretty") == Some("true"),
        })
    }
}

/// The FHIR base URL as the client addressed it (`http://host/fhir`), for `fullUrl`s and
/// links, which FHIR wants absolute.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}
