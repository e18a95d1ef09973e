//! The person's answer to an agreed time, from a portal: `POST /fhir/AppointmentResponse`
//! with the person's own token. *"Jag har möjlighet att påverka mina bokade tider i
//! samråd med vården"* (seed 000).
//!
//! | element | |
//! |---|---|
//! | `appointment` | `Appointment/{id}`: a time of one of the person's contracts |
//! | `participantStatus` | `accepted` or `declined` |
//! | `actor`, optional | the person (`Patient/{id}`, or by identifier) |
//! | `start`, `end`, optional, with `declined` | the time the person proposes instead |
//!
//! Accepting a time care has accepted makes it agreed (`booked`); declining one makes it
//! proposed again, with the person's participation `declined`, and a time proposed
//! instead is added as proposed, accepted by the person and not yet by care (a second
//! proposal for the same time replaces the first). The change goes through the write
//! path like any other — the person's parts only, recorded with the person as author,
//! synced to the unit's EHR. Refused with 422 naming why: a contract not in force, a time
//! cancelled, fulfilled or already begun, a proposal that is not in the future or ends
//! before it starts; any other element (`comment`, say) is refused by name rather than
//! dropped. Another person's time is 404, as one that does not exist.
//!
//! The answer is not a resource of its own: it lives in the Appointment, and `GET
//! /fhir/AppointmentResponse/{appointment id}-svar` shows it as an AppointmentResponse
//! (404 until the person has answered).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::{ETAG, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::Kind;
use super::read::record_for;
use super::respond::{Format, base_url, fhir_json};
use super::write::body_of;
use crate::api::AppState;
use crate::domain::{AgreedTime, AgreedTimeStatus, Contract, PersonId, Status, Version};
use crate::fhir::{Profile, appointment_id, patient_reference};
use crate::store::Record;
use crate::write::{Caller, WriteError};

const TYPE: &str = "AppointmentResponse";
/// The elements the gateway keeps of an AppointmentResponse; any other is refused.
const KEPT: &[&str] = &[
    "resourceType",
    "appointment",
    "actor",
    "participantStatus",
    "start",
    "end",
];
/// How the answer's id follows from its Appointment's.
const SUFFIX: &str = "-svar";

fn invalid(element: &str, message: impl Into<String>) -> FhirError {
    FhirError::invalid_at("business-rule", format!("{TYPE}.{element}"), message)
}

/// What the person answered.
struct Answer {
    appointment: String,
    accepted: bool,
    actor: Option<Value>,
    proposal: Option<(Timestamp, Timestamp)>,
}

