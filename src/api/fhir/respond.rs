//! Writing FHIR responses: `application/fhir+json`, `meta`, `ETag`, `Last-Modified`,
//! `_pretty`, and refusing formats other than JSON (406).

use axum::http::header::{ACCEPT, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::FhirError;
use crate::api::guard::Given;
use crate::domain::Version;
use crate::fhir::outcome::{Issue, operation_outcome};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// A `searchset` Bundle of `resources` (each a match, at its URL under `base`), all of
/// them on one page; with a `self` link when one is given.
pub fn searchset(base: &str, resources: Vec<Value>, self_link: Option<String>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let url = format!(
                "{base}/{}/{}",
                r["resourceType"].as_str().unwrap_or_default(),
                r["id"].as_str().unwrap_or_default()
            );
            serde_json::json!({ "fullUrl": url, "resource": r, "search": { "mode": "match" } })
        })
        .collect();
    let mut bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
    });
    if let Some(url) = self_link {
        bundle["link"] = serde_json::json!([{ "relation": "self", "url": url }]);
    }
    bundle["entry"] = Value::Array(entries);
    bundle
}

/// A JSON body with the FHIR content type, and what it gives for the guard's audit row
/// (gathered from `body` here, so the guard does not parse the bytes again).
pub fn fhir_json(status: StatusCode, body: &Value, pretty: bool) -> Response {
    let bytes = if pretty {
        serde_json::to_vec_pretty(body)
    } else {
        serde_json::to_vec(body)
    }
    .unwrap_or_default();
    let mut response = fhir_bytes(status, bytes, false);
    response.extensions_mut().insert(Given::of(body));
    response
}

/// JSON already serialized (from the read cache, or written around its bytes), with the
/// FHIR content type; `pretty` writes it again, indented.
pub fn fhir_bytes(
    status: StatusCode,
    bytes: impl Into<axum::body::Bytes>,
    pretty: bool,
) -> Response {
    let bytes = bytes.into();
    let indented = pretty
        .then(|| serde_json::from_slice::<Value>(&bytes).ok())
        .flatten()
        .and_then(|value| serde_json::to_vec_pretty(&value).ok());
    let body = indented.map_or(bytes, Into::into);
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        body,
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
    version_headers(&mut response, version, last_modified);
    response
}

/// A value of the `Prefer` header (`return`, `handling`), if the client gave one.
pub fn prefer<'h>(headers: &'h HeaderMap, key: &str) -> Option<&'h str> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// What a write answers, as `Prefer: return=` asks: the resource (`representation`, the
/// default), nothing (`minimal`), or an `OperationOutcome` saying what was done.
pub struct WriteReply<'a> {
    pub status: StatusCode,
    pub body: WriteBody<'a>,
    pub version: Version,
    pub last_modified: jiff::Timestamp,
    /// `Location`: the version written, for creates and updates.
    pub location: Option<String>,
    pub message: String,
}

/// The resource a write's answer carries: as a value, or as the read cache already
/// wrote it (the same bytes a read of it answers).
#[derive(Debug)]
pub enum WriteBody<'a> {
    Value(&'a Value),
    Bytes(axum::body::Bytes),
}

impl WriteReply<'_> {
    pub fn into_response(self, headers: &HeaderMap, format: Format) -> Response {
        let mut response = match prefer(headers, "return") {
            Some("minimal") => self.status.into_response(),
            Some("OperationOutcome") => {
                let issue = Issue {
                    severity: "information",
                    code: "informational",
                    diagnostics: self.message,
                    expression: None,
                };
                fhir_json(self.status, &operation_outcome(&[issue]), format.pretty)
            }
            _ => match self.body {
                WriteBody::Value(body) => fhir_json(self.status, body, format.pretty),
                WriteBody::Bytes(bytes) => fhir_bytes(self.status, bytes, false),
            },
        };
        version_headers(&mut response, self.version, self.last_modified);
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(LOCATION, v);
        }
        response
    }
}

/// `ETag` and `Last-Modified` of a version.
pub fn version_headers(response: &mut Response, version: Version, last_modified: jiff::Timestamp) {
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
}

/// Whether the client already holds this version (a read answers 304): `If-None-Match`
/// names it (one ETag, a list, or `*`), or, without `If-None-Match`, it was stored no
/// later than `If-Modified-Since` (an HTTP date, to the second), as RFC 9110 has them.
pub fn not_modified(headers: &HeaderMap, version: Version, recorded_at: jiff::Timestamp) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(tags) = header(axum::http::header::IF_NONE_MATCH) {
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || Version::parse(tag).is_ok_and(|held| held == version));
    }
    let since = header(axum::http::header::IF_MODIFIED_SINCE).and_then(|date| {
        jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", date)
            .ok()?
            .to_datetime()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
    });
    since.is_some_and(|since| recorded_at.as_second() <= since.timestamp().as_second())
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
