//! Domain ⇄ FHIR R4: how a contract becomes CarePlan, CareTeam, Appointment and Goal
//! resources and back, with the codes and URLs of a mapping [`Profile`].
//!
//! | contract | FHIR |
//! |---|---|
//! | status, person, initiated by, parts discussed | `CarePlan` (+ extensions) |
//! | commitments, next step | `CarePlan.activity` (situation code, performer, where to turn) |
//! | linked plans and their coordinators | `CarePlan.supportingInfo` |
//! | what matters | `Goal`, referenced from `CarePlan.goal` |
//! | fast vårdkontakt, fast läkarkontakt, channels | `CareTeam.participant` |
//! | responsible unit, its phone and phone hours | `CareTeam.managingOrganization`, `CareTeam.telecom` |
//! | agreed times | `Appointment` (`booked` when accepted by both) |
//! | the person's requests to be contacted | `CommunicationRequest` (to the CareTeam) |
//! | the person's *"vi är överens"* | `CarePlan` extension (when) |
//! | the essentials, in Swedish | `CarePlan.text` (generated XHTML narrative) |
//! | each version: who, when, why, from where | `Provenance` |
//! | each version that changed what was agreed, for the journal | `DocumentReference` |
//!
//! The mapping is pure (no I/O) and total in one direction: every contract maps, and
//! mapping back gives the same contract. Resources are written as [`Json`] (a tree that
//! borrows from the contract and serializes itself: [`to_json`]; [`to_fhir`] makes
//! `serde_json::Value`s of it) and read as `Value`s; every one is also checked against
//! the typed R4 model in `fhir-wire` (which owns all typed (de)serialisation) when it is
//! read.

mod actor;
mod appointment;
mod care_plan;
mod care_team;
mod communication_request;
mod expression;
mod goal;
pub mod journal_note;
mod json;
mod kind;
pub mod narrative;
pub mod outcome;
pub mod patch;
pub mod profile;
mod provenance;
pub mod questionnaire;
pub mod residue;
pub mod stored;
mod strict;
pub mod template;
pub mod validate;

use serde_json::{Value, json};

pub use actor::patient_reference;
pub use appointment::appointment_id;
pub use communication_request::{communication_request_id, number_of as request_number};
pub use expression::expression_for;
pub use goal::goal_id;
pub use json::{Json, MappingError, write_str_contents};
pub use kind::{Kind, UnknownType};
pub use profile::{Code, FirstPageElement, Profile, ProfileError};
pub use provenance::{VersionProvenance, from_provenance, provenance_id, to_provenance};

use crate::domain::{Contract, ContractId};

/// The FHIR resources one contract maps to.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractResources {
    pub care_plan: Value,
    pub care_team: Value,
    pub goals: Vec<Value>,
    pub appointments: Vec<Value>,
    pub communication_requests: Vec<Value>,
}

/// Maps a contract to its FHIR resources.
pub fn to_fhir(id: &ContractId, contract: &Contract, profile: &Profile) -> ContractResources {
    to_json(id, contract, profile).into_values()
}

/// The FHIR resources one contract maps to, as the mapping writes them: they serialize
/// themselves (see [`json::Json`]) and borrow from the contract and the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractJson<'a> {
    pub care_plan: Json<'a>,
    pub care_team: Json<'a>,
    pub goals: Vec<Json<'a>>,
    pub appointments: Vec<Json<'a>>,
    pub communication_requests: Vec<Json<'a>>,
}

/// Maps a contract to its FHIR resources, to be written out as they are ([`to_fhir`]
/// gives them as `serde_json::Value`s).
pub fn to_json<'a>(
    id: &'a ContractId,
    contract: &'a Contract,
    profile: &'a Profile,
) -> ContractJson<'a> {
    let goal_ids: Vec<String> = (0..contract.agreement.what_matters.len())
        .map(|i| goal::goal_id(id, i))
        .collect();
    ContractJson {
        care_plan: care_plan::to_care_plan(id, contract, &goal_ids, profile),
        care_team: care_team::to_care_team(id, contract, profile),
        goals: goal_ids
            .into_iter()
            .zip(&contract.agreement.what_matters)
            .map(|(gid, what)| goal::to_goal(gid, &contract.patient, what, profile))
            .collect(),
        appointments: contract
            .agreed_times
            .iter()
            .map(|t| appointment::to_appointment(id, &contract.patient, t, profile))
            .collect(),
        communication_requests: contract
            .contact_requests
            .iter()
            .map(|r| {
                let time = r
                    .about_time
                    .as_deref()
                    .map(|t| appointment::appointment_id(id, t));
                communication_request::to_communication_request(
                    id,
                    &contract.patient,
                    r,
                    time,
                    profile,
                )
            })
            .collect(),
    }
}

