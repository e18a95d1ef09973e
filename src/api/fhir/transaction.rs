//! `POST /fhir` with a `transaction` Bundle (a `batch` goes to [`super::batch`]): how an EHR pushes a whole contract in one
//! request — its CarePlan with the CareTeam, Goals and Appointments — stored as one new
//! version, all or nothing. A `POST CarePlan` entry creates a contract (conditionally with
//! `ifNoneExist=identifier=…`), a `PUT CarePlan/{id}` entry updates it (with `ifMatch`) or
//! creates it under that id. Resources the Bundle leaves out stay as they are.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::batch::batch;
use super::error::FhirError;
use super::locate::resources_of;
use super::respond::{Format, fhir_json};
use super::write::{
    Base, base, contract_in_query, json_body, merge_write, source, store_resources,
};
use crate::api::AppState;
use crate::domain::{ContractId, Version};
use crate::fhir::ContractResources;
use crate::store::{Record, StoreError};

/// What the Bundle asks for the contract.
struct Request {
    /// The contract's id (new for a create).
    id: ContractId,
    if_match: Option<Version>,
    /// `POST` with `ifNoneExist` naming an existing contract: nothing to do.
    if_none_exist: Option<ContractId>,
}

pub async fn transaction(
    State(state): State<AppState>,
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
        .cloned()
        .unwrap_or_default();
    match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => {}
        Some("batch") => {
            let response = batch(&state, &headers, &entries).await;
            return Ok(fhir_json(StatusCode::OK, &response, format.pretty));
        }
        _ => {
            return Err(FhirError::bad_param(
                "Bundle.type",
                "must be transaction or batch",
            ));
        }
    }
    for entry in &entries {
        let request = &entry["request"];
        crate::api::entry_allowed(
            request["method"].as_str().unwrap_or_default(),
            request["url"].as_str().unwrap_or_default(),
        )?;
    }
    let plans: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e["resource"]["resourceType"] == "CarePlan")
        .map(|(i, _)| i)
        .collect();
    let [plan_at] = plans[..] else {
        return Err(FhirError::bad_param(
            "Bundle.entry",
            "a transaction carries one contract: exactly one CarePlan",
        ));
    };
    let request = read_request(&state, &entries[plan_at], plan_at).await?;
    let existing = match state.store.get(&request.id).await {
        Ok(record) => Some(record),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if let (Some(_), Some(record)) = (&request.if_none_exist, &existing) {
        return respond(&entries, record, "200 OK", format);
    }
    let mut resources = match &existing {
        Some(record) => resources_of(record, &state.profile),
        None => ContractResources::with_plan(Value::Null),
    };
    apply(&entries, &request.id, &mut resources)?;
    let base = match &existing {
        Some(record) => match base(request.if_match, record) {
            // A syncing system that had not seen the latest version: its edit is merged.
            Err(FhirError::PreconditionFailed { .. })
                if state.is_sync_source(&source(&headers)) =>
            {
                let seen = request.if_match.ok_or(FhirError::Internal)?;
                let edit = |r: &mut ContractResources| apply(&entries, &request.id, r);
                let merged =
                    merge_write(&state, record, seen, edit, &bundle, source(&headers)).await?;
                return respond(&entries, &merged, "200 OK", format);
            }
            other => other?,
        },
        None if request.if_match.is_some() => {
            return Err(FhirError::NotFound(format!(
                "CarePlan/{} is not known",
                request.id
            )));
        }
        None => Base::Nothing,
    };
    let mut written =
        store_resources(&state, &request.id, base, &resources, source(&headers)).await;
    // Another change won the race to the version it named: merged, for a syncing system.
    if let (Err(FhirError::PreconditionFailed { .. }), Some(seen)) = (&written, request.if_match)
        && state.is_sync_source(&source(&headers))
    {
        let now = state.store.get(&request.id).await?;
        let edit = |r: &mut ContractResources| apply(&entries, &request.id, r);
        written = merge_write(&state, &now, seen, edit, &bundle, source(&headers)).await;
    }
    match (written, &request.if_none_exist) {
        (Ok(record), _) => respond(
            &entries,
            &record,
            if existing.is_some() {
                "200 OK"
            } else {
                "201 Created"
            },
            format,
        ),
        // A concurrent conditional create made it first: this one finds it, as if run after.
        (Err(FhirError::Conflict(_)), Some(id)) => {
            respond(&entries, &state.store.get(id).await?, "200 OK", format)
        }
        (Err(e), _) => Err(e),
    }
}

