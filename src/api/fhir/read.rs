//! `read`, `vread` and instance `history`: a resource as it is now, as it was at a
//! version, and every version of it, newest first.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::{Kind, find, resources_of_kind};
use super::respond::{Format, base_url, fhir_json, resource};
use super::shape::Subset;
use crate::api::AppState;
use crate::domain::Version;
use crate::fhir::stored::resource_key;
use crate::store::{Record, Store};

type Params = Query<Vec<(String, String)>>;

fn not_found(kind: Kind, id: &str) -> FhirError {
    FhirError::NotFound(format!("{}/{id} is not known", kind.name()))
}

/// The record a resource comes from: the current version, or `version` if given.
pub(super) async fn record_for(
    store: &Store,
    kind: Kind,
    id: &str,
    version: Option<Version>,
) -> Result<Record, FhirError> {
    let (contract, own_version) = kind.locate(id).ok_or_else(|| not_found(kind, id))?;
    if !visible_head(store, crate::auth::compartment().as_ref(), &contract).await? {
        return Err(not_found(kind, id));
    }
    let result = match own_version.or(version) {
        Some(v) => store.get_version(&contract, v).await,
        None => store.get(&contract).await,
    };
    let record = result.map_err(or_not_found(kind, id))?;
    // Another person's resources do not exist for a patient's token.
    if !crate::auth::sees(&record.revision.contract.patient.id) {
        return Err(not_found(kind, id));
    }
    if record.revision.deleted && kind != Kind::Provenance {
        return Err(FhirError::Gone(format!(
            "{}/{id} was deleted in version {}",
            kind.name(),
            record.revision.version
        )));
    }
    Ok(record)
}

/// For a caller limited to one person (`own`): whether the contract exists and is
/// theirs, decided from its head alone, so that another person's contract and none at
/// all take the same one lookup and get the same answer. Other callers: always (the
/// full read tells).
pub(super) async fn visible_head(
    store: &Store,
    own: Option<&crate::domain::PersonId>,
    contract: &crate::domain::ContractId,
) -> Result<bool, FhirError> {
    let Some(own) = own else {
        return Ok(true);
    };
    let head = store.head(contract).await?;
    Ok(head.is_some_and(|h| h.is_about(own)))
}

/// Store errors as FHIR errors, with a missing contract reported as this resource.
fn or_not_found(kind: Kind, id: &str) -> impl FnOnce(crate::store::StoreError) -> FhirError + '_ {
    move |e| match e {
        crate::store::StoreError::NotFound(_) => not_found(kind, id),
        other => other.into(),
    }
}

/// A resource as read: its body, version and when that version was stored.
pub(super) struct Found {
    pub body: Value,
    pub version: Version,
    pub recorded_at: jiff::Timestamp,
}

/// The resource as it is now, for a change to it: 412 when `if_match` (the request's
/// `If-Match`) names another version.
pub(super) async fn read_to_change(
    state: &AppState,
    kind: Kind,
    id: &str,
    if_match: Option<Version>,
) -> Result<Found, FhirError> {
    let found = read_resource(state, kind, id, None).await?;
    match if_match.filter(|v| *v != found.version) {
        Some(named) => Err(FhirError::PreconditionFailed {
            expected: named.to_string(),
            current: found.version.to_string(),
        }),
        None => Ok(found),
    }
}

/// `read` (`version` is `None`) or `vread`.
pub(super) async fn read_resource(
    state: &AppState,
    kind: Kind,
    id: &str,
    version: Option<Version>,
) -> Result<Found, FhirError> {
    if kind == Kind::Provenance && version.is_some() {
        return Err(FhirError::NotFound(
            "Provenance resources have one version; read them without _history".into(),
        ));
    }
    let record = record_for(&state.reads, kind, id, version).await?;
    let Some(body) = find(&record, kind, id, &state.profile) else {
        return Err(match version {
            Some(v) => FhirError::NotFound(format!("{}/{id} has no version {v}", kind.name())),
            None => gone_or_not_found(state, &record, kind, id).await,
        });
    };
    if kind == Kind::Provenance {
        return Ok(Found {
            body,
            version: Version::FIRST,
            recorded_at: record.revision.recorded_at,
        });
    }
    // Each resource has its own versions: those at which it changed.
    let own = record.revision.version_of(&format!("{}/{id}", kind.name()));
    if let Some(v) = version.filter(|v| *v != own.version) {
        return Err(FhirError::NotFound(format!(
            "{}/{id} has no version {v}: it did not change then (it was at version {})",
            kind.name(),
            own.version
        )));
    }
    Ok(Found {
        body,
        version: own.version,
        recorded_at: own.at,
    })
}

