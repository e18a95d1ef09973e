//! Writes through FHIR: `create` (`POST /fhir/{type}`, conditional with `If-None-Exist`),
//! `update` (`PUT /fhir/{type}/{id}`, and conditional `PUT /fhir/CarePlan?identifier=…`)
//! and `delete`. Every write changes the contract: the resource is put in place among the
//! contract's resources, the whole is mapped back into the contract, checked against its
//! rules and stored as the next version; what the sender sent that the contract does not
//! model is kept and sent back out.
//!
//! Concurrency: `If-Match` makes a write conditional on a version (412 when stale);
//! without it, the version read here is the condition, so a concurrent change is never
//! overwritten unseen (409). Conditional creates are race-free because a contract's id
//! is its business identifier: two creates for one identifier make one contract.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, IF_MATCH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::capability::served;
use super::error::FhirError;
use super::locate::{Kind, find, resources_of};
use super::read::record_for;
use super::respond::{Format, WriteReply, base_url, prefer};
use crate::api::AppState;
use crate::domain::{ContractId, Version, merge};
use crate::fhir::outcome::Issue;
use crate::fhir::residue::Residue;
use crate::fhir::{
    ContractResources, MappingError, Profile, appointment_id, expression_for, from_fhir,
};
use crate::store::{Change, Record, StoreError};

/// Changes through the FHIR API are recorded with this source unless the request names
/// its system in `X-Source` (used to avoid echoing a change back to its sender).
const SOURCE: &str = "fhir";

/// How often a create of an Appointment is tried again when the contract changed under
/// it: adding an agreed time cannot overwrite anyone's change, so it is simply redone.
const APPEND_ATTEMPTS: usize = 3;

/// A write that was done: the version it stored and the resource it was about.
pub(super) struct Written {
    pub record: Record,
    pub kind: Kind,
    pub id: String,
    /// 201 rather than 200.
    pub created: bool,
}

impl Written {
    /// The resource as stored.
    pub fn resource(&self, profile: &Profile) -> Value {
        find(&self.record, self.kind, &self.id, profile).unwrap_or_default()
    }

    pub fn status(&self) -> StatusCode {
        if self.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    }

    /// `{type}/{id}/_history/{version}`, relative to the base.
    pub fn location(&self) -> String {
        format!(
            "{}/{}/_history/{}",
            self.kind.name(),
            self.id,
            self.record.revision.version
        )
    }

    /// The answer `Prefer: return=` asks for, naming for the audit row the resource
    /// written and its person (also when the answer has no body).
    fn reply(&self, state: &AppState, headers: &HeaderMap, format: Format) -> Response {
        // The resource is mapped only when the answer carries it.
        let body = match prefer(headers, "return") {
            Some("minimal" | "OperationOutcome") => Value::Null,
            _ => self.resource(&state.profile),
        };
        let done = if self.created { "created" } else { "stored" };
        let mut response = WriteReply {
            status: self.status(),
            body: &body,
            version: self.record.revision.version,
            last_modified: self.record.revision.recorded_at,
            location: Some(format!("{}/{}", base_url(headers), self.location())),
            message: format!("{} {done}", self.location()),
        }
        .into_response(headers, format);
        response.extensions_mut().insert(crate::api::AuditInfo {
            resources: vec![format!("{}/{}", self.kind.name(), self.id)],
            patients: vec![self.record.revision.contract.patient.id.to_string()],
        });
        response
    }
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
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let kind = allowed(Kind::parse(&kind)?, "update")?;
    let body = resource_body(&headers, body, kind)?;
    if body.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(FhirError::bad_param(
            &format!("{}.id", kind.name()),
            format!("must be {id}, as in the URL"),
        ));
    }
    let written = put(
        &state,
        kind,
        &id,
        body,
        if_match(&headers)?,
        source(&headers),
    )
    .await?;
    Ok(written.reply(&state, &headers, format))
}

