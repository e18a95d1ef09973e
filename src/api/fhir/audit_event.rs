//! `GET /fhir/AuditEvent[?patient=…&date=…]` and `GET /fhir/AuditEvent/{seq}`: the audit
//! trail as FHIR R4 `AuditEvent`s, for a client with `AuditEvent` **s**/**r** (a patient's
//! token sees the rows about its own patient). Read only: the API never changes a row.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::date_param::DateParam;
use super::error::FhirError;
use super::respond::{Format, fhir_json};
use super::search::{Entry, page, person, unknown_params};
use crate::api::AppState;
use crate::auth::Searched;
use crate::fhir::{Kind, Profile};
use crate::store::{AuditQuery, AuditRow};

const TYPE: &str = "AuditEvent";
/// Names the client in `agent.who.identifier`.
pub const CLIENT_SYSTEM: &str = "https://pkgw.example/fhir/sid/client";

pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &params)?;
    let unknown = unknown_params(&headers, TYPE, &params, |n| {
        [
            "patient", "date", "_count", "_offset", "_summary", "_format", "_pretty",
        ]
        .contains(&n)
    })?;
    let named = params
        .iter()
        .find(|(k, _)| k == "patient")
        .map(|(k, v)| person(v, k, &state.profile))
        .transpose()?;
    let dates: Vec<DateParam> = params
        .iter()
        .filter(|(k, _)| k == "date")
        .map(|(_, v)| DateParam::parse("date", v))
        .collect::<Result<_, _>>()?;
    let searched = crate::auth::searched(named);
    let rows = if searched == Searched::Nobody {
        Vec::new()
    } else {
        state
            .store
            .audit(&AuditQuery {
                patient: searched.person().map(|p| p.to_string()),
                ..AuditQuery::default()
            })
            .await?
    };
    let mut found = Vec::new();
    let mut whose = Whose::default();
    for row in rows
        .into_iter()
        .filter(|r| dates.iter().all(|d| d.matches(r.at)))
    {
        let row = only_theirs(&state, &mut whose, row).await?;
        found.push(audit_event(&row, &state.profile));
    }
    let found = found.into_iter().map(Entry::Value).collect();
    let page = page(&headers, TYPE, &params, found, Vec::new(), &unknown)?;
    Ok(page.respond(format.pretty))
}

pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let not_found = || FhirError::NotFound(format!("{TYPE}/{id} is not known"));
    let seq: i64 = id.parse().map_err(|_| not_found())?;
    let row = state.store.audit_row(seq).await?.ok_or_else(not_found)?;
    if let Some(own) = crate::auth::compartment()
        && row.patient.as_deref() != Some(own.to_string().as_str())
    {
        return Err(not_found());
    }
    let row = only_theirs(&state, &mut Whose::default(), row).await?;
    Ok(fhir_json(
        StatusCode::OK,
        &audit_event(&row, &state.profile),
        format.pretty,
    ))
}

/// Whose each resource is (the person, as stored), looked up once per request.
type Whose = HashMap<String, Option<String>>;

/// For a caller limited to one person, the row with only the resources that are that
/// person's: a row about the person may name others' resources too (an answer that held
/// several persons' data), and their ids are not the caller's to see.
async fn only_theirs(
    state: &AppState,
    whose: &mut Whose,
    mut row: AuditRow,
) -> Result<AuditRow, FhirError> {
    let Some(own) = crate::auth::compartment().map(|p| p.to_string()) else {
        return Ok(row);
    };
    let mut kept = Vec::new();
    for reference in row
        .resources
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
    {
        if !whose.contains_key(reference) {
            let person = person_of(state, reference).await?;
            whose.insert(reference.to_owned(), person);
        }
        if whose.get(reference).and_then(Option::as_deref) == Some(own.as_str()) {
            kept.push(reference);
        }
    }
    row.resources = (!kept.is_empty()).then(|| kept.join(" "));
    Ok(row)
}

/// The person a resource (`Type/id`) is about, if the gateway holds it.
async fn person_of(state: &AppState, reference: &str) -> Result<Option<String>, FhirError> {
    let Some((kind, id)) = reference.split_once('/') else {
        return Ok(None);
    };
    Ok(match kind {
        "QuestionnaireResponse" => state.store.response(id).await?.and_then(|r| r.patient),
        "Subscription" => state.store.subscription(id).await?.map(|s| s.patient),
        _ => match Kind::parse(kind).ok().and_then(|k| k.locate(id)) {
            Some((contract, _)) => state.store.head(&contract).await?.map(|h| h.patient),
            None => None,
        },
    })
}

/// One audit row as an R4 `AuditEvent`.
pub fn audit_event(row: &AuditRow, profile: &Profile) -> Value {
    let interaction = match row.action.as_str() {
        "import" => "create",
        other => other,
    };
    let action = match interaction {
        "create" => "C",
        "update" => "U",
        "delete" => "D",
        "read" | "vread" | "history-instance" => "R",
        _ => "E",
    };
    let outcome = match (row.outcome.as_str(), row.status) {
        ("success", _) => "0",
        (_, Some(s)) if s >= 500 => "8",
        _ => "4",
    };
    let mut agent = json!({
        "who": { "identifier": { "system": CLIENT_SYSTEM, "value": row.client.as_deref().unwrap_or(&row.origin) } },
        "altId": row.actor,
        "requestor": true,
    });
    if let Some(remote) = &row.remote {
        agent["network"] = json!({ "address": remote, "type": "2" });
    }
    let mut entities: Vec<Value> = row
        .resources
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(|r| json!({ "what": { "reference": r } }))
        .collect();
    if let Some(patient) = &row.patient {
        // The number, or a reservnummer in its own system.
        let (system, value) = match crate::domain::PersonId::parse(patient) {
            Ok(person) => {
                let (system, value) = profile.identifiers.identifier_of(&person);
                (system.to_owned(), value)
            }
            Err(_) => (profile.identifiers.personnummer.clone(), patient.clone()),
        };
        entities.push(json!({
            "what": { "identifier": { "system": system, "value": value } },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" },
        }));
    }
    let mut event = json!({
        "resourceType": TYPE,
        "id": row.seq.to_string(),
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
        "subtype": [{ "system": "http://hl7.org/fhir/restful-interaction", "code": interaction }],
        "action": action,
        "recorded": row.at.to_string(),
        "outcome": outcome,
        "agent": [agent],
        "source": { "observer": { "display": "pkgw" } },
    });
    if let Some(status) = row.status {
        event["outcomeDesc"] = json!(format!("HTTP {status}"));
    }
    if !entities.is_empty() {
        event["entity"] = json!(entities);
    }
    event
}
