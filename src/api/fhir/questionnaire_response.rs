//! "7 frågor" answers: `POST /fhir/QuestionnaireResponse` (checked against its
//! Questionnaire, see [`crate::fhir::questionnaire::read_response`]), read by id, and
//! search by `patient`, `subject`, `unit`, `based-on`, `questionnaire` and `authored`.
//!
//! A patient's answers are about one unit: the unit extension names it, or else the
//! unit responsible for the CarePlan the answers are `basedOn` (and the person, when
//! `subject` is left out, is that CarePlan's). What is stored is what is served: the
//! accepted resource with its id, `meta`, `authored`, and the unit and person filled in.
//! Answers are kept as given; they are not updated or deleted.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::date_param::DateParam;
use super::error::FhirError;
use super::respond::{Format, base_url, fhir_json};
use super::search::{Entry, page, person, unknown_params};
use super::write::body_of;
use crate::api::AppState;
use crate::domain::{ContractId, HsaId};
use crate::fhir::outcome::Issue;
use crate::fhir::patient_reference;
use crate::fhir::questionnaire::{Respondent, ResponseFacts, UNIT_EXTENSION, read_response};
use crate::store::{ResponseQuery, StoreError, StoredResponse};
use crate::write::Caller;

const TYPE: &str = "QuestionnaireResponse";

fn invalid(expression: &str, message: impl Into<String>) -> FhirError {
    FhirError::invalid_at("invariant", format!("{TYPE}.{expression}"), message)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let mut resource = body_of(&headers, body, TYPE)?;
    let facts = read_response(&resource, &state.profile)
        .map_err(|errors| FhirError::Invalid(errors.iter().map(Issue::from).collect::<Vec<_>>()))?;
    let stored = accept(&state, &caller, &mut resource, facts).await?;
    if let Some(own) = caller.principal.compartment()
        && stored.patient.as_deref() != Some(own.to_string().as_str())
    {
        return Err(FhirError::Forbidden(
            "a patient token may only answer for its own patient".into(),
        ));
    }
    let stored = state.store.create_response(stored).await?;
    let mut response = fhir_json(StatusCode::CREATED, &stored.resource, format.pretty);
    if let Ok(location) = format!("{}/{TYPE}/{}/_history/1", base_url(&headers), stored.id).parse()
    {
        response.headers_mut().insert(LOCATION, location);
    }
    if let Ok(etag) = "W/\"1\"".parse() {
        response
            .headers_mut()
            .insert(axum::http::header::ETAG, etag);
    }
    Ok(response)
}

/// Settles the person and unit (from the CarePlan where the response does not name
/// them) and fills them into the resource.
async fn accept(
    state: &AppState,
    caller: &Caller,
    resource: &mut Value,
    facts: ResponseFacts,
) -> Result<StoredResponse, FhirError> {
    let mut patient = facts.patient;
    let mut unit = facts.unit.clone().map(|u| (u, None));
    if let Some(plan) = &facts.care_plan {
        let not_known = || {
            invalid(
                "basedOn[0].reference",
                format!("CarePlan/{plan} is not known"),
            )
        };
        let id = ContractId::parse(plan).map_err(|_| not_known())?;
        let own = caller.principal.compartment();
        if !super::read::visible_head(&state.store, own, &id).await? {
            return Err(not_known());
        }
        let record = match state.store.get(&id).await {
            // Another person's plan is "not known", as one that does not exist.
            Ok(r) if caller.principal.sees(&r.revision.contract.patient.id) => r,
            Ok(_) | Err(StoreError::NotFound(_) | StoreError::Deleted(_)) => {
                return Err(not_known());
            }
            Err(e) => return Err(e.into()),
        };
        let contract = &record.revision.contract;
        if patient.as_ref().is_some_and(|p| *p != contract.patient.id) {
            return Err(invalid(
                "subject",
                format!("is not the person of CarePlan/{plan}"),
            ));
        }
        if patient.is_none() {
            resource["subject"] = patient_reference(&contract.patient, &state.profile).into();
            patient = Some(contract.patient.id.clone());
        }
        if unit.is_none() {
            unit = contract
                .responsible_unit
                .as_ref()
                .map(|u| (u.hsa_id.clone(), Some(u.name.clone())));
        }
    }
    let Some((unit, unit_name)) = unit else {
        return Err(invalid(
            "extension",
            format!(
                "name the unit the answers are about: basedOn the person's CarePlan, or the extension {UNIT_EXTENSION} with the unit's HSA-id"
            ),
        ));
    };
    if facts.respondent == Respondent::Patient && facts.unit.is_none() {
        let mut reference = unit_reference(&unit, state);
        if let Some(name) = unit_name {
            reference["display"] = json!(name);
        }
        let extensions = resource
            .as_object_mut()
            .map(|o| o.entry("extension").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = extensions {
            list.push(json!({ "url": UNIT_EXTENSION, "valueReference": reference }));
        }
    }
    Ok(StoredResponse::accepted(
        facts.respondent.as_str(),
        patient.map(|p| p.to_string()),
        unit.as_str().to_owned(),
        facts.care_plan,
        facts.authored,
        resource.take(),
    ))
}

fn unit_reference(unit: &HsaId, state: &AppState) -> Value {
    json!({ "type": "Organization", "identifier": { "system": state.profile.identifiers.hsa_id, "value": unit.as_str() } })
}

pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let stored = state
        .store
        .response(&id)
        .await?
        .filter(visible)
        .ok_or_else(|| FhirError::NotFound(format!("{TYPE}/{id} is not known")))?;
    Ok(super::respond::resource(
        &stored.resource,
        crate::domain::Version::FIRST,
        stored.created_at,
        format.pretty,
    ))
}