/// `PUT /fhir/CarePlan?identifier=system|value`: updates the contract with that
/// identifier, or creates it when there is none.
pub async fn conditional_update(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let kind = allowed(Kind::parse(&kind)?, "update")?;
    if kind != Kind::CarePlan {
        return Err(FhirError::MethodNotAllowed);
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let id = contract_in_query(&query.join("&"), &state.profile, "identifier")?;
    let mut body = resource_body(&headers, body, kind)?;
    match body.get("id").and_then(Value::as_str) {
        Some(given) if given != id.as_str() => {
            return Err(FhirError::bad_param(
                "CarePlan.id",
                format!("must be {id}, the contract the identifier names, or left out"),
            ));
        }
        _ => body["id"] = json!(id.as_str()),
    }
    let written = put(
        &state,
        kind,
        id.as_str(),
        body,
        if_match(&headers)?,
        source(&headers),
    )
    .await?;
    Ok(written.reply(&state, &headers, format))
}

/// Puts `body` in place of the resource `kind`/`id` and stores the contract. A CarePlan
/// that does not exist yet is created under `id` (update as create).
pub(super) async fn put(
    state: &AppState,
    kind: Kind,
    id: &str,
    body: Value,
    if_match: Option<Version>,
    source: String,
) -> Result<Written, FhirError> {
    let current = match record_for(state, kind, id, None).await {
        Ok(record) => record,
        Err(FhirError::NotFound(_)) if kind == Kind::CarePlan && if_match.is_none() => {
            let contract = ContractId::parse(id)
                .map_err(|e| FhirError::bad_param("CarePlan.id", e.to_string()))?;
            let resources = ContractResources::with_plan(body);
            let record =
                store_resources(state, &contract, Base::Nothing, &resources, source).await?;
            return Ok(Written {
                record,
                kind,
                id: id.to_owned(),
                created: true,
            });
        }
        Err(e) => return Err(e),
    };
    let base = match base(if_match, &current) {
        // A syncing system that had not seen the latest version: its edit is merged.
        Err(FhirError::PreconditionFailed { .. }) if state.is_sync_source(&source) => {
            let seen = if_match.ok_or(FhirError::Internal)?;
            let edit = |r: &mut ContractResources| place(r, kind, id, body.clone(), &state.profile);
            let record = merge_write(state, &current, seen, edit, &body, source).await?;
            return Ok(Written {
                record,
                kind,
                id: id.to_owned(),
                created: false,
            });
        }
        other => other?,
    };
    let mut resources = resources_of(&current, &state.profile);
    place(&mut resources, kind, id, body.clone(), &state.profile)?;
    crate::fhir::check_resource(kind.name(), &body)
        .map_err(|e| FhirError::Invalid(vec![Issue::from(&e)]))?;
    let stored = store_placed(state, &current.id, base, &resources, source.clone()).await;
    let record = match stored {
        // Another change won the race to the version it named: merged, for a syncing system.
        Err(FhirError::PreconditionFailed { .. }) if state.is_sync_source(&source) => {
            let (Some(seen), now) = (if_match, state.store.get(&current.id).await?) else {
                return Err(FhirError::Internal);
            };
            let edit = |r: &mut ContractResources| place(r, kind, id, body.clone(), &state.profile);
            merge_write(state, &now, seen, edit, &body, source).await?
        }
        other => other?,
    };
    Ok(Written {
        record,
        kind,
        id: id.to_owned(),
        created: false,
    })
}

/// How often a merged write is redone when the contract changed again under it.
const MERGE_ATTEMPTS: usize = 3;

/// A syncing system's edit of version `seen`, merged part by part into the contract as
/// it is now (`current`): parts only it changed come from its edit, parts only others
/// changed stay; a part both changed is a conflict — 409 naming the parts, nothing
/// written, and the edit kept as a conflict record (`pkgw sync conflicts`).
pub(super) async fn merge_write(
    state: &AppState,
    current: &Record,
    seen: Version,
    edit: impl Fn(&mut ContractResources) -> Result<(), FhirError>,
    received: &Value,
    source: String,
) -> Result<Record, FhirError> {
    let base = state
        .store
        .get_version(&current.id, seen)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => FhirError::PreconditionFailed {
                expected: seen.to_string(),
                current: current.revision.version.to_string(),
            },
            other => other.into(),
        })?;
    let mut edited = resources_of(&base, &state.profile);
    edit(&mut edited)?;
    let theirs = from_fhir(&edited, &state.profile)
        .map_err(|e| FhirError::Invalid(vec![Issue::from(&e)]))?;
    let mut current = current.clone();
    for _ in 0..MERGE_ATTEMPTS {
        let merged = match merge(&base.revision.contract, &current.revision.contract, &theirs) {
            Ok(merged) => merged,
            Err(conflict) => {
                let parts: Vec<&str> = conflict.sections.iter().map(|s| s.field()).collect();
                state
                    .store
                    .record_conflict(
                        &current.id,
                        &source,
                        seen,
                        current.revision.version,
                        &parts,
                        received,
                    )
                    .await?;
                let issues = conflict
                    .sections
                    .iter()
                    .map(|section| {
                        Issue::error(
                            "conflict",
                            format!(
                                "{section} was changed both here (since version {seen}, now {}) and in this edit; \
                                 read the contract again and reapply the change",
                                current.revision.version
                            ),
                            Some(expression_for(section.field(), &current.revision.contract)),
                        )
                    })
                    .collect();
                return Err(FhirError::MergeConflict(issues));
            }
        };
        let written = store_contract(
            state,
            &current.id,
            Base::Read(current.revision.version),
            merged,
            Residue::stored(&edited, &state.profile),
            source.clone(),
        )
        .await;
        match written {
            // The contract moved again meanwhile: merge into that.
            Err(FhirError::Conflict(_)) => current = state.store.get(&current.id).await?,
            other => return other,
        }
    }
    Err(FhirError::Conflict(
        "the contract kept changing; try again".into(),
    ))
}

