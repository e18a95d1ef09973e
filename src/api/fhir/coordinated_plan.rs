//! `GET /fhir/CarePlan/$coordinated-plan?patient=…`: the portal's call. One Bundle with
//! the person's contracts in force (active or on hold) as CarePlans — next step first
//! among the activities, linked plans in `supportingInfo` — their CareTeams, Goals and the
//! agreed Appointments still ahead. A person with no contract gets 404.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::resources_of;
use super::respond::{Format, base_url, fhir_json};
use super::search::person;
use crate::api::AppState;
use crate::domain::Status;

pub async fn coordinated_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let (name, value) = params
        .iter()
        .find(|(k, _)| {
            matches!(
                k.as_str(),
                "patient" | "patient.identifier" | "patient:identifier"
            )
        })
        .ok_or_else(|| {
            FhirError::bad_param("patient", "give the person: ?patient=system|personnummer")
        })?;
    let patient = person(value, name, &state.profile)?;
    let records = state.store.find_by_patient(&patient).await?;
    if records.is_empty() || !crate::auth::sees(&patient) {
        return Err(FhirError::NotFound(
            "no Patientkontrakt is known for this person".into(),
        ));
    }
    let now = jiff::Timestamp::now();
    let base = base_url(&headers);
    let entry = |r: Value| {
        let url = format!(
            "{base}/{}/{}",
            r["resourceType"].as_str().unwrap_or_default(),
            r["id"].as_str().unwrap_or_default()
        );
        json!({ "fullUrl": url, "resource": r })
    };
    let mut entries = Vec::new();
    for record in records
        .iter()
        .filter(|r| matches!(r.revision.contract.status, Status::Active | Status::OnHold))
    {
        let r = resources_of(record, &state.profile);
        entries.push(entry(r.care_plan));
        entries.push(entry(r.care_team));
        entries.extend(r.goals.into_iter().map(entry));
        let upcoming = r.appointments.into_iter().filter(|a| {
            a["status"] == "booked"
                && a["start"]
                    .as_str()
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                    .is_some_and(|t| t >= now)
        });
        entries.extend(upcoming.map(entry));
    }
    let bundle = json!({ "resourceType": "Bundle", "type": "collection", "timestamp": now.to_string(), "entry": entries });
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}
