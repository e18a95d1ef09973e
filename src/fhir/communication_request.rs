//! The person's requests to be contacted as `CommunicationRequest`s: the person asks
//! (`requester`, `subject`) the contract's care team, whose fast vårdkontakt answers
//! (`recipient` `CareTeam/{contract}`), with their message (`payload.contentString`),
//! why (`reasonCode`: kontakt, ny-tid, andra-overenskommelsen) and what about (`about`:
//! the CarePlan, and an agreed time's Appointment when it is about one).
//!
//! `CommunicationRequest` rather than `Communication`: the person asks care to do
//! something (get in touch) that is then done or not, which is a request with a status
//! (`active` → `completed` or `revoked`); a `Communication` records a message already
//! delivered and has no such life.

use serde_json::Value;

use super::Profile;
use super::actor::{patient_from, patient_reference};
use super::care_plan::array;
use super::json::{Json, MappingError, object, parse_at, str_of};
use crate::domain::{ContactReason, ContactRequest, ContractId, Patient, RequestStatus};

/// The CommunicationRequest's resource id: the contract's id and the request's number.
pub fn communication_request_id(contract: &ContractId, number: u32) -> String {
    format!("{contract}-kontakt-{number}")
}

/// The request's number, from its resource id.
pub fn number_of(id: &str) -> Option<u32> {
    let (_, n) = id.rsplit_once("-kontakt-")?;
    // Only the canonical form (no leading zeros), so one request has one id.
    n.parse::<u32>()
        .ok()
        .filter(|number| *number > 0 && number.to_string() == n)
}

pub fn to_communication_request<'a>(
    contract: &'a ContractId,
    patient: &'a Patient,
    request: &'a ContactRequest,
    appointment: Option<String>,
    profile: &'a Profile,
) -> Json<'a> {
    let mut about = vec![object! { "reference": format!("CarePlan/{contract}") }];
    about.extend(appointment.map(|a| object! { "reference": format!("Appointment/{a}") }));
    let mut resource = object! {
        "resourceType": "CommunicationRequest",
        "id": communication_request_id(contract, request.number),
        "status": match request.status {
            RequestStatus::Open => "active",
            RequestStatus::Done => "completed",
            RequestStatus::Withdrawn => "revoked",
        },
        "subject": patient_reference(patient, profile),
        "about": about,
        "payload": vec![object! { "contentString": request.message.as_str() }],
        "authoredOn": request.asked_at.to_string(),
        "requester": patient_reference(patient, profile),
        "recipient": vec![object! { "reference": format!("CareTeam/{contract}") }],
    };
    resource.put(
        "reasonCode",
        vec![object! {
            "coding": vec![object! {
                "system": profile.extensions.contact_reason.as_str(),
                "code": request.reason.code(),
                "display": request.reason.swedish(),
            }],
        }],
    );
    resource
}

/// A request from its CommunicationRequest. `appointments` are the contract's
/// Appointments beside the ids of the times they are, so `about` can name one; `team`
/// is the contract's CareTeam id.
pub fn from_communication_request(
    r: &Value,
    path: &str,
    appointments: &[(&str, &str)],
    team: Option<&str>,
    profile: &Profile,
) -> Result<(Patient, ContactRequest), MappingError> {
    let at = |element: &str| format!("{path}.{element}");
    let number = str_of(r, "id").and_then(number_of).ok_or_else(|| {
        MappingError::new(
            at("id"),
            "a contact request's id is {contract}-kontakt-{number}",
        )
    })?;
    let status = match str_of(r, "status") {
        Some("active") => RequestStatus::Open,
        Some("completed") => RequestStatus::Done,
        Some("revoked") => RequestStatus::Withdrawn,
        other => {
            return Err(MappingError::new(
                at("status"),
                format!(
                    "'{}' is not kept: a contact request is active (open), completed (done) or \
                     revoked (withdrawn)",
                    other.unwrap_or("(none)")
                ),
            ));
        }
    };
    let subject = r
        .get("subject")
        .ok_or_else(|| MappingError::new(at("subject"), "is missing"))?;
    let patient = patient_from(subject, &at("subject"), profile)?;
    if let Some(requester) = r.get("requester") {
        let asker = patient_from(requester, &at("requester"), profile)?;
        if asker.id != patient.id {
            return Err(MappingError::new(
                at("requester"),
                "the person who asks is the contract's person (subject)",
            ));
        }
    }
    let team_reference = team.map(|t| format!("CareTeam/{t}"));
    for (i, recipient) in array(r, "recipient").iter().enumerate() {
        if str_of(recipient, "reference") != team_reference.as_deref() {
            return Err(MappingError::new(
                at(&format!("recipient[{i}]")),
                "a contact request goes to the contract's care team (CareTeam/{contract}), \
                 whose fast vårdkontakt answers it",
            ));
        }
    }
    let reasons = array(r, "reasonCode");
    let reason = match reasons {
        [one] => array(one, "coding")
            .iter()
            .filter(|c| str_of(c, "system") == Some(&profile.extensions.contact_reason))
            .find_map(|c| str_of(c, "code").and_then(ContactReason::from_code)),
        _ => None,
    }
    .ok_or_else(|| {
        MappingError::new(
            at("reasonCode"),
            format!(
                "one reason, coded in {}: kontakt, ny-tid or andra-overenskommelsen",
                profile.extensions.contact_reason
            ),
        )
    })?;
    let message = match array(r, "payload") {
        [one] => str_of(one, "contentString"),
        _ => None,
    }
    .ok_or_else(|| {
        MappingError::new(
            at("payload"),
            "one payload with the person's message (contentString)",
        )
    })?;
    let asked_at = parse_at(
        r,
        "authoredOn",
        &at("authoredOn"),
        str::parse::<jiff::Timestamp>,
    )?;
    let mut about_time = None;
    for (i, about) in array(r, "about").iter().enumerate() {
        let reference = str_of(about, "reference").unwrap_or_default();
        if reference.starts_with("CarePlan/") {
            continue;
        }
        let time = reference
            .strip_prefix("Appointment/")
            .and_then(|a| appointments.iter().find(|(id, _)| *id == a))
            .filter(|_| about_time.is_none());
        match time {
            Some((_, time)) => about_time = Some((*time).to_owned()),
            None => {
                return Err(MappingError::new(
                    at(&format!("about[{i}]")),
                    "a contact request is about the contract (CarePlan/{id}) and at most one \
                     of its agreed times (Appointment/{id})",
                ));
            }
        }
    }
    Ok((
        patient,
        ContactRequest {
            number,
            reason,
            message: message.to_owned(),
            asked_at,
            about_time,
            status,
        },
    ))
}
