//! The outside world for sync tests: a separate, third-party FHIR server process playing
//! an EHR or a portal (`sekmet-fhir`, installed by `scripts/test.sh`), and a proxy in
//! front of it that injects the network's faults (error statuses, `Retry-After`, an
//! answer lost after the target applied the write, a request overtaken by later ones).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use pkgw::domain::Contract;
use pkgw::fhir::Profile;
use pkgw::fhir::stored::resources_of;
use pkgw::store::{Record, Store};
use pkgw::sync::{
    AuthSettings, Engine, Mode, SyncSettings, TargetSettings, WriteBy, targets_from_settings,
};
use serde_json::Value;

/// The sekmet executable: `PKGW_FHIR_PEER`, or the virtual environment under `target/`.
fn sekmet() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("PKGW_FHIR_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/fhir-peer/bin/sekmet"));
    assert!(
        path.exists(),
        "no FHIR peer at {}: run scripts/test.sh (it installs sekmet-fhir), or set PKGW_FHIR_PEER",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running FHIR server process; killed when dropped. It keeps its data in a file, so
/// it can be stopped and started again with everything it held.
#[derive(Debug)]
pub struct FhirPeer {
    pub base: String,
    port: u16,
    db: PathBuf,
    _dir: tempfile::TempDir,
    child: Option<Child>,
    http: reqwest::Client,
}

impl FhirPeer {
    pub async fn start() -> FhirPeer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut peer = FhirPeer {
            base: format!("http://127.0.0.1:{port}/fhir"),
            port,
            db: dir.path().join("peer.db"),
            _dir: dir,
            child: None,
            http: reqwest::Client::new(),
        };
        peer.resume().await;
        peer
    }

    /// Starts the process again (after [`FhirPeer::stop`]), on the same port and data.
    pub async fn resume(&mut self) {
        // sekmet's workflow simulator plays the EHR's staff: two seconds after an
        // Appointment arrives "proposed" it books it. The tests compare what the gateway
        // sent with what the peer holds, so the peer keeps exactly what it is sent.
        let config = self.db.with_file_name("settings.yaml");
        std::fs::write(&config, "simulator:\n  enabled: false\n").unwrap();
        let child = Command::new(sekmet())
            .args([
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
            ])
            .env("SEKMET_BASE_URL", &self.base)
            .env("SEKMET_DB", &self.db)
            .env("SEKMET_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = self
                .http
                .get(format!("{}/metadata", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "the FHIR peer did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process: the target is down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `GET {base}/{path}`: the status and the body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/{path}", self.base))
            .header("accept", "application/fhir+json")
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `PUT {base}/{path}` of a resource, as another system changing the target's copy.
    pub async fn put(&self, path: &str, body: &Value) -> StatusCode {
        let response = self
            .http
            .put(format!("{}/{path}", self.base))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        StatusCode::from_u16(response.status().as_u16()).unwrap()
    }

    /// `DELETE {base}/{path}`.
    pub async fn delete(&self, path: &str) -> StatusCode {
        let response = self
            .http
            .delete(format!("{}/{path}", self.base))
            .send()
            .await
            .unwrap();
        StatusCode::from_u16(response.status().as_u16()).unwrap()
    }

    /// How many versions the target's history holds of a resource.
    pub async fn versions(&self, path: &str) -> usize {
        let (_, history) = self.get(&format!("{path}/_history")).await;
        history["entry"].as_array().map_or(0, Vec::len)
    }
}

impl Drop for FhirPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a target's copy holds everything the gateway sent (servers add `meta`).
pub fn holds(theirs: &Value, ours: &Value) -> bool {
    ours.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "meta")
        .all(|(k, v)| theirs.get(k) == Some(v))
}

/// A fault the proxy injects into requests whose method and path (`PUT /fhir/CarePlan/…`)
/// contain `matching`.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After`, if given) without forwarding.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Answer 400 with an OperationOutcome, as a target refusing the content.
    Refuse { diagnostics: &'static str },
    /// Forward the request after this long: a slow network.
    Delay(Duration),
    /// Forward the request (the target applies it), then hold the answer back this long
    /// (longer than the gateway waits: its answer is lost).
    LoseAnswer { hold: Duration },
    /// Hold the request until the test opens the gate, then forward it: a request
    /// overtaken on the way by later ones.
    Hold(Gate),
}

/// Where [`Fault::Hold`] keeps a request: the test waits until it has arrived, does
/// what should overtake it, and opens the gate.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    arrived: Arc<tokio::sync::Notify>,
    open: Arc<tokio::sync::Notify>,
}