impl Answer {
    fn read(resource: &Value) -> Result<Answer, FhirError> {
        if let Some(other) = resource
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .find(|k| !KEPT.contains(k))
        {
            return Err(invalid(
                other,
                format!(
                    "not kept: the gateway records the person's answer (participantStatus) and \
                     a time they propose (start, end); send {other} another way"
                ),
            ));
        }
        let appointment = resource["appointment"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Appointment/"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .ok_or_else(|| {
                invalid(
                    "appointment",
                    "must reference an Appointment (Appointment/{id})",
                )
            })?
            .to_owned();
        let accepted = match resource["participantStatus"].as_str() {
            Some("accepted") => true,
            Some("declined") => false,
            Some(other) => {
                return Err(invalid(
                    "participantStatus",
                    format!("{other}: the person accepts or declines a time (accepted, declined)"),
                ));
            }
            None => {
                return Err(invalid(
                    "participantStatus",
                    "is required (accepted or declined)",
                ));
            }
        };
        let at = |element: &str| {
            resource[element]
                .as_str()
                .map(|v| {
                    v.parse::<Timestamp>()
                        .map_err(|_| invalid(element, "must be an instant with a time zone"))
                })
                .transpose()
        };
        let proposal = match (at("start")?, at("end")?) {
            (None, None) => None,
            (Some(start), Some(end)) if end > start => Some((start, end)),
            (Some(_), Some(_)) => return Err(invalid("end", "must be after start")),
            (None, Some(_)) => return Err(invalid("start", "a proposed time needs start and end")),
            (Some(_), None) => return Err(invalid("end", "a proposed time needs start and end")),
        };
        if accepted && proposal.is_some() {
            return Err(invalid(
                "start",
                "a time the person proposes instead goes with participantStatus declined",
            ));
        }
        Ok(Answer {
            appointment,
            accepted,
            actor: resource.get("actor").cloned(),
            proposal,
        })
    }

    /// The contract with this answer to its time at `index`.
    fn apply(
        &self,
        mut contract: Contract,
        index: usize,
        now: Timestamp,
    ) -> Result<Contract, FhirError> {
        if contract.status != Status::Active {
            return Err(invalid(
                "appointment",
                format!(
                    "the contract is not in force (status {}): there is no time to answer",
                    contract.status.as_str()
                ),
            ));
        }
        let time = &mut contract.agreed_times[index];
        if !matches!(
            time.status,
            AgreedTimeStatus::Proposed | AgreedTimeStatus::Agreed
        ) {
            return Err(invalid("appointment", "the time is cancelled or fulfilled"));
        }
        if time.start <= now {
            return Err(invalid("appointment", "the time has already begun"));
        }
        time.accepted_by_patient = self.accepted;
        time.declined_by_patient = !self.accepted;
        time.status = if self.accepted && time.accepted_by_care {
            AgreedTimeStatus::Agreed
        } else {
            AgreedTimeStatus::Proposed
        };
        let Some((start, end)) = self.proposal else {
            return Ok(contract);
        };
        if start <= now {
            return Err(invalid("start", "a proposed time must be in the future"));
        }
        let declined = contract.agreed_times[index].clone();
        let proposal = AgreedTime {
            id: proposal_id(&declined.id),
            start,
            end,
            status: AgreedTimeStatus::Proposed,
            accepted_by_patient: true,
            accepted_by_care: false,
            declined_by_patient: false,
            ..declined
        };
        match contract
            .agreed_times
            .iter_mut()
            .find(|t| t.id == proposal.id)
        {
            Some(earlier) if earlier.is_persons_proposal() => *earlier = proposal,
            Some(_) => {
                return Err(invalid(
                    "start",
                    "care has already answered the person's earlier proposal for this time",
                ));
            }
            None => contract.agreed_times.push(proposal),
        }
        Ok(contract)
    }
}

