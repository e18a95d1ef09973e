//! `PlanDefinition`: the templates per diagnosis group the gateway offers (see
//! [`crate::fhir::template`]), read-only — `GET /fhir/PlanDefinition[/{id}]` (searched by
//! `_id`, `url` or `title`), and `PlanDefinition/{id}/$apply?subject=Patient/{id}`: the
//! draft CarePlan the template makes for a person, which the client changes with the
//! person and then creates like any CarePlan. `$apply` stores nothing.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::error::FhirError;
use super::respond::{Format, base_url, fhir_json, searchset};
use super::write::parameters_body;
use crate::api::AppState;
use crate::domain::{Patient, Template};
use crate::fhir::template::{applied, to_plan_definition};

/// The template `id`; 404 when there is none.
fn template<'a>(state: &'a AppState, id: &str) -> Result<&'a Template, FhirError> {
    state
        .templates
        .get(id)
        .ok_or_else(|| FhirError::NotFound(format!("PlanDefinition/{id} is not known")))
}

pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let t = template(&state, &id)?;
    let body = to_plan_definition(t, &base_url(&headers), &state.profile);
    Ok(fhir_json(StatusCode::OK, &body, format.pretty))
}

/// `GET /fhir/PlanDefinition`: every template, or those `_id`, `url` or `title` (the
/// start of the title, in any case, as FHIR's string search) name.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let base = base_url(&headers);
    let mut found: Vec<Value> = state
        .templates
        .all()
        .iter()
        .map(|t| to_plan_definition(t, &base, &state.profile))
        .collect();
    for (name, value) in &params {
        match name.as_str() {
            "_id" => found.retain(|d| value.split(',').any(|v| d["id"] == v)),
            "url" => found.retain(|d| d["url"] == value.as_str()),
            "title" => found.retain(|d| {
                d["title"]
                    .as_str()
                    .is_some_and(|t| t.to_lowercase().starts_with(&value.to_lowercase()))
            }),
            "_format" | "_pretty" => {}
            other => {
                return Err(FhirError::bad_param(
                    other,
                    "PlanDefinition is searched by _id, url or title only",
                ));
            }
        }
    }
    let bundle = searchset(&base, found, None);
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}

/// `GET /fhir/PlanDefinition/{id}/$apply?subject=Patient/{id}`.
pub async fn apply_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let mut subject = None;
    for (name, value) in &params {
        match name.as_str() {
            "subject" => subject = Some(value.clone()),
            "_format" | "_pretty" => {}
            other => return Err(not_taken(other)),
        }
    }
    apply(&state, &id, &headers, subject, format)
}

/// `POST /fhir/PlanDefinition/{id}/$apply` with Parameters naming the `subject`.
pub async fn apply_post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let parameters = parameters_body(&headers, body, "$apply")?;
    let mut subject = None;
    let list = parameters["parameter"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, p) in list.iter().enumerate() {
        match p["name"].as_str().unwrap_or_default() {
            "subject" => {
                let value = p["valueString"].as_str().ok_or_else(|| {
                    FhirError::bad_param(
                        &format!("Parameters.parameter[{i}].valueString"),
                        "subject is a string: Patient/{id}",
                    )
                })?;
                subject = Some(value.to_owned());
            }
            other => return Err(not_taken(other)),
        }
    }
    apply(&state, &id, &headers, subject, format)
}

/// What `$apply` does not take: the draft is the template's, for one person.
fn not_taken(name: &str) -> FhirError {
    FhirError::bad_param(
        name,
        "$apply takes only subject (Patient/{id}): the draft is the template's for that person, \
         and the unit completes it with them",
    )
}

fn apply(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    subject: Option<String>,
    format: Format,
) -> Result<Response, FhirError> {
    let t = template(state, id)?;
    let subject =
        subject.ok_or_else(|| FhirError::bad_param("subject", "$apply needs the subject"))?;
    let person = subject
        .strip_prefix("Patient/")
        .and_then(|p| state.profile.identifiers.person_of_patient_id(p))
        .ok_or_else(|| {
            FhirError::bad_param(
                "subject",
                "must be Patient/{id}: a personnummer, samordningsnummer or the region's reservnummer",
            )
        })?;
    if !crate::auth::sees(&person) {
        return Err(FhirError::Forbidden(
            "a patient's token may start a contract only for its own patient".into(),
        ));
    }
    let patient = Patient {
        id: person,
        name: None,
    };
    let plan = applied(t, patient, &base_url(headers), &state.profile);
    Ok(fhir_json(StatusCode::OK, &plan, format.pretty))
}
