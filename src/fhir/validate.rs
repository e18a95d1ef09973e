//! Checking FHIR input the way the gateway would take it: a single resource, a contract
//! Bundle, or NDJSON of either. Each is parsed by the typed R4 model, mapped to the
//! contract, and (for a whole contract) checked against the contract's rules.

use serde_json::Value;

use super::outcome::{Issue, invariant_issues};
use super::{ContractResources, MappingError, Profile, from_fhir};

/// Every problem found in one JSON document (a resource or a Bundle).
pub fn validate_document(doc: &Value, profile: &Profile) -> Vec<Issue> {
    use super::{appointment, care_plan, care_team, goal};
    let kind = fhir_wire::resource_type(doc);
    // Typed R4 model first; then the mapping, which reads what the contract needs.
    let checked = |typed: Result<(), fhir_wire::WireError>,
                   mapped: &dyn Fn() -> Result<(), MappingError>| {
        let found = match typed {
            Err(e) => Err(MappingError::new(
                format!("{}.{}", kind.unwrap_or_default(), e.path()),
                e,
            )),
            Ok(()) => mapped(),
        };
        found
            .err()
            .map(|e| vec![Issue::from(&e)])
            .unwrap_or_default()
    };
    match kind {
        Some("Bundle") => {
            match ContractResources::from_bundle(doc).and_then(|r| from_fhir(&r, profile)) {
                Err(e) => vec![Issue::from(&e)],
                Ok(contract) => contract
                    .validate()
                    .err()
                    .map(|v| invariant_issues(&v))
                    .unwrap_or_default(),
            }
        }
        Some("CarePlan") => checked(fhir_wire::parse_care_plan(doc).map(drop), &|| {
            care_plan::from_care_plan(doc, profile).map(drop)
        }),
        Some("CareTeam") => checked(fhir_wire::parse_care_team(doc).map(drop), &|| {
            care_team::from_care_team(doc, profile).map(drop)
        }),
        Some("Appointment") => checked(fhir_wire::parse_appointment(doc).map(drop), &|| {
            appointment::from_appointment(doc, "Appointment", profile).map(drop)
        }),
        Some("Goal") => checked(fhir_wire::parse_goal(doc).map(drop), &|| {
            goal::from_goal(doc, "Goal").map(drop)
        }),
        Some("Provenance") => checked(fhir_wire::parse_provenance(doc).map(drop), &|| {
            super::from_provenance(doc).map(drop)
        }),
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