/// Whether `actor` names the person `own`: `Patient/{id}`, or a Patient by identifier.
fn names(actor: &Value, own: &PersonId) -> bool {
    let own = own.to_string();
    match (
        actor["reference"].as_str(),
        actor["identifier"]["value"].as_str(),
    ) {
        (Some(reference), _) => reference == format!("Patient/{own}"),
        (None, Some(value)) => value == own,
        (None, None) => false,
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let resource = body_of(&headers, body, TYPE)?;
    let Some(own) = caller.principal.compartment().cloned() else {
        return Err(FhirError::Forbidden(
            "an AppointmentResponse is the person's own answer, given with their own token; \
             care answers in the Appointment (its participant status)"
                .into(),
        ));
    };
    let answer = Answer::read(&resource)?;
    if answer.actor.as_ref().is_some_and(|a| !names(a, &own)) {
        return Err(invalid("actor", "must be the person whose token answers"));
    }
    // A concurrent change to the contract makes the answer start again from what it is.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (record, index) = time_of(&state, &answer.appointment).await?;
        let changed = answer.apply(record.revision.contract.clone(), index, Timestamp::now())?;
        let saved = state
            .writer()
            .save(&caller, &record.id, Some(record.revision.version), changed)
            .await;
        match saved {
            // The time keeps its place: an answer changes it and may add a proposal after.
            Ok((record, _)) => {
                let body = as_response(&record, index, &answer.appointment, &state.profile)
                    .ok_or_else(|| FhirError::NotFound(format!("{TYPE} is not known")))?;
                return Ok(answered(
                    StatusCode::CREATED,
                    version_of(&record, &answer.appointment),
                    &answer.appointment,
                    body,
                    &headers,
                    format,
                ));
            }
            Err(WriteError::Stale { .. }) if attempts < 3 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    current(&state, &id, None, &headers).await
}

/// `vread`: the answer as it is, when `version` is the one it is at (earlier answers
/// are in the Appointment's history).
pub async fn vread(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    current(&state, &id, Some(version), &headers).await
}

async fn current(
    state: &AppState,
    id: &str,
    version: Option<String>,
    headers: &HeaderMap,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(headers, &[])?;
    let not_known = || FhirError::NotFound(format!("{TYPE}/{id} is not known"));
    let appointment = id.strip_suffix(SUFFIX).ok_or_else(not_known)?;
    let (record, index) = time_of(state, appointment).await.map_err(|e| match e {
        FhirError::NotFound(_) => not_known(),
        other => other,
    })?;
    let body = as_response(&record, index, appointment, &state.profile).ok_or_else(not_known)?;
    let at = version_of(&record, appointment);
    if let Some(v) = version.filter(|v| *v != at.to_string()) {
        return Err(FhirError::NotFound(format!(
            "{TYPE}/{id} has no version {v} here: it is at version {at}; earlier answers are \
             in Appointment/{appointment}/_history"
        )));
    }
    Ok(answered(
        StatusCode::OK,
        at,
        appointment,
        body,
        headers,
        format,
    ))
}

/// The contract version holding the Appointment `id` (404 when it is another person's or
/// none), and the time's place in it.
async fn time_of(state: &AppState, id: &str) -> Result<(Record, usize), FhirError> {
    let record = record_for(&state.store, Kind::Appointment, id, None).await?;
    let index = record
        .revision
        .contract
        .agreed_times
        .iter()
        .position(|t| appointment_id(&record.id, &t.id) == id)
        .ok_or_else(|| FhirError::NotFound(format!("Appointment/{id} is not known")))?;
    Ok((record, index))
}

/// The id of the time the person proposes instead of the one with `time_id`.
fn proposal_id(time_id: &str) -> String {
    format!("{time_id}-forslag")
}

/// The version the Appointment `appointment` is at in `record`: the answer changes with
/// it, so it has the Appointment's versions.
fn version_of(record: &Record, appointment: &str) -> Version {
    record
        .revision
        .version_of(&format!("Appointment/{appointment}"))
        .version
}

/// The person's answer to the time at `index` in `record` (the Appointment
/// `appointment`), as an AppointmentResponse; `None` before they answered.
fn as_response(
    record: &Record,
    index: usize,
    appointment: &str,
    profile: &Profile,
) -> Option<Value> {
    let contract = &record.revision.contract;
    let time = contract.agreed_times.get(index)?;
    let status = match (time.accepted_by_patient, time.declined_by_patient) {
        (true, _) => "accepted",
        (false, true) => "declined",
        (false, false) => return None,
    };
    let mut body = json!({
        "resourceType": TYPE,
        "id": format!("{appointment}{SUFFIX}"),
        "appointment": { "reference": format!("Appointment/{appointment}") },
        "actor": patient_reference(&contract.patient, profile),
        "participantStatus": status,
    });
    let proposal = proposal_id(&time.id);
    if let Some(p) = contract
        .agreed_times
        .iter()
        .find(|t| t.id == proposal && t.is_persons_proposal())
    {
        body["start"] = json!(p.start.to_string());
        body["end"] = json!(p.end.to_string());
    }
    Some(body)
}

fn answered(
    status: StatusCode,
    version: Version,
    appointment: &str,
    body: Value,
    headers: &HeaderMap,
    format: Format,
) -> Response {
    let mut response = fhir_json(status, &body, format.pretty);
    let location = format!(
        "{}/{TYPE}/{appointment}{SUFFIX}/_history/{version}",
        base_url(headers)
    );
    if status == StatusCode::CREATED
        && let Ok(location) = location.parse()
    {
        response.headers_mut().insert(LOCATION, location);
    }
    if let Ok(etag) = format!("W/\"{version}\"").parse() {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}
