//! The guard in front of every handler: who is calling (bearer JWT, see [`crate::auth`]),
//! whether their scopes allow the interaction, whether they are within their rate, and
//! afterwards the audit row and the access log line. A request whose write committed
//! has its row already, in the write's own transaction ([`RequestTrace`]): the guard
//! writes one only when the status answered is not the one that row gives.
//!
//! What a request needs is what its route declared where it was registered
//! ([`super::route`]): `GET /fhir/CarePlan/{id}` needs `CarePlan` **r**, `POST
//! /fhir/CarePlan` needs **c**, a search **s**, and so on; `/health`, `/ready`,
//! `/metrics` and `/fhir/metadata` need nothing; a path no route answers needs a valid
//! token (and then gets 404).
//! The handler then runs [`crate::auth::acting_as`] the caller, so the places that find
//! contracts keep a patient token to its own compartment.
//!
//! The access log names the route (its template, not the URL, whose query may hold a
//! personnummer), the status, the time taken and a hash of the client, never personal
//! data.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;

use super::fhir::FhirError;
use super::route::need;
use super::{ApiError, AppState};
use crate::auth::{Context, Letter, Principal, TokenError, Verifier, acting_as};
use crate::store::{AccessRecord, RequestTrace};

/// What a response gave, for its audit row, when the handler knows it (so the guard need
/// not read the body): the resources (`Type/id`) and the persons they are about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditInfo {
    pub resources: Vec<String>,
    pub patients: Vec<String>,
}

/// How callers are authenticated.
#[derive(Debug)]
pub enum Authentication {
    /// Every caller may do everything (a closed network, tests). The client is named by
    /// `X-Source`, or `anonymous`.
    Off,
    /// Bearer JWTs checked by the verifier.
    Jwt(Box<Verifier>),
}

/// Per-client rate limits.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimits")
    }
}

impl RateLimits {
    /// `per_sec` requests a second on average, `burst` at once; `None` when `per_sec`
    /// is 0 (no limit).
    pub fn new(per_sec: u32, burst: u32) -> Option<RateLimits> {
        let per_sec = NonZeroU32::new(per_sec)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
        Some(RateLimits {
            limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
        })
    }

    /// `Err(seconds to wait)` when `client` is over its rate.
    fn check(&self, client: &str) -> Result<(), u64> {
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&client.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
    }
}

/// How many requests each client may have in flight at once, so one client's slow or
/// many requests cannot take every place among those handled at once
/// (`server.max_concurrent_requests`): over its share a request gets 429 at once.
#[derive(Debug)]
pub struct ClientSlots {
    most: usize,
    clients: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl ClientSlots {
    /// At most `most` requests in flight per client (at least one).
    pub fn new(most: usize) -> ClientSlots {
        ClientSlots {
            most: most.max(1),
            clients: std::sync::Mutex::default(),
        }
    }

    /// A place for one request of `client`, held until it is dropped; `None` when the
    /// client has all its places taken.
    fn take(&self, client: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let semaphore = {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            if clients.len() > 10_000 {
                // Forget the clients with nothing in flight.
                clients.retain(|_, s| s.available_permits() < self.most);
            }
            clients
                .entry(client.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.most)))
                .clone()
        };
        semaphore.try_acquire_owned().ok()
    }
}

/// What a request needs from its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health, readiness, metrics, the CapabilityStatement.
    Open,
    /// A letter on a resource type.
    Scope {
        resource: String,
        letter: Letter,
        interaction: &'static str,
        /// Which tokens with the letter may use it.
        whom: Whom,
    },
    /// Any valid token; the handler checks each part (transaction and batch Bundles).
    Entries,
}

/// The system a request's changes come from, when a token says it (its client).
#[derive(Debug, Clone)]
pub struct Source(pub String);

/// Which tokens may use an interaction, beyond the scope letter it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    /// Any token with the letter.
    Any,
    /// Not a token limited to one patient (reports that span many persons).
    NoPatients,
    /// Only a `system/` grant (the bulk export of everyone's contracts).
    Systems,
}

