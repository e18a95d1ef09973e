//! One `Provenance` per stored version: which resource versions it produced,
//! when, who made the change, why, and from which system.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::care_plan::array;
use super::json::{MappingError, parse_at, put, str_of};
use crate::domain::{ContractId, HsaId, TransferNote, UnitRef, Version};

const DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
/// The activity of a version written by a care transition.
pub const TRANSFER_ACTIVITY: &str = "https://pkgw.example/fhir/CodeSystem/patientkontrakt-handelse";
/// HSA-ids, as organizations are identified in agents.
const HSA: &str = "urn:oid:1.2.752.29.4.19";

/// What a Provenance records about one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionProvenance {
    pub version: Version,
    pub recorded: Timestamp,
    /// The system the change came from (`api`, `import`, an EHR's name, …).
    pub source: String,
    pub author: Option<String>,
    pub reason: Option<String>,
    /// For a care transition: from which unit to which, when, of what kind.
    pub transfer: Option<TransferNote>,
    /// The resources (`{type}/{id}`) the version changed, each then at this version;
    /// the CarePlan when none is named.
    pub targets: Vec<String>,
}

pub fn provenance_id(contract: &ContractId, version: Version) -> String {
    format!("{contract}-v{version}")
}

pub fn to_provenance(contract: &ContractId, p: &VersionProvenance) -> Value {
    let target = |key: &str| json!({ "reference": format!("{key}/_history/{}", p.version) });
    let plan = [format!("CarePlan/{contract}")];
    let targets: Vec<Value> = if p.targets.is_empty() {
        plan.iter().map(|k| target(k)).collect()
    } else {
        p.targets.iter().map(|k| target(k)).collect()
    };
    let agent = |code: &str, who: &str| {
        // The person themselves is named by reference (`Patient/{id}`), anyone else by name.
        let who = if who.starts_with("Patient/") {
            json!({ "reference": who })
        } else {
            json!({ "display": who })
        };
        json!({ "type": { "coding": [{ "system": PARTICIPANT_TYPE, "code": code }] }, "who": who })
    };
    let mut agents = vec![agent("informant", &p.source)];
    if let Some(author) = &p.author {
        agents.insert(0, agent("author", author));
    }
    let operation = if p.version == Version::FIRST {
        "CREATE"
    } else {
        "UPDATE"
    };
    let mut activity = json!({ "coding": [{ "system": DATA_OPERATION, "code": operation }] });
    if let Some(t) = &p.transfer {
        // A care transition: the sending unit hands over, the receiving unit takes over.
        activity = json!({ "coding": [{ "system": TRANSFER_ACTIVITY, "code": "transfer", "display": "Överföring till nästa enhet" }], "text": t.kind });
        let unit = |code: &str, role: &str, u: &UnitRef| {
            json!({
                "type": { "coding": [{ "system": PARTICIPANT_TYPE, "code": code }] },
                "role": [{ "text": role }],
                "who": { "type": "Organization", "identifier": { "system": HSA, "value": u.hsa_id.as_str() }, "display": u.name },
            })
        };
        agents.push(unit("performer", "sending", &t.from));
        agents.push(unit("custodian", "receiving", &t.to));
    }
    let mut resource = json!({
        "resourceType": "Provenance",
        "id": provenance_id(contract, p.version),
        "target": targets,
        "recorded": p.recorded.to_string(),
        "activity": activity,
        "agent": agents,
    });
    if let Some(t) = &p.transfer {
        resource["occurredDateTime"] = json!(t.at.to_string());
    }
    if let Some(reason) = &p.reason {
        put(&mut resource, "reason", json!([{ "text": reason }]));
    }
    resource
}

pub fn from_provenance(v: &Value) -> Result<VersionProvenance, MappingError> {
    let target = array(v, "target")
        .first()
        .and_then(|t| str_of(t, "reference"))
        .ok_or_else(|| MappingError::new("Provenance.target", "is missing"))?;
    let targets = array(v, "target")
        .iter()
        .filter_map(|t| str_of(t, "reference")?.rsplit_once("/_history/"))
        .map(|(key, _)| key.to_owned())
        .collect();
    let version = target
        .rsplit_once("/_history/")
        .and_then(|(_, n)| Version::parse(n).ok())
        .ok_or_else(|| {
            MappingError::new(
                "Provenance.target[0].reference",
                "must name a version (…/_history/n)",
            )
        })?;
    let who = |code: &str| {
        array(v, "agent")
            .iter()
            .find(|a| a.pointer("/type/coding/0/code").and_then(Value::as_str) == Some(code))
            .and_then(|a| {
                let reference = a.pointer("/who/reference").and_then(Value::as_str);
                reference
                    .filter(|r| r.starts_with("Patient/"))
                    .or_else(|| a.pointer("/who/display")?.as_str())
            })
            .map(str::to_owned)
    };
    let unit = |role: &str| -> Option<UnitRef> {
        let agent = array(v, "agent")
            .iter()
            .find(|a| a.pointer("/role/0/text").and_then(Value::as_str) == Some(role))?;
        Some(UnitRef {
            hsa_id: HsaId::parse(agent.pointer("/who/identifier/value")?.as_str()?).ok()?,
            name: agent.pointer("/who/display")?.as_str()?.to_owned(),
        })
    };
    let is_transfer = v
        .pointer("/activity/coding/0/system")
        .and_then(Value::as_str)
        == Some(TRANSFER_ACTIVITY);
    let transfer = if is_transfer {
        let missing = |what: &str| {
            MappingError::new(
                "Provenance.agent",
                format!("a transfer needs the {what} unit"),
            )
        };
        Some(TransferNote {
            from: unit("sending").ok_or_else(|| missing("sending"))?,
            to: unit("receiving").ok_or_else(|| missing("receiving"))?,
            at: parse_at(
                v,
                "occurredDateTime",
                "Provenance.occurredDateTime",
                str::parse::<Timestamp>,
            )?,
            kind: v
                .pointer("/activity/text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    } else {
        None
    };
    Ok(VersionProvenance {
        transfer,
        targets,
        version,
        recorded: parse_at(
            v,
            "recorded",
            "Provenance.recorded",
            str::parse::<Timestamp>,
        )?,
        source: who("informant")
            .ok_or_else(|| MappingError::new("Provenance.agent", "no informant (source system)"))?,
        author: who("author"),
        reason: array(v, "reason")
            .first()
            .and_then(|r| str_of(r, "text"))
            .map(str::to_owned),
    })
}
