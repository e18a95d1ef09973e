//! `GET /fhir/Questionnaire[/{id}]`: the two "7 frågor" questionnaires, the patient's and
//! care's (see `fhir::questionnaire`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::error::FhirError;
use super::respond::{Format, base_url, fhir_json, searchset};
use crate::api::AppState;
use crate::fhir::questionnaire::{questionnaire_by_id, questionnaires};

pub async fn search(
    State(_): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let base = base_url(&headers);
    let wanted = params
        .iter()
        .find(|(k, _)| k == "_id" || k == "url")
        .map(|(_, v)| v.as_str());
    let found: Vec<Value> = questionnaires()
        .into_iter()
        .filter(|q| wanted.is_none_or(|w| q["id"] == w || q["url"] == w))
        .collect();
    let bundle = searchset(&base, found, None);
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}

pub async fn read(
    State(_): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let q = questionnaire_by_id(&id)
        .ok_or_else(|| FhirError::NotFound(format!("Questionnaire/{id} is not known")))?;
    Ok(fhir_json(StatusCode::OK, &q, format.pretty))
}
