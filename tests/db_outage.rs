//! PostgreSQL goes away and comes back while the gateway serves writes, reads and sync:
//! restarted, and in a second test its server process killed with SIGKILL. The test runs
//! a PostgreSQL server of its own (the machine's binaries, its own data directory and
//! port, loopback only), never the shared test server.
//!
//! During the outage every request is answered, within the request timeout, with 2xx or
//! 503 (an OperationOutcome on the FHIR API) and nothing else; `/ready` says not ready
//! while `/health` stays up. Afterwards the gateway reconnects by itself, every write
//! answered 2xx is stored, none answered 503 is, and the target gets every contract's
//! latest version with no dead letter.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::peer::{FhirPeer, assert_holds, settings, target};
use common::postgres::{OwnPostgres, wait_for};
use pkgw::api::{AppState, Limits};
use pkgw::domain::ContractId;
use pkgw::fhir::Profile;
use pkgw::store::{Change, IDLE_BEFORE_PING, Store, StoreOptions};
use pkgw::sync::{Engine, targets_from_settings};
use reqwest::StatusCode;
use serde_json::Value;

/// What one request got.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    took: Duration,
}

/// The outage: `stop` takes the database away, `start` brings it back.
async fn writes_and_reads_through_an_outage(stop: impl Fn(&OwnPostgres), what: &str) {
    let pg = OwnPostgres::start();
    let mut options = StoreOptions::new(pg.url());
    options.acquire_timeout = Duration::from_secs(2);
    let store = Store::open(&options).await.unwrap();
    let peer = FhirPeer::start().await;
    let targets = targets_from_settings(&[target("portal", &peer.base, &[])]).unwrap();
    let engine = Arc::new(Engine::new(store.clone(), targets, settings()).unwrap());
    let (stop_sync, stopped) = tokio::sync::watch::channel(false);
    let sync = tokio::spawn(engine.clone().run(stopped));
    let state = AppState::new(store.clone()).with_sync(vec!["portal".into()], Some(engine));
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let app = Arc::new(common::app::spawn_state(state, limits).await);

    // Contracts to change, one writer each, and a reader.
    let mut ids = Vec::new();
    for name in ["hjartsvikt-primarvard", "ung-diabetes", "eget-initiativ"] {
        ids.push(app.create_contract(name).await);
    }
    let running = Arc::new(AtomicBool::new(true));
    let mut writers = Vec::new();
    for id in ids.clone() {
        let (app, running) = (app.clone(), running.clone());
        writers.push(tokio::spawn(async move {
            // Each write: the step it wrote, and what it got.
            let mut written: Vec<(usize, Answer)> = Vec::new();
            let mut version = 1u64;
            let mut step = 0;
            while running.load(Ordering::Relaxed) {
                step += 1;
                let current: Value = match app
                    .client
                    .get(app.url(&format!("/api/contracts/{id}")))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.json().await.unwrap(),
                    _ => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let mut contract = current["contract"].clone();
                contract["nextStep"]["description"] = format!("Steg {step}").into();
                let started = Instant::now();
                let response = app
                    .client
                    .put(app.url(&format!("/api/contracts/{id}")))
                    .header("If-Match", format!("W/\"{version}\""))
                    .json(&contract)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                if status.is_success() {
                    version += 1;
                }
                written.push((
                    step,
                    Answer {
                        status,
                        took: started.elapsed(),
                    },
                ));
            }
            written
        }));
    }
    let reader = {
        let (app, running, ids) = (app.clone(), running.clone(), ids.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while running.load(Ordering::Relaxed) {
                for id in &ids {
                    let started = Instant::now();
                    let response = app
                        .client
                        .get(app.url(&format!("/fhir/CarePlan/{id}")))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or_default();
                    if status == StatusCode::SERVICE_UNAVAILABLE {
                        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
                    }
                    answers.push(Answer {
                        status,
                        took: started.elapsed(),
                    });
                }
            }
            answers
        })
    };

    // Writes flow; then the database goes away.
    let status_of = |path: &'static str| {
        let app = app.clone();
        async move { app.client.get(app.url(path)).send().await.unwrap().status() }
    };
    wait_for(|| async { status_of("/ready").await == StatusCode::OK }).await;
    stop(&pg);
    wait_for(|| async { status_of("/ready").await == StatusCode::SERVICE_UNAVAILABLE }).await;
    assert_eq!(status_of("/health").await, StatusCode::OK, "alive");
    let read = app
        .client
        .get(app.url(&format!("/fhir/CarePlan/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    let outcome: Value = read.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    // The operator still sees the gateway at /metrics: the database down, requests
    // answered 503 by route, the pools.
    let metrics = scrape(&app).await;
    assert!(metrics.lines().any(|l| l == "pkgw_db_up 0"), "{metrics}");
    // (by its route, or, when cut off at the request timeout, as `(timed out)`)
    assert!(
        metrics.lines().any(
            |l| l.starts_with(r#"pkgw_http_requests_total{method="GET""#)
                && l.contains(r#"status="503""#)
        ),
        "{metrics}"
    );
    assert!(metrics.contains("pkgw_db_connections{"), "{metrics}");
    // It comes back, and the gateway with it.
    pg.up();
    wait_for(|| async { status_of("/ready").await == StatusCode::OK }).await;
    // Reads go through again before the load stops.
    let first = ids[0].clone();
    wait_for(|| {
        let (app, id) = (app.clone(), first.clone());
        async move {
            let read = app
                .client
                .get(app.url(&format!("/api/contracts/{id}")))
                .send()
                .await
                .unwrap();
            read.status().is_success()
        }
    })
    .await;
    running.store(false, Ordering::Relaxed);
    wait_for(|| async { scrape(&app).await.lines().any(|l| l == "pkgw_db_up 1") }).await;

    let limit = limits.request_timeout + Duration::from_secs(2);
    let reads = reader.await.unwrap();
    for a in &reads {
        assert!(
            a.status == StatusCode::OK || a.status == StatusCode::SERVICE_UNAVAILABLE,
            "{what}: a read got {}",
            a.status
        );
        assert!(a.took < limit, "{what}: a read took {:?}", a.took);
    }
    for (id, writer) in ids.iter().zip(writers) {
        let written = writer.await.unwrap();
        for (_, a) in &written {
            assert!(
                a.status == StatusCode::OK || a.status == StatusCode::SERVICE_UNAVAILABLE,
                "{what}: a write got {}",
                a.status
            );
            assert!(a.took < limit, "{what}: a write took {:?}", a.took);
        }
        // Exactly the writes answered 2xx are stored, in order.
        let stored: Vec<String> = store
            .history(&ContractId::parse(id).unwrap())
            .await
            .unwrap()
            .versions
            .iter()
            .skip(1)
            .map(|v| {
                v.contract
                    .next_step
                    .as_ref()
                    .map(|n| n.description.clone())
                    .unwrap_or_default()
            })
            .collect();
        let answered: Vec<String> = written
            .iter()
            .filter(|(_, a)| a.status.is_success())
            .map(|(step, _)| format!("Steg {step}"))
            .collect();
        assert_eq!(stored, answered, "{what}: {id}");
    }

    // The outbox delivers every contract's latest version.
    for id in &ids {
        let id = ContractId::parse(id).unwrap();
        wait_for(|| async {
            let current = store.get(&id).await.unwrap().revision.version;
            let known = store.remote("portal", &id).await.unwrap().map(|(v, _)| v);
            known == Some(current)
        })
        .await;
    }
    assert!(store.dead_letters(None).await.unwrap().is_empty());
    for id in &ids {
        let record = store.get(&ContractId::parse(id).unwrap()).await.unwrap();
        assert_holds(&peer, &record, &Profile::default_profile()).await;
    }
    stop_sync.send(true).unwrap();
    sync.await.unwrap();
}

/// `/metrics`, which answers whatever the database does.
async fn scrape(app: &common::app::TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// A pooled connection is checked before use once it has lain idle for
/// `IDLE_BEFORE_PING` (not on every use, which cost a round trip per statement): with
/// every connection of the pool used just before the server restarted, each read after
/// the restart is answered, none handed a connection to the server that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_after_a_restart_get_live_connections() {
    let pg = OwnPostgres::start();
    let mut options = StoreOptions::new(pg.url());
    options.max_connections = 4;
    let store = Store::open(&options).await.unwrap();
    let id = store
        .create(common::fixture("ung-diabetes"), Change::from_source("test"))
        .await
        .unwrap()
        .id;
    // Every connection of the pool in use at once, then back in it, live.
    let reads = (0..8).map(|_| store.get(&id));
    for read in futures_util::future::join_all(reads).await {
        read.unwrap();
    }
    let restarted = tokio::time::Instant::now();
    pg.down();
    pg.up();
    // A restart this fast would go unnoticed by design (see `IDLE_BEFORE_PING`): the
    // clock is let past it.
    tokio::time::sleep_until(restarted + IDLE_BEFORE_PING).await;
    for n in 0..2 * options.max_connections {
        let read = store.get(&id).await;
        assert!(read.is_ok(), "read {n} after the restart: {read:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarted_under_load() {
    writes_and_reads_through_an_outage(OwnPostgres::down, "restarted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_killed_under_load() {
    writes_and_reads_through_an_outage(OwnPostgres::kill, "killed").await;
}
