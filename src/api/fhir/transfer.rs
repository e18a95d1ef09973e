//! `POST /fhir/CarePlan/{id}/$transfer`: a care transition in one atomic step — the
//! receiving unit becomes responsible, the fast vårdkontakt is handed over without gap,
//! the sending unit's commitments move or are closed, and the history (a Provenance
//! with activity `transfer`, the sending and receiving units as agents) says who handed
//! over what, when and why. The input is a `Parameters` resource:
//!
//! | parameter | |
//! |---|---|
//! | `unit` (parts `hsaId`, `name`, `phone`, `phoneHours`…) | the receiving unit |
//! | `fastVardkontakt` (parts `name`, `title`, `hsaId`, `phone`) | the new fast vårdkontakt (left out only when the part does not apply) |
//! | `fastLakarkontakt` (same parts), optional | the new fast läkarkontakt |
//! | `handover` (instant) | when responsibility passes |
//! | `kind` (code) | e.g. `hospital-to-primary-care` |
//! | `reason` (string), optional | why |
//! | `moveCommitment` (string, repeated) | ids of the sending unit's commitments that move |
//! | `nextStep` (string), optional | the receiving unit's next step |
//!
//! `If-Match` names the version the transfer is based on (412 when stale, so of two
//! concurrent transfers exactly one wins).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::ETAG;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::{provenance_of, resources_of};
use super::respond::{Format, base_url, fhir_json};
use super::write::{if_match, parameters_body};
use crate::api::AppState;
use crate::domain::{
    Channel, ContractId, HsaId, NewContact, NextStep, PhoneHours, PhoneNumber, ResponsibleUnit,
    Transfer,
};
use crate::write::{Caller, Transferred};

pub async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let parameters = parameters_body(&headers, body, "$transfer")?;
    let t = from_parameters(&parameters)?;
    let id = ContractId::parse(&id)
        .map_err(|_| FhirError::NotFound(format!("CarePlan/{id} is not known")))?;
    let transferred = state
        .writer()
        .transfer(
            &caller,
            &id,
            if_match(&headers)?,
            &t,
            jiff::Timestamp::now(),
        )
        .await?;
    let record = match transferred {
        Transferred::Done(record) => *record,
        Transferred::Scheduled(sid) => {
            return Ok(scheduled_answer(&headers, &id, &t, &sid, format));
        }
    };
    let resources = resources_of(&record, &state.profile);
    let base_url = base_url(&headers);
    let entry = |r: Value| {
        let url = format!(
            "{base_url}/{}/{}",
            r["resourceType"].as_str().unwrap_or_default(),
            r["id"].as_str().unwrap_or_default()
        );
        json!({ "fullUrl": url, "resource": r })
    };
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [entry(resources.care_plan), entry(resources.care_team), entry(provenance_of(&record))],
    });
    let mut response = fhir_json(StatusCode::OK, &bundle, format.pretty);
    if let Ok(tag) = record.revision.version.etag().parse() {
        response.headers_mut().insert(ETAG, tag);
    }
    Ok(response)
}

/// A handover still ahead was kept until its instant (the sending unit stays
/// responsible meanwhile), to be applied by the gateway itself: 202, with the
/// schedule's URL.
fn scheduled_answer(
    headers: &HeaderMap,
    contract: &ContractId,
    t: &Transfer,
    sid: &str,
    format: Format,
) -> Response {
    let issue = crate::fhir::outcome::Issue {
        severity: "information",
        code: "informational",
        diagnostics: format!(
            "the transfer to {} is scheduled for {}; until then the sending unit stays responsible",
            t.to.name, t.at
        ),
        expression: None,
    };
    let mut response = fhir_json(
        StatusCode::ACCEPTED,
        &crate::fhir::outcome::operation_outcome(&[issue]),
        format.pretty,
    );
    let url = format!("{}/CarePlan/{contract}/$transfer/{sid}", base_url(headers));
    if let Ok(location) = url.parse() {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_LOCATION, location);
    }
    response
}

/// The scheduled transfer `sid` of contract `id`.
async fn scheduled_of(
    state: &AppState,
    id: &str,
    sid: &str,
) -> Result<crate::store::ScheduledTransfer, FhirError> {
    state
        .store
        .scheduled_transfer(sid)
        .await?
        .filter(|s| s.contract_id.as_str() == id)
        .ok_or_else(|| FhirError::NotFound(format!("no scheduled transfer {sid} of CarePlan/{id}")))
}

