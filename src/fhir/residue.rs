//! Lossless inbound: what an EHR sends that the contract does not model — elements the
//! mapping never writes (`note`, `period`, `encounter`, …), extensions with URLs the
//! profile does not use, codings beside ours in `category`, activities with codes of
//! their own — is kept as a [`Residue`]
//! and merged back into the resources the next time the contract is written out.
//!
//! Scope: the top level of each resource (CarePlan, CareTeam, and each Goal, Appointment
//! and CommunicationRequest by its id), identifiers of other systems beside the gateway's, and of
//! `meta` the sender's profiles, security labels and tags. Content inside mapped
//! elements (an activity, a participant) is the contract's own and is written from the
//! contract; what a sender puts there that the contract cannot hold is refused by the
//! write path rather than dropped.

use serde_json::{Map, Value};

use super::{ContractResources, Profile};

/// Elements the mapping writes itself, per resource type; everything else at the top
/// level is foreign. The narrative (`text`) is the gateway's own in every resource (the
/// CarePlan's is written from the contract, the others have none): a received one is
/// never kept, so no markup a sender wrote reaches those who read the resource. (`CarePlan.description` is foreign though `Goal.description` is
/// ours: the lists must not be merged.)
#[rustfmt::skip]
fn mapped(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "CarePlan" => &[
            "resourceType", "id", "meta", "text", "identifier", "status", "intent", "title",
            "subject", "careTeam", "author", "contributor", "goal", "supportingInfo",
        ],
        "CareTeam" => &[
            "resourceType", "id", "meta", "text", "identifier", "status", "name", "subject",
            "participant", "managingOrganization", "telecom",
        ],
        "Goal" => &[
            "resourceType", "id", "meta", "text", "lifecycleStatus", "description", "subject",
            "expressedBy",
        ],
        "Appointment" => &[
            "resourceType", "id", "meta", "text", "identifier", "status", "appointmentType",
            "description", "start", "end", "supportingInformation", "basedOn", "participant",
        ],
        "CommunicationRequest" => &[
            "resourceType", "id", "meta", "text", "status", "subject", "about", "payload",
            "authoredOn", "requester", "recipient", "reasonCode",
        ],
        _ => &["resourceType", "id", "meta"],
    }
}

/// The foreign content of one contract's resources, as partial resources.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Residue {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub care_plan: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub care_team: Map<String, Value>,
    /// By resource id.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub others: Map<String, Value>,
}

impl Residue {
    pub fn is_empty(&self) -> bool {
        self.care_plan.is_empty() && self.care_team.is_empty() && self.others.is_empty()
    }

    /// The foreign content of received resources as a store keeps it with the version
    /// (`Revision::foreign_fhir`): `None` when there is none.
    pub fn stored(received: &ContractResources, profile: &Profile) -> Option<serde_json::Value> {
        Self::of(received, profile).to_stored()
    }

    /// This residue as a store keeps it: `None` when empty.
    pub fn to_stored(&self) -> Option<serde_json::Value> {
        if self.is_empty() {
            None
        } else {
            serde_json::to_value(self).ok()
        }
    }

    /// The foreign content of received resources.
    pub fn of(received: &ContractResources, profile: &Profile) -> Residue {
        let mut others = Map::new();
        for r in received
            .goals
            .iter()
            .chain(&received.appointments)
            .chain(&received.communication_requests)
        {
            let kept = foreign(r, profile);
            if let (false, Some(id)) = (kept.is_empty(), r.get("id").and_then(Value::as_str)) {
                others.insert(id.to_owned(), Value::Object(kept));
            }
        }
        Residue {
            care_plan: foreign(&received.care_plan, profile),
            care_team: foreign(&received.care_team, profile),
            others,
        }
    }

    /// Puts the foreign content back into freshly mapped resources.
    pub fn restore(&self, resources: &mut ContractResources) {
        merge(&mut resources.care_plan, &self.care_plan);
        merge(&mut resources.care_team, &self.care_team);
        for r in resources
            .goals
            .iter_mut()
            .chain(resources.appointments.iter_mut())
            .chain(resources.communication_requests.iter_mut())
        {
            let kept = r
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| self.others.get(id))
                .and_then(Value::as_object)
                .cloned();
            if let Some(kept) = kept {
                merge(r, &kept);
            }
        }
    }
}

