//! One entry's change to a contract's resources: exactly the resource it names, nothing
//! beside it.

use serde_json::{Value, json};

use super::{Action, Entry, Outcome, WriteError};
use crate::domain::ContractId;
use crate::fhir::{ContractResources, Kind, Profile, goal_id};

/// The resource an entry acted on, and what it did (before the store is asked).
pub(super) struct Edited {
    pub kind: Kind,
    pub id: String,
    pub outcome: Outcome,
}

impl Edited {
    /// What an entry that was not applied names, with its outcome.
    pub fn of(entry: &Entry, contract: &ContractId, outcome: Outcome) -> Self {
        let kind = entry.action.kind();
        let id = match &entry.action {
            Action::Update { id, .. } | Action::Delete { id, .. } => id.clone(),
            Action::Create { resource, .. } => match (kind, resource["id"].as_str()) {
                (Kind::CarePlan | Kind::CareTeam, _) | (_, None) => contract.to_string(),
                (_, Some(id)) => id.to_owned(),
            },
            Action::Upsert { .. } => contract.to_string(),
        };
        Self { kind, id, outcome }
    }
}

/// Puts the entry's change in place among `resources` (of `contract`; `new` when the
/// contract is made by this write).
pub(super) fn edit(
    entry: &Entry,
    resources: &mut ContractResources,
    contract: &ContractId,
    new: bool,
    profile: &Profile,
) -> Result<Edited, WriteError> {
    let kind = entry.action.kind();
    let done = |id: String, outcome| Ok(Edited { kind, id, outcome });
    let written = if new {
        Outcome::Created
    } else {
        Outcome::Updated
    };
    match &entry.action {
        Action::Update { id, resource, .. } => {
            place(resources, kind, id, resource.clone(), profile)?;
            check(kind, resource)?;
            done(id.clone(), written)
        }
        Action::Create {
            resource,
            if_none_exist,
            ..
        } => {
            let mut resource = resource.clone();
            if kind == Kind::CommunicationRequest {
                return ask(resources, contract, resource);
            }
            check(kind, &resource)?;
            match kind {
                Kind::CarePlan => resources.care_plan = resource,
                Kind::CareTeam if !new => {
                    return Err(WriteError::Conflict(format!(
                        "CarePlan/{contract} has its CareTeam already: change it with PUT CareTeam/{contract}"
                    )));
                }
                Kind::CareTeam => {
                    resource["id"] = json!(contract.as_str());
                    resources.care_team = resource;
                }
                Kind::Goal => {
                    let id = goal_id(contract, resources.goals.len());
                    resource["id"] = json!(id);
                    resources.goals.push(resource);
                    return done(id, Outcome::Created);
                }
                Kind::Appointment => {
                    let id = resource["id"].as_str().unwrap_or_default().to_owned();
                    if resources
                        .appointments
                        .iter()
                        .any(|a| a["id"] == id.as_str())
                    {
                        if if_none_exist.is_some() {
                            return done(id, Outcome::Existing);
                        }
                        return Err(WriteError::Conflict(format!(
                            "Appointment/{id} exists: the agreed time is already in the contract"
                        )));
                    }
                    resources.appointments.push(resource);
                    return done(id, Outcome::Created);
                }
                Kind::CommunicationRequest => {}
                Kind::Provenance => {
                    return Err(WriteError::NotSupported(
                        "Provenance is written by the gateway, not by clients".into(),
                    ));
                }
            }
            done(contract.to_string(), Outcome::Created)
        }
        Action::Upsert { .. } => Err(unresolved()),
        Action::Delete { id, .. } => match kind {
            Kind::Appointment => {
                let before = resources.appointments.len();
                resources.appointments.retain(|a| a["id"] != id.as_str());
                if resources.appointments.len() == before {
                    return Err(WriteError::not_known(&format!("Appointment/{id}")));
                }
                done(id.clone(), Outcome::Deleted)
            }
            _ => Err(WriteError::NotSupported(format!(
                "{} cannot be deleted on its own: it is part of the contract",
                kind.name()
            ))),
        },
    }
}

/// A new request of the person's to be contacted: the next number in the contract, and
/// what the contract knows already — its person as `subject` and `requester`, and now as
/// `authoredOn` — where the sender left them out.
fn ask(
    resources: &mut ContractResources,
    contract: &ContractId,
    mut resource: Value,
) -> Result<Edited, WriteError> {
    let number = resources
        .communication_requests
        .iter()
        .filter_map(|r| r["id"].as_str().and_then(crate::fhir::request_number))
        .max()
        .unwrap_or(0)
        + 1;
    let id = crate::fhir::communication_request_id(contract, number);
    resource["id"] = json!(id);
    let person = resources.care_plan["subject"].clone();
    for element in ["subject", "requester"] {
        if resource.get(element).is_none() && !person.is_null() {
            resource[element] = person.clone();
        }
    }
    if resource.get("authoredOn").is_none() {
        resource["authoredOn"] = json!(jiff::Timestamp::now().to_string());
    }
    check(Kind::CommunicationRequest, &resource)?;
    resources.communication_requests.push(resource);
    Ok(Edited {
        kind: Kind::CommunicationRequest,
        id,
        outcome: Outcome::Created,
    })
}

/// A conditional update the writer did not resolve before planning: a bug.
pub(super) fn unresolved() -> WriteError {
    WriteError::Conflict("a conditional update was not resolved to its contract".into())
}

/// Checks a received resource against the typed R4 model, naming the element that does
/// not fit.
fn check(kind: Kind, resource: &Value) -> Result<(), WriteError> {
    crate::fhir::check_resource(kind.name(), resource)
        .map_err(|e| WriteError::Invalid(vec![(&e).into()]))
}

/// Puts a resource in place of the one with its id.
fn place(
    resources: &mut ContractResources,
    kind: Kind,
    id: &str,
    mut body: Value,
    profile: &Profile,
) -> Result<(), WriteError> {
    let unknown = || WriteError::not_known(&format!("{}/{id}", kind.name()));
    match kind {
        Kind::CarePlan => resources.care_plan = body,
        Kind::CareTeam => resources.care_team = body,
        Kind::Goal => {
            let slot = resources.goals.iter_mut().find(|g| g["id"] == id);
            *slot.ok_or_else(unknown)? = body;
        }
        Kind::Appointment => {
            let slot = resources.appointments.iter_mut().find(|a| a["id"] == id);
            let slot = slot.ok_or_else(unknown)?;
            // The agreed time's identifier is what the id is made from: it stays.
            let system = profile.identifiers.agreed_time.as_str();
            let kept = slot["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["system"] == system)
                .cloned();
            let mut identifiers = identifiers_besides(&body, system);
            identifiers.extend(kept);
            body["identifier"] = Value::Array(identifiers);
            *slot = body;
        }
        Kind::CommunicationRequest => {
            let slot = resources
                .communication_requests
                .iter_mut()
                .find(|r| r["id"] == id);
            *slot.ok_or_else(unknown)? = body;
        }
        Kind::Provenance => {
            return Err(WriteError::NotSupported(
                "Provenance is written by the gateway, not by clients".into(),
            ));
        }
    }
    Ok(())
}

/// A resource's identifiers of other systems than `system`.
pub(super) fn identifiers_besides(resource: &Value, system: &str) -> Vec<Value> {
    resource["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"] != system)
        .cloned()
        .collect()
}
