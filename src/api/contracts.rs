//! `/api/contracts`: the native JSON API over the contract store, and
//! `/contracts/{id}/print`, the contract as a printable page.
//!
//! Request bodies are a bare contract (the domain's JSON form). Responses are records:
//! `{ "id", "version", "recordedAt", "change", "contract" }`, with the version's ETag.
//! Updates must send `If-Match` with the version they change. Writes go through the
//! write path ([`crate::write::Writer::save`]); changes are recorded with the source
//! `api`, or the authenticated client.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{ETAG, IF_MATCH, LAST_MODIFIED, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::json::JsonBody;
use super::route::{Needs, Routes};
use super::{ApiError, AppState};
use crate::auth::Letter;
use crate::domain::{Contract, ContractId, PersonId, Version};
use crate::store::{History, Record, Revision};
use crate::write::Caller;

/// The native API's routes: a contract is a `CarePlan` to the token's scopes.
pub(super) fn routes() -> Routes {
    let on = |letter, interaction| Needs::on("CarePlan", letter, interaction);
    Routes::new()
        .route(
            Method::GET,
            "/api/contracts",
            on(Letter::Search, "search-type"),
            search,
        )
        .route(
            Method::POST,
            "/api/contracts",
            on(Letter::Create, "create"),
            create,
        )
        .route(
            Method::GET,
            "/api/contracts/{id}",
            on(Letter::Read, "read"),
            read,
        )
        .route(
            Method::PUT,
            "/api/contracts/{id}",
            on(Letter::Update, "update"),
            update,
        )
        .route(
            Method::GET,
            "/api/contracts/{id}/history",
            on(Letter::Read, "read"),
            history,
        )
        .route(
            Method::GET,
            "/api/contracts/{id}/versions/{version}",
            on(Letter::Read, "read"),
            read_version,
        )
        .route(
            Method::GET,
            "/contracts/{id}/print",
            on(Letter::Read, "read"),
            print,
        )
}

