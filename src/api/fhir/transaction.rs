//! `POST /fhir` with a `transaction` Bundle (a `batch` goes to [`super::batch`]), as R4
//! defines it (http.html#transaction): each entry acts on exactly the resource its
//! `request.url` names; all its writes — across as many contracts as it names — are
//! done together in one database transaction, or none is; `urn:uuid:` fullUrls resolve
//! across entries; GET entries are answered after the writes, as in a batch. The
//! rules are the write path's ([`crate::write`]); this handler only translates.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::batch::{Budget, Request, batch, request_of, response_bundle, written};
use super::error::FhirError;
use super::respond::{Format, fhir_json};
use super::write::json_body;
use crate::api::AppState;
use crate::write::Caller;

pub async fn transaction(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let bundle = json_body(&headers, body)?;
    if fhir_wire::resource_type(&bundle) != Some("Bundle") {
        return Err(FhirError::bad_param(
            "resourceType",
            "POST /fhir takes a Bundle",
        ));
    }
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // Every request is bounded: a transaction's entries are written in one database
    // transaction, a batch's answered in one response.
    if entries.len() > state.bundle_entries {
        return Err(FhirError::TooManyEntries(state.bundle_entries));
    }
    match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => {}
        Some("batch") => {
            let response = batch(&state, &caller, &headers, entries).await;
            return Ok(fhir_json(StatusCode::OK, &response, format.pretty));
        }
        _ => {
            return Err(FhirError::bad_param(
                "Bundle.type",
                "must be transaction or batch",
            ));
        }
    }
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for (at, entry) in entries.iter().enumerate() {
        match request_of(&caller, entry, at, true)? {
            Request::Write(entry) => writes.push(entry),
            read => reads.push((at, read)),
        }
    }
    let mut responses = vec![Value::Null; entries.len()];
    let mut budget = Budget::of(&state);
    if !writes.is_empty() {
        let places: Vec<usize> = writes.iter().filter_map(|e| e.at).collect();
        let done = state.writer().apply(&caller, writes).await?;
        for (at, done) in places.into_iter().zip(&done) {
            responses[at] = budget.written(written(&state, &headers, done));
        }
    }
    // Reads come after the writes (R4's order of processing), answered as in a batch.
    for (at, read) in reads {
        responses[at] = budget.read(&state, &headers, read).await;
    }
    let bundle = response_bundle("transaction-response", responses);
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}
