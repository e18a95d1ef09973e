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
use super::respond::{Format, base_url, fhir_bytes, fhir_json, searchset};
use super::search::{Entry, Page, of_kind, persons_versions};
use crate::api::AppState;
use crate::api::answer::too_large;
use crate::auth::Searched;
use crate::domain::{ContractId, PersonId};
use crate::fhir::Profile;

/// The Patient of `person`, named `name` (as the newest contract gives it); `None` for
/// a reservnummer of a system no longer configured (it has no id to serve).
pub fn patient(person: &PersonId, name: Option<&str>, profile: &Profile) -> Option<Value> {
    let ids = &profile.identifiers;
    let (system, value) = ids.identifier_of(person);
    // A reservnummer is temporary: until the person has a real number, and then merged.
    let r#use = match person {
        PersonId::Reservnummer(_) => "temp",
        _ => "official",
    };
    let mut patient = json!({
        "resourceType": "Patient",
        "id": ids.patient_id(person)?,
        "identifier": [{ "use": r#use, "system": system, "value": value }],
    });
    if let Some(name) = name {
        patient["name"] = json!([{ "text": name }]);
    }
    Some(patient)
}

/// The Patient a contract's CarePlan names as its subject.
pub fn patient_of_plan(plan: &Value, profile: &Profile) -> Option<Value> {
    let identifier = &plan["subject"]["identifier"];
    let person = profile
        .identifiers
        .person(
            identifier["system"].as_str()?,
            identifier["value"].as_str()?,
        )
        .ok()?;
    patient(&person, plan["subject"]["display"].as_str(), profile)
}

/// A person the caller may see, with live contracts.
struct Known {
    person: PersonId,
    /// The id of their Patient.
    id: String,
    contracts: Vec<(ContractId, std::sync::Arc<Cached>)>,
}

/// The person named (by a Patient id or an identifier), and their live contracts; 404
/// when there are none, or the caller may not see them.
async fn person_of(state: &AppState, person: Option<PersonId>) -> Result<Known, FhirError> {
    // The id is a person's number: the answer does not repeat it.
    let not_known = || FhirError::NotFound("no such Patient is known".into());
    let person = person.ok_or_else(not_known)?;
    let id = state
        .profile
        .identifiers
        .patient_id(&person)
        .ok_or_else(not_known)?;
    if matches!(
        crate::auth::searched(Some(person.clone())),
        Searched::Nobody
    ) {
        return Err(not_known());
    }
    let contracts = persons_versions(state, &person, |_, deleted| !deleted).await?;
    if contracts.is_empty() {
        return Err(not_known());
    }
    Ok(Known {
        person,
        id,
        contracts,
    })
}

/// The person a Patient id names.
fn person_by_id(state: &AppState, id: &str) -> Option<PersonId> {
    state.profile.identifiers.person_of_patient_id(id)
}

impl Known {
    /// The Patient, named as the person's first CarePlan names them.
    fn patient(&self, profile: &Profile) -> Value {
        let name = self.contracts.iter().find_map(|(_, cached)| {
            let plan = cached.resources.iter().find(|r| r.kind == "CarePlan")?;
            let plan: Value = serde_json::from_slice(&plan.bytes).ok()?;
            plan["subject"]["display"].as_str().map(str::to_owned)
        });
        // `person_of` found the id: the Patient has one.
        patient(&self.person, name.as_deref(), profile).unwrap_or_default()
    }
}

/// The answer, with what the audit row needs: the resources given and the person.
fn audited(mut response: Response, person: &PersonId, resources: Vec<String>) -> Response {
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
    let known = person_of(&state, person_by_id(&state, &id)).await?;
    let body = known.patient(&state.profile);
    Ok(audited(
        fhir_json(StatusCode::OK, &body, format.pretty),
        &known.person,
        vec![format!("Patient/{}", known.id)],
    ))
}

/// `POST /fhir/Patient/_search`: the search with its parameters in a form body too, so
/// a personnummer need not be in a URL (a portal's own lookup).
pub async fn search_post(
    state: State<AppState>,
    headers: HeaderMap,
    Query(mut params): Query<Vec<(String, String)>>,
    form: Result<axum::Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, FhirError> {
    params.extend(super::search::form_params(form)?);
    search(state, headers, Query(params)).await
}

/// `GET /fhir/Patient?identifier=system|number` (or `_id=number`): a searchset of the
/// Patient, or none. A search must name the person: there is no list of everyone.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let ids = &state.profile.identifiers;
    // `None` inside: a value that names nobody here.
    let mut wanted: Option<Option<PersonId>> = None;
    for (name, value) in &params {
        let person = match name.as_str() {
            "_id" => ids.person_of_patient_id(value),
            "identifier" => match value.split_once('|') {
                Some(("", number)) => PersonId::parse(number).ok(),
                // Another system's identifier names no person here.
                Some((system, number)) => ids.person(system, number).ok(),
                None => PersonId::parse(value).ok(),
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
        wanted = match wanted {
            Some(w) if w != person => Some(None),
            _ => Some(person),
        };
    }
    let wanted = wanted.ok_or_else(|| {
        FhirError::bad_param(
            "identifier",
            "a Patient search must name the person: identifier or _id",
        )
    })?;
    let base = base_url(&headers);
    let found = person_of(&state, wanted).await.ok();
    let patients = found
        .iter()
        .map(|known| known.patient(&state.profile))
        .collect();
    let link = format!("{base}/Patient?{}", super::write::query_of(&params));
    let bundle = searchset(&base, patients, Some(link));
    let mut response = fhir_json(StatusCode::OK, &bundle, format.pretty);
    if let Some(known) = &found {
        response.extensions_mut().insert(crate::api::AuditInfo {
            resources: vec![format!("Patient/{}", known.id)],
            patients: vec![known.person.to_string()],
        });
    }
    Ok(response)
}

/// `GET /fhir/Patient/{id}/$everything`: the Patient and every resource of the person's
/// live contracts — CarePlans, CareTeams, Goals, Appointments and each version's
/// Provenance — as a searchset, within the answer size limit (`too-costly` otherwise),
/// written around the read cache's bytes as a search page is.
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
    let known = person_of(&state, person_by_id(&state, &id)).await?;
    let base = base_url(&headers);
    // The contracts' resources go into the Bundle as the read cache holds them.
    let mut entries = vec![Entry::Value(known.patient(&state.profile))];
    let mut size = entries[0].len();
    let mut named = vec![format!("Patient/{}", known.id)];
    for (contract, cached) in &known.contracts {
        for kind in [
            Kind::CarePlan,
            Kind::CareTeam,
            Kind::Goal,
            Kind::Appointment,
            Kind::CommunicationRequest,
            Kind::Provenance,
        ] {
            for resource in of_kind(&state.reads, contract, cached, kind).await? {
                size += resource.len();
                if size > state.answer_bytes {
                    return Err(FhirError::TooCostly {
                        message: too_large(size, state.answer_bytes),
                        expression: None,
                    });
                }
                if kind == Kind::CarePlan {
                    named.push(format!("CarePlan/{contract}"));
                }
                entries.push(resource);
            }
        }
    }
    let link = format!("{base}/Patient/{}/$everything", known.id);
    let page = Page::of_matches(base, link, entries);
    Ok(audited(
        fhir_bytes(StatusCode::OK, page.to_bytes(), format.pretty),
        &known.person,
        named,
    ))
}