/// Whether the current caller's scopes allow one entry of a batch or transaction Bundle
/// (`method` and `url` as in `Bundle.entry.request`).
pub(crate) fn entry_allowed(caller: &Principal, method: &str, url: &str) -> Result<(), FhirError> {
    let url = url.split_once("/fhir/").map_or(url, |(_, rest)| rest);
    let route = url.split_once('?').map_or(url, |(r, _)| r);
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    match allowed(
        caller,
        &need(&method, &format!("/fhir/{}", route.trim_start_matches('/'))),
    ) {
        Ok(()) => Ok(()),
        Err(Refused::Scope(needed)) => Err(FhirError::Forbidden(format!(
            "the token's scopes do not allow this entry: it needs {needed}"
        ))),
        Err(_) => Err(FhirError::Forbidden("not allowed".into())),
    }
}

/// Resource types whose content is no one's personal data (reads are not audited).
const NOT_PERSONAL: &[&str] = &["Questionnaire"];

/// The guard, as an axum middleware over [`AppState`].
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let needed = need(&method, &path);
    if needed == Need::Open {
        return next.run(request).await;
    }
    let fhir = path.starts_with("/fhir");
    let principal = match authenticate(&state, request.headers()).await {
        Ok(p) => p,
        Err(refused) => {
            // Without a valid token there is no client: the address is held to the rate.
            // (A NUL cannot be in a token's client_id, so the keys cannot meet.)
            let refused = match (&state.rate_limits, &remote) {
                (Some(limits), Some(address)) => match limits.check(&format!("\0{address}")) {
                    Err(wait) => Refused::TooMany(wait),
                    Ok(()) => refused,
                },
                _ => refused,
            };
            log_access(&state, &method, &route, refused.status(), started, "-");
            return refused.respond(fhir);
        }
    };
    let client_tag = hash(&principal.client);
    // Over its rate, or with all its places among the requests in flight taken: 429.
    let over_rate = state
        .rate_limits
        .as_ref()
        .and_then(|limits| limits.check(&principal.client).err());
    let place = match over_rate {
        None => state.client_slots.take(&principal.client),
        Some(_) => None,
    };
    let Some(_place) = place else {
        log_access(
            &state,
            &method,
            &route,
            StatusCode::TOO_MANY_REQUESTS,
            started,
            &client_tag,
        );
        return Refused::TooMany(over_rate.unwrap_or(1)).respond(fhir);
    };
    if let Err(refused) = allowed(&principal, &needed) {
        log_access(
            &state,
            &method,
            &route,
            refused.status(),
            started,
            &client_tag,
        );
        let nothing = AuditInfo::default();
        audit(
            &state,
            &principal,
            &needed,
            &method,
            refused.status(),
            nothing,
            remote,
        )
        .await;
        return refused.respond(fhir);
    }
    // The authenticated client is the source of what it changes, exactly as its token
    // names it (any UTF-8): a header it sends cannot say otherwise.
    if matches!(*state.authentication, Authentication::Jwt(_)) {
        request.headers_mut().remove("x-source");
        let client = Source(principal.client.clone());
        request.extensions_mut().insert(client);
    }
    // A single interaction's writes record the request in their own transaction
    // (a transaction or batch Bundle's answer may give more than it wrote: its row is
    // the guard's). Reads and searches write nothing: they carry no trace.
    let writes = matches!(
        needed,
        Need::Scope {
            letter: Letter::Create | Letter::Update | Letter::Delete,
            ..
        }
    );
    let trace =
        writes.then(|| Arc::new(RequestTrace::new(principal.subject.clone(), remote.clone())));
    if let Some(trace) = &trace {
        request.extensions_mut().insert(trace.clone());
    }
    let principal = Arc::new(principal);
    request.extensions_mut().insert(principal.clone());
    let response = acting_as(principal.clone(), next.run(request)).await;
    let status = response.status();
    let recorded = trace.and_then(|t| t.recorded());
    let personal = match &needed {
        Need::Scope { resource, .. } => !NOT_PERSONAL.contains(&resource.as_str()),
        _ => true,
    };
    let response = if personal {
        let (mut parts, mut body) = response.into_parts();
        // Unless the request's write already recorded it, with the status answered.
        if recorded != Some(status.as_u16()) {
            let known = parts.extensions.remove::<AuditInfo>();
            let gathered = parts.extensions.remove::<Given>();
            let given;
            (body, given) = match (known, gathered) {
                (Some(known), _) => (body, known),
                (None, Some(gathered)) => (body, gathered.audit_info(&state.profile)),
                (None, None) => read_given(&state, &parts.headers, body).await,
            };
            audit(&state, &principal, &needed, &method, status, given, remote).await;
        }
        parts
            .headers
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Response::from_parts(parts, body)
    } else {
        response
    };
    log_access(&state, &method, &route, status, started, &client_tag);
    response
}

