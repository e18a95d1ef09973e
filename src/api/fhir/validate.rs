//! `POST /fhir/{type}/$validate` and `POST /fhir/{type}/{id}/$validate`: would this
//! write be done? The resource goes through every step of the write path — the typed R4
//! model, the mapping to the contract, the domain rules, what the caller may write, the
//! current version for an update — but nothing is stored ([`crate::write::Writer::check`]).
//!
//! The body is the resource itself, or a `Parameters` resource with `resource` and
//! optionally `mode` (`create`, `update` or `delete`; by default `create` on the type and
//! `update` on an instance). As R4 says, the answer is 200 with an OperationOutcome
//! whenever the check could be made: its issues are the errors the write would answer
//! (none: one `information` issue). An error status means the check itself could not be
//! made: a malformed request, a resource the caller may not see or write (403/404), or a
//! deleted one (410).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::error::FhirError;
use super::locate::Kind;
use super::respond::{Format, fhir_json};
use super::write::{allowed, check_type, json_body};
use crate::api::AppState;
use crate::fhir::outcome::operation_outcome;
use crate::write::{Action, Caller, Entry, WriteError};

/// What is checked: as a create, an update or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
    Delete,
}

/// `POST /fhir/{type}/$validate`.
pub async fn on_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    validate(&state, &caller, &kind, None, &headers, &params, body).await
}

/// `POST /fhir/{type}/{id}/$validate`.
pub async fn on_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    validate(&state, &caller, &kind, Some(id), &headers, &params, body).await
}

async fn validate(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    id: Option<String>,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(headers, params)?;
    let kind = Kind::parse(kind)?;
    let body = json_body(headers, body)?;
    let (resource, mode) = input(body, id.is_some())?;
    let action = match mode {
        Mode::Create => {
            if id.is_some() {
                return Err(FhirError::bad_param(
                    "mode",
                    "create is checked on the type ([type]/$validate), not on an instance",
                ));
            }
            Action::Create {
                kind: allowed(kind, "create")?,
                resource: typed(resource, kind)?,
                if_none_exist: None,
            }
        }
        Mode::Update => {
            let resource = typed(resource, kind)?;
            let id = match (id, resource["id"].as_str()) {
                (Some(id), Some(given)) if id != given => {
                    return Err(FhirError::bad_param(
                        &format!("{}.id", kind.name()),
                        format!("must be {id}, the instance checked"),
                    ));
                }
                (Some(id), _) => id,
                (None, Some(given)) => given.to_owned(),
                (None, None) => {
                    return Err(FhirError::bad_param(
                        &format!("{}.id", kind.name()),
                        "an update is checked on an instance: give its id",
                    ));
                }
            };
            Action::Update {
                kind: allowed(kind, "update")?,
                id,
                resource,
                if_match: None,
            }
        }
        Mode::Delete => Action::Delete {
            kind: allowed(kind, "delete")?,
            id: id
                .ok_or_else(|| FhirError::bad_param("mode", "delete is checked on an instance"))?,
            if_match: None,
        },
    };
    let issues = match state
        .writer()
        .check(caller, vec![Entry::alone(action)])
        .await
    {
        Ok(()) => Vec::new(),
        Err(
            e @ (WriteError::BadRequest { .. } | WriteError::Invalid(_) | WriteError::Rules(..)),
        ) => FhirError::from(e).issues(),
        Err(other) => return Err(other.into()),
    };
    Ok(fhir_json(
        StatusCode::OK,
        &operation_outcome(&issues),
        format.pretty,
    ))
}

/// The resource and mode from the body: the resource itself, or `Parameters` with
/// `resource` and `mode`.
fn input(body: Value, on_instance: bool) -> Result<(Option<Value>, Mode), FhirError> {
    let default = if on_instance {
        Mode::Update
    } else {
        Mode::Create
    };
    if fhir_wire::resource_type(&body) != Some("Parameters") {
        return Ok((Some(body), default));
    }
    let mut resource = None;
    let mut mode = default;
    for (at, p) in body["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("Parameters.parameter[{at}]");
        match p["name"].as_str().unwrap_or_default() {
            "resource" => resource = Some(p["resource"].clone()),
            "mode" => {
                mode = match p["valueCode"].as_str() {
                    Some("create") => Mode::Create,
                    Some("update") => Mode::Update,
                    Some("delete") => Mode::Delete,
                    other => {
                        return Err(FhirError::bad_param(
                            &format!("{field}.valueCode"),
                            format!(
                                "mode {} is not checked here: create, update or delete",
                                other.unwrap_or("(none)")
                            ),
                        ));
                    }
                }
            }
            "profile" => {
                return Err(FhirError::bad_param(
                    &format!("{field}.name"),
                    "profile: resources are checked against the gateway's own mapping only",
                ));
            }
            name => {
                return Err(FhirError::bad_param(
                    &format!("{field}.name"),
                    format!("{name} is not a parameter of $validate (resource, mode are)"),
                ));
            }
        }
    }
    Ok((resource, mode))
}

/// The resource to check, which must be of `kind`.
fn typed(resource: Option<Value>, kind: Kind) -> Result<Value, FhirError> {
    let resource =
        resource.ok_or_else(|| FhirError::bad_param("resource", "give the resource to check"))?;
    check_type(&resource, kind)?;
    Ok(resource)
}
