//! `spawn_app`: the gateway on a real socket (port 0) over a fresh database.

#![allow(clippy::expect_used)]

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use pkgw::api::{self, AppState, Limits};
use pkgw::store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::TestDb;

/// A running gateway; stopped when dropped.
#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stores the fixture contract `name` through the contract API (no token: for
    /// gateways without authentication); its id.
    pub async fn create_contract(&self, name: &str) -> String {
        let response = self
            .client
            .post(self.url("/api/contracts"))
            .json(&serde_json::to_value(super::fixture(name)).expect("a fixture is JSON"))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let body: serde_json::Value = response.json().await.expect("JSON");
        body["id"].as_str().expect("an id").to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves the gateway over `db` on 127.0.0.1 with an OS-chosen port.
pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_app_with(db, Limits::default()).await
}

pub async fn spawn_app_with(db: &TestDb, limits: Limits) -> TestApp {
    let store = db.store().await;
    spawn_state(AppState::new(store), limits).await
}

/// Keeps a copy of every FHIR JSON answer in `dir` (one file per distinct answer), for
/// `scripts/test.sh` to check with both FHIR validators after the tests.
async fn keep_answer(dir: std::path::PathBuf, response: Response) -> Response {
    let is_fhir = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+json"));
    if !is_fhir {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    keep_in(&dir, &bytes);
    Response::from_parts(parts, Body::from(bytes))
}

/// One file per distinct answer in `dir`, named by its hash.
fn keep_in(dir: &std::path::Path, bytes: &[u8]) {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let file = dir.join(format!("{:016x}.json", hasher.finish()));
    if !bytes.is_empty() && std::fs::create_dir_all(dir).is_ok() {
        let _ = std::fs::write(file, bytes);
    }
}

/// Keeps `resource` — FHIR the gateway sent elsewhere (a sync target's copy, say) — for
/// both FHIR validators beside the gateway's own answers (see `keep_answer`).
#[allow(dead_code)]
pub fn keep_for_validation(resource: &serde_json::Value) {
    if let Some(dir) = std::env::var_os("PKGW_TEST_ANSWERS") {
        keep_in(std::path::Path::new(&dir), resource.to_string().as_bytes());
    }
}

/// Serves the gateway with the given state (e.g. with a sync engine).
pub async fn spawn_state(state: AppState, limits: Limits) -> TestApp {
    let store = state.store.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let mut router = api::router(state, limits);
    if let Some(dir) = std::env::var_os("PKGW_TEST_ANSWERS") {
        router = router.layer(axum::middleware::map_response(move |r| {
            keep_answer(std::path::PathBuf::from(dir.clone()), r)
        }));
    }
    tokio::spawn(async move {
        let _ = api::serve_router(listener, router, limits, async move {
            let _ = stopped.await;
        })
        .await;
    });
    TestApp {
        base,
        client: reqwest::Client::new(),
        store,
        stop: Some(stop),
    }
}
