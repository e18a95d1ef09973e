//! `spawn_app`: the gateway on a real socket (port 0) over a fresh database.

#![allow(clippy::expect_used)]

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

/// Serves the gateway with the given state (e.g. with a sync engine).
pub async fn spawn_state(state: AppState, limits: Limits) -> TestApp {
    let store = state.store.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = api::serve(listener, state, limits, async move {
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
