//! Agreed times as `Appointment`s: booked when both the person and care have accepted,
//! with the person's and care's participation status telling who has. The contract's
//! CarePlan is in `supportingInformation` (R4's `basedOn` may only name a
//! ServiceRequest); an older client's `basedOn` naming the CarePlan is taken as the same
//! link.

use serde_json::Value;

use super::Profile;
use super::actor::{patient_from, patient_reference};
use super::care_plan::array;
use super::json::{
    Json, MappingError, concept, has_coding, identifier, object, parse_at, str_of, text_at,
};
use crate::domain::{AgreedTime, AgreedTimeStatus, ContractId, MeetingMode, Patient};

/// The Appointment's resource id: the contract's id and a stable hash of the time's id.
pub fn appointment_id(contract: &ContractId, time_id: &str) -> String {
    // FNV-1a: stable across runs and platforms, and short enough for FHIR's 64 characters.
    let hash = time_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{contract}-{hash:016x}")
}

pub fn to_appointment<'a>(
    contract: &'a ContractId,
    patient: &'a Patient,
    t: &'a AgreedTime,
    profile: &'a Profile,
) -> Json<'a> {
    let accepted = |yes: bool| if yes { "accepted" } else { "needs-action" };
    let mut care = object! { "required": "required", "status": accepted(t.accepted_by_care) };
    match &t.with {
        Some(with) => care.put(
            "actor",
            object! { "type": "PractitionerRole", "display": with.as_str() },
        ),
        None => care.put("type", vec![object! { "text": "Vården" }]),
    }
    let mut participants = vec![
        object! {
            "actor": patient_reference(patient, profile),
            "required": "required",
            "status": if t.declined_by_patient { "declined" } else { accepted(t.accepted_by_patient) },
        },
        care,
    ];
    if let Some(location) = &t.location {
        participants.push(
            object! { "actor": object! { "type": "Location", "display": location.as_str() }, "status": "accepted" },
        );
    }
    object! {
        "resourceType": "Appointment",
        "id": appointment_id(contract, &t.id),
        "identifier": vec![identifier(&profile.identifiers.agreed_time, t.id.as_str())],
        "status": match t.status {
            AgreedTimeStatus::Proposed => "proposed",
            AgreedTimeStatus::Agreed => "booked",
            AgreedTimeStatus::Cancelled => "cancelled",
            AgreedTimeStatus::Fulfilled => "fulfilled",
        },
        "appointmentType": concept(mode_code(t.mode, profile)),
        "description": t.what.as_str(),
        "start": t.start.to_string(),
        "end": t.end.to_string(),
        "supportingInformation": vec![object! { "reference": format!("CarePlan/{contract}") }],
        "participant": participants,
    }
}

fn mode_code(mode: MeetingMode, profile: &Profile) -> &super::Code {
    let m = &profile.meeting_modes;
    match mode {
        MeetingMode::InPerson => &m.in_person,
        MeetingMode::Phone => &m.phone,
        MeetingMode::Video => &m.video,
        MeetingMode::HomeVisit => &m.home_visit,
    }
}

pub fn from_appointment(
    a: &Value,
    path: &str,
    profile: &Profile,
) -> Result<AgreedTime, MappingError> {
    let status = match str_of(a, "status") {
        Some("proposed" | "pending") => AgreedTimeStatus::Proposed,
        Some("booked" | "arrived" | "checked-in") => AgreedTimeStatus::Agreed,
        Some("cancelled" | "noshow" | "entered-in-error") => AgreedTimeStatus::Cancelled,
        Some("fulfilled") => AgreedTimeStatus::Fulfilled,
        other => {
            return Err(MappingError::new(
                format!("{path}.status"),
                format!("unsupported status {}", other.unwrap_or("(none)")),
            ));
        }
    };
    let m = &profile.meeting_modes;
    let kind = a.get("appointmentType");
    let mode = [
        (MeetingMode::InPerson, &m.in_person),
        (MeetingMode::Phone, &m.phone),
        (MeetingMode::Video, &m.video),
        (MeetingMode::HomeVisit, &m.home_visit),
    ]
    .into_iter()
    .find(|(_, c)| has_coding(kind, c))
    .map_or(MeetingMode::InPerson, |(mode, _)| mode);
    let id = array(a, "identifier")
        .iter()
        .find(|i| str_of(i, "system") == Some(&profile.identifiers.agreed_time))
        .and_then(|i| str_of(i, "value"))
        .or_else(|| str_of(a, "id"))
        .ok_or_else(|| {
            MappingError::new(format!("{path}.identifier"), "the agreed time has no id")
        })?;
    let (mut by_patient, mut by_care, mut with, mut location) = (false, false, None, None);
    let mut declined = false;
    for (i, p) in array(a, "participant").iter().enumerate() {
        let accepted = str_of(p, "status") == Some("accepted");
        let actor = p.get("actor");
        match actor.and_then(|r| str_of(r, "type")) {
            Some("Patient") => {
                patient_from(
                    actor.unwrap_or(&Value::Null),
                    &format!("{path}.participant[{i}].actor"),
                    profile,
                )?;
                by_patient = accepted;
                declined = str_of(p, "status") == Some("declined");
            }
            Some("Location") => {
                location = actor.and_then(|r| str_of(r, "display")).map(str::to_owned)
            }
            _ => {
                by_care = accepted;
                with = actor.and_then(|r| str_of(r, "display")).map(str::to_owned);
            }
        }
    }
    Ok(AgreedTime {
        id: id.to_owned(),
        start: parse_at(
            a,
            "start",
            &format!("{path}.start"),
            str::parse::<jiff::Timestamp>,
        )?,
        end: parse_at(
            a,
            "end",
            &format!("{path}.end"),
            str::parse::<jiff::Timestamp>,
        )?,
        what: text_at(a, "description", &format!("{path}.description"))?,
        with,
        mode,
        location,
        status,
        accepted_by_patient: by_patient,
        accepted_by_care: by_care,
        declined_by_patient: declined,
    })
}
