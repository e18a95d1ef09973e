//! `GET /fhir/metadata`: the CapabilityStatement, built from the same table the router
//! serves ([`RESOURCES`]), so it cannot claim what the server does not do.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::Kind;
use super::operation_definition::url_of;
use super::respond::{Format, base_url, fhir_json};
use super::search::{INCLUDES, REVINCLUDES};
use crate::api::{AppState, Authentication};

/// When this statement of capabilities was last changed.
const PUBLISHED: &str = "2026-11-23";

/// A search parameter: name, FHIR type, and what it finds.
pub type SearchParam = (&'static str, &'static str, &'static str);

/// Search parameters every served type takes.
pub const COMMON_SEARCH: &[SearchParam] = &[
    ("_id", "token", "The resource id"),
    (
        "_lastUpdated",
        "date",
        "When the version was stored; prefixes eq, ne, gt, ge, lt, le",
    ),
    (
        "patient",
        "reference",
        "The person, by personnummer or samordningsnummer (or a region's reservnummer, by its system): `system|value`, the bare number, `Patient/{id}`, or `Patient?identifier=`-style chaining as `patient.identifier=system|value`",
    ),
];

/// The types served, their interactions and their own search parameters.
#[rustfmt::skip]
pub const RESOURCES: &[(Kind, &[&str], &[SearchParam])] = &[
    (Kind::CarePlan, &["read", "vread", "update", "patch", "create", "delete", "history-instance", "history-type", "search-type"], &[
        ("identifier", "token", "The contract's identifier (the gateway's contract id), or another system's identifier its CarePlan carries (an EHR's own): system|value"),
        ("status", "token", "draft | active | on-hold | completed | revoked"),
        ("category", "token", "The Patientkontrakt category, system|code"),
    ]),
    (Kind::CareTeam, &["read", "vread", "update", "patch", "history-instance", "history-type", "search-type"], &[
        ("status", "token", "proposed | active | suspended | inactive"),
        ("participant", "reference", "A member, by HSA-id (system|value or value) or reference"),
    ]),
    (Kind::Goal, &["read", "vread", "update", "patch", "history-instance", "history-type", "search-type"], &[
        ("lifecycle-status", "token", "proposed | planned | accepted | active | on-hold | completed | cancelled | entered-in-error | rejected"),
    ]),
    (Kind::Appointment, &["read", "vread", "update", "patch", "create", "delete", "history-instance", "history-type", "search-type"], &[
        ("status", "token", "proposed | booked | cancelled | fulfilled"),
        ("date", "date", "The agreed time's start; prefixes eq, ne, gt, ge, lt, le"),
        ("actor", "reference", "A participant, by identifier (system|value or value) or reference"),
    ]),
    (Kind::CommunicationRequest, &["read", "vread", "update", "patch", "create", "history-instance", "history-type", "search-type"], &[
        ("status", "token", "active | completed | revoked"),
    ]),
    (Kind::Provenance, &["read", "search-type"], &[]),
];

/// The entry of [`RESOURCES`] for a kind.
pub fn served(kind: Kind) -> (&'static [&'static str], &'static [SearchParam]) {
    RESOURCES
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or((&[], &[]), |(_, i, s)| (*i, *s))
}