impl<'a> ContractJson<'a> {
    /// All resources, CarePlan first.
    pub fn into_all(self) -> impl Iterator<Item = Json<'a>> {
        [self.care_plan, self.care_team]
            .into_iter()
            .chain(self.goals)
            .chain(self.appointments)
            .chain(self.communication_requests)
    }

    /// The resources as `serde_json::Value`s.
    pub fn into_values(self) -> ContractResources {
        let values = |items: Vec<Json>| items.into_iter().map(Value::from).collect();
        ContractResources {
            care_plan: self.care_plan.into(),
            care_team: self.care_team.into(),
            goals: values(self.goals),
            appointments: values(self.appointments),
            communication_requests: values(self.communication_requests),
        }
    }

    /// A `collection` Bundle of the resources, each entry with its `fullUrl`.
    pub fn into_bundle(self) -> Json<'a> {
        collection(self.into_all().map(|r| (r.resource_key(), r)))
    }
}

/// A `collection` Bundle of resources, each entry with its `fullUrl`.
fn collection<'a>(entries: impl Iterator<Item = (String, Json<'a>)>) -> Json<'a> {
    let entries: Vec<Json> = entries
        .map(|(url, resource)| json::object! { "fullUrl": url, "resource": resource })
        .collect();
    json::object! { "resourceType": "Bundle", "type": "collection", "entry": entries }
}

/// The resources (`{type}/{id}`) a contract maps to, as [`to_fhir`] names them, without
/// mapping them.
pub fn resource_keys(id: &ContractId, contract: &Contract) -> Vec<String> {
    let goals = (0..contract.agreement.what_matters.len())
        .map(|i| format!("Goal/{}", goal::goal_id(id, i)));
    let times = contract
        .agreed_times
        .iter()
        .map(|t| format!("Appointment/{}", appointment::appointment_id(id, &t.id)));
    let requests = contract.contact_requests.iter().map(|r| {
        format!(
            "CommunicationRequest/{}",
            communication_request::communication_request_id(id, r.number)
        )
    });
    [format!("CarePlan/{id}"), format!("CareTeam/{id}")]
        .into_iter()
        .chain(goals)
        .chain(times)
        .chain(requests)
        .collect()
}

/// Maps FHIR resources back to a contract. Each resource is first checked against the
/// typed R4 model; an error names the FHIR element.
pub fn from_fhir(
    resources: &ContractResources,
    profile: &Profile,
) -> Result<Contract, MappingError> {
    check_typed(resources)?;
    from_fhir_checked(resources, profile)
}

/// [`from_fhir`] without the typed check, for resources already checked: the gateway's
/// own mapping of a stored version (valid R4 by construction; see the golden files and
/// the validator tests) with at most the resources just received placed in it, each
/// checked with [`check_resource`]. Saves an update the check of a dozen resources it
/// did not change.
pub fn from_fhir_checked(
    resources: &ContractResources,
    profile: &Profile,
) -> Result<Contract, MappingError> {
    let mut contract = care_plan::from_care_plan(&resources.care_plan, profile)?;
    let (contacts, unit) = care_team::from_care_team(&resources.care_team, profile)?;
    contract.care_contacts = contacts;
    contract.responsible_unit = unit;
    contract.agreement.what_matters = resources
        .goals
        .iter()
        .enumerate()
        .map(|(i, g)| goal::from_goal(g, &format!("Goal[{i}]")))
        .collect::<Result<_, _>>()?;
    contract.agreed_times = resources
        .appointments
        .iter()
        .enumerate()
        .map(|(i, a)| appointment::from_appointment(a, &format!("Appointment[{i}]"), profile))
        .collect::<Result<_, _>>()?;
    if resources.communication_requests.is_empty() {
        return Ok(contract);
    }
    let appointments: Vec<(&str, &str)> = resources
        .appointments
        .iter()
        .zip(&contract.agreed_times)
        .map(|(a, t)| (a["id"].as_str().unwrap_or_default(), t.id.as_str()))
        .collect();
    let team = resources.care_team["id"]
        .as_str()
        .or(resources.care_plan["id"].as_str());
    for (i, r) in resources.communication_requests.iter().enumerate() {
        let path = format!("CommunicationRequest[{i}]");
        let (person, request) = communication_request::from_communication_request(
            r,
            &path,
            &appointments,
            team,
            profile,
        )?;
        if person.id != contract.patient.id {
            return Err(MappingError::new(
                format!("{path}.subject"),
                "must be the contract's person (CarePlan.subject)",
            ));
        }
        contract.contact_requests.push(request);
    }
    Ok(contract)
}

