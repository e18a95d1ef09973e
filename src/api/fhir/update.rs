//! `update` (`PUT /fhir/CarePlan/{id}`): an EHR's new version of the plan. The CarePlan
//! is mapped into the contract (the CareTeam, Goals and Appointments stay as they are),
//! checked against the contract's rules, and stored as the next version; what the sender
//! sent that the contract does not model is kept and sent back out. `If-Match` makes the
//! update conditional on a version (412 when stale); without it, the version read here is
//! the condition, so a concurrent change is never overwritten unseen.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_TYPE, IF_MATCH};
use axum::response::Response;
use serde_json::Value;

use super::error::FhirError;
use super::locate::{Kind, find, resources_of};
use super::read::record_for;
use super::respond::{Format, resource};
use crate::api::AppState;
use crate::domain::{ContractId, Version};
use crate::fhir::outcome::Issue;
use crate::fhir::residue::Residue;
use crate::fhir::{ContractResources, expression_for, from_fhir};
use crate::store::{Change, Record, StoreError};

/// Changes through the FHIR API are recorded with this source unless the request names
/// its system in `X-Source` (used to avoid echoing a change back to its sender).
const SOURCE: &str = "fhir";

pub async fn update(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let kind = Kind::parse(&kind)?;
    if kind != Kind::CarePlan {
        return Err(FhirError::MethodNotAllowed);
    }
    let plan = json_body(&headers, body)?;
    if fhir_wire::resource_type(&plan) != Some("CarePlan") {
        return Err(FhirError::bad_param(
            "resourceType",
            "the body must be a CarePlan",
        ));
    }
    if plan.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(FhirError::bad_param(
            "id",
            format!("the CarePlan's id must be {id}, as in the URL"),
        ));
    }
    let if_match = match headers.get(IF_MATCH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| Version::parse(v).ok())
                .ok_or_else(|| {
                    FhirError::bad_param("If-Match", "must be a version's ETag, e.g. W/\"3\"")
                })?,
        ),
    };
    let current = record_for(&state, kind, &id, None).await?;
    let contract_id = current.id.clone();
    let expected = expected_version(if_match, &current)?;
    let mut resources = resources_of(&current, &state.profile);
    resources.care_plan = plan;
    let record = store_resources(
        &state,
        &contract_id,
        Some(expected),
        &resources,
        source(&headers),
    )
    .await?;
    let body = find(&record, Kind::CarePlan, &id, &state.profile).unwrap_or_default();
    Ok(resource(
        &body,
        record.revision.version,
        record.revision.recorded_at,
        format.pretty,
    ))
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
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
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

/// The version an update is based on: `If-Match`'s, which must be the current one (412
/// otherwise), or the current one.
pub(super) fn expected_version(
    if_match: Option<Version>,
    current: &Record,
) -> Result<Version, FhirError> {
    let now = current.revision.version;
    match if_match {
        Some(v) if v != now => Err(FhirError::PreconditionFailed {
            expected: v.to_string(),
            current: now.to_string(),
        }),
        _ => Ok(now),
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

/// Maps `resources` into the contract and stores it: as the version after `expected`,
/// or as a new contract with this id when `expected` is `None`. What the resources carry
/// that the contract does not model is stored with the version.
pub(super) async fn store_resources(
    state: &AppState,
    contract_id: &ContractId,
    expected: Option<Version>,
    resources: &ContractResources,
    source: String,
) -> Result<Record, FhirError> {
    let contract = from_fhir(resources, &state.profile)
        .map_err(|e| FhirError::Invalid(vec![Issue::from(&e)]))?;
    let residue = Residue::of(resources, &state.profile);
    let foreign = if residue.is_empty() {
        None
    } else {
        serde_json::to_value(&residue).ok()
    };
    let change = Change {
        source,
        author: None,
        reason: None,
    };
    let written = match expected {
        Some(v) => {
            state
                .store
                .update_with(contract_id, v, contract.clone(), change, foreign)
                .await
        }
        None => {
            state
                .store
                .create_with(contract_id.clone(), contract.clone(), change, foreign)
                .await
        }
    };
    written.map_err(|e| match e {
        StoreError::VersionConflict {
            expected, current, ..
        } => FhirError::PreconditionFailed {
            expected: expected.to_string(),
            current: current.to_string(),
        },
        StoreError::AlreadyExists(id) => {
            FhirError::Conflict(format!("CarePlan/{id} already exists"))
        }
        StoreError::Invalid(v) => FhirError::Invalid(
            v.iter()
                .map(|v| {
                    Issue::error(
                        "invariant",
                        v.to_string(),
                        Some(expression_for(&v.field(), &contract)),
                    )
                })
                .collect(),
        ),
        other => other.into(),
    })
}