/// Puts a resource in place of the one with its id among a contract's resources.
fn place(
    resources: &mut ContractResources,
    kind: Kind,
    id: &str,
    mut body: Value,
    profile: &Profile,
) -> Result<(), FhirError> {
    let unknown = || FhirError::NotFound(format!("{}/{id} is not known", kind.name()));
    match kind {
        Kind::CarePlan => resources.care_plan = body,
        Kind::CareTeam => resources.care_team = body,
        Kind::Goal => {
            let slot = resources.goals.iter_mut().find(|g| g["id"] == id);
            *slot.ok_or_else(unknown)? = body;
        }
        Kind::Appointment => {
            let slot = resources.appointments.iter_mut().find(|a| a["id"] == id);
            let slot = slot.ok_or_else(unknown)?;
            // The agreed time's identifier is what the id is made from: it stays.
            let system = profile.identifiers.agreed_time.as_str();
            let kept = slot["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["system"] == system)
                .cloned();
            let mut identifiers: Vec<Value> = body["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["system"] != system)
                .cloned()
                .collect();
            identifiers.extend(kept);
            body["identifier"] = Value::Array(identifiers);
            *slot = body;
        }
        Kind::Provenance => return Err(FhirError::MethodNotAllowed),
    }
    Ok(())
}

/// `POST /fhir/{type}`. The condition of a conditional create is `If-None-Exist`, or, as
/// some clients send it (fhirpy's `get_or_create`, Aidbox), the URL's query.
pub async fn create(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let kind = allowed(Kind::parse(&kind)?, "create")?;
    let body = resource_body(&headers, body, kind)?;
    let in_url: Vec<String> = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let in_url = in_url.join("&");
    let if_none_exist = match headers.get("if-none-exist") {
        Some(v) => Some(v.to_str().map_err(|_| {
            FhirError::bad_param("If-None-Exist", "must be a search query, e.g. identifier=…")
        })?),
        None if !in_url.is_empty() => Some(in_url.as_str()),
        None => None,
    };
    let written = post(&state, kind, body, if_none_exist, source(&headers)).await?;
    Ok(written.reply(&state, &headers, format))
}

/// Creates a resource: a CarePlan makes a new contract, an Appointment adds an agreed
/// time to the contract its `basedOn` names. With `if_none_exist`, an existing match is
/// answered instead (200).
pub(super) async fn post(
    state: &AppState,
    kind: Kind,
    body: Value,
    if_none_exist: Option<&str>,
    source: String,
) -> Result<Written, FhirError> {
    match kind {
        Kind::CarePlan => create_plan(state, body, if_none_exist, source).await,
        Kind::Appointment => create_appointment(state, body, if_none_exist, source).await,
        _ => Err(FhirError::MethodNotAllowed),
    }
}

async fn create_plan(
    state: &AppState,
    mut body: Value,
    if_none_exist: Option<&str>,
    source: String,
) -> Result<Written, FhirError> {
    let profile = &state.profile;
    let wanted = if_none_exist
        .map(|q| contract_in_query(q, profile, "If-None-Exist"))
        .transpose()?;
    let existing = |record: Record| Written {
        id: record.id.to_string(),
        record,
        kind: Kind::CarePlan,
        created: false,
    };
    if let Some(id) = &wanted {
        match state.store.get(id).await {
            Ok(record) if !record.revision.deleted => return Ok(existing(record)),
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The contract's id is its business identifier: one given in the body is kept.
    let own = body["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == profile.identifiers.contract.as_str())
        .and_then(|i| i["value"].as_str())
        .map(|v| {
            ContractId::parse(v)
                .map_err(|e| FhirError::bad_param("CarePlan.identifier", e.to_string()))
        })
        .transpose()?;
    let id = match wanted.clone().or(own) {
        Some(id) => id,
        None => {
            ContractId::parse(&uuid::Uuid::new_v4().to_string()).map_err(|_| FhirError::Internal)?
        }
    };
    body["id"] = json!(id.as_str());
    let resources = ContractResources::with_plan(body);
    match store_resources(state, &id, Base::Nothing, &resources, source).await {
        Ok(record) => Ok(Written {
            id: id.to_string(),
            record,
            kind: Kind::CarePlan,
            created: true,
        }),
        // A concurrent conditional create made it first: this one finds it, as if run after.
        Err(FhirError::Conflict(_)) if wanted.is_some() => {
            let record = state.store.get(&id).await?;
            if record.revision.deleted {
                return Err(FhirError::Gone(format!("CarePlan/{id} was deleted")));
            }
            Ok(existing(record))
        }
        Err(e) => Err(e),
    }
}

async fn create_appointment(
    state: &AppState,
    mut body: Value,
    if_none_exist: Option<&str>,
    source: String,
) -> Result<Written, FhirError> {
    let system = state.profile.identifiers.agreed_time.clone();
    let plan = body["basedOn"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str()?.strip_prefix("CarePlan/"))
        .next()
        .and_then(|id| ContractId::parse(id).ok())
        .ok_or_else(|| {
            FhirError::bad_param(
                "Appointment.basedOn",
                "an agreed time belongs to a contract: basedOn must reference CarePlan/{id}",
            )
        })?;
    let wanted = if_none_exist
        .map(|q| {
            q.strip_prefix("identifier=")
                .map(|v| v.rsplit('|').next().unwrap_or(v).to_owned())
                .ok_or_else(|| {
                    FhirError::bad_param(
                        "If-None-Exist",
                        format!("supported: identifier={system}|<id>"),
                    )
                })
        })
        .transpose()?;
    let time_id = body["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == system.as_str())
        .and_then(|i| i["value"].as_str().map(str::to_owned));
    let time_id = match (time_id, &wanted) {
        (Some(id), _) => id,
        (None, Some(id)) => id.clone(),
        (None, None) => uuid::Uuid::new_v4().to_string(),
    };
    if time_id.is_empty() {
        return Err(FhirError::bad_param(
            "Appointment.identifier",
            "the value is empty",
        ));
    }
    let mut identifiers: Vec<Value> = body["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"] != system.as_str())
        .cloned()
        .collect();
    identifiers.push(json!({ "system": system, "value": time_id }));
    body["identifier"] = Value::Array(identifiers);
    let id = appointment_id(&plan, &time_id);
    body["id"] = json!(id);
    for attempt in 1..=APPEND_ATTEMPTS {
        let current = record_for(state, Kind::CarePlan, plan.as_str(), None)
            .await
            .map_err(|e| match e {
                FhirError::NotFound(m) => FhirError::Invalid(vec![Issue::error(
                    "not-found",
                    m,
                    Some("Appointment.basedOn".into()),
                )]),
                other => other,
            })?;
        let mut resources = resources_of(&current, &state.profile);
        if resources
            .appointments
            .iter()
            .any(|a| a["id"] == id.as_str())
        {
            if wanted.is_some() {
                return Ok(Written {
                    record: current,
                    kind: Kind::Appointment,
                    id,
                    created: false,
                });
            }
            return Err(FhirError::Conflict(format!(
                "Appointment/{id} exists: the agreed time {time_id} is already in the contract"
            )));
        }
        resources.appointments.push(body.clone());
        let written = store_resources(
            state,
            &current.id,
            Base::Read(current.revision.version),
            &resources,
            source.clone(),
        )
        .await;
        match written {
            Ok(record) => {
                return Ok(Written {
                    record,
                    kind: Kind::Appointment,
                    id,
                    created: true,
                });
            }
            Err(FhirError::Conflict(_)) if attempt < APPEND_ATTEMPTS => {}
            Err(e) => return Err(e),
        }
    }
    Err(FhirError::Conflict(
        "the contract kept changing; try again".into(),
    ))
}

/// `DELETE /fhir/{type}/{id}`: a CarePlan's deletion revokes the contract (its history
/// stays, and its resources then read as 410 Gone); an Appointment's removes the agreed
/// time from the contract. Deleting what is already deleted succeeds (FHIR's idempotent
/// delete).
pub async fn delete(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let kind = allowed(Kind::parse(&kind)?, "delete")?;
    let if_match = if_match(&headers)?;
    let done = match remove(&state, kind, &id, if_match, source(&headers)).await {
        Ok(record) => Some(record),
        Err(FhirError::Gone(_)) => None,
        Err(e) => return Err(e),
    };
    let message = match &done {
        Some(record) => format!(
            "{}/{id} deleted in version {}",
            kind.name(),
            record.revision.version
        ),
        None => format!("{}/{id} was already deleted", kind.name()),
    };
    let mut response = match super::respond::prefer(&headers, "return") {
        Some("OperationOutcome") => {
            let issue = Issue {
                severity: "information",
                code: "informational",
                diagnostics: message,
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
    if let Some(record) = done
        && let Ok(tag) = record.revision.version.etag().parse()
    {
        response.headers_mut().insert(axum::http::header::ETAG, tag);
    }
    Ok(response)
}

/// Deletes a resource; the version written.
pub(super) async fn remove(
    state: &AppState,
    kind: Kind,
    id: &str,
    if_match: Option<Version>,
    source: String,
) -> Result<Record, FhirError> {
    let current = record_for(state, kind, id, None).await?;
    let base = base(if_match, &current)?;
    match kind {
        Kind::CarePlan => {
            let contract = &current.revision.contract;
            crate::api::check_write(
                &state.store,
                &current.id,
                Some(current.revision.version),
                contract,
                false,
            )
            .await
            .map_err(|e| e.fhir(&current.id))?;
            let change = Change {
                source,
                author: None,
                reason: Some("deleted through the FHIR API".into()),
                transfer: None,
            };
            state
                .store
                .delete(&current.id, base.version(), change)
                .await
                .map_err(|e| store_error(e, &base, None))
        }
        Kind::Appointment => {
            let mut resources = resources_of(&current, &state.profile);
            let before = resources.appointments.len();
            resources.appointments.retain(|a| a["id"] != id);
            if resources.appointments.len() == before {
                return Err(FhirError::NotFound(format!(
                    "Appointment/{id} is not known"
                )));
            }
            store_resources(state, &current.id, base, &resources, source).await
        }
        _ => Err(FhirError::MethodNotAllowed),
    }
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
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            FhirError::PayloadTooLarge
        } else {
            FhirError::bad_param("body", e.body_text())
        }
    })?;
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

/// The contract a query such as `identifier=system|id` names (`If-None-Exist`, a
/// conditional update's URL, a transaction entry's `ifNoneExist`). Only the contract's
/// own identifier system (or none) is understood; anything else is refused rather than
/// guessed at.
pub(super) fn contract_in_query(
    query: &str,
    profile: &Profile,
    name: &str,
) -> Result<ContractId, FhirError> {
    let system = &profile.identifiers.contract;
    let value = query
        .strip_prefix("identifier=")
        .filter(|v| !v.contains('&'))
        .and_then(|v| match v.split_once('|') {
            Some((s, id)) if s.is_empty() || s == system => Some(id),
            Some(_) => None,
            None => Some(v),
        });
    value
        .and_then(|id| ContractId::parse(id).ok())
        .ok_or_else(|| {
            FhirError::bad_param(
                name,
                format!("supported: identifier={system}|<contract id>"),
            )
        })
}

/// What a write is based on.
#[derive(Debug, Clone, Copy)]
pub(super) enum Base {
    /// Nothing: it makes a new contract.
    Nothing,
    /// The version read just before the write.
    Read(Version),
    /// The version the client named in `If-Match`.
    Named(Version),
}

impl Base {
    fn version(self) -> Version {
        match self {
            Base::Nothing => Version::FIRST,
            Base::Read(v) | Base::Named(v) => v,
        }
    }
}

/// What an update is based on: the version `If-Match` names, which must be the current
/// one (412 otherwise), or the current one.
pub(super) fn base(if_match: Option<Version>, current: &Record) -> Result<Base, FhirError> {
    let now = current.revision.version;
    match if_match {
        Some(v) if v != now => Err(FhirError::PreconditionFailed {
            expected: v.to_string(),
            current: now.to_string(),
        }),
        Some(v) => Ok(Base::Named(v)),
        None => Ok(Base::Read(now)),
    }
}

/// The system a change came from: `X-Source`, or `fhir`.
pub(super) fn source(headers: &HeaderMap) -> String {
    headers
        .get("x-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(SOURCE)
        .to_owned()
}

/// Maps `resources` into the contract and stores it: as the version after `base`, or as
/// a new contract with this id. What the resources carry that the contract does not
/// model is stored with the version.
pub(super) async fn store_resources(
    state: &AppState,
    contract_id: &ContractId,
    base: Base,
    resources: &ContractResources,
    source: String,
) -> Result<Record, FhirError> {
    store_mapped(state, contract_id, base, resources, source, from_fhir).await
}

/// [`store_resources`] for the gateway's own mapping of `base` with the resource just
/// received placed in it, which the caller has checked against the typed R4 model
/// ([`crate::fhir::check_resource`]): the rest need no check.
async fn store_placed(
    state: &AppState,
    contract_id: &ContractId,
    base: Base,
    resources: &ContractResources,
    source: String,
) -> Result<Record, FhirError> {
    let map = crate::fhir::from_fhir_checked;
    store_mapped(state, contract_id, base, resources, source, map).await
}

type Mapping = fn(&ContractResources, &Profile) -> Result<crate::domain::Contract, MappingError>;

async fn store_mapped(
    state: &AppState,
    contract_id: &ContractId,
    base: Base,
    resources: &ContractResources,
    source: String,
    map: Mapping,
) -> Result<Record, FhirError> {
    let contract =
        map(resources, &state.profile).map_err(|e| FhirError::Invalid(vec![Issue::from(&e)]))?;
    let foreign = Residue::stored(resources, &state.profile);
    store_contract(state, contract_id, base, contract, foreign, source).await
}

/// Stores `contract` as the version after `base`, or as a new contract.
async fn store_contract(
    state: &AppState,
    contract_id: &ContractId,
    base: Base,
    contract: crate::domain::Contract,
    foreign: Option<Value>,
    source: String,
) -> Result<Record, FhirError> {
    let change = Change {
        source,
        author: None,
        reason: None,
        transfer: None,
    };
    let before = match base {
        Base::Read(v) | Base::Named(v) => Some(v),
        Base::Nothing => None,
    };
    crate::api::check_write(&state.store, contract_id, before, &contract, false)
        .await
        .map_err(|e| e.fhir(contract_id))?;
    let written = match base {
        Base::Read(v) | Base::Named(v) => {
            state
                .store
                .update_with(contract_id, v, contract.clone(), change, foreign)
                .await
        }
        Base::Nothing => {
            state
                .store
                .create_with(contract_id.clone(), contract.clone(), change, foreign)
                .await
        }
    };
    written.map_err(|e| store_error(e, &base, Some(&contract)))
}

/// A store error as a FHIR error. A version conflict is 412 when the client named the
/// version (`If-Match`), else 409: someone else's change came first.
pub(super) fn store_error(
    e: StoreError,
    base: &Base,
    contract: Option<&crate::domain::Contract>,
) -> FhirError {
    match e {
        StoreError::VersionConflict {
            expected, current, ..
        } if matches!(base, Base::Named(_)) => FhirError::PreconditionFailed {
            expected: expected.to_string(),
            current: current.to_string(),
        },
        StoreError::VersionConflict { id, current, .. } => FhirError::Conflict(format!(
            "contract {id} changed at the same time (now version {current}); read it again and reapply the change"
        )),
        StoreError::AlreadyExists(id) => {
            FhirError::Conflict(format!("CarePlan/{id} already exists"))
        }
        StoreError::Invalid(v) => FhirError::Invalid(
            v.iter()
                .map(|v| {
                    let expression = contract.map(|c| expression_for(&v.field(), c));
                    Issue::error("invariant", v.to_string(), expression)
                })
                .collect(),
        ),
        other => other.into(),
    }
}