fn our_urls(profile: &Profile) -> [&str; 10] {
    let e = &profile.extensions;
    [
        &e.agreement_confirmed,
        &e.knowledge_support,
        &e.parts_discussed,
        &e.initiated_by,
        &e.where_to_turn,
        &e.actor_detail,
        &e.primary_contact,
        &e.contact_channel,
        &e.phone_hours,
        &e.linked_plan,
    ]
}

fn foreign(resource: &Value, profile: &Profile) -> Map<String, Value> {
    let mut kept = Map::new();
    let Some(object) = resource.as_object() else {
        return kept;
    };
    let ours = our_urls(profile);
    let mapped = mapped(
        object
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    for (key, value) in object {
        let theirs = match key.as_str() {
            "extension" | "modifierExtension" => items_not(value, |e| {
                e.get("url")
                    .and_then(Value::as_str)
                    .is_some_and(|u| ours.contains(&u))
            }),
            "activity" => items_not(value, |a| super::care_plan::is_ours(a, profile)),
            "category" => items_not(value, |c| {
                super::json::has_coding(Some(c), &profile.category)
            }),
            // Identifiers of other systems (an EHR's own ids) beside the gateway's.
            "identifier" => items_not(value, |i| {
                i.get("system")
                    .and_then(Value::as_str)
                    .is_some_and(|system| ours_identifier(system, profile))
            }),
            "meta" => foreign_meta(value, profile),
            k if mapped.contains(&k) => Value::Null,
            _ => value.clone(),
        };
        if !theirs.is_null() {
            kept.insert(key.clone(), theirs);
        }
    }
    kept
}

/// The identifiers of other systems (an EHR's own) a stored version's CarePlan carries,
/// as `(system, value)`, from its foreign content (`Revision::foreign_fhir`).
pub fn plan_identifiers(foreign: Option<&Value>) -> Vec<(String, String)> {
    foreign
        .and_then(|f| f["care_plan"]["identifier"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some((
                i["system"].as_str()?.to_owned(),
                i["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Whether `system` is one of the identifier systems the mapping writes itself.
pub fn ours_identifier(system: &str, profile: &Profile) -> bool {
    let i = &profile.identifiers;
    [&i.contract, &i.agreed_time, &i.linked_plan]
        .iter()
        .any(|ours| ours.as_str() == system)
}

/// What of `meta` is the sender's own: profiles it claims, security labels, and tags
/// other than the gateway's origin tag. `versionId`, `lastUpdated` and `source` are the
/// gateway's, written anew for each version.
fn foreign_meta(meta: &Value, profile: &Profile) -> Value {
    let mut kept = Map::new();
    for key in ["profile", "security"] {
        if let Some(value) = meta.get(key) {
            kept.insert(key.to_owned(), value.clone());
        }
    }
    let tags = items_not(&meta["tag"], |t| {
        t["system"] == profile.identifiers.origin.as_str()
    });
    if !tags.is_null() {
        kept.insert("tag".to_owned(), tags);
    }
    if kept.is_empty() {
        Value::Null
    } else {
        Value::Object(kept)
    }
}

/// The items of an array that are not `ours`; null when none are left.
fn items_not(array: &Value, ours: impl Fn(&Value) -> bool) -> Value {
    let theirs: Vec<Value> = array
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| !ours(v))
        .cloned()
        .collect();
    if theirs.is_empty() {
        Value::Null
    } else {
        Value::Array(theirs)
    }
}

fn merge(resource: &mut Value, kept: &Map<String, Value>) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    for (key, value) in kept {
        match (object.get_mut(key), value) {
            (Some(Value::Array(ours)), Value::Array(theirs)) => ours.extend(theirs.iter().cloned()),
            (Some(_), _) => {}
            (None, _) => {
                object.insert(key.clone(), value.clone());
            }
        }
    }
}