/// Why a request is turned away before its handler.
enum Refused {
    NoToken,
    BadToken(TokenError),
    NoPatient,
    Scope(String),
    TooMany(u64),
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Refused::NoToken | Refused::BadToken(_) | Refused::NoPatient => {
                StatusCode::UNAUTHORIZED
            }
            Refused::Scope(_) => StatusCode::FORBIDDEN,
            Refused::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn respond(self, fhir: bool) -> Response {
        let (message, challenge, retry) = match &self {
            Refused::NoToken => (
                "send a bearer token: Authorization: Bearer <JWT>".to_owned(),
                Some("Bearer realm=\"pkgw\"".to_owned()),
                None,
            ),
            Refused::BadToken(e) => (
                e.to_string(),
                Some(format!(
                    "Bearer realm=\"pkgw\", error=\"invalid_token\", error_description=\"{e}\""
                )),
                None,
            ),
            Refused::NoPatient => (
                "a token with patient/ scopes must carry a patient claim".to_owned(),
                Some("Bearer realm=\"pkgw\", error=\"invalid_token\"".to_owned()),
                None,
            ),
            Refused::Scope(needed) => (
                format!("the token's scopes do not allow this: it needs {needed}"),
                Some(format!(
                    "Bearer realm=\"pkgw\", error=\"insufficient_scope\", scope=\"{needed}\""
                )),
                None,
            ),
            Refused::TooMany(wait) => (String::new(), None, Some(*wait)),
        };
        let status = self.status();
        let mut response = match (fhir, status) {
            (true, StatusCode::UNAUTHORIZED) => FhirError::Unauthorized(message).into_response(),
            (true, StatusCode::FORBIDDEN) => FhirError::Forbidden(message).into_response(),
            (true, _) => FhirError::TooManyRequests(retry.unwrap_or(1)).into_response(),
            (false, StatusCode::UNAUTHORIZED) => ApiError::Unauthorized(message).into_response(),
            (false, StatusCode::FORBIDDEN) => ApiError::Forbidden(message).into_response(),
            (false, _) => ApiError::TooManyRequests(retry.unwrap_or(1)).into_response(),
        };
        if let Some(challenge) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(wait) = retry {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait.max(1)));
        }
        response
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, Refused> {
    match &*state.authentication {
        Authentication::Off => {
            let client = headers
                .get("x-source")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("anonymous");
            Ok(Principal::unrestricted(client))
        }
        Authentication::Jwt(verifier) => {
            let token = headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or(Refused::NoToken)?;
            let principal = verifier.verify(token).await.map_err(Refused::BadToken)?;
            if principal.scopes.has_patient_context() && principal.patient.is_none() {
                return Err(Refused::NoPatient);
            }
            Ok(principal)
        }
    }
}

