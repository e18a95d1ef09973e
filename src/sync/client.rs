//! Talking to one target over HTTP: its FHIR base, its authentication (a fixed bearer
//! token, or OAuth2 client credentials with the token cached until shortly before it
//! expires), a timeout on every request, and answers sorted into success and
//! [`Failure`].

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, ETAG, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::retry::Failure;
use super::settings::{AuthSettings, Target};

const FHIR_JSON: &str = "application/fhir+json";

/// A token is renewed this long before the target said it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// An answer the target gave: its status, `ETag` and body (if JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub body: Option<Value>,
}

/// The HTTP client of one target.
#[derive(Debug)]
pub struct TargetClient {
    http: reqwest::Client,
    base_url: String,
    auth: AuthSettings,
    token: Mutex<Option<(String, Instant)>>,
}

impl TargetClient {
    pub fn new(target: &Target, timeout: Duration) -> Result<TargetClient, String> {
        let http = super::outbound::operator_client(timeout)
            .build()
            .map_err(|e| format!("target {}: {e}", target.name))?;
        Ok(TargetClient {
            http,
            base_url: target.base_url.clone(),
            auth: target.auth.clone(),
            token: Mutex::new(None),
        })
    }

    /// Sends a request to `path` (relative to the base). Answers with a 2xx status are
    /// `Ok`; everything else — other statuses, timeouts, refused connections — is a
    /// [`Failure`], except the statuses in `accept` (e.g. 412 or 404, which the caller
    /// handles).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
        accept: &[StatusCode],
    ) -> Result<Answer, Failure> {
        let url = if path.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}/{path}", self.base_url)
        };
        let mut request = self.http.request(method, &url).header("accept", FHIR_JSON);
        if let Some(token) = self.bearer().await? {
            request = request.bearer_auth(token);
        }
        if let Some(tag) = if_match {
            request = request.header(IF_MATCH, tag);
        }
        // The trace of the change being delivered goes on (see `crate::trace`).
        if let Some(span) = crate::trace::current() {
            request = request.header("traceparent", span.header());
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, FHIR_JSON)
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| Failure::Transient {
            error: describe(&e),
            after: None,
            down: true,
        })?;
        let status = response.status();
        let etag = header(&response, ETAG);
        let retry_after = header(&response, RETRY_AFTER);
        let bytes = response.bytes().await.map_err(|e| Failure::Transient {
            error: describe(&e),
            after: None,
            down: true,
        })?;
        if status.is_success() || accept.contains(&status) {
            Ok(Answer {
                status,
                etag,
                body: serde_json::from_slice(&bytes).ok(),
            })
        } else {
            Err(Failure::from_status(
                status.as_u16(),
                &bytes,
                retry_after.as_deref(),
            ))
        }
    }

    /// A search Bundle's `next` link as a path relative to the base, if it has one under
    /// the base.
    pub fn next_page(&self, bundle: &Value) -> Option<String> {
        bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .and_then(|url| url.strip_prefix(&self.base_url))
            .map(|rest| rest.trim_start_matches('/').to_owned())
    }

    /// The bearer token to send, fetching (and caching) an OAuth2 token when needed.
    async fn bearer(&self) -> Result<Option<String>, Failure> {
        match &self.auth {
            AuthSettings::None => Ok(None),
            AuthSettings::Bearer { token } => Ok(Some(token.expose().to_owned())),
            AuthSettings::Oauth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let mut cached = self.token.lock().await;
                if let Some((token, until)) = cached.as_ref()
                    && Instant::now() < *until
                {
                    return Ok(Some(token.clone()));
                }
                let mut form = vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose()),
                ];
                if let Some(scope) = scope {
                    form.push(("scope", scope.as_str()));
                }
                let failed = |error: String| Failure::Transient {
                    error,
                    after: None,
                    down: true,
                };
                let response = self
                    .http
                    .post(token_url)
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| failed(format!("token endpoint: {}", describe(&e))))?;
                let status = response.status();
                if !status.is_success() {
                    let body = response.bytes().await.unwrap_or_default();
                    return Err(match Failure::from_status(status.as_u16(), &body, None) {
                        Failure::Permanent { status, .. } => Failure::Permanent {
                            status,
                            error: format!("the token endpoint refused the client ({status:?})"),
                            outcome: None,
                        },
                        transient => transient,
                    });
                }
                let token: Value = response
                    .json()
                    .await
                    .map_err(|e| failed(format!("token endpoint: {}", describe(&e))))?;
                let access = token["access_token"]
                    .as_str()
                    .ok_or_else(|| failed("token endpoint: no access_token in the answer".into()))?
                    .to_owned();
                let lifetime = Duration::from_secs(token["expires_in"].as_u64().unwrap_or(300));
                *cached = Some((
                    access.clone(),
                    Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
                ));
                Ok(Some(access))
            }
        }
    }
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A transport error in words, without the URL's query (it could hold identifiers).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}
