//! `POST /fhir/CarePlan/{id}/$confirm`: the person says *"vi är överens"* — they agree to
//! the agreement as it stands (what matters, the commitments, the next step).
//!
//! The confirmation is the CarePlan's `agreement-confirmed` extension (when), written
//! through the write path like any other change: the person's token only (it is their
//! word, not care's), the contract active, `If-Match` honoured (a stale version is 412:
//! the person agreed to what they saw, not to what it has become), recorded with the
//! person as author and synced. A later change to the agreement cannot keep it: the
//! person confirms again. The answer is the CarePlan as an update's is.
//!
//! To say what they want changed instead, the person asks to be contacted with a
//! `CommunicationRequest` (reason `andra-overenskommelsen`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::Kind;
use super::read::read_to_change;
use super::respond::Format;
use super::write::{if_match, reply};
use crate::api::AppState;
use crate::write::{Action, Caller, Entry, WriteError};

pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let format = Format::negotiate(&headers, &[])?;
    if caller.principal.compartment().is_none() {
        return Err(FhirError::Forbidden(
            "$confirm is the person's own word, given with their own token; care records a \
             confirmation the person gave in person in the CarePlan (agreement-confirmed)"
                .into(),
        ));
    }
    no_parameters(body)?;
    let found = read_to_change(&state, Kind::CarePlan, &id, if_match(&headers)?).await?;
    let url = state.profile.extensions.agreement_confirmed.clone();
    let mut plan = found.body;
    let mut extensions: Vec<Value> = plan["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] != url.as_str())
        .cloned()
        .collect();
    extensions.push(json!({ "url": url, "valueDateTime": jiff::Timestamp::now().to_string() }));
    plan["extension"] = Value::Array(extensions);
    let action = Action::Update {
        kind: Kind::CarePlan,
        id,
        resource: plan,
        // What the person saw is what they agree to: a change since is a 412 (with
        // If-Match) or a 409 to read again.
        if_match: Some(found.version),
    };
    match state
        .writer()
        .apply_one(&caller, Entry::alone(action))
        .await
    {
        Ok(done) => Ok(reply(&done, &state, &headers, format)),
        Err(WriteError::Stale { .. }) => Err(FhirError::Conflict(
            "the contract changed while the person confirmed it: read it again, and confirm \
             what it now says"
                .into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The operation takes no parameters: an empty body, or a `Parameters` without any.
fn no_parameters(body: Result<Bytes, BytesRejection>) -> Result<(), FhirError> {
    let body = super::write::body_bytes(body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| FhirError::BadRequest {
        message: format!("not JSON: {e}"),
        expression: None,
    })?;
    let empty = value["resourceType"] == "Parameters"
        && value
            .as_object()
            .is_some_and(|o| o.keys().all(|k| k == "resourceType" || k == "id"));
    if empty {
        Ok(())
    } else {
        Err(FhirError::bad_param(
            "body",
            "$confirm takes no parameters: send no body, or a Parameters resource without any",
        ))
    }
}
