//! `POST /fhir/Patient/$merge`: a person known by a reservnummer (or a samordningsnummer)
//! has got their real number, or their number changed: every live contract of the
//! source identity becomes the target's, in one transaction, each as a new version
//! whose Provenance says which identity became which. Shaped as FHIR R5's
//! `Patient/$merge` (the gateway keeps no Patient records of its own, so there is no
//! `result-patient` to take), with the `Parameters` it names:
//!
//! | parameter | |
//! |---|---|
//! | `source-patient` (Reference: `Patient/{id}` or by identifier) or `source-patient-identifier` (Identifier) | the identity that goes |
//! | `target-patient` or `target-patient-identifier` | the real number the contracts move to |
//! | `preview` (boolean), optional | only say what would be done |
//!
//! The answer is a `Parameters` with the `outcome` (one issue per contract moved) and
//! the `result`, the target's Patient. Only a client for all units and persons may
//! merge (403 otherwise); a source without live contracts is 404.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::FhirError;
use super::respond::{Format, fhir_json};
use super::write::parameters_body;
use crate::api::AppState;
use crate::domain::PersonId;
use crate::fhir::Profile;
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::write::Caller;

/// The parameters `$merge` takes.
const TAKES: &[&str] = &[
    "source-patient",
    "source-patient-identifier",
    "target-patient",
    "target-patient-identifier",
    "preview",
];

pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let parameters = parameters_body(&headers, body, "$merge")?;
    let asked = Asked::from_parameters(&parameters, &state.profile)?;
    let merged = state
        .writer()
        .merge_person(&caller, &asked.source, &asked.target, asked.preview)
        .await?;
    let ids = &state.profile.identifiers;
    let target_id = ids.patient_id(&asked.target).unwrap_or_default();
    let issues: Vec<Issue> = merged
        .contracts
        .iter()
        .map(|r| Issue {
            severity: "information",
            code: "informational",
            diagnostics: if merged.preview {
                format!("CarePlan/{} would move to Patient/{target_id}", r.id)
            } else {
                format!(
                    "CarePlan/{} is now about Patient/{target_id} (version {})",
                    r.id, r.revision.version
                )
            },
            expression: None,
        })
        .collect();
    let name = merged
        .contracts
        .iter()
        .find_map(|r| r.revision.contract.patient.name.clone());
    let result = super::patient::patient(&asked.target, name.as_deref(), &state.profile);
    let mut parameter = vec![json!({ "name": "outcome", "resource": operation_outcome(&issues) })];
    if let Some(result) = result {
        parameter.push(json!({ "name": "result", "resource": result }));
    }
    let body = json!({ "resourceType": "Parameters", "parameter": parameter });
    let mut response = fhir_json(StatusCode::OK, &body, format.pretty);
    response.extensions_mut().insert(crate::api::AuditInfo {
        resources: merged
            .contracts
            .iter()
            .map(|r| format!("CarePlan/{}", r.id))
            .collect(),
        patients: vec![asked.source.to_string(), asked.target.to_string()],
    });
    Ok(response)
}

/// What a `$merge` asks for.
struct Asked {
    source: PersonId,
    target: PersonId,
    preview: bool,
}

impl Asked {
    fn from_parameters(parameters: &Value, profile: &Profile) -> Result<Asked, FhirError> {
        let mut source: Option<(PersonId, String)> = None;
        let mut target: Option<(PersonId, String)> = None;
        let mut preview = false;
        let list = parameters["parameter"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, p) in list.iter().enumerate() {
            let name = p["name"].as_str().unwrap_or_default();
            let at = format!("Parameters.parameter[{i}]");
            let person = || match name {
                "source-patient" | "target-patient" => {
                    person_of_reference(&p["valueReference"], &at, profile)
                }
                _ => person_of_identifier(
                    &p["valueIdentifier"],
                    &format!("{at}.valueIdentifier"),
                    profile,
                ),
            };
            let slot = match name {
                "source-patient" | "source-patient-identifier" => &mut source,
                "target-patient" | "target-patient-identifier" => &mut target,
                "preview" => {
                    preview = p["valueBoolean"].as_bool().ok_or_else(|| {
                        FhirError::bad_param(&format!("{at}.valueBoolean"), "preview is a boolean")
                    })?;
                    continue;
                }
                "result-patient" => {
                    return Err(FhirError::Invalid(vec![Issue::error(
                        "not-supported",
                        "result-patient is not taken: the gateway keeps no Patient records of \
                         its own; the target's Patient is made from the contracts",
                        Some(at),
                    )]));
                }
                other => {
                    return Err(FhirError::bad_param(
                        &at,
                        format!(
                            "$merge takes no parameter '{other}'; it takes {}",
                            TAKES.join(", ")
                        ),
                    ));
                }
            };
            let person = person()?;
            match slot {
                Some((known, _)) if *known != person => {
                    return Err(FhirError::bad_param(
                        &at,
                        format!("names another person than an earlier parameter ('{name}')"),
                    ));
                }
                _ => *slot = Some((person, at)),
            }
        }
        let missing = |side: &str| {
            FhirError::bad_param(
                "Parameters.parameter",
                format!("$merge needs the {side}: {side}-patient or {side}-patient-identifier"),
            )
        };
        Ok(Asked {
            source: source.ok_or_else(|| missing("source"))?.0,
            target: target.ok_or_else(|| missing("target"))?.0,
            preview,
        })
    }
}

/// The person a Reference names: `Patient/{id}`, or by its identifier.
fn person_of_reference(
    reference: &Value,
    at: &str,
    profile: &Profile,
) -> Result<PersonId, FhirError> {
    if let Some(text) = reference["reference"].as_str() {
        let field = format!("{at}.valueReference.reference");
        let id = text
            .strip_prefix("Patient/")
            .ok_or_else(|| FhirError::bad_param(&field, "must be Patient/{id}"))?;
        return profile.identifiers.person_of_patient_id(id).ok_or_else(|| {
            FhirError::bad_param(&field, format!("'{id}' is not the id of a Patient here"))
        });
    }
    if reference.get("identifier").is_some() {
        return person_of_identifier(
            &reference["identifier"],
            &format!("{at}.valueReference.identifier"),
            profile,
        );
    }
    Err(FhirError::bad_param(
        &format!("{at}.valueReference"),
        "must name the Patient: a reference (Patient/{id}) or an identifier",
    ))
}

/// The person an Identifier names.
fn person_of_identifier(
    identifier: &Value,
    at: &str,
    profile: &Profile,
) -> Result<PersonId, FhirError> {
    let (Some(system), Some(value)) = (identifier["system"].as_str(), identifier["value"].as_str())
    else {
        return Err(FhirError::bad_param(
            at,
            "must be an Identifier with a system and a value",
        ));
    };
    profile
        .identifiers
        .person(system, value)
        .map_err(|e| FhirError::bad_param(at, e.to_string()))
}
