//! `GET /fhir/CarePlan/$coordinated-plan?patient=…` (or `POST` with a `Parameters` body
//! naming the `patient`): the portal's call. One Bundle with
//! the person's contracts in force (active or on hold) as CarePlans — next step first
//! among the activities, linked plans in `supportingInfo` — their CareTeams, Goals and the
//! agreed Appointments still ahead. A person with no contract gets 404.
//!
//! The portal's most frequent call is answered from the read cache: the person's
//! contracts are looked up by head only (id, version, status), and each version's
//! resources, serialized once, are written into the Bundle as they are.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::error::FhirError;
use super::read_cache::CachedResource;
use super::respond::{Format, base_url, fhir_bytes};
use super::search::{person, versions_of};
use crate::api::{AppState, AuditInfo};
use crate::domain::Status;
use crate::fhir::write_str_contents;

pub async fn coordinated_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    answer(&state, &headers, &params).await
}

/// The operation invoked by `POST`, its parameters in a `Parameters` resource: `patient`
/// as `valueString` (`system|number` or the number), `valueIdentifier` or
/// `valueReference` (by `reference` or `identifier`).
pub async fn coordinated_plan_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(mut params): Query<Vec<(String, String)>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, FhirError> {
    let parameters = super::write::parameters_body(&headers, body, "$coordinated-plan")?;
    let identifier = |i: &Value| {
        let value = i["value"].as_str()?;
        Some(match i["system"].as_str() {
            Some(system) => format!("{system}|{value}"),
            None => value.to_owned(),
        })
    };
    for (at, p) in parameters["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = p["name"].as_str().unwrap_or_default();
        if name != "patient" {
            return Err(FhirError::bad_param(
                &format!("Parameters.parameter[{at}].name"),
                format!("{name} is not a parameter of $coordinated-plan (patient is)"),
            ));
        }
        let value = p["valueString"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| identifier(&p["valueIdentifier"]))
            .or_else(|| p["valueReference"]["reference"].as_str().map(str::to_owned))
            .or_else(|| identifier(&p["valueReference"]["identifier"]))
            .ok_or_else(|| {
                FhirError::bad_param(
                    &format!("Parameters.parameter[{at}]"),
                    "give the person as valueString, valueIdentifier or valueReference",
                )
            })?;
        params.push(("patient".into(), value));
    }
    answer(&state, &headers, &params).await
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Response, FhirError> {
    let format = Format::negotiate(headers, params)?;
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
    let none_known = || FhirError::NotFound("no Patientkontrakt is known for this person".into());
    // Another person's plan is not looked up at all: "none known", as for nobody.
    if !crate::auth::sees(&patient) {
        return Err(none_known());
    }
    // One lookup of the person's contracts: whether there are any, and which are in force.
    let heads = state.reads.heads_by_patient(&patient).await?;
    if heads.is_empty() {
        return Err(none_known());
    }
    let in_force = |status: Status, deleted: bool| {
        !deleted && matches!(status, Status::Active | Status::OnHold)
    };
    let contracts = versions_of(state, heads, in_force).await?;
    let now = jiff::Timestamp::now();
    let given = contracts
        .iter()
        .flat_map(|(_, c)| &c.resources)
        .filter(|r| r.kind != "Appointment" || r.booked_start.is_some_and(|start| start >= now));
    let bundle = collection(&base_url(headers), now, given.clone());
    let audit = AuditInfo {
        resources: given.map(|r| r.reference()).collect(),
        patients: vec![patient.to_string()],
    };
    let mut response = fhir_bytes(StatusCode::OK, bundle, format.pretty);
    response.extensions_mut().insert(audit);
    Ok(response)
}

/// A `collection` Bundle of serialized resources, each entry with its `fullUrl`, written
/// around their bytes.
fn collection<'a>(
    base: &str,
    now: jiff::Timestamp,
    resources: impl Iterator<Item = &'a CachedResource>,
) -> Vec<u8> {
    // The base as the inside of a JSON string, escaped once: each entry's fullUrl is that
    // and `/type/id` in quotes.
    let mut base_json = Vec::with_capacity(base.len());
    write_str_contents(&mut base_json, base);
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(br#"{"resourceType":"Bundle","type":"collection","timestamp":""#);
    out.extend_from_slice(now.to_string().as_bytes());
    out.extend_from_slice(br#"","entry":["#);
    for (n, resource) in resources.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"fullUrl":""#);
        out.extend_from_slice(&base_json);
        for part in [&resource.kind, &resource.id] {
            out.push(b'/');
            write_str_contents(&mut out, part);
        }
        out.extend_from_slice(br#"","resource":"#);
        out.extend_from_slice(&resource.bytes);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(kind: &str, id: &str) -> CachedResource {
        CachedResource {
            kind: kind.into(),
            id: id.into(),
            bytes: format!(r#"{{"resourceType":"{kind}"}}"#)
                .into_bytes()
                .into(),
            booked_start: None,
            version: crate::domain::Version::FIRST,
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn each_entry_has_its_full_url_written_as_json() {
        let resources = [
            cached("CarePlan", "k-1.2"),
            cached("Goal", "with \"quote\" and \\"),
        ];
        for base in ["https://pkgw.example/fhir", "http://h/\"odd\"\\path"] {
            let bytes = collection(base, jiff::Timestamp::UNIX_EPOCH, resources.iter());
            let bundle: Value = serde_json::from_slice(&bytes).unwrap();
            let urls: Vec<&str> = bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["fullUrl"].as_str().unwrap())
                .collect();
            assert_eq!(
                urls,
                [
                    format!("{base}/CarePlan/k-1.2"),
                    format!("{base}/Goal/with \"quote\" and \\"),
                ]
            );
            assert_eq!(bundle["entry"][1]["resource"]["resourceType"], "Goal");
        }
    }
}