impl Gate {
    /// Waits until a request is held at the gate.
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets the held request through.
    pub fn open(&self) {
        self.open.notify_one();
    }
}

#[derive(Debug)]
struct Rule {
    matching: String,
    fault: Fault,
    /// How many more requests it applies to.
    times: usize,
}

/// An HTTP proxy in front of a target, on its own port.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    pub base: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    /// Every request seen: method and path.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// The `Authorization` header of every request seen.
    pub authorizations: Arc<Mutex<Vec<Option<String>>>>,
    /// The `traceparent` header of every request seen.
    pub traceparents: Arc<Mutex<Vec<Option<String>>>>,
    /// The rate the target takes, if limited (see [`FaultProxy::limit`]).
    rate: Arc<Mutex<Option<RateLimit>>>,
}

/// At most `per_sec` requests in each second; the rest get 429 with `Retry-After: 1`.
#[derive(Debug)]
struct RateLimit {
    per_sec: usize,
    window: Instant,
    taken: usize,
    refused: usize,
}

impl FaultProxy {
    /// A proxy forwarding to the FHIR base `upstream`.
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/fhir", listener.local_addr().unwrap());
        let proxy = FaultProxy {
            base,
            rules: Arc::default(),
            seen: Arc::default(),
            authorizations: Arc::default(),
            traceparents: Arc::default(),
            rate: Arc::default(),
        };
        let (state, upstream) = (proxy.clone(), upstream.trim_end_matches("/fhir").to_owned());
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (state, upstream, http) = (state.clone(), upstream.clone(), http.clone());
                async move {
                    state
                        .handle(&http, &upstream, method, uri, headers, body)
                        .await
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        proxy
    }

    /// Injects `fault` into the next `times` requests whose method and path contain
    /// `matching`.
    pub fn inject(&self, matching: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            matching: matching.to_owned(),
            fault,
            times,
        });
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// From now on the target takes at most `per_sec` requests a second (in windows of a
    /// second); each request over that gets 429 with `Retry-After: 1`.
    pub fn limit(&self, per_sec: usize) {
        *self.rate.lock().unwrap() = Some(RateLimit {
            per_sec,
            window: Instant::now(),
            taken: 0,
            refused: 0,
        });
    }

    /// How many requests the rate limit has refused.
    pub fn throttled(&self) -> usize {
        self.rate.lock().unwrap().as_ref().map_or(0, |r| r.refused)
    }

    /// Whether the rate limit refuses this request (counting it either way).
    fn over_limit(&self) -> bool {
        let mut rate = self.rate.lock().unwrap();
        let Some(rate) = rate.as_mut() else {
            return false;
        };
        if rate.window.elapsed() >= Duration::from_secs(1) {
            rate.window = Instant::now();
            rate.taken = 0;
        }
        if rate.taken < rate.per_sec {
            rate.taken += 1;
            return false;
        }
        rate.refused += 1;
        true
    }

    async fn handle(
        &self,
        http: &reqwest::Client,
        upstream: &str,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        self.seen.lock().unwrap().push(format!("{method} {path}"));
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        self.authorizations
            .lock()
            .unwrap()
            .push(header("authorization"));
        self.traceparents
            .lock()
            .unwrap()
            .push(header("traceparent"));
        if self.over_limit() {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
        }
        let fault = {
            let mut rules = self.rules.lock().unwrap();
            let rule = rules
                .iter_mut()
                .find(|r| r.times > 0 && format!("{method} {path}").contains(&r.matching));
            rule.map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
        };
        match fault {
            Some(Fault::Status {
                status,
                retry_after,
            }) => {
                let mut response = StatusCode::from_u16(status).unwrap().into_response();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", seconds.to_string().parse().unwrap());
                }
                return response;
            }
            Some(Fault::Refuse { diagnostics }) => {
                let outcome = serde_json::json!({ "resourceType": "OperationOutcome", "issue": [{ "severity": "error", "code": "invalid", "diagnostics": diagnostics }] });
                return (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "application/fhir+json")],
                    outcome.to_string(),
                )
                    .into_response();
            }
            Some(Fault::Delay(wait)) => tokio::time::sleep(wait).await,
            Some(Fault::Hold(gate)) => {
                gate.arrived.notify_one();
                gate.open.notified().await;
            }
            Some(Fault::LoseAnswer { hold }) => {
                let _ = forward(http, upstream, &method, &path, &headers, body).await;
                tokio::time::sleep(hold).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
            None => {}
        }
        forward(http, upstream, &method, &path, &headers, body)
            .await
            .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e).into_response())
    }
}

