//! Writes through FHIR: `create` (`POST /fhir/{type}`, conditional with `If-None-Exist`),
//! `update` (`PUT /fhir/{type}/{id}`, and conditional `PUT /fhir/CarePlan?identifier=…`)
//! and `delete`. Each handler turns the request into one [`Entry`] for the write path
//! ([`crate::write`]), which decides everything, and its answer into a response.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, IF_MATCH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::capability::served;
use super::error::FhirError;
use super::locate::{Kind, find};
use super::respond::{Format, WriteBody, WriteReply, base_url, prefer};
use crate::api::AppState;
use crate::domain::Version;
use crate::fhir::Profile;
use crate::fhir::outcome::Issue;
use crate::write::{Action, Caller, Done, Entry, Outcome, Target};

/// The resource an entry was about, as its version now has it.
pub(super) fn resource_of(done: &Done, profile: &Profile) -> Value {
    find(&done.record, done.kind, &done.id, profile).unwrap_or_default()
}

/// 201 for what was created, else 200.
pub(super) fn status_of(done: &Done) -> StatusCode {
    if done.outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// `{type}/{id}/_history/{version}`, relative to the base.
pub(super) fn location_of(done: &Done) -> String {
    format!(
        "{}/{}/_history/{}",
        done.kind.name(),
        done.id,
        done.version().version
    )
}

/// What a `Prefer: return=` answer says happened.
pub(super) fn message_of(done: &Done) -> String {
    let what = match done.outcome {
        Outcome::Created => "created",
        Outcome::Updated => "stored",
        Outcome::Unchanged => "unchanged: it was already as sent, no new version",
        Outcome::Existing => "found: the condition matched, nothing was done",
        Outcome::Deleted => "deleted",
        Outcome::AlreadyDeleted => "was already deleted",
    };
    format!("{} {what}", location_of(done))
}

/// The answer `Prefer: return=` asks for, naming for the audit row the resource
/// written and its person (also when the answer has no body).
pub(super) fn reply(
    done: &Done,
    state: &AppState,
    headers: &HeaderMap,
    format: Format,
) -> Response {
    // The resource is mapped only when the answer carries it, and then into the read
    // cache, as a read of the version would: the next read of it finds it there.
    let carried = !matches!(
        prefer(headers, "return"),
        Some("minimal" | "OperationOutcome")
    );
    let cached = (carried && !format.pretty && !done.record.revision.deleted)
        .then(|| state.read_cache.get_or_map(&done.record, &state.profile))
        .and_then(|c| c.find(done.kind.name(), &done.id).map(|r| r.bytes.clone()));
    let value;
    let body = match cached {
        Some(bytes) => WriteBody::Bytes(bytes),
        None => {
            value = if carried {
                resource_of(done, &state.profile)
            } else {
                Value::Null
            };
            WriteBody::Value(&value)
        }
    };
    let mut response = WriteReply {
        status: status_of(done),
        body,
        version: done.version().version,
        last_modified: done.version().at,
        location: Some(format!("{}/{}", base_url(headers), location_of(done))),
        message: message_of(done),
    }
    .into_response(headers, format);
    response.extensions_mut().insert(crate::api::AuditInfo {
        resources: vec![format!("{}/{}", done.kind.name(), done.id)],
        patients: vec![done.record.revision.contract.patient.id.to_string()],
    });
    response
}

/// Refuses interactions the CapabilityStatement does not list for the type.
pub(super) fn allowed(kind: Kind, interaction: &str) -> Result<Kind, FhirError> {
    if served(kind).0.contains(&interaction) {
        Ok(kind)
    } else {
        Err(FhirError::MethodNotAllowed)
    }
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let kind = allowed(Kind::parse(&kind)?, "update")?;
    let resource = resource_body(&headers, body, kind)?;
    let if_match = if_match(&headers)?;
    let action = Action::Update {
        kind,
        id,
        resource,
        if_match,
    };
    let done = state
        .writer()
        .apply_one(&caller, Entry::alone(action))
        .await?;
    Ok(reply(&done, &state, &headers, format))
}

/// `PUT /fhir/CarePlan?identifier=system|value`: updates the contract the identifier
/// names — the gateway's contract id, or another system's identifier (an EHR's own) the
/// contract's CarePlan carries — or creates it when there is none (the new CarePlan must
/// carry the identifier; two such PUTs at once make one contract).
pub async fn conditional_update(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let kind = allowed(Kind::parse(&kind)?, "update")?;
    let condition = condition_of(kind, &params)?;
    let action = Action::Upsert {
        kind,
        condition,
        resource: resource_body(&headers, body, kind)?,
        if_match: if_match(&headers)?,
    };
    let done = state
        .writer()
        .apply_one(&caller, Entry::alone(action))
        .await?;
    Ok(reply(&done, &state, &headers, format))
}

/// `POST /fhir/{type}`. The condition of a conditional create is `If-None-Exist`, or, as
/// some clients send it (fhirpy's `get_or_create`, Aidbox), the URL's query.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let kind = allowed(Kind::parse(&kind)?, "create")?;
    let resource = resource_body(&headers, body, kind)?;
    let conditions: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"))
        .collect();
    let in_url = query_of(&conditions);
    let if_none_exist = match headers.get("if-none-exist") {
        Some(v) => Some(v.to_str().map_err(|_| {
            FhirError::bad_param("If-None-Exist", "must be a search query, e.g. identifier=…")
        })?),
        None if !in_url.is_empty() => Some(in_url.as_str()),
        None => None,
    };
    let action = Action::Create {
        kind,
        resource,
        if_none_exist: if_none_exist.map(str::to_owned),
    };
    let done = state
        .writer()
        .apply_one(&caller, Entry::alone(action))
        .await?;
    Ok(reply(&done, &state, &headers, format))
}

