//! FHIR R4 Subscriptions, rest-hook: a portal asks to be told when a person's contract
//! changes (`criteria` `CarePlan?patient=…`, `CareTeam?patient=…` or
//! `Appointment?patient=…`). Notifications go out through the sync queue, with its
//! retries and dead letters: with a `payload`, each changed resource is `PUT` to
//! `{endpoint}/{type}/{id}`; without, an empty `POST` to the endpoint says "look again".
//! `DELETE` turns a subscription off.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::FhirError;
use super::respond::{Format, base_url, fhir_json};
use super::search::person;
use super::write::body_of;
use crate::api::AppState;
use crate::fhir::outcome::Issue;
use crate::store::StoredSubscription;
use crate::write::Caller;

/// The resource types a subscription can watch.
pub const WATCHED: [&str; 3] = ["CarePlan", "CareTeam", "Appointment"];

fn invalid(expression: &str, message: impl Into<String>) -> FhirError {
    FhirError::Invalid(vec![Issue::error(
        "not-supported",
        message.into(),
        Some(expression.to_owned()),
    )])
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let allowed = &state.subscriptions;
    if caller.principal.compartment().is_some() && !allowed.patient_tokens {
        return Err(FhirError::Forbidden(
            "a patient's token may not make Subscriptions here (subscriptions.patient_tokens)"
                .into(),
        ));
    }
    let mut resource = body_of(&headers, body, "Subscription")?;
    let channel = &resource["channel"];
    if channel["type"] != "rest-hook" {
        return Err(invalid(
            "Subscription.channel.type",
            "only rest-hook subscriptions are supported",
        ));
    }
    // Only where the operator allows, and only with headers it allows: the gateway
    // never calls an address, or sends a header, of a caller's choosing.
    allowed
        .endpoint(channel["endpoint"].as_str().unwrap_or_default())
        .map_err(|why| invalid("Subscription.channel.endpoint", why))?;
    let sent: Vec<&str> = match &channel["header"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|h| h.as_str().unwrap_or_default())
            .collect(),
        _ => {
            return Err(invalid(
                "Subscription.channel.header",
                "must be a list of `Name: value`",
            ));
        }
    };
    allowed
        .headers(&sent)
        .map_err(|(i, why)| invalid(&format!("Subscription.channel.header[{i}]"), why))?;
    if let Some(payload) = channel["payload"].as_str()
        && !matches!(payload, "application/fhir+json" | "application/json")
    {
        return Err(invalid(
            "Subscription.channel.payload",
            "must be application/fhir+json, or left out",
        ));
    }
    let criteria = resource["criteria"].as_str().unwrap_or_default();
    let (kind, query) = criteria.split_once('?').unwrap_or((criteria, ""));
    let patient = query.split('&').find_map(|p| {
        p.strip_prefix("patient=")
            .or_else(|| p.strip_prefix("patient.identifier="))
    });
    let (true, Some(patient)) = (WATCHED.contains(&kind), patient) else {
        return Err(invalid(
            "Subscription.criteria",
            "must be CarePlan?patient=…, CareTeam?patient=… or Appointment?patient=…",
        ));
    };
    let patient = person(patient, "Subscription.criteria", &state.profile)?;
    if !caller.principal.sees(&patient) {
        return Err(FhirError::Forbidden(
            "a patient token may only subscribe to its own patient".into(),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    resource["id"] = json!(id);
    resource["status"] = json!("active");
    let stored = state
        .store
        .create_subscription(&id, &patient.to_string(), &resource)
        .await?;
    let mut response = fhir_json(StatusCode::CREATED, &served(&stored), format.pretty);
    if let Ok(location) = format!("{}/Subscription/{id}", base_url(&headers)).parse() {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    Ok(response)
}

pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    match state.store.subscription(&id).await?.filter(visible) {
        Some(s) if s.status == "off" => {
            Err(FhirError::Gone(format!("Subscription/{id} was deleted")))
        }
        Some(s) => Ok(fhir_json(StatusCode::OK, &served(&s), format.pretty)),
        None => Err(FhirError::NotFound(format!(
            "Subscription/{id} is not known"
        ))),
    }
}

pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let base = base_url(&headers);
    let entries: Vec<Value> = state
        .store
        .subscriptions()
        .await?
        .iter()
        .filter(|s| visible(s))
        .map(|s| json!({ "fullUrl": format!("{base}/Subscription/{}", s.id), "resource": served(s), "search": { "mode": "match" } }))
        .collect();
    let bundle = json!({ "resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries });
    Ok(fhir_json(StatusCode::OK, &bundle, format.pretty))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, FhirError> {
    let known = state
        .store
        .subscription(&id)
        .await?
        .filter(visible)
        .is_some();
    if !known
        || !state
            .store
            .set_subscription_status(&id, "off", None)
            .await?
    {
        return Err(FhirError::NotFound(format!(
            "Subscription/{id} is not known"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether the caller may see a subscription: a patient's token only its own.
fn visible(s: &StoredSubscription) -> bool {
    crate::domain::PersonId::parse(&s.patient).is_ok_and(|p| crate::auth::sees(&p))
}

/// The resource as served: its status (and error) as they are now.
fn served(s: &StoredSubscription) -> Value {
    let mut resource = s.resource.clone();
    resource["status"] = json!(s.status);
    if let Some(error) = &s.error {
        resource["error"] = json!(error);
    }
    resource
}
