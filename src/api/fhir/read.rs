//! `read`, `vread` and instance `history`: a resource as it is now, as it was at a
//! version, and every version of it, newest first.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::{Kind, find};
use super::respond::{Format, base_url, fhir_json, resource};
use crate::api::AppState;
use crate::domain::Version;
use crate::store::Record;

type Params = Query<Vec<(String, String)>>;

fn not_found(kind: Kind, id: &str) -> FhirError {
    FhirError::NotFound(format!("{}/{id} is not known", kind.name()))
}

/// The record a resource comes from: the current version, or `version` if given.
pub(super) async fn record_for(
    state: &AppState,
    kind: Kind,
    id: &str,
    version: Option<Version>,
) -> Result<Record, FhirError> {
    let (contract, own_version) = kind.locate(id).ok_or_else(|| not_found(kind, id))?;
    let result = match own_version.or(version) {
        Some(v) => state.store.get_version(&contract, v).await,
        None => state.store.get(&contract).await,
    };
    result.map_err(or_not_found(kind, id))
}

/// Store errors as FHIR errors, with a missing contract reported as this resource.
fn or_not_found(kind: Kind, id: &str) -> impl FnOnce(crate::store::StoreError) -> FhirError + '_ {
    move |e| match e {
        crate::store::StoreError::NotFound(_) => not_found(kind, id),
        other => other.into(),
    }
}

pub async fn read(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let kind = Kind::parse(&kind)?;
    let record = record_for(&state, kind, &id, None).await?;
    let body = find(&record, kind, &id, &state.profile).ok_or_else(|| not_found(kind, &id))?;
    let version = if kind == Kind::Provenance {
        Version::FIRST
    } else {
        record.revision.version
    };
    Ok(resource(
        &body,
        version,
        record.revision.recorded_at,
        format.pretty,
    ))
}

pub async fn vread(
    State(state): State<AppState>,
    Path((kind, id, vid)): Path<(String, String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let kind = Kind::parse(&kind)?;
    let version = Version::parse(&vid).map_err(|e| FhirError::bad_param("vid", e.to_string()))?;
    if kind == Kind::Provenance {
        return Err(FhirError::NotFound(
            "Provenance resources have one version; read them without _history".into(),
        ));
    }
    let record = record_for(&state, kind, &id, Some(version)).await?;
    let body = find(&record, kind, &id, &state.profile).ok_or_else(|| {
        FhirError::NotFound(format!("{}/{id} has no version {version}", kind.name()))
    })?;
    Ok(resource(
        &body,
        version,
        record.revision.recorded_at,
        format.pretty,
    ))
}

pub async fn history(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let kind = Kind::parse(&kind)?;
    if kind == Kind::Provenance {
        return Err(FhirError::MethodNotAllowed);
    }
    let (contract, _) = kind.locate(&id).ok_or_else(|| not_found(kind, &id))?;
    let history = state
        .store
        .history(&contract)
        .await
        .map_err(or_not_found(kind, &id))?;
    let base = base_url(&headers);
    let entries: Vec<Value> = history
        .versions
        .into_iter()
        .rev()
        .filter_map(|revision| {
            let record = Record { id: contract.clone(), revision };
            let body = find(&record, kind, &id, &state.profile)?;
            let version = record.revision.version;
            let (method, status) = if version == Version::FIRST { ("POST", "201 Created") } else { ("PUT", "200 OK") };
            Some(json!({
                "fullUrl": format!("{base}/{}/{id}", kind.name()),
                "resource": body,
                "request": { "method": method, "url": format!("{}/{id}", kind.name()) },
                "response": { "status": status, "etag": version.etag(), "lastModified": record.revision.recorded_at.to_string() },
            }))
        })
        .collect();
    if entries.is_empty() {
        return Err(not_found(kind, &id));
    }
    let bundle = json!({ "resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries });
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}
