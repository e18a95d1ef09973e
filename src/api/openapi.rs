//! `GET /api/openapi.json`: the native contract API as OpenAPI 3.1, made by utoipa from
//! the handlers' own declarations (`#[utoipa::path]` beside each) and the domain's types
//! (their `ToSchema`), so it says what the code does. Open, like `/fhir/metadata`: it
//! describes the API, not anyone's data.

use axum::Json;
use axum::http::Method;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::route::{Needs, Routes};
use super::{contracts, templates};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "pkgw native contract API",
        description = "Patientkontrakt as the gateway keeps them: one versioned record per contract, written whole with If-Match. The FHIR R4 API is at /fhir (its CapabilityStatement at /fhir/metadata).",
    ),
    paths(
        contracts::search,
        contracts::create,
        contracts::read,
        contracts::update,
        contracts::history,
        contracts::read_version,
        contracts::print,
        templates::list,
        templates::read,
        templates::draft,
    ),
    modifiers(&Bearer),
    tags(
        (name = "contracts", description = "Patientkontrakt, whole"),
        (name = "templates", description = "Templates per diagnosis group that pre-fill a new contract's draft")
    )
)]
pub struct ApiDoc;

/// The bearer JWT every call needs (SMART scopes on `CarePlan`).
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT with SMART scopes on CarePlan (see /.well-known/smart-configuration)",
                    ))
                    .build(),
            ),
        );
    }
}

pub(super) fn routes() -> Routes {
    Routes::new().route(Method::GET, "/api/openapi.json", Needs::Open, document)
}

async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