/// `read` through the [`super::ReadCache`]: the current version is looked up in the
/// store as always (only its number and person, [`crate::store::Store::head`]), and its
/// resources read, mapped and serialized only the first time.
async fn read_cached(
    state: &AppState,
    kind: Kind,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, FhirError> {
    // A version in the cache needs only the head; anything else takes the full path
    // (which also answers every error).
    if let Some((contract, None)) = kind.locate(id) {
        let head = state.reads.head(&contract).await?;
        // Another person's and none: the same one lookup, the same answer.
        let own = crate::auth::compartment();
        let visible = head
            .as_ref()
            .is_some_and(|h| own.as_ref().is_none_or(|own| h.is_about(own)));
        if !visible && own.is_some() {
            return Err(not_found(kind, id));
        }
        if let Some(head) = head
            && visible
            && !head.deleted
            && let Some(hit) = state.read_cache.get(contract.as_str(), head.version.get())
            && let Some(resource) = hit.find(kind.name(), id)
        {
            return Ok(cached_response(resource, &hit.patient, headers));
        }
    }
    let record = record_for(&state.reads, kind, id, None).await?;
    let cached = state.read_cache.get_or_map(&record, &state.profile);
    let Some(resource) = cached.find(kind.name(), id) else {
        return Err(gone_or_not_found(state, &record, kind, id).await);
    };
    Ok(cached_response(resource, &cached.patient, headers))
}

/// A cached resource as the answer to a read (304 when the client holds the version),
/// with what the audit row needs.
fn cached_response(
    resource: &super::read_cache::CachedResource,
    patient: &str,
    headers: &HeaderMap,
) -> Response {
    let (version, recorded_at) = (resource.version, resource.at);
    let mut response = if super::respond::not_modified(headers, version, recorded_at) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        super::respond::fhir_bytes(StatusCode::OK, resource.bytes.clone(), false)
    };
    super::respond::version_headers(&mut response, version, recorded_at);
    response.extensions_mut().insert(crate::api::AuditInfo {
        resources: vec![resource.reference()],
        patients: vec![patient.to_owned()],
    });
    response
}