fn allowed(principal: &Principal, needed: &Need) -> Result<(), Refused> {
    match needed {
        Need::Open | Need::Entries => Ok(()),
        Need::Scope {
            resource,
            letter,
            whom,
            ..
        } => {
            if !principal.scopes.allows(resource, *letter) {
                return Err(Refused::Scope(format!("{resource}.{letter}")));
            }
            match whom {
                Whom::NoPatients if principal.compartment().is_some() => Err(Refused::Scope(
                    format!("system/{resource}.{letter} or user/{resource}.{letter}"),
                )),
                Whom::Systems
                    if !principal
                        .scopes
                        .allows_as(Context::System, resource, *letter) =>
                {
                    Err(Refused::Scope(format!("system/{resource}.{letter}")))
                }
                _ => Ok(()),
            }
        }
    }
}

/// What a JSON answer gave, read from its body (which is handed back whole): the
/// resources in it and the persons they are about (every personnummer or
/// samordningsnummer identifier in it). Other answers gave nothing to name.
async fn read_given(state: &AppState, headers: &HeaderMap, body: Body) -> (Body, AuditInfo) {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json") && !t.contains("ndjson"));
    if !is_json {
        return (body, AuditInfo::default());
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (Body::empty(), AuditInfo::default());
    };
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (
        Body::from(bytes),
        Given::of(&value).audit_info(&state.profile),
    )
}

/// Records who was given what.
async fn audit(
    state: &AppState,
    principal: &Principal,
    needed: &Need,
    method: &Method,
    status: StatusCode,
    known: AuditInfo,
    remote: Option<String>,
) {
    let interaction = match needed {
        Need::Scope { interaction, .. } => *interaction,
        _ if method == Method::POST => "transaction",
        _ => "operation",
    };
    let AuditInfo {
        resources,
        mut patients,
    } = known;
    patients.sort();
    patients.dedup();
    let record = AccessRecord {
        client: principal.client.clone(),
        subject: principal.subject.clone(),
        interaction: interaction.to_owned(),
        status: status.as_u16(),
        resources,
        patients,
        remote,
    };
    if let Err(e) = state.audit.record(record).await {
        tracing::error!(error = %e, "could not write the audit row");
    }
}

/// What a JSON answer gives, gathered where the answer is built from its `Value`
/// ([`crate::api::fhir::respond::fhir_json`] attaches it to the response), so the guard
/// need not parse the body again: the `Type/id` of every resource in it, and every
/// identifier and native patient id, which the guard keeps when they name a person.
#[derive(Debug, Clone, Default)]
pub struct Given {
    resources: Vec<String>,
    identifiers: Vec<(String, String)>,
    patient_ids: Vec<String>,
}

impl Given {
    pub fn of(value: &Value) -> Given {
        let mut given = Given::default();
        given.collect(value);
        given
    }

    /// A resource given as serialized bytes (a contract's, from the read cache), known by
    /// its `Type/id` and the person whose contract it is: recorded as a read of it is,
    /// without parsing it.
    pub fn resource_about(&mut self, reference: String, person: &str) {
        if self.resources.len() < 1000 {
            self.resources.push(reference);
        }
        self.patient_ids.push(person.to_owned());
    }

    /// Everything `v` gives, gathered as [`Given::of`] does.
    pub fn collect(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                if let (Some(kind), Some(id)) = (
                    map.get("resourceType").and_then(Value::as_str),
                    map.get("id").and_then(Value::as_str),
                ) && self.resources.len() < 1000
                {
                    self.resources.push(format!("{kind}/{id}"));
                }
                if let Some(ident) = map.get("identifier")
                    && let (Some(system), Some(value)) = (
                        ident.get("system").and_then(Value::as_str),
                        ident.get("value").and_then(Value::as_str),
                    )
                {
                    self.identifiers.push((system.to_owned(), value.to_owned()));
                }
                // The native contract JSON: `"patient": { "id": "…" }`.
                if let Some(id) = map
                    .get("patient")
                    .and_then(|p| p.get("id"))
                    .and_then(Value::as_str)
                {
                    self.patient_ids.push(id.to_owned());
                }
                for value in map.values() {
                    self.collect(value);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.collect(item);
                }
            }
            _ => {}
        }
    }

    /// The resources, and the persons among the identifiers (by the profile's
    /// personnummer and samordningsnummer systems) and the patient ids.
    fn audit_info(self, profile: &crate::fhir::Profile) -> AuditInfo {
        let identified = self
            .identifiers
            .into_iter()
            .filter_map(|(system, value)| profile.identifiers.person(&system, &value).ok())
            .map(|person| person.to_string());
        let native = self
            .patient_ids
            .into_iter()
            .filter(|id| crate::domain::PersonId::parse(id).is_ok());
        AuditInfo {
            resources: self.resources,
            patients: identified.chain(native).collect(),
        }
    }
}