/// `DELETE /fhir/{type}/{id}`: a CarePlan's deletion revokes the contract (its history
/// stays, and its resources then read as 410 Gone); an Appointment's removes the agreed
/// time from the contract. Deleting what is already deleted succeeds (FHIR's idempotent
/// delete).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let kind = allowed(Kind::parse(&kind)?, "delete")?;
    delete_one(&state, &caller, kind, id, &headers).await
}

/// `DELETE /fhir/CarePlan?identifier=system|value`: conditional delete (R4 "single"):
/// the contract the identifier names (the gateway's contract id, or another system's
/// identifier its CarePlan carries) is revoked as by `DELETE CarePlan/{id}`; none is 404;
/// anything but one `identifier` is refused (400).
pub async fn conditional_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let kind = allowed(Kind::parse(&kind)?, "delete")?;
    let condition = condition_of(kind, &params)?;
    let id = match state.writer().target(&condition, "identifier").await? {
        Target::Named(id) | Target::Found(id) => id,
        Target::Missing { system, value } => {
            return Err(FhirError::NotFound(format!(
                "no contract carries the identifier {system}|{value}"
            )));
        }
    };
    delete_one(&state, &caller, kind, id.to_string(), &headers).await
}

/// The condition of a conditional update or delete, as a query: only a CarePlan's (405
/// for the other types). The values are encoded again, so an identifier holding `&`,
/// `%` or `|` stays as it was sent.
fn condition_of(kind: Kind, params: &[(String, String)]) -> Result<String, FhirError> {
    if kind != Kind::CarePlan {
        return Err(FhirError::MethodNotAllowed);
    }
    Ok(query_of(params))
}

/// `params` as a query, each value percent-encoded (`|` kept, as conditions split on it).
pub(super) fn query_of(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::percent::encode(v, b"|:/")))
        .collect::<Vec<_>>()
        .join("&")
}

async fn delete_one(
    state: &AppState,
    caller: &Caller,
    kind: Kind,
    id: String,
    headers: &HeaderMap,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(headers, &[])?;
    let action = Action::Delete {
        kind,
        id,
        if_match: if_match(headers)?,
    };
    let done = state
        .writer()
        .apply_one(caller, Entry::alone(action))
        .await?;
    let mut response = match prefer(headers, "return") {
        Some("OperationOutcome") => {
            let issue = Issue {
                severity: "information",
                code: "informational",
                diagnostics: message_of(&done),
                expression: None,
            };
            super::respond::fhir_json(
                StatusCode::OK,
                &crate::fhir::outcome::operation_outcome(&[issue]),
                format.pretty,
            )
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    };
    if done.outcome == Outcome::Deleted
        && let Ok(tag) = done.version().version.etag().parse()
    {
        response.headers_mut().insert(axum::http::header::ETAG, tag);
    }
    Ok(response)
}

/// A FHIR JSON request body holding a resource of `kind`.
fn resource_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Result<Value, FhirError> {
    let body = json_body(headers, body)?;
    check_type(&body, kind)?;
    Ok(body)
}

/// Refuses a resource that is not of `kind`.
pub(super) fn check_type(resource: &Value, kind: Kind) -> Result<(), FhirError> {
    if fhir_wire::resource_type(resource) == Some(kind.name()) {
        Ok(())
    } else {
        Err(FhirError::bad_param(
            "resourceType",
            format!("the resource must be a {}", kind.name()),
        ))
    }
}

/// A request body's bytes: 413 when too large, 400 when it did not arrive whole.
pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, FhirError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            FhirError::PayloadTooLarge
        } else {
            FhirError::bad_param("body", e.body_text())
        }
    })
}

/// An operation's `Parameters` body (see [`json_body`]); 400 naming `resourceType` when
/// it is another resource. `operation` names the operation in the message.
pub(super) fn parameters_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    operation: &str,
) -> Result<Value, FhirError> {
    let parameters = json_body(headers, body)?;
    if fhir_wire::resource_type(&parameters) != Some("Parameters") {
        return Err(FhirError::bad_param(
            "resourceType",
            format!("{operation} takes a Parameters resource"),
        ));
    }
    Ok(parameters)
}

/// A FHIR JSON request body: 415 for other media types, 413 when too large, 400 with
/// the position when it is not JSON.
pub(super) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, FhirError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().ends_with("json"))
        });
    if !is_json {
        return Err(FhirError::UnsupportedMediaType);
    }
    let body = body_bytes(body)?;
    serde_json::from_slice(&body).map_err(|e| FhirError::BadRequest {
        message: format!("not JSON: {e}"),
        expression: None,
    })
}

/// A JSON body that must be a `type_name` resource (400 otherwise).
pub(super) fn body_of(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    type_name: &str,
) -> Result<Value, FhirError> {
    let resource = json_body(headers, body)?;
    if fhir_wire::resource_type(&resource) != Some(type_name) {
        return Err(FhirError::bad_param(
            "resourceType",
            format!("the body must be a {type_name}"),
        ));
    }
    Ok(resource)
}

/// `If-Match`, as a version.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<Version>, FhirError> {
    headers
        .get(IF_MATCH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| Version::parse(v).ok())
                .ok_or_else(|| {
                    FhirError::bad_param("If-Match", "must be a version's ETag, e.g. W/\"3\"")
                })
        })
        .transpose()
}
