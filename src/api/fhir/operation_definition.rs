//! `GET /fhir/OperationDefinition/{id}` (and a search by `url`): the definitions of the
//! gateway's own operations — `$coordinated-plan`, `$transfer`, `$confirm`,
//! `Patient/$merge` and `$samsyn` — served at
//! the URLs the CapabilityStatement names, which are under this server's own base, so
//! they resolve. Each parameter is one its handler reads or answers with; the test of
//! the CapabilityStatement invokes each operation as its definition says.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::FhirError;
use super::respond::{Format, base_url, fhir_json, searchset};
use crate::api::AppState;

/// When the definitions last changed.
const DATE: &str = "2026-12-01";

/// The ids of the definitions served, with the operation's code.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("CarePlan-coordinated-plan", "coordinated-plan"),
    ("CarePlan-transfer", "transfer"),
    ("CarePlan-confirm", "confirm"),
    ("Patient-merge", "merge"),
    ("samsyn", "samsyn"),
];

/// The canonical URL of definition `id` on the server at `base`.
pub fn url_of(base: &str, id: &str) -> String {
    format!("{base}/OperationDefinition/{id}")
}

/// One parameter: name, `in` or `out`, min, max, type, what it is.
fn param(name: &str, usage: &str, min: u32, max: &str, kind: &str, doc: &str) -> Value {
    json!({ "name": name, "use": usage, "min": min, "max": max, "type": kind, "documentation": doc })
}

/// A parameter made of parts (R4 then has no type).
fn parts(name: &str, min: u32, doc: &str, parts: Vec<Value>) -> Value {
    json!({ "name": name, "use": "in", "min": min, "max": "1", "documentation": doc, "part": parts })
}