/// Why a Goal or Appointment is not in the current version: it was removed (410, with
/// the version that removed it) or never was (404).
async fn gone_or_not_found(state: &AppState, current: &Record, kind: Kind, id: &str) -> FhirError {
    let Ok(history) = state.reads.history(&current.id).await else {
        return not_found(kind, id);
    };
    let (mut was_there, mut removed_in) = (false, None);
    for revision in history.versions {
        let version = revision.version;
        let record = Record {
            id: current.id.clone(),
            revision,
        };
        let here = find(&record, kind, id, &state.profile).is_some();
        if was_there && !here {
            removed_in = Some(version);
        }
        was_there = here;
    }
    match removed_in {
        Some(v) => FhirError::Gone(format!(
            "{}/{id} was removed from the contract in version {v}",
            kind.name()
        )),
        None => not_found(kind, id),
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
    let subset = Subset::from_params(kind, &params)?;
    if !format.pretty && kind != Kind::Provenance && subset == Subset::Whole {
        return read_cached(&state, kind, &id, &headers).await;
    }
    let mut found = read_resource(&state, kind, &id, None).await?;
    subset.apply(kind, &mut found.body);
    // A client holding this version already (`If-None-Match: W/"3"`) gets 304.
    let held = headers
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Version::parse(v).ok());
    if held == Some(found.version) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(tag) = found.version.etag().parse() {
            response.headers_mut().insert(axum::http::header::ETAG, tag);
        }
        return Ok(response);
    }
    Ok(resource(
        &found.body,
        found.version,
        found.recorded_at,
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
    let version = Version::parse(&vid).map_err(|e| FhirError::bad_param("vid", e.to_string()))?;
    let kind = Kind::parse(&kind)?;
    let subset = Subset::from_params(kind, &params)?;
    let mut found = read_resource(&state, kind, &id, Some(version)).await?;
    subset.apply(kind, &mut found.body);
    Ok(resource(
        &found.body,
        found.version,
        found.recorded_at,
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
    if !visible_head(&state.reads, crate::auth::compartment().as_ref(), &contract).await? {
        return Err(not_found(kind, &id));
    }
    let history = state
        .reads
        .history(&contract)
        .await
        .map_err(or_not_found(kind, &id))?;
    if history
        .versions
        .iter()
        .any(|v| !crate::auth::sees(&v.contract.patient.id))
    {
        return Err(not_found(kind, &id));
    }
    let base = base_url(&headers);
    let entries: Vec<Value> = history
        .versions
        .into_iter()
        .rev()
        .flat_map(|revision| {
            let record = Record {
                id: contract.clone(),
                revision,
            };
            history_entries(&record, kind, Some(&id), &base, &state.profile)
        })
        .collect();
    if entries.is_empty() {
        return Err(not_found(kind, &id));
    }
    let bundle = json!({ "resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries });
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}

/// `GET /fhir/{type}/_history`: the versions of every resource of a type, newest first,
/// since `_since` if given, a page of `_count` (default 50) at a time. This is how a
/// system that cannot take pushes pulls what changed.
pub async fn type_history(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let kind = Kind::parse(&kind)?;
    if kind == Kind::Provenance {
        return Err(FhirError::MethodNotAllowed);
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str, default: u32| -> Result<u32, FhirError> {
        get(name).map_or(Ok(default), |n| {
            n.parse()
                .map_err(|_| FhirError::bad_param(name, "must be a whole number"))
        })
    };
    let count = number("_count", 50)?.clamp(1, 1000);
    let offset = number("_offset", 0)?;
    let since = get("_since")
        .map(|s| {
            s.parse::<jiff::Timestamp>().map_err(|e| {
                FhirError::bad_param(
                    "_since",
                    format!("must be an instant with a time zone: {e}"),
                )
            })
        })
        .transpose()?;
    let mut records = state.reads.versions_since(since, count, offset).await?;
    let full_page = records.len() == count as usize;
    records.retain(|r| crate::auth::sees(&r.revision.contract.patient.id));
    let base = base_url(&headers);
    let entries: Vec<Value> = records
        .iter()
        .flat_map(|record| history_entries(record, kind, None, &base, &state.profile))
        .collect();
    let mut links = Vec::new();
    let page = |at: u32| {
        let since = since.map(|s| format!("_since={s}&")).unwrap_or_default();
        format!(
            "{base}/{}/_history?{since}_count={count}&_offset={at}",
            kind.name()
        )
    };
    links.push(json!({ "relation": "self", "url": page(offset) }));
    if full_page {
        links.push(json!({ "relation": "next", "url": page(offset + count) }));
    }
    let bundle =
        json!({ "resourceType": "Bundle", "type": "history", "link": links, "entry": entries });
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}

/// The history entries of one stored version: one per resource of `kind` that changed in
/// it (only the one with id `only`, if given). A deleted version's entries carry no
/// resource.
fn history_entries(
    record: &Record,
    kind: Kind,
    only: Option<&str>,
    base: &str,
    profile: &crate::fhir::Profile,
) -> Vec<Value> {
    let version = record.revision.version;
    let (method, status) = if record.revision.deleted {
        ("DELETE", "204 No Content")
    } else if version == Version::FIRST {
        ("POST", "201 Created")
    } else {
        ("PUT", "200 OK")
    };
    resources_of_kind(record, kind, profile)
        .into_iter()
        .filter(|r| only.is_none_or(|id| r["id"] == id))
        // A resource's history has the versions at which it changed.
        .filter(|r| {
            record.revision.deleted
                || record.revision.version_of(&resource_key(r)).version == version
        })
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_owned();
            let mut entry = json!({
                "fullUrl": format!("{base}/{}/{id}", kind.name()),
                "resource": r,
                "request": { "method": method, "url": format!("{}/{id}", kind.name()) },
                "response": { "status": status, "etag": version.etag(), "lastModified": record.revision.recorded_at.to_string() },
            });
            if record.revision.deleted
                && let Some(e) = entry.as_object_mut()
            {
                e.remove("resource");
            }
            entry
        })
        .collect()
}
