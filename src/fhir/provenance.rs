//! One `Provenance` per stored version: which CarePlan and CareTeam versions it produced,
//! when, who made the change, why, and from which system.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::care_plan::array;
use super::json::{MappingError, parse_at, put, str_of};
use crate::domain::{ContractId, Version};

const DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";

/// What a Provenance records about one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionProvenance {
    pub version: Version,
    pub recorded: Timestamp,
    /// The system the change came from (`api`, `import`, an EHR's name, …).
    pub source: String,
    pub author: Option<String>,
    pub reason: Option<String>,
}

pub fn provenance_id(contract: &ContractId, version: Version) -> String {
    format!("{contract}-v{version}")
}

pub fn to_provenance(contract: &ContractId, p: &VersionProvenance) -> Value {
    let target =
        |kind: &str| json!({ "reference": format!("{kind}/{contract}/_history/{}", p.version) });
    let agent = |code: &str, who: &str| json!({ "type": { "coding": [{ "system": PARTICIPANT_TYPE, "code": code }] }, "who": { "display": who } });
    let mut agents = vec![agent("informant", &p.source)];
    if let Some(author) = &p.author {
        agents.insert(0, agent("author", author));
    }
    let operation = if p.version == Version::FIRST {
        "CREATE"
    } else {
        "UPDATE"
    };
    let mut resource = json!({
        "resourceType": "Provenance",
        "id": provenance_id(contract, p.version),
        "target": [target("CarePlan"), target("CareTeam")],
        "recorded": p.recorded.to_string(),
        "activity": { "coding": [{ "system": DATA_OPERATION, "code": operation }] },
        "agent": agents,
    });
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
            .and_then(|a| a.pointer("/who/display"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(VersionProvenance {
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
