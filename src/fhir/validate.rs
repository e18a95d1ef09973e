//! Checking FHIR input the way the gateway would take it: a single resource, a contract
//! Bundle, or NDJSON of either. Each is parsed by the typed R4 model, mapped to the
//! contract, and (for a whole contract) checked against the contract's rules.

use serde_json::Value;

use super::outcome::{Issue, invariant_issues};
use super::{ContractResources, MappingError, Profile, from_fhir};

/// Every problem found in one JSON document (a resource or a Bundle).
pub fn validate_document(doc: &Value, profile: &Profile) -> Vec<Issue> {
    let issue = |e: &MappingError| vec![Issue::from(e)];
    let wire = |kind: &str, e: fhir_wire::WireError| {
        vec![Issue::from(&MappingError::new(
            format!("{kind}.{}", e.path()),
            e,
        ))]
    };
    match fhir_wire::resource_type(doc) {
        Some("Bundle") => {
            match ContractResources::from_bundle(doc).and_then(|r| from_fhir(&r, profile)) {
                Err(e) => issue(&e),
                Ok(contract) => contract
                    .validate()
                    .err()
                    .map(|v| invariant_issues(&v))
                    .unwrap_or_default(),
            }
        }
        Some("CarePlan") => match fhir_wire::parse_care_plan(doc) {
            Err(e) => wire("CarePlan", e),
            Ok(_) => super::care_plan::from_care_plan(doc, profile)
                .err()
                .map(|e| issue(&e))
                .unwrap_or_default(),
        },
        Some("CareTeam") => match fhir_wire::parse_care_team(doc) {
            Err(e) => wire("CareTeam", e),
            Ok(_) => super::care_team::from_care_team(doc, profile)
                .err()
                .map(|e| issue(&e))
                .unwrap_or_default(),
        },
        Some("Appointment") => match fhir_wire::parse_appointment(doc) {
            Err(e) => wire("Appointment", e),
            Ok(_) => super::appointment::from_appointment(doc, "Appointment", profile)
                .err()
                .map(|e| issue(&e))
                .unwrap_or_default(),
        },
        Some("Goal") => match fhir_wire::parse_goal(doc) {
            Err(e) => wire("Goal", e),
            Ok(_) => super::goal::from_goal(doc, "Goal")
                .err()
                .map(|e| issue(&e))
                .unwrap_or_default(),
        },
        Some("Provenance") => match fhir_wire::parse_provenance(doc) {
            Err(e) => wire("Provenance", e),
            Ok(_) => super::from_provenance(doc)
                .err()
                .map(|e| issue(&e))
                .unwrap_or_default(),
        },
        Some(other) => vec![Issue::error(
            "not-supported",
            format!("{other} is not a resource pkgw maps"),
            Some("resourceType".into()),
        )],
        None => vec![Issue::error(
            "structure",
            "not a FHIR resource: resourceType is missing",
            Some("resourceType".into()),
        )],
    }
}

/// Problems in a file's text: one JSON document, or NDJSON (one per line). In NDJSON,
/// each issue's diagnostics start with its line number.
pub fn validate_text(text: &str, profile: &Profile) -> Vec<Issue> {
    match serde_json::from_str::<Value>(text) {
        Ok(doc) => validate_document(&doc, profile),
        Err(whole) => {
            let lines: Vec<(usize, &str)> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .collect();
            if lines.len() < 2 {
                return vec![Issue::error(
                    "structure",
                    format!("not JSON: {whole}"),
                    None,
                )];
            }
            lines
                .into_iter()
                .flat_map(|(n, line)| {
                    let found = match serde_json::from_str::<Value>(line) {
                        Ok(doc) => validate_document(&doc, profile),
                        Err(e) => vec![Issue::error("structure", format!("not JSON: {e}"), None)],
                    };
                    found.into_iter().map(move |mut i| {
                        i.diagnostics = format!("line {}: {}", n + 1, i.diagnostics);
                        i
                    })
                })
                .collect()
        }
    }
}
