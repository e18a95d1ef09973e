//! Subscription notifications (FHIR R4 rest-hook), delivered from the sync queue like any
//! change (queue target `subscription:{id}`): with a payload type, each watched resource
//! of the changed contract is `PUT` to `{endpoint}/{type}/{id}`; without, one empty
//! `POST` to the endpoint. The channel's `header` entries are sent with each request.
//! Each notification is checked against the operator's rules again (see
//! [`super::outbound`]): the endpoint allowed, its host name resolving only to public
//! addresses (the call goes to the address checked), the headers allowed, no redirects.

use std::time::Duration;

use serde_json::Value;

use super::outbound::SubscriptionSettings;
use super::retry::Failure;
use crate::domain::Version;
use crate::fhir::Profile;
use crate::fhir::stored::resources_of;
use crate::store::{Claim, Store, StoreError};

/// What a subscription in `error` says: that delivery failed, not what its endpoint
/// answered (that would tell a caller about the gateway's network).
pub const FAILED: &str = "notifications could not be delivered to the endpoint; the operator's dead letters have the details";

/// Where notifications may go, and how long one may take.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    pub allowed: &'a SubscriptionSettings,
    pub timeout: Duration,
}

/// The queue target of a subscription's notifications.
pub fn queue_target(subscription: &str) -> String {
    format!("subscription:{subscription}")
}

/// Tells the subscriber of `claim` about the contract as it is now; the version told.
/// `Ok(None)`: the subscription is off, nothing to tell.
pub async fn notify(
    store: &Store,
    outbound: &Outbound<'_>,
    profile: &Profile,
    claim: &Claim,
) -> Result<Option<Version>, Failure> {
    let failed = |e: StoreError| Failure::Transient {
        error: format!("reading the store: {e}"),
        after: None,
        down: false,
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
    let refused = |why: String| Failure::Permanent {
        status: None,
        error: format!("refused: {why}"),
        outcome: None,
    };
    let allowed = outbound.allowed;
    let url = allowed
        .endpoint(channel["endpoint"].as_str().unwrap_or_default())
        .map_err(|why| refused(format!("the endpoint {why}")))?;
    let address = allowed.address(&url).await.map_err(refused)?;
    let endpoint = url.as_str().trim_end_matches('/');
    let watched = resource["criteria"]
        .as_str()
        .and_then(|c| c.split('?').next())
        .unwrap_or_default();
    let headers: Vec<&str> = channel["header"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let headers = allowed
        .headers(&headers)
        .map_err(|(_, why)| refused(format!("a header: {why}")))?;
    let mut client = reqwest::Client::builder()
        .timeout(outbound.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pkgw/", env!("CARGO_PKG_VERSION")));
    if let Some((host, address)) = &address {
        // To the address checked, not to whatever a second lookup would say.
        client = client.resolve(host, *address);
    }
    let http = client
        .build()
        .map_err(|e| refused(format!("no client: {e}")))?;
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
                down: false,
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
