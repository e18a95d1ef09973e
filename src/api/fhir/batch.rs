//! `POST /fhir` with a `batch` Bundle: each entry is a request of its own (read, vread,
//! search, create, update, conditional update, delete), done in order and answered in a
//! `batch-response` entry at the same place. One entry failing does not undo another;
//! its response carries the status and the OperationOutcome.

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::Kind;
use super::read::read_resource;
use super::search::searchset;
use super::write::{allowed, check_type, contract_in_query, post, put, remove, source};
use crate::api::AppState;
use crate::domain::Version;

/// The entries of a `batch-response` for a batch's entries.
pub(super) async fn batch(state: &AppState, headers: &HeaderMap, entries: &[Value]) -> Value {
    let mut responses = Vec::with_capacity(entries.len());
    for (at, entry) in entries.iter().enumerate() {
        responses.push(match one(state, headers, entry, at).await {
            Ok(response) => response,
            Err(e) => {
                let (status, outcome) = e.outcome();
                json!({ "response": { "status": status_line(status), "outcome": outcome } })
            }
        });
    }
    json!({ "resourceType": "Bundle", "type": "batch-response", "entry": responses })
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

/// One entry's request, done.
async fn one(
    state: &AppState,
    headers: &HeaderMap,
    entry: &Value,
    at: usize,
) -> Result<Value, FhirError> {
    let path = format!("Bundle.entry[{at}].request");
    let request = &entry["request"];
    let url = request["url"]
        .as_str()
        .ok_or_else(|| FhirError::bad_param(&format!("{path}.url"), "is missing"))?;
    // An absolute URL is read relative to the FHIR base.
    crate::api::entry_allowed(request["method"].as_str().unwrap_or_default(), url)?;
    let url = url.split_once("/fhir/").map_or(url, |(_, rest)| rest);
    let (route, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    let if_match = request["ifMatch"]
        .as_str()
        .map(|tag| {
            Version::parse(tag)
                .map_err(|e| FhirError::bad_param(&format!("{path}.ifMatch"), e.to_string()))
        })
        .transpose()?;
    let resource = &entry["resource"];
    let source = source(headers);
    let written = match (request["method"].as_str(), &segments[..]) {
        (Some("GET"), [kind]) => {
            let params = form_urlencoded(query)?;
            let bundle = searchset(state, Kind::parse(kind)?, headers, &params).await?;
            return Ok(json!({ "resource": bundle, "response": { "status": "200 OK" } }));
        }
        (Some("GET"), [kind, id]) | (Some("GET"), [kind, id, "_history", _]) => {
            let version = match segments.get(3) {
                Some(v) => Some(
                    Version::parse(v)
                        .map_err(|e| FhirError::bad_param(&format!("{path}.url"), e.to_string()))?,
                ),
                None => None,
            };
            let found = read_resource(state, Kind::parse(kind)?, id, version).await?;
            return Ok(json!({
                "resource": found.body,
                "response": { "status": "200 OK", "etag": found.version.etag(), "lastModified": found.recorded_at.to_string() },
            }));
        }
        (Some("PUT"), [kind, id]) => {
            let kind = allowed(Kind::parse(kind)?, "update")?;
            check_type(resource, kind)?;
            if resource["id"] != *id {
                return Err(FhirError::bad_param(
                    &format!("Bundle.entry[{at}].resource.id"),
                    format!("must be {id}, as in the request's url"),
                ));
            }
            put(state, kind, id, resource.clone(), if_match, source).await?
        }
        (Some("PUT"), [kind]) => {
            let kind = allowed(Kind::parse(kind)?, "update")?;
            if kind != Kind::CarePlan {
                return Err(FhirError::MethodNotAllowed);
            }
            check_type(resource, kind)?;
            let id = contract_in_query(query, &state.profile, &format!("{path}.url"))?;
            let mut resource = resource.clone();
            resource["id"] = json!(id.as_str());
            put(state, kind, id.as_str(), resource, if_match, source).await?
        }
        (Some("POST"), [kind]) => {
            let kind = allowed(Kind::parse(kind)?, "create")?;
            check_type(resource, kind)?;
            let if_none_exist = request["ifNoneExist"].as_str();
            post(state, kind, resource.clone(), if_none_exist, source).await?
        }
        (Some("DELETE"), [kind, id]) => {
            let kind = allowed(Kind::parse(kind)?, "delete")?;
            let record = match remove(state, kind, id, if_match, source).await {
                Ok(record) => Some(record),
                Err(FhirError::Gone(_)) => None,
                Err(e) => return Err(e),
            };
            let mut response = json!({ "status": "204 No Content" });
            if let Some(record) = record {
                response["etag"] = json!(record.revision.version.etag());
            }
            return Ok(json!({ "response": response }));
        }
        _ => {
            return Err(FhirError::bad_param(
                &path,
                "supported: GET, PUT, POST and DELETE of a type, a resource or a version",
            ));
        }
    };
    let version = written.record.revision.version;
    Ok(json!({
        "fullUrl": format!("{}/{}/{}", super::respond::base_url(headers), written.kind.name(), written.id),
        "resource": written.resource(&state.profile),
        "response": {
            "status": status_line(written.status()),
            "location": written.location(),
            "etag": version.etag(),
            "lastModified": written.record.revision.recorded_at.to_string(),
        },
    }))
}

/// `a=1&b=2`, decoded.
fn form_urlencoded(query: &str) -> Result<Vec<(String, String)>, FhirError> {
    let uri: axum::http::Uri = format!("/?{query}")
        .parse()
        .map_err(|_| FhirError::bad_param("url", "not a valid query"))?;
    Query::try_from_uri(&uri)
        .map(|Query(params)| params)
        .map_err(|e| FhirError::bad_param("url", e.body_text()))
}