async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, String> {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut request = http.request(method, format!("{upstream}{path}")).body(body);
    for name in [
        "content-type",
        "accept",
        "if-match",
        "if-none-exist",
        "authorization",
    ] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            request = request.header(name, v);
        }
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut out = HeaderMap::new();
    for name in ["content-type", "etag", "location", "retry-after"] {
        if let Some(v) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            out.insert(name, v.parse().unwrap());
        }
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, out, bytes).into_response())
}

// Sync engines over a store, for tests: fast polling, short leases, small backoff.

pub fn settings() -> SyncSettings {
    SyncSettings {
        enabled: true,
        poll_interval_ms: 20,
        batch_size: 50,
        concurrency: 4,
        lease_secs: 5,
        request_timeout_secs: 1,
        backoff_initial_ms: 50,
        backoff_max_secs: 1,
        give_up_after_secs: 0,
    }
}

pub fn target(name: &str, base: &str, units: &[&str]) -> TargetSettings {
    TargetSettings {
        name: name.into(),
        base_url: base.into(),
        auth: AuthSettings::None,
        profile: "default".into(),
        units: units.iter().map(|u| (*u).to_owned()).collect(),
        contracts: Vec::new(),
        resources: Vec::new(),
        mode: Mode::Push,
        write: WriteBy::Id,
        pull_interval_secs: 0,
        journal_note: false,
        enabled: true,
    }
}

pub fn engine(store: &Store, targets: &[TargetSettings]) -> Engine {
    Engine::new(
        store.clone(),
        targets_from_settings(targets).unwrap(),
        settings(),
    )
    .unwrap()
}

/// Runs the engine until every target's queue is empty (retries included).
pub async fn settle(engine: &Engine, store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        engine.run_until_idle().await.unwrap();
        let mut queued = 0;
        for t in engine.targets() {
            queued += store.queue_status(&t.name).await.unwrap().queued;
        }
        if queued == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "sync did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn unit_of(contract: &Contract) -> String {
    contract
        .responsible_unit
        .as_ref()
        .unwrap()
        .hsa_id
        .to_string()
}

/// Asserts the peer holds every resource of `record` as the gateway maps it.
pub async fn assert_holds(peer: &FhirPeer, record: &Record, profile: &Profile) {
    let ours = resources_of(record, profile);
    for r in ours.all() {
        let path = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        let (status, theirs) = peer.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path} at {}", peer.base);
        assert!(
            holds(&theirs, r),
            "{path}: the target's copy differs\nours: {r}\ntheirs: {theirs}"
        );
    }
}
