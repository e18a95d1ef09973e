//! `GET /fhir/$samsyn?unit=HSA-ID[&period=…]`: the samsyn report of one unit (see
//! [`crate::samsyn`]) as a FHIR `Parameters` resource, or as an SVG chart with
//! `Accept: image/svg+xml` or `_format=svg`.

use axum::extract::{Query, State};
use axum::http::header::{ACCEPT, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::FhirError;
use super::questionnaire_response::hsa_param;
use super::respond::{Format, fhir_json};
use crate::api::AppState;
use crate::samsyn::{Period, Report};

pub const SVG: &str = "image/svg+xml";

pub async fn samsyn(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let wants_svg = get("_format").is_some_and(|f| f == "svg" || f == SVG)
        || headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains(SVG));
    let unit = hsa_param(
        "unit",
        get("unit").ok_or_else(|| FhirError::bad_param("unit", "name the unit: unit=HSA-id"))?,
    )?;
    let period = match get("period") {
        Some(p) => Period::parse(p).map_err(|e| FhirError::bad_param("period", e))?,
        None => Period::all(),
    };
    let report = Report::build(
        &state.store,
        &state.profile,
        &unit,
        period,
        state.samsyn_min_patients,
    )
    .await?;
    if wants_svg {
        let headers = [
            (CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        return Ok((headers, report.svg()).into_response());
    }
    let format = Format::negotiate(&headers, &params)?;
    Ok(fhir_json(
        StatusCode::OK,
        &report.parameters(&state.profile),
        format.pretty,
    ))
}