/// The definition `id`, with its URL under `base`.
pub fn definition(base: &str, id: &str) -> Option<Value> {
    let (name, description, code_of, resource, system, instance, parameters) = match id {
        "CarePlan-coordinated-plan" => (
            "CoordinatedPlan",
            "The person's whole coordinated plan in one Bundle: every contract in force, its care team, what matters to the person (Goals), the agreed times ahead and the plans linked to it. `GET` with the patient as a query parameter, or `POST` with Parameters.",
            "coordinated-plan",
            Some("CarePlan"),
            false,
            false,
            vec![
                param(
                    "patient",
                    "in",
                    1,
                    "1",
                    "string",
                    "The person: personnummer or samordningsnummer, `system|number` or the number (also as valueIdentifier or valueReference)",
                ),
                param(
                    "return",
                    "out",
                    1,
                    "1",
                    "Bundle",
                    "A `collection` Bundle of the person's CarePlans, CareTeams, Goals and Appointments",
                ),
            ],
        ),
        "CarePlan-confirm" => (
            "Confirm",
            "The person says \"vi är överens\": they agree to the agreement as it stands (what matters, the commitments, the next step). With the person's own token only; the contract must be active; If-Match confirms exactly the version read. Recorded as the CarePlan's agreement-confirmed extension, with the person as the version's author; a later change to the agreement must leave it out, and the person confirms again.",
            "confirm",
            Some("CarePlan"),
            false,
            true,
            vec![param(
                "return",
                "out",
                1,
                "1",
                "CarePlan",
                "The CarePlan with the person's confirmation",
            )],
        ),
        "CarePlan-transfer" => {
            let contact = |name: &str, doc: &str| {
                parts(
                    name,
                    0,
                    doc,
                    vec![
                        param("name", "in", 1, "1", "string", "The person's name"),
                        param(
                            "title",
                            "in",
                            0,
                            "1",
                            "string",
                            "Their title (sjuksköterska, läkare, …)",
                        ),
                        param("hsaId", "in", 0, "1", "string", "Their HSA-id"),
                        param("phone", "in", 0, "1", "string", "A direct phone number"),
                    ],
                )
            };
            (
                "Transfer",
                "A care transition in one atomic step: the receiving unit becomes responsible, the fast vårdkontakt is handed over without a gap, the sending unit's own commitments move or are closed and its contacts end; other actors' commitments stay. Needs If-Match. A handover ahead is scheduled (202, with the schedule's URL in Content-Location).",
                "transfer",
                Some("CarePlan"),
                false,
                true,
                vec![
                    parts(
                        "unit",
                        1,
                        "The receiving unit",
                        vec![
                            param("hsaId", "in", 1, "1", "string", "Its HSA-id"),
                            param("name", "in", 1, "1", "string", "Its name"),
                            param(
                                "phone",
                                "in",
                                1,
                                "1",
                                "string",
                                "Its phone number (short national numbers such as 1177 too)",
                            ),
                            param(
                                "phoneHours",
                                "in",
                                0,
                                "*",
                                "string",
                                "When it answers, e.g. `mon-fri 08:00-10:00` or `dygnet runt`",
                            ),
                        ],
                    ),
                    contact(
                        "fastVardkontakt",
                        "The new fast vårdkontakt; left out only when the part does not apply",
                    ),
                    contact("fastLakarkontakt", "The new fast läkarkontakt, if any"),
                    param(
                        "handover",
                        "in",
                        1,
                        "1",
                        "instant",
                        "When responsibility passes",
                    ),
                    param(
                        "kind",
                        "in",
                        1,
                        "1",
                        "code",
                        "The kind of transition, e.g. hospital-to-primary-care",
                    ),
                    param("reason", "in", 0, "1", "string", "Why"),
                    param(
                        "moveCommitment",
                        "in",
                        0,
                        "*",
                        "string",
                        "Ids of the sending unit's commitments that move to the receiving unit",
                    ),
                    param(
                        "nextStep",
                        "in",
                        0,
                        "1",
                        "string",
                        "The receiving unit's next step for the person",
                    ),
                    param(
                        "return",
                        "out",
                        1,
                        "1",
                        "Bundle",
                        "A `collection` Bundle with the CarePlan, the CareTeam and the Provenance of the transfer (or, when scheduled, an OperationOutcome)",
                    ),
                ],
            )
        }
        "Patient-merge" => {
            let person = |side: &str, what: &str| {
                [
                    param(
                        &format!("{side}-patient"),
                        "in",
                        0,
                        "1",
                        "Reference",
                        &format!("{what}: `Patient/{{id}}`, or a reference by identifier"),
                    ),
                    param(
                        &format!("{side}-patient-identifier"),
                        "in",
                        0,
                        "1",
                        "Identifier",
                        &format!(
                            "{what}, by identifier (one of the two is needed; both must name the same person)"
                        ),
                    ),
                ]
            };
            let mut parameters: Vec<Value> = person(
                "source",
                "The identity that goes: a reservnummer, samordningsnummer or personnummer",
            )
            .into_iter()
            .chain(person(
                "target",
                "The real number the contracts move to: a personnummer or samordningsnummer",
            ))
            .collect();
            parameters.extend([
                param(
                    "preview",
                    "in",
                    0,
                    "1",
                    "boolean",
                    "Only say what would be done; nothing is stored",
                ),
                param(
                    "outcome",
                    "out",
                    1,
                    "1",
                    "OperationOutcome",
                    "One issue per contract moved (or that would move)",
                ),
                param(
                    "result",
                    "out",
                    0,
                    "1",
                    "Patient",
                    "The target's Patient, as the gateway serves it",
                ),
            ]);
            (
                "Merge",
                "A person known by a reservnummer (or a samordningsnummer) has got their real number, or their number changed: every live contract of the source becomes the target's, in one transaction, each as a new version whose Provenance says which identity became which. As FHIR R5's Patient/$merge, without result-patient (the gateway keeps no Patient records of its own). Only a client for all units and persons may.",
                "merge",
                Some("Patient"),
                false,
                false,
                parameters,
            )
        }
        "samsyn" => (
            "Samsyn",
            "The samsyn report of one unit: its patients' answers to the 7 frågor beside the unit's own, per question, with the largest gap. As Parameters, or as an SVG chart with `_format=svg`.",
            "samsyn",
            None,
            true,
            false,
            vec![
                param("unit", "in", 1, "1", "string", "The unit, by HSA-id"),
                param(
                    "period",
                    "in",
                    0,
                    "1",
                    "string",
                    "A year (`2026`), a month (`2026-11`), a day, or `FROM/TO` of these (both included, either may be empty); all time when left out",
                ),
                param(
                    "return",
                    "out",
                    1,
                    "1",
                    "Parameters",
                    "unit, unitName, period, patients, unitAnswered, and per question its answers, the unit's answer and the gap; largestGap",
                ),
            ],
        ),
        _ => return None,
    };
    let mut definition = json!({
        "resourceType": "OperationDefinition",
        "id": id,
        "url": url_of(base, id),
        "version": env!("CARGO_PKG_VERSION"),
        "name": name,
        "title": format!("${code_of}"),
        "status": "active",
        "kind": "operation",
        "date": DATE,
        "publisher": "pkgw",
        "description": description,
        "affectsState": matches!(code_of, "transfer" | "merge" | "confirm"),
        "code": code_of,
        "system": system,
        "type": resource.is_some() && !instance,
        "instance": instance,
        "parameter": parameters,
    });
    if let Some(resource) = resource {
        definition["resource"] = json!([resource]);
    }
    Some(definition)
}

/// `GET /fhir/OperationDefinition/{id}`.
pub async fn read(
    State(_): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let definition = definition(&base_url(&headers), &id)
        .ok_or_else(|| FhirError::NotFound(format!("OperationDefinition/{id} is not known")))?;
    Ok(fhir_json(StatusCode::OK, &definition, format.pretty))
}

/// `GET /fhir/OperationDefinition[?url=…|_id=…]`: a searchset of the definitions.
pub async fn search(
    State(_): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let base = base_url(&headers);
    let mut found: Vec<Value> = OPERATIONS
        .iter()
        .filter_map(|(id, _)| definition(&base, id))
        .collect();
    for (name, value) in &params {
        match name.as_str() {
            "url" => found.retain(|d| d["url"] == value.as_str()),
            "_id" => found.retain(|d| value.split(',').any(|v| d["id"] == v)),
            "code" => found.retain(|d| d["code"] == value.as_str()),
            "_format" | "_pretty" => {}
            other => {
                return Err(FhirError::bad_param(
                    other,
                    "OperationDefinition is searched by url, _id or code only",
                ));
            }
        }
    }
    let bundle = searchset(&base, found, None);
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}