/// Puts the Bundle's resources in place of the contract's: the CarePlan and CareTeam,
/// and the Goals and Appointments when the Bundle has any (else they stay).
fn apply(
    entries: &[Value],
    id: &ContractId,
    resources: &mut ContractResources,
) -> Result<(), FhirError> {
    let (mut goals, mut appointments) = (Vec::new(), Vec::new());
    for (i, entry) in entries.iter().enumerate() {
        let mut resource = entry["resource"].clone();
        match resource["resourceType"].as_str() {
            Some("CarePlan") => {
                resource["id"] = json!(id.as_str());
                resources.care_plan = resource;
            }
            Some("CareTeam") => resources.care_team = resource,
            Some("Goal") => goals.push(resource),
            Some("Appointment") => appointments.push(resource),
            other => {
                return Err(FhirError::bad_param(
                    &format!("Bundle.entry[{i}].resource"),
                    format!(
                        "{} is not part of a contract",
                        other.unwrap_or("a resource without resourceType")
                    ),
                ));
            }
        }
    }
    if !goals.is_empty() {
        resources.goals = goals;
    }
    if !appointments.is_empty() {
        resources.appointments = appointments;
    }
    Ok(())
}

/// The CarePlan entry's `request`: which contract, and on what condition.
async fn read_request(state: &AppState, entry: &Value, at: usize) -> Result<Request, FhirError> {
    let path = format!("Bundle.entry[{at}].request");
    let request = entry
        .get("request")
        .ok_or_else(|| FhirError::bad_param(&path, "is missing"))?;
    let url = request["url"].as_str().unwrap_or_default();
    let if_match = match request["ifMatch"].as_str() {
        Some(tag) => Some(
            Version::parse(tag)
                .map_err(|e| FhirError::bad_param(&format!("{path}.ifMatch"), e.to_string()))?,
        ),
        None => None,
    };
    match request["method"].as_str() {
        Some("PUT") => {
            let id = url
                .strip_prefix("CarePlan/")
                .and_then(|id| ContractId::parse(id).ok());
            let id = id.ok_or_else(|| {
                FhirError::bad_param(&format!("{path}.url"), "must be CarePlan/{id}")
            })?;
            Ok(Request {
                id,
                if_match,
                if_none_exist: None,
            })
        }
        Some("POST") => {
            let if_none_exist = request["ifNoneExist"]
                .as_str()
                .map(|q| contract_in_query(q, &state.profile, &format!("{path}.ifNoneExist")))
                .transpose()?;
            let id = match &if_none_exist {
                Some(id) => id.clone(),
                None => ContractId::parse(&uuid::Uuid::new_v4().to_string())
                    .map_err(|_| FhirError::Internal)?,
            };
            Ok(Request {
                id,
                if_match,
                if_none_exist,
            })
        }
        _ => Err(FhirError::bad_param(
            &format!("{path}.method"),
            "must be POST or PUT for the CarePlan",
        )),
    }
}

/// A `transaction-response` Bundle: one entry per request entry, in order.
fn respond(
    entries: &[Value],
    record: &Record,
    status: &str,
    format: Format,
) -> Result<Response, FhirError> {
    let version = record.revision.version;
    let response: Vec<Value> = entries
        .iter()
        .map(|e| {
            let kind = e["resource"]["resourceType"].as_str().unwrap_or_default();
            let mut r = json!({ "status": status, "etag": version.etag(), "lastModified": record.revision.recorded_at.to_string() });
            if matches!(kind, "CarePlan" | "CareTeam") {
                r["location"] = json!(format!("{kind}/{}/_history/{version}", record.id));
            }
            json!({ "response": r })
        })
        .collect();
    let bundle =
        json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": response });
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}