/// Checks each resource against the typed R4 model (structure, required elements and the
/// codes of required value sets), naming the element that does not fit.
fn check_typed(r: &ContractResources) -> Result<(), MappingError> {
    check_resource("CarePlan", &r.care_plan)?;
    check_resource("CareTeam", &r.care_team)?;
    for g in &r.goals {
        check_resource("Goal", g)?;
    }
    for a in &r.appointments {
        check_resource("Appointment", a)?;
    }
    for c in &r.communication_requests {
        check_resource("CommunicationRequest", c)?;
    }
    Ok(())
}

/// Checks one resource of a contract (`CarePlan`, `CareTeam`, `Goal`, `Appointment` or
/// `CommunicationRequest`)
/// against the typed R4 model, naming the element that does not fit — also an element
/// R4 does not define, an empty one, or `contained` resources (see [`strict`]), which
/// the gateway could not keep.
pub fn check_resource(kind: &str, resource: &Value) -> Result<(), MappingError> {
    let typed = match kind {
        "CarePlan" => {
            fhir_wire::parse_care_plan(resource).and_then(|r| fhir_wire::write_care_plan(&r))
        }
        "CareTeam" => {
            fhir_wire::parse_care_team(resource).and_then(|r| fhir_wire::write_care_team(&r))
        }
        "Goal" => fhir_wire::parse_goal(resource).and_then(|r| fhir_wire::write_goal(&r)),
        "Appointment" => {
            fhir_wire::parse_appointment(resource).and_then(|r| fhir_wire::write_appointment(&r))
        }
        "CommunicationRequest" => fhir_wire::parse_communication_request(resource)
            .and_then(|r| fhir_wire::write_communication_request(&r)),
        other => {
            return Err(MappingError::new(
                other,
                "is not one of a contract's resources (CarePlan, CareTeam, Goal, Appointment, \
                 CommunicationRequest)",
            ));
        }
    };
    let typed = typed.map_err(|e| MappingError::new(format!("{kind}.{}", e.path()), e))?;
    strict::check(kind, resource, &typed)
}

impl ContractResources {
    /// The resources of a new contract known so far only by its CarePlan (an empty
    /// CareTeam, no Goals, no Appointments).
    pub fn with_plan(care_plan: Value) -> Self {
        Self {
            care_plan,
            care_team: json!({ "resourceType": "CareTeam" }),
            goals: Vec::new(),
            appointments: Vec::new(),
            communication_requests: Vec::new(),
        }
    }

    /// All resources, CarePlan first.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        [&self.care_plan, &self.care_team]
            .into_iter()
            .chain(&self.goals)
            .chain(&self.appointments)
            .chain(&self.communication_requests)
    }

    /// A `collection` Bundle of the resources, each entry with its `fullUrl`.
    pub fn to_bundle(&self) -> Value {
        self.clone().into_bundle()
    }

    /// All resources, CarePlan first, moved out.
    pub fn into_all(self) -> impl Iterator<Item = Value> {
        [self.care_plan, self.care_team]
            .into_iter()
            .chain(self.goals)
            .chain(self.appointments)
            .chain(self.communication_requests)
    }

    /// [`Self::to_bundle`], moving the resources into the Bundle.
    pub fn into_bundle(self) -> Value {
        let entries = self
            .into_all()
            .map(|r| (stored::resource_key(&r), Json::Value(r)));
        collection(entries).into()
    }

    /// The resources of a Bundle, sorted by type; other resource types are refused.
    pub fn from_bundle(bundle: &Value) -> Result<ContractResources, MappingError> {
        let mut care_plan = None;
        let mut care_team = None;
        let (mut goals, mut appointments, mut requests) = (Vec::new(), Vec::new(), Vec::new());
        let entries = bundle
            .get("entry")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, entry) in entries.iter().enumerate() {
            let resource = entry.get("resource").cloned().unwrap_or_default();
            match fhir_wire::resource_type(&resource) {
                Some("CarePlan") if care_plan.is_none() => care_plan = Some(resource),
                Some("CareTeam") if care_team.is_none() => care_team = Some(resource),
                Some("Goal") => goals.push(resource),
                Some("Appointment") => appointments.push(resource),
                Some("CommunicationRequest") => requests.push(resource),
                other => {
                    return Err(MappingError::new(
                        format!("Bundle.entry[{i}].resource"),
                        format!(
                            "unexpected {} in a contract bundle",
                            other.unwrap_or("resource without resourceType")
                        ),
                    ));
                }
            }
        }
        Ok(ContractResources {
            care_plan: care_plan.ok_or_else(|| MappingError::new("Bundle.entry", "no CarePlan"))?,
            care_team: care_team.unwrap_or_else(|| json!({ "resourceType": "CareTeam" })),
            goals,
            appointments,
            communication_requests: requests,
        })
    }
}

#[cfg(test)]
mod tests;

/// The system of the `SUBSETTED` tag, which marks a resource returned in part
/// (`_summary`, `_elements`).
pub const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
