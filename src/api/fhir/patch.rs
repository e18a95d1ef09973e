//! `PATCH /fhir/{type}/{id}`: a change of one resource, as JSON Patch
//! (`application/json-patch+json`), FHIRPath Patch (a `Parameters` resource as
//! `application/fhir+json` or `application/json`) or JSON Merge Patch
//! (`application/merge-patch+json`, or any other JSON object as `application/json`, as
//! fhirpy sends it); see [`crate::fhir::patch`]. The patch is applied to the
//! resource as it is now, and the result goes through the write path as a PUT of it
//! would — every check, the contract's rules, the caller's rights — conditional on the
//! version patched, so no concurrent change is lost: with `If-Match`, a stale version is
//! 412; without, a concurrent change makes the patch apply again to the new version (409
//! when it kept changing three times).
//!
//! A patch that is not well formed is 400; one that cannot be applied to the resource as
//! it is (a JSON Patch `test` that fails, a path that is not there) is 422; both name
//! the operation.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use serde_json::Value;

use super::error::FhirError;
use super::locate::Kind;
use super::read::read_to_change;
use super::respond::Format;
use super::write::{allowed, body_bytes, if_match, reply};
use crate::api::AppState;
use crate::fhir::outcome::Issue;
use crate::fhir::patch::{PatchError, fhirpath_patch, json_patch, merge_patch};
use crate::write::{Action, Caller, Entry, WriteError};

/// How often a patch without `If-Match` is applied again after a concurrent change.
const ATTEMPTS: usize = 3;

const JSON_PATCH: &str = "application/json-patch+json";

/// The patch a request carries.
enum Patch {
    Json(Value),
    FhirPath(Value),
    Merge(Value),
}

impl Patch {
    fn from_request(
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Patch, FhirError> {
        let media = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let body = body_bytes(body)?;
        let parsed = || {
            serde_json::from_slice::<Value>(&body).map_err(|e| FhirError::BadRequest {
                message: format!("not JSON: {e}"),
                expression: None,
            })
        };
        match media.as_str() {
            JSON_PATCH => Ok(Patch::Json(parsed()?)),
            "application/merge-patch+json" => Ok(Patch::Merge(parsed()?)),
            "application/fhir+json" | "application/json" => {
                let body = parsed()?;
                match fhir_wire::resource_type(&body) {
                    Some("Parameters") => Ok(Patch::FhirPath(body)),
                    None if media == "application/json" && body.is_object() => {
                        Ok(Patch::Merge(body))
                    }
                    _ => Err(FhirError::bad_param(
                        "resourceType",
                        "a FHIRPath Patch is a Parameters resource (a JSON Patch is sent as application/json-patch+json, a JSON Merge Patch as application/merge-patch+json)",
                    )),
                }
            }
            _ => Err(FhirError::UnsupportedMediaType),
        }
    }

    fn apply(&self, resource: &Value) -> Result<Value, PatchError> {
        match self {
            Patch::Json(operations) => json_patch(resource, operations),
            Patch::FhirPath(parameters) => fhirpath_patch(resource, parameters),
            Patch::Merge(changes) => merge_patch(resource, changes),
        }
    }
}

pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let kind = allowed(Kind::parse(&kind)?, "patch")?;
    let patch = Patch::from_request(&headers, body)?;
    let given = if_match(&headers)?;
    let mut attempt = 1;
    loop {
        let found = read_to_change(&state, kind, &id, given).await?;
        let patched = patch.apply(&found.body).map_err(|e| unapplied(&patch, e))?;
        for element in ["resourceType", "id"] {
            if patched.get(element) != found.body.get(element) {
                return Err(FhirError::bad_param(
                    element,
                    "a patch may not change the resource's type or id",
                ));
            }
        }
        let action = Action::Update {
            kind,
            id: id.clone(),
            resource: patched,
            if_match: Some(found.version),
        };
        match state
            .writer()
            .apply_one(&caller, Entry::alone(action))
            .await
        {
            Ok(done) => return Ok(reply(&done, &state, &headers, format)),
            Err(WriteError::Stale { .. }) if given.is_none() && attempt < ATTEMPTS => {
                attempt += 1;
            }
            Err(WriteError::Stale { .. }) if given.is_none() => {
                return Err(FhirError::Conflict(
                    "the resource kept changing while the patch was applied; try again".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A patch that cannot be applied: 400 when it is not well formed, 422 when the
/// resource is not as it expects.
fn unapplied(patch: &Patch, e: PatchError) -> FhirError {
    let expression = match patch {
        Patch::Json(_) => format!("JSON Patch{}", e.at),
        Patch::FhirPath(_) | Patch::Merge(_) => e.at.clone(),
    };
    if e.malformed {
        FhirError::bad_param(&expression, e.message)
    } else {
        FhirError::Invalid(vec![Issue::error(
            "processing",
            e.message,
            Some(expression),
        )])
    }
}