/// Stores a new contract as version 1, under a new id.
#[utoipa::path(
    post,
    path = "/api/contracts",
    tag = "contracts",
    request_body(content = Contract, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored as version 1", body = Record,
            headers(("ETag" = String, description = "The version, W/\"1\""), ("Location" = String, description = "Where the contract is"))),
        (status = 400, description = "Not JSON, or a field is malformed", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Not a valid contract: one issue per rule broken", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(contract): JsonBody<Contract>,
) -> Result<Response, ApiError> {
    let id =
        ContractId::parse(&uuid::Uuid::new_v4().to_string()).map_err(|_| ApiError::Internal)?;
    let (record, _) = state.writer().save(&caller, &id, None, contract).await?;
    let location = format!("/api/contracts/{}", record.id);
    let mut response = record_response(StatusCode::CREATED, &record);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// The current version of a contract.
#[utoipa::path(
    get,
    path = "/api/contracts/{id}",
    tag = "contracts",
    params(("id" = String, Path, description = "The contract id")),
    responses(
        (status = 200, description = "The current version", body = Record,
            headers(("ETag" = String, description = "The version, W/\"n\""))),
        (status = 404, description = "No such contract, or another person's", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = visible(state.reads.get(&contract_id(&id)?).await?)?;
    Ok(record_response(StatusCode::OK, &record))
}

/// The record, if the caller may see whose it is; another person's is "not found".
fn visible(record: Record) -> Result<Record, ApiError> {
    if crate::auth::sees(&record.revision.contract.patient.id) {
        Ok(record)
    } else {
        Err(ApiError::NotFound(format!(
            "contract {} not found",
            record.id
        )))
    }
}

/// `GET /contracts/{id}/print`: the contract as a printable Swedish page (see
/// [`crate::print`]), self-contained: the security policy lets it load nothing.
#[utoipa::path(
    get,
    path = "/contracts/{id}/print",
    tag = "contracts",
    params(("id" = String, Path, description = "The contract id")),
    responses(
        (status = 200, description = "A self-contained HTML page", content_type = "text/html", body = String),
        (status = 404, description = "No such contract, or another person's", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn print(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = visible(state.reads.get(&contract_id(&id)?).await?)?;
    let headers = [
        (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            axum::http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
        (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (axum::http::header::REFERRER_POLICY, "no-referrer"),
    ];
    let mut response = (headers, crate::print::page(&record, &state.profile)).into_response();
    // The page is HTML: the guard cannot read whose it is, so it is said here.
    response.extensions_mut().insert(super::AuditInfo {
        resources: vec![format!("CarePlan/{}", record.id)],
        patients: vec![record.revision.contract.patient.id.to_string()],
    });
    Ok(response)
}

/// One version of a contract.
#[utoipa::path(
    get,
    path = "/api/contracts/{id}/versions/{version}",
    tag = "contracts",
    params(
        ("id" = String, Path, description = "The contract id"),
        ("version" = u64, Path, description = "The version number, from 1"),
    ),
    responses(
        (status = 200, description = "That version", body = Record),
        (status = 400, description = "Not a version number", body = ErrorBody),
        (status = 404, description = "No such contract or version, or another person's", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn read_version(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let version = Version::parse(&version).map_err(|e| ApiError::bad_request("version", e))?;
    let record = visible(state.reads.get_version(&contract_id(&id)?, version).await?)?;
    Ok(record_response(StatusCode::OK, &record))
}

/// Stores the contract as the version after the one `If-Match` names.
#[utoipa::path(
    put,
    path = "/api/contracts/{id}",
    tag = "contracts",
    params(
        ("id" = String, Path, description = "The contract id"),
        ("If-Match" = String, Header, description = "The ETag of the version changed, e.g. W/\"3\""),
    ),
    request_body(content = Contract, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored as the next version", body = Record,
            headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Not JSON, or a field or If-Match is malformed", body = ErrorBody),
        (status = 404, description = "No such contract, or another person's", body = ErrorBody),
        (status = 410, description = "The contract was deleted", body = ErrorBody),
        (status = 412, description = "If-Match names an older version", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Not a valid contract, or not a valid change of it", body = ErrorBody),
        (status = 428, description = "No If-Match", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    JsonBody(contract): JsonBody<Contract>,
) -> Result<Response, ApiError> {
    let id = contract_id(&id)?;
    let written = state
        .writer()
        .save(&caller, &id, Some(expected), contract)
        .await?;
    Ok(record_response(StatusCode::OK, &written.0))
}

/// The version an update is based on, from the required `If-Match` header. Checked
/// before the body is read, so a missing header is reported first.
pub(super) struct IfMatch(Version);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(IF_MATCH)
            .ok_or(ApiError::PreconditionRequired)?;
        value
            .to_str()
            .ok()
            .and_then(|v| Version::parse(v).ok())
            .map(IfMatch)
            .ok_or_else(|| {
                ApiError::bad_request("If-Match", "must be the ETag of a version, e.g. W/\"3\"")
            })
    }
}

/// Every version of the contract, oldest first.
#[utoipa::path(
    get,
    path = "/api/contracts/{id}/history",
    tag = "contracts",
    params(("id" = String, Path, description = "The contract id")),
    responses(
        (status = 200, description = "Every version, oldest first", body = History),
        (status = 404, description = "No such contract, or another person's", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<History>, ApiError> {
    let id = contract_id(&id)?;
    let history = state.reads.history(&id).await?;
    if history
        .versions
        .last()
        .is_some_and(|v| !crate::auth::sees(&v.contract.patient.id))
    {
        return Err(ApiError::NotFound(format!("contract {id} not found")));
    }
    Ok(Json(history))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SearchParams {
    /// The person: personnummer or samordningsnummer (required: there is no listing of
    /// everyone).
    patient: Option<String>,
}

/// The contracts of one person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SearchResult {
    contracts: Vec<Record>,
}

/// Contracts with one person: `?patient=PERSONNUMMER` (or samordningsnummer). There is
/// no unfiltered listing: it would hand out every person's data in one call.
#[utoipa::path(
    get,
    path = "/api/contracts",
    tag = "contracts",
    params(SearchParams),
    responses(
        (status = 200, description = "The person's contracts (none for a person the token may not see)", body = SearchResult),
        (status = 400, description = "No patient, or not a personnummer or samordningsnummer", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn search(
    State(state): State<AppState>,
    query: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SearchResult>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::bad_request("query", e.body_text()))?;
    let named = params
        .patient
        .map(|p| PersonId::parse(&p).map_err(|e| ApiError::bad_request("patient", e)))
        .transpose()?;
    let contracts = match crate::auth::searched(named) {
        crate::auth::Searched::Person(patient) => state.reads.find_by_patient(&patient).await?,
        crate::auth::Searched::Nobody => Vec::new(),
        crate::auth::Searched::Anyone => {
            return Err(ApiError::bad_request(
                "patient",
                "give ?patient=PERSONNUMMER",
            ));
        }
    };
    Ok(Json(SearchResult { contracts }))
}

fn contract_id(raw: &str) -> Result<ContractId, ApiError> {
    ContractId::parse(raw).map_err(|e| ApiError::bad_request("id", e))
}

/// A record as JSON with its version's `ETag` and `Last-Modified`.
fn record_response(status: StatusCode, record: &Record) -> Response {
    let Revision {
        version,
        recorded_at,
        ..
    } = &record.revision;
    let mut response = (status, Json(record)).into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&version.etag()) {
        headers.insert(ETAG, etag);
    }
    let http_date = recorded_at
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(date) = HeaderValue::from_str(&http_date) {
        headers.insert(LAST_MODIFIED, date);
    }
    response
}