/// The statement of the server at `base` (the FHIR base URL its operations' definitions
/// are under).
pub fn capability_statement(base: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(kind, interactions, params)| {
            let search: Vec<Value> = COMMON_SEARCH
                .iter()
                .chain(params.iter())
                .map(|(name, kind, doc)| json!({ "name": name, "type": kind, "documentation": doc }))
                .collect();
            let mut r = json!({
                "type": kind.name(),
                "interaction": interactions.iter().map(|i| json!({ "code": i })).collect::<Vec<_>>(),
                "versioning": "versioned",
                "readHistory": interactions.contains(&"vread"),
                "searchParam": search,
            });
            if interactions.contains(&"update") {
                r["operation"] = json!([{
                    "name": "validate",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                    "documentation": "`POST [type]/$validate` (create) or `[type]/{id}/$validate` (update; delete with mode): every check of the write, nothing stored; 200 with the issues the write would answer"
                }]);
            }
            if *kind == Kind::CarePlan {
                r["conditionalCreate"] = json!(true);
                r["conditionalUpdate"] = json!(true);
                r["conditionalDelete"] = json!("single");
                let of = |list: &[(Kind, &'static str)]| -> Vec<&'static str> {
                    list.iter().filter(|(k, _)| k == kind).map(|(_, v)| *v).collect()
                };
                r["searchInclude"] = json!(of(INCLUDES));
                r["searchRevInclude"] = json!(of(REVINCLUDES));
                let validate = r["operation"][0].take();
                r["operation"] = json!([validate, {
                    "name": "coordinated-plan",
                    "definition": url_of(base, "CarePlan-coordinated-plan"),
                    "documentation": "The person's whole coordinated plan in one Bundle: `GET /fhir/CarePlan/$coordinated-plan?patient=…`, or `POST` with a Parameters body naming the patient"
                }, {
                    "name": "transfer",
                    "definition": url_of(base, "CarePlan-transfer"),
                    "documentation": "A care transition: `POST /fhir/CarePlan/{id}/$transfer` with Parameters (unit, fastVardkontakt, handover, kind, …) and If-Match"
                }, {
                    "name": "confirm",
                    "definition": url_of(base, "CarePlan-confirm"),
                    "documentation": "The person's \"vi är överens\": `POST /fhir/CarePlan/{id}/$confirm` with the person's own token, no body"
                }]);
            }
            r
        })
        .collect();
    let mut resources = resources;
    resources.push(json!({
        "type": "Questionnaire",
        "interaction": [{ "code": "read" }, { "code": "search-type" }],
        "searchParam": [
            { "name": "_id", "type": "token", "documentation": "sju-fragor-patient or sju-fragor-vardgivare" },
            { "name": "url", "type": "uri", "documentation": "The questionnaire's canonical URL" },
        ],
        "documentation": "The two \"7 frågor\" questionnaires: the patient's and the care provider's",
    }));
    resources.push(json!({
        "type": "QuestionnaireResponse",
        "interaction": [{ "code": "create" }, { "code": "read" }, { "code": "search-type" }],
        "searchParam": [
            { "name": "_id", "type": "token", "documentation": "The resource id" },
            { "name": "patient", "type": "reference", "documentation": "The person who answered: personnummer or samordningsnummer" },
            { "name": "subject", "type": "reference", "documentation": "The person, or (care's answers) the unit by HSA-id" },
            { "name": "unit", "type": "token", "documentation": "The unit the answers are about, by HSA-id" },
            { "name": "based-on", "type": "reference", "documentation": "The CarePlan (Patientkontrakt) the answers are based on" },
            { "name": "questionnaire", "type": "reference", "documentation": "sju-fragor-patient or sju-fragor-vardgivare" },
            { "name": "authored", "type": "date", "documentation": "When the answers were given" },
        ],
        "documentation": "Answers to the \"7 frågor\": every question answered once from the scale; checked against the Questionnaire (422 otherwise); never changed",
    }));
    resources.push(json!({
        "type": "AuditEvent",
        "interaction": [{ "code": "read" }, { "code": "search-type" }],
        "searchParam": [
            { "name": "patient", "type": "reference", "documentation": "The person whose data was accessed" },
            { "name": "date", "type": "date", "documentation": "When" },
        ],
        "documentation": "The audit trail: every read, search and write of personal data (who, what, about whom, when, from where). Needs AuditEvent.rs; read only",
    }));
    resources.push(json!({
        "type": "Subscription",
        "interaction": [{ "code": "create" }, { "code": "read" }, { "code": "delete" }, { "code": "search-type" }],
        "documentation": "rest-hook notifications when a person's CarePlan, CareTeam or Appointment changes: criteria `CarePlan?patient=…`",
    }));
    resources.push(json!({
        "type": "Patient",
        "interaction": [{ "code": "read" }, { "code": "search-type" }],
        "versioning": "no-version",
        "searchParam": [
            { "name": "_id", "type": "token", "documentation": "The personnummer or samordningsnummer, or for a reservnummer the region's key and the number (sll-99123456-0001)" },
            { "name": "identifier", "type": "token", "documentation": "system|number in the personnummer, samordningsnummer or a region's reservnummer system, or the number" },
        ],
        "operation": [{
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            "documentation": "`GET /fhir/Patient/{id}/$everything`: the person's compartment, every resource of their live contracts"
        }, {
            "name": "merge",
            "definition": url_of(base, "Patient-merge"),
            "documentation": "`POST /fhir/Patient/$merge` with Parameters (source-patient-identifier, target-patient-identifier, preview): a reservnummer's contracts moved onto the person's real number"
        }],
        "documentation": "Read only: one Patient per person with a live contract, its id the personnummer or samordningsnummer (for a reservnummer: the region's key and the number). The contracts' resources name their subject by identifier",
    }));
    resources.push(json!({
        "type": "PlanDefinition",
        "interaction": [{ "code": "read" }, { "code": "search-type" }],
        "searchParam": [
            { "name": "_id", "type": "token", "documentation": "The template's id" },
            { "name": "url", "type": "uri", "documentation": "The template's canonical URL" },
            { "name": "title", "type": "string", "documentation": "The start of the title, in any case" },
        ],
        "operation": [{
            "name": "apply",
            "definition": "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply",
            "documentation": "`GET /fhir/PlanDefinition/{id}/$apply?subject=Patient/{id}` (or `POST` with Parameters): the draft CarePlan the template makes for the person — its commitments and kunskapsstöd, what matters and the discussions left for the meeting; nothing is stored until the client creates it"
        }],
        "documentation": "Read only: the templates per diagnosis group (the region's and the units' own) that pre-fill a new contract",
    }));
    resources.push(json!({
        "type": "OperationDefinition",
        "interaction": [{ "code": "read" }, { "code": "search-type" }],
        "searchParam": [
            { "name": "_id", "type": "token", "documentation": "The definition's id" },
            { "name": "url", "type": "uri", "documentation": "The definition's canonical URL" },
            { "name": "code", "type": "token", "documentation": "The operation's name" },
        ],
        "documentation": "The definitions of the gateway's own operations ($coordinated-plan, $transfer, $confirm, Patient/$merge, $samsyn), at the URLs this statement names; open to every caller",
    }));
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": PUBLISHED,
        "publisher": "pkgw",
        "kind": "instance",
        "software": { "name": "pkgw", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Patientkontrakt gateway" },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR" }] }],
                "description": "Bearer JWT with SMART App Launch v2 scopes (system/*.cruds, user/CarePlan.rs, patient/*.rs with a patient claim; v1 forms accepted). A patient token sees only its patient's compartment; a token with a units claim writes only its units' contracts. Every access to personal data is audited (AuditEvent).",
            },
            "resource": resources,
            "interaction": [{ "code": "transaction" }, { "code": "batch" }],
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                "documentation": "Bulk export of CarePlan, CareTeam, Goal and Appointment as NDJSON (`Prefer: respond-async`; `_type`, `_since`)"
            }, {
                "name": "samsyn",
                "definition": url_of(base, "samsyn"),
                "documentation": "The samsyn report of a unit's \"7 frågor\" answers beside its patients': `GET /fhir/$samsyn?unit=HSA-id&period=2026` as Parameters, or as an SVG chart (`_format=svg`)"
            }],
        }],
    })
}

pub async fn metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let mut statement = capability_statement(&base_url(&headers));
    let security = &mut statement["rest"][0]["security"];
    if matches!(*state.authentication, Authentication::Off) {
        *security = json!({
            "description": "Authorization is off (auth.mode = \"off\"): every caller may do everything. Only on a closed network.",
        });
    } else if let Some(uris) = state.discovery.oauth_uris() {
        security["extension"] = json!([uris]);
    }
    Ok(fhir_json(StatusCode::OK, &statement, format.pretty))
}
