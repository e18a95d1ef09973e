//! `Patient`: a read-only Patient for each person the gateway holds a live contract
//! for — `Patient/{number}` (the personnummer or samordningsnummer, as searches already
//! take `patient=Patient/{number}`), with the number as its identifier in the SE Core
//! system and the name the newest contract gives. Read, search by `_id` or `identifier`,
//! and `Patient/{id}/$everything`: the person's compartment (every resource of their
//! live contracts) in one Bundle. A patient's token sees only its own Patient; anyone
//! else's, like a person without a contract, is 404.
//!
//! The contracts' resources keep naming their subject by identifier (a logical
//! reference): the systems sync sends them to have Patients of their own ids.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::Kind;
use super::read_cache::Cached;
use super::respond::{Format, base_url, fhir_json, searchset};
use super::search::{of_kind, persons_versions};
use crate::api::AppState;
use crate::api::answer::{json_len, too_large};
use crate::auth::Searched;
use crate::domain::{ContractId, PersonId};
use crate::fhir::Profile;

/// The Patient of `person`, named `name` (as the newest contract gives it).
pub fn patient(person: &PersonId, name: Option<&str>, profile: &Profile) -> Value {
    let system = match person {
        PersonId::Personnummer(_) => &profile.identifiers.personnummer,
        PersonId::Samordningsnummer(_) => &profile.identifiers.samordningsnummer,
    };
    let number = person.to_string();
    let mut patient = json!({
        "resourceType": "Patient",
        "id": number,
        "identifier": [{ "use": "official", "system": system, "value": number }],
    });
    if let Some(name) = name {
        patient["name"] = json!([{ "text": name }]);
    }
    patient
}

/// The Patient a contract's CarePlan names as its subject.
pub fn patient_of_plan(plan: &Value, profile: &Profile) -> Option<Value> {
    let person = PersonId::parse(plan["subject"]["identifier"]["value"].as_str()?).ok()?;
    Some(patient(
        &person,
        plan["subject"]["display"].as_str(),
        profile,
    ))
}

/// The person `id` names, and their live contracts; 404 when there are none, or the
/// caller may not see them.
async fn person_of(
    state: &AppState,
    id: &str,
) -> Result<(PersonId, Vec<(ContractId, std::sync::Arc<Cached>)>), FhirError> {
    // The id is a person's number: the answer does not repeat it.
    let not_known = || FhirError::NotFound("no such Patient is known".into());
    let person = PersonId::parse(id).map_err(|_| not_known())?;
    if matches!(crate::auth::searched(Some(person)), Searched::Nobody) {
        return Err(not_known());
    }
    let contracts = persons_versions(state, &person, |_, deleted| !deleted).await?;
    if contracts.is_empty() {
        return Err(not_known());
    }
    Ok((person, contracts))
}

/// The Patient of a person with contracts, named as their first CarePlan names them.
fn patient_from(
    person: &PersonId,
    contracts: &[(ContractId, std::sync::Arc<Cached>)],
    profile: &Profile,
) -> Value {
    let name = contracts.iter().find_map(|(_, cached)| {
        let plan = cached.resources.iter().find(|r| r.kind == "CarePlan")?;
        let plan: Value = serde_json::from_slice(&plan.bytes).ok()?;
        plan["subject"]["display"].as_str().map(str::to_owned)
    });
    patient(person, name.as_deref(), profile)
}

/// The answer, with what the audit row needs: the person.
fn answer(body: &Value, pretty: bool, person: &PersonId, resources: Vec<String>) -> Response {
    let mut response = fhir_json(StatusCode::OK, body, pretty);
    response.extensions_mut().insert(crate::api::AuditInfo {
        resources,
        patients: vec![person.to_string()],
    });
    response
}

/// `GET /fhir/Patient/{id}`.
pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let (person, contracts) = person_of(&state, &id).await?;
    let body = patient_from(&person, &contracts, &state.profile);
    Ok(answer(
        &body,
        format.pretty,
        &person,
        vec![format!("Patient/{id}")],
    ))
}

/// `GET /fhir/Patient?identifier=system|number` (or `_id=number`): a searchset of the
/// Patient, or none. A search must name the person: there is no list of everyone.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let mut wanted: Option<String> = None;
    for (name, value) in &params {
        let number = match name.as_str() {
            "_id" => value.clone(),
            "identifier" => match value.split_once('|') {
                Some((system, number))
                    if system.is_empty() || state.profile.identifiers.is_person_system(system) =>
                {
                    number.to_owned()
                }
                // Another system's identifier names no person here.
                Some(_) => String::new(),
                None => value.clone(),
            },
            "_format" | "_pretty" => continue,
            other => {
                return Err(FhirError::bad_param(
                    other,
                    "Patient is searched by identifier or _id only",
                ));
            }
        };
        // Two different people at once: nobody is both.
        if wanted.as_ref().is_some_and(|w| *w != number) {
            wanted = Some(String::new());
        } else {
            wanted = Some(number);
        }
    }
    let wanted = wanted.ok_or_else(|| {
        FhirError::bad_param(
            "identifier",
            "a Patient search must name the person: identifier or _id",
        )
    })?;
    let base = base_url(&headers);
    let found = person_of(&state, &wanted).await.ok();
    let patients = found
        .iter()
        .map(|(person, contracts)| patient_from(person, contracts, &state.profile))
        .collect();
    let link = format!("{base}/Patient?{}", super::write::query_of(&params));
    let bundle = searchset(&base, patients, Some(link));
    let mut response = fhir_json(StatusCode::OK, &bundle, format.pretty);
    if let Some((person, _)) = &found {
        response.extensions_mut().insert(crate::api::AuditInfo {
            resources: vec![format!("Patient/{person}")],
            patients: vec![person.to_string()],
        });
    }
    Ok(response)
}

/// `GET /fhir/Patient/{id}/$everything`: the Patient and every resource of the person's
/// live contracts — CarePlans, CareTeams, Goals, Appointments and each version's
/// Provenance — as a searchset, within the answer size limit (`too-costly` otherwise).
pub async fn everything(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    if let Some((name, _)) = params
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"))
    {
        return Err(FhirError::bad_param(
            name,
            "$everything takes no parameters here: it gives the person's whole compartment",
        ));
    }
    let (person, contracts) = person_of(&state, &id).await?;
    let base = base_url(&headers);
    let mut resources = vec![patient_from(&person, &contracts, &state.profile)];
    let mut size = json_len(&resources[0]);
    let mut named = vec![format!("Patient/{person}")];
    for (contract, cached) in &contracts {
        for kind in [
            Kind::CarePlan,
            Kind::CareTeam,
            Kind::Goal,
            Kind::Appointment,
            Kind::Provenance,
        ] {
            for resource in of_kind(&state.store, contract, cached, kind).await? {
                size += json_len(&resource);
                if size > state.answer_bytes {
                    return Err(FhirError::TooCostly {
                        message: too_large(size, state.answer_bytes),
                        expression: None,
                    });
                }
                if kind == Kind::CarePlan {
                    named.push(format!("CarePlan/{contract}"));
                }
                resources.push(resource);
            }
        }
    }
    let link = format!("{base}/Patient/{person}/$everything");
    let bundle = searchset(&base, resources, Some(link));
    Ok(answer(&bundle, format.pretty, &person, named))
}