/// Logs one answered request and counts it for `/metrics`.
fn log_access(
    state: &AppState,
    method: &Method,
    route: &str,
    status: StatusCode,
    started: Instant,
    client: &str,
) {
    state
        .request_metrics
        .observe(method, route, status, started.elapsed());
    tracing::info!(
        %method,
        route,
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        client,
        "request"
    );
}

/// A short, stable tag for a client in logs (FNV-1a; not for secrets).
fn hash(s: &str) -> String {
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(resource: &str, letter: Letter) -> (String, Letter) {
        (resource.to_owned(), letter)
    }

    fn of(method: Method, path: &str) -> Option<(String, Letter)> {
        match need(&method, path) {
            Need::Scope {
                resource, letter, ..
            } => Some((resource, letter)),
            _ => None,
        }
    }

    #[test]
    fn each_interaction_needs_its_letter() {
        use Letter::*;
        let cases = [
            (Method::GET, "/fhir/CarePlan/abc", scope("CarePlan", Read)),
            (
                Method::GET,
                "/fhir/CarePlan/abc/_history/2",
                scope("CarePlan", Read),
            ),
            (
                Method::GET,
                "/fhir/CarePlan/abc/_history",
                scope("CarePlan", Read),
            ),
            (
                Method::GET,
                "/fhir/Appointment",
                scope("Appointment", Search),
            ),
            (
                Method::POST,
                "/fhir/CareTeam/_search",
                scope("CareTeam", Search),
            ),
            (Method::GET, "/fhir/Goal/_history", scope("Goal", Search)),
            (Method::POST, "/fhir/CarePlan", scope("CarePlan", Create)),
            (Method::PUT, "/fhir/CarePlan", scope("CarePlan", Update)),
            (Method::PUT, "/fhir/CarePlan/abc", scope("CarePlan", Update)),
            (
                Method::DELETE,
                "/fhir/CarePlan/abc",
                scope("CarePlan", Delete),
            ),
            (
                Method::GET,
                "/fhir/CarePlan/$coordinated-plan",
                scope("CarePlan", Read),
            ),
            (
                Method::POST,
                "/fhir/CarePlan/abc/$transfer",
                scope("CarePlan", Update),
            ),
            (Method::GET, "/fhir/AuditEvent", scope("AuditEvent", Search)),
            (
                Method::GET,
                "/fhir/$samsyn",
                scope("QuestionnaireResponse", Search),
            ),
            (Method::GET, "/fhir/$export", scope("*", Read)),
            (Method::GET, "/api/contracts/abc", scope("CarePlan", Read)),
            (Method::PUT, "/api/contracts/abc", scope("CarePlan", Update)),
            (Method::POST, "/api/contracts", scope("CarePlan", Create)),
            (Method::GET, "/contracts/abc/print", scope("CarePlan", Read)),
        ];
        for (method, path, expected) in cases {
            assert_eq!(of(method.clone(), path), Some(expected), "{method} {path}");
        }
        for open in ["/health", "/ready", "/metrics", "/fhir/metadata"] {
            assert_eq!(need(&Method::GET, open), Need::Open, "{open}");
        }
        assert_eq!(need(&Method::POST, "/fhir"), Need::Entries);
    }
}