/// The search parameters, beside `_id` and the paging ones.
const SEARCH: &[&str] = &[
    "_id",
    "patient",
    "subject",
    "unit",
    "based-on",
    "questionnaire",
    "authored",
];

pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let unknown = unknown_params(&headers, TYPE, &params, |name| {
        SEARCH.contains(&name)
            || ["_count", "_offset", "_summary", "_format", "_pretty"].contains(&name)
    })?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut query = ResponseQuery::default();
    if let Some(p) = get("patient") {
        query.patient = Some(person(p, "patient", &state.profile)?.to_string());
    }
    if let Some(s) = get("subject") {
        match person(s, "subject", &state.profile) {
            Ok(p) => query.patient = Some(p.to_string()),
            Err(_) => query.unit = Some(hsa_param("subject", s)?.as_str().to_owned()),
        }
        query.respondent = Some(
            if query.unit.is_some() {
                "care"
            } else {
                "patient"
            }
            .to_owned(),
        );
    }
    if let Some(u) = get("unit") {
        query.unit = Some(hsa_param("unit", u)?.as_str().to_owned());
    }
    if let Some(b) = get("based-on") {
        query.care_plan = Some(b.strip_prefix("CarePlan/").unwrap_or(b).to_owned());
    }
    if let Some(q) = get("questionnaire") {
        let id = q
            .rsplit('/')
            .next()
            .unwrap_or(q)
            .split('|')
            .next()
            .unwrap_or_default();
        let respondent = [Respondent::Patient, Respondent::Care]
            .into_iter()
            .find(|r| r.questionnaire_id() == id)
            .ok_or_else(|| {
                FhirError::bad_param(
                    "questionnaire",
                    format!("'{q}' is not one of the 7 frågor questionnaires"),
                )
            })?;
        query.respondent = Some(respondent.as_str().to_owned());
    }
    let authored: Vec<DateParam> = params
        .iter()
        .filter(|(k, _)| k == "authored")
        .map(|(_, v)| DateParam::parse("authored", v))
        .collect::<Result<_, _>>()?;
    let id = get("_id");
    // A patient's token finds its own answers only.
    let named = query
        .patient
        .as_deref()
        .and_then(|p| crate::domain::PersonId::parse(p).ok());
    let someone_else = match crate::auth::searched(named) {
        crate::auth::Searched::Nobody => true,
        crate::auth::Searched::Person(p) => {
            query.patient = Some(p.to_string());
            false
        }
        crate::auth::Searched::Anyone => false,
    };
    let found: Vec<Value> = state
        .store
        .responses(&query)
        .await?
        .into_iter()
        .filter(|r| !someone_else && id.is_none_or(|id| r.id == id))
        .filter(|r| authored.iter().all(|d| d.matches(r.authored)))
        .map(|r| r.resource)
        .collect();
    let found = found.into_iter().map(Entry::Value).collect();
    let page = page(&headers, TYPE, &params, found, Vec::new(), &unknown)?;
    Ok(page.respond(format.pretty))
}

/// Whether the caller may see a stored response: a patient's token only its own.
fn visible(r: &StoredResponse) -> bool {
    crate::auth::compartment()
        .is_none_or(|own| r.patient.as_deref() == Some(own.to_string().as_str()))
}

/// A unit from a search value: `system|HSA-id`, `Organization/HSA-id` or the bare id.
pub(super) fn hsa_param(name: &str, value: &str) -> Result<HsaId, FhirError> {
    let raw = value
        .rsplit_once('|')
        .map_or(value, |(_, v)| v)
        .trim_start_matches("Organization/");
    HsaId::parse(raw).map_err(|e| FhirError::bad_param(name, format!("'{value}': {e}")))
}