/// `GET /fhir/CarePlan/{id}/$transfer/{sid}`: where a scheduled transfer stands.
pub async fn scheduled(
    State(state): State<AppState>,
    Path((id, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    let s = scheduled_of(&state, &id, &sid).await?;
    let mut parameter = vec![
        json!({ "name": "status", "valueCode": s.status }),
        json!({ "name": "handover", "valueInstant": s.transfer.at.to_string() }),
        json!({ "name": "unit", "valueString": s.transfer.to.hsa_id.as_str() }),
    ];
    if let Some(v) = s.applied_version {
        parameter.push(json!({ "name": "appliedVersion", "valueString": v.to_string() }));
    }
    if let Some(e) = &s.error {
        parameter.push(json!({ "name": "error", "valueString": e }));
    }
    let body = json!({ "resourceType": "Parameters", "parameter": parameter });
    Ok(fhir_json(StatusCode::OK, &body, format.pretty))
}

/// `DELETE /fhir/CarePlan/{id}/$transfer/{sid}`: cancels a transfer still pending.
pub async fn cancel(
    State(state): State<AppState>,
    Path((id, sid)): Path<(String, String)>,
) -> Result<Response, FhirError> {
    let known = scheduled_of(&state, &id, &sid).await?;
    if state
        .store
        .finish_transfer(&sid, &["pending"], "cancelled", None, None)
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(FhirError::Conflict(format!(
            "the transfer is {}, not pending: it cannot be cancelled",
            known.status
        )))
    }
}

/// The parameters (or, inside one, the parts) named `name`.
fn params<'a>(p: &'a Value, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    p["parameter"]
        .as_array()
        .or_else(|| p["part"].as_array())
        .into_iter()
        .flatten()
        .filter(move |x| x["name"] == name)
}

/// A parameter's value as text, whatever its `value[x]`.
fn text(p: &Value) -> Option<&str> {
    [
        "valueString",
        "valueCode",
        "valueInstant",
        "valueDateTime",
        "valueId",
    ]
    .iter()
    .find_map(|k| p[*k].as_str())
    .or_else(|| p["valueIdentifier"]["value"].as_str())
}

/// Reads a `Transfer` from `$transfer`'s Parameters; errors name the parameter.
pub fn from_parameters(p: &Value) -> Result<Transfer, FhirError> {
    let bad = |name: &str, why: String| FhirError::bad_param(name, why);
    let one = |name: &'static str| params(p, name).next();
    let required = |name: &'static str| {
        one(name)
            .and_then(text)
            .ok_or_else(|| bad(name, "is required".into()))
    };
    let unit = one("unit").ok_or_else(|| bad("unit", "the receiving unit is required".into()))?;
    let part = |p: &Value, name: &'static str| -> Option<String> {
        params(p, name).next().and_then(text).map(str::to_owned)
    };
    let need = |of: &'static str, p: &Value, name: &'static str| {
        part(p, name).ok_or_else(|| bad(&format!("{of}.{name}"), "is required".into()))
    };
    let to = ResponsibleUnit {
        hsa_id: HsaId::parse(&need("unit", unit, "hsaId")?)
            .map_err(|e| bad("unit.hsaId", e.to_string()))?,
        name: need("unit", unit, "name")?,
        phone: PhoneNumber::parse(&need("unit", unit, "phone")?)
            .map_err(|e| bad("unit.phone", e.to_string()))?,
        channels: Vec::new(),
        phone_hours: params(unit, "phoneHours")
            .filter_map(text)
            .map(|h| {
                PhoneHours::from_words(h).map_err(|e| {
                    bad(
                        "unit.phoneHours",
                        format!("'{h}': {e}; write e.g. mon-fri 08:00-10:00"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let contact = |name: &'static str| -> Result<Option<NewContact>, FhirError> {
        let Some(c) = one(name) else {
            return Ok(None);
        };
        let channels = match part(c, "phone") {
            Some(number) => vec![Channel::Phone {
                number: PhoneNumber::parse(&number)
                    .map_err(|e| bad(&format!("{name}.phone"), e.to_string()))?,
                hours: Vec::new(),
            }],
            None => Vec::new(),
        };
        Ok(Some(NewContact {
            name: need(name, c, "name")?,
            title: part(c, "title"),
            hsa_id: part(c, "hsaId")
                .map(|h| HsaId::parse(&h).map_err(|e| bad(&format!("{name}.hsaId"), e.to_string())))
                .transpose()?,
            channels,
        }))
    };
    let at = required("handover")?;
    Ok(Transfer {
        to,
        contact: contact("fastVardkontakt")?,
        physician: contact("fastLakarkontakt")?,
        at: at.parse().map_err(|e| {
            bad(
                "handover",
                format!("must be an instant with a time zone: {e}"),
            )
        })?,
        kind: required("kind")?.to_owned(),
        reason: one("reason").and_then(text).map(str::to_owned),
        moving: params(p, "moveCommitment")
            .filter_map(text)
            .map(str::to_owned)
            .collect(),
        next_step: one("nextStep").and_then(text).map(|d| NextStep {
            description: d.to_owned(),
            due: None,
            on: None,
            who: None,
        }),
    })
}
