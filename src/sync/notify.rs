//! Subscription notifications (FHIR R4 rest-hook), delivered from the sync queue like any
//! change (queue target `subscription:{id}`): with a payload type, each watched resource
//! of the changed contract is `PUT` to `{endpoint}/{type}/{id}`; without, one empty
//! `POST` to the endpoint. The channel's `header` entries are sent with each request.

use serde_json::Value;

use super::retry::Failure;
use crate::domain::Version;
use crate::fhir::Profile;
use crate::fhir::stored::resources_of;
use crate::store::{Claim, Store, StoreError};

/// The queue target of a subscription's notifications.
pub fn queue_target(subscription: &str) -> String {
    format!("subscription:{subscription}")
}

/// Tells the subscriber of `claim` about the contract as it is now; the version told.
/// `Ok(None)`: the subscription is off, nothing to tell.
pub async fn notify(
    store: &Store,
    http: &reqwest::Client,
    profile: &Profile,
    claim: &Claim,
) -> Result<Option<Version>, Failure> {
    let failed = |e: StoreError| Failure::Transient {
        error: format!("reading the store: {e}"),
        after: None,
    };
    let id = claim
        .target
        .strip_prefix("subscription:")
        .unwrap_or_default();
    let Some(subscription) = store.subscription(id).await.map_err(failed)? else {
        return Ok(None);
    };
    if subscription.status != "active" {
        return Ok(None);
    }
    let record = store.get(&claim.contract_id).await.map_err(failed)?;
    let resource = &subscription.resource;
    let channel = &resource["channel"];
    let endpoint = channel["endpoint"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/');
    let watched = resource["criteria"]
        .as_str()
        .and_then(|c| c.split('?').next())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = channel["header"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|h| h.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let send = |request: reqwest::RequestBuilder| {
        let request = headers
            .iter()
            .fold(request, |r, (k, v)| r.header(k.as_str(), v.as_str()));
        async move {
            let response = request.send().await.map_err(|e| Failure::Transient {
                error: format!(
                    "notifying: {}",
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "could not connect"
                    }
                ),
                after: None,
            })?;
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(());
            }
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await.unwrap_or_default();
            Err(Failure::from_status(status, &body, retry_after.as_deref()))
        }
    };
    if channel["payload"].is_string() {
        let resources = resources_of(&record, profile);
        let changed: Vec<&Value> = match watched {
            "CareTeam" => vec![&resources.care_team],
            "Appointment" => resources.appointments.iter().collect(),
            _ => vec![&resources.care_plan],
        };
        for r in changed {
            let url = format!(
                "{endpoint}/{watched}/{}",
                r["id"].as_str().unwrap_or_default()
            );
            let request = http
                .put(url)
                .header("content-type", "application/fhir+json")
                .body(r.to_string());
            send(request).await?;
        }
    } else {
        send(http.post(endpoint)).await?;
    }
    Ok(Some(record.revision.version))
}
