//! `/api/templates`: the templates per diagnosis group (see [`crate::templates`]) in the
//! native API — list them (`?unit=` for one unit's choice: the region's and its own),
//! read one, and make a draft from one for a person: `POST /api/templates/{id}/draft`
//! with the person and the responsible unit gives the draft contract to complete with
//! the person and then store with `POST /api/contracts`. Nothing is stored here.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use serde::{Deserialize, Serialize};

use super::error::{ErrorBody, Issue};
use super::json::JsonBody;
use super::route::{Needs, Routes};
use super::{ApiError, AppState};
use crate::auth::Letter;
use crate::domain::{Contract, HsaId, Patient, ResponsibleUnit, Template};

/// A template is about making a contract: a `CarePlan` to the token's scopes.
pub(super) fn routes() -> Routes {
    let on = |letter, interaction| Needs::on("CarePlan", letter, interaction);
    Routes::new()
        .route(
            Method::GET,
            "/api/templates",
            on(Letter::Search, "search-type"),
            list,
        )
        .route(
            Method::GET,
            "/api/templates/{id}",
            on(Letter::Read, "read"),
            read,
        )
        .route(
            Method::POST,
            "/api/templates/{id}/draft",
            on(Letter::Create, "operation"),
            draft,
        )
}

/// The templates on offer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only what this unit may use (the region's templates and its own), by HSA-id.
    pub unit: Option<String>,
}

/// Who the draft is for and which unit will be responsible.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftRequest {
    pub patient: Patient,
    #[serde(default)]
    pub responsible_unit: Option<ResponsibleUnit>,
}

/// The templates on offer, in id order.
#[utoipa::path(
    get,
    path = "/api/templates",
    operation_id = "list_templates",
    tag = "templates",
    params(ListParams),
    responses(
        (status = 200, description = "The templates", body = TemplateList),
        (status = 400, description = "A malformed parameter", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<TemplateList>, ApiError> {
    let unit = params
        .unit
        .map(|u| {
            HsaId::parse(&u).map_err(|e| {
                ApiError::BadRequest(Issue {
                    field: "unit".into(),
                    message: e.to_string(),
                })
            })
        })
        .transpose()?;
    let templates = state.templates.for_unit(unit.as_ref()).cloned().collect();
    Ok(Json(TemplateList { templates }))
}

/// One template.
#[utoipa::path(
    get,
    path = "/api/templates/{id}",
    operation_id = "read_template",
    tag = "templates",
    params(("id" = String, Path, description = "The template id")),
    responses(
        (status = 200, description = "The template", body = Template),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Template>, ApiError> {
    Ok(Json(template(&state, &id)?.clone()))
}

fn template<'a>(state: &'a AppState, id: &str) -> Result<&'a Template, ApiError> {
    state
        .templates
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("template {id} not found")))
}

/// A draft contract from a template, for a person and a unit: not stored.
#[utoipa::path(
    post,
    path = "/api/templates/{id}/draft",
    operation_id = "draft_from_template",
    tag = "templates",
    params(("id" = String, Path, description = "The template id")),
    request_body(content = DraftRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The draft, to complete with the person and store with POST /api/contracts", body = Contract),
        (status = 400, description = "Not JSON, or a field is malformed", body = ErrorBody),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Another unit's template, or a person this region cannot identify", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The token's scopes or limits do not allow it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<DraftRequest>,
) -> Result<Json<Contract>, ApiError> {
    let t = template(&state, &id)?;
    if !crate::auth::sees(&request.patient.id) {
        return Err(ApiError::Forbidden(
            "a patient's token may start a contract only for its own patient".into(),
        ));
    }
    let invalid = |field: &str, message: String| {
        ApiError::Invalid(vec![Issue {
            field: field.into(),
            message,
        }])
    };
    state
        .profile
        .identifiers
        .check_person(&request.patient.id)
        .map_err(|e| invalid("patient.id", e.to_string()))?;
    let unit = request.responsible_unit.as_ref().map(|u| &u.hsa_id);
    if !t.is_for(unit) {
        return Err(invalid(
            "responsibleUnit.hsaId",
            format!(
                "template {id} is {}'s own; another unit starts from the region's or its own",
                t.unit.as_ref().map_or("", HsaId::as_str)
            ),
        ));
    }
    Ok(Json(t.draft(request.patient, request.responsible_unit)))
}
