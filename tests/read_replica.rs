//! Reads from a real PostgreSQL streaming replica (`database.read_url`): the test starts
//! a primary and a hot standby of its own (a base backup of the primary, following its
//! WAL), never the shared test server.
//!
//! What `read_url` promises: reads, searches and `$coordinated-plan` are answered from
//! the replica, so with its replay paused they give the version it holds; a contract or
//! version the replica does not have yet is read from the primary (what a caller has
//! just written is never unknown); writes, and the reads they are based on, go to the
//! primary, so a write without `If-Match` during the lag is not refused as stale. With
//! the replica down, `/ready` says so and reads are answered 503 (an OperationOutcome),
//! while writes go on; when it is back, reads are too.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::TestApp;
use common::postgres::{OwnPostgres, wait_for};
use pkgw::api::{AppState, Limits};
use pkgw::store::{Store, StoreOptions};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection as _;

const PERSON: &str = "195208239813";

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// The CarePlan's version as a read gives it.
async fn care_plan_version(app: &TestApp, id: &str) -> String {
    let (status, body) = get(app, &format!("/fhir/CarePlan/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["versionId"].as_str().unwrap().to_owned()
}

/// One statement on a server, straight (not through the gateway).
async fn sql(url: &str, statement: &str) -> Option<i64> {
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    sqlx::query_scalar::<_, i64>(statement)
        .fetch_one(&mut conn)
        .await
        .ok()
}

/// The version of contract `id` the replica holds (0: none).
async fn replica_holds(replica: &OwnPostgres, id: &str) -> i64 {
    let statement = format!("SELECT COALESCE(MAX(version), 0) FROM contracts WHERE id = '{id}'");
    sql(&replica.url(), &statement).await.unwrap_or(-1)
}

/// A FHIR update without `If-Match`: `plan` with a new description of its first
/// activity. The version it made.
async fn update(app: &TestApp, plan: &Value, step: &str) -> String {
    let mut plan = plan.clone();
    plan["activity"][0]["detail"]["description"] = step.into();
    let id = plan["id"].as_str().unwrap();
    let response = app
        .client
        .put(app.url(&format!("/fhir/CarePlan/{id}")))
        .header("content-type", "application/fhir+json")
        .body(plan.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["versionId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_replica_and_writes_to_the_primary() {
    let primary = OwnPostgres::start();
    let replica = OwnPostgres::replica_of(&primary);
    let mut options = StoreOptions::new(primary.url());
    options.read_url = Some(replica.url());
    options.acquire_timeout = std::time::Duration::from_secs(2);
    let store = Store::open(&options).await.unwrap();
    // The schema reaches the replica by replication.
    wait_for(|| async { sql(&replica.url(), "SELECT COUNT(*) FROM contracts").await == Some(0) })
        .await;
    let app = common::app::spawn_state(AppState::new(store), Limits::default()).await;

    let id = app.create_contract("cancer-min-vardplan").await;
    wait_for(|| async { replica_holds(&replica, &id).await == 1 }).await;
    let (status, plan) = get(&app, &format!("/fhir/CarePlan/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{plan}");

    // The replica stops replaying: what it holds stays at version 1.
    assert_eq!(
        sql(
            &replica.url(),
            "SELECT 1::bigint FROM (SELECT pg_wal_replay_pause()) p"
        )
        .await,
        Some(1)
    );
    // Two writes in a row without If-Match: each is based on the primary's current
    // version (were the second based on the replica's, it would be refused as stale).
    assert_eq!(update(&app, &plan, "Steg 2").await, "2");
    assert_eq!(update(&app, &plan, "Steg 3").await, "3");
    assert_eq!(replica_holds(&replica, &id).await, 1, "replay is paused");

    // Reads, searches and the coordinated plan are the replica's.
    assert_eq!(care_plan_version(&app, &id).await, "1");
    let (status, found) = get(&app, &format!("/fhir/CarePlan?patient={PERSON}")).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["entry"][0]["resource"]["meta"]["versionId"], "1");
    let (status, coordinated) = get(
        &app,
        &format!("/fhir/CarePlan/$coordinated-plan?patient={PERSON}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{coordinated}");
    let plan_versions: Vec<&Value> = coordinated["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "CarePlan")
        .map(|e| &e["resource"]["meta"]["versionId"])
        .collect();
    assert_eq!(plan_versions, ["1"], "{coordinated}");

    // A version the replica does not have yet comes from the primary.
    let (status, third) = get(&app, &format!("/fhir/CarePlan/{id}/_history/3")).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["meta"]["versionId"], "3");
    // So does a contract created since: it is not unknown.
    let new = app.create_contract("ung-diabetes").await;
    assert_eq!(replica_holds(&replica, &new).await, 0);
    assert_eq!(care_plan_version(&app, &new).await, "1");
    let (status, unknown) = get(&app, "/fhir/CarePlan/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");

    // Replay resumes: the reads catch up.
    sql(
        &replica.url(),
        "SELECT 1::bigint FROM (SELECT pg_wal_replay_resume()) p",
    )
    .await
    .unwrap();
    wait_for(|| async { care_plan_version(&app, &id).await == "3" }).await;

    // The replica goes away: the gateway is not ready, reads are refused with 503 and
    // an OperationOutcome, writes go on.
    replica.down();
    let (status, _) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, outcome) = get(&app, &format!("/fhir/CarePlan/{id}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    assert_eq!(update(&app, &plan, "Steg 4").await, "4");

    // It comes back: so do the reads, with what was written meanwhile.
    replica.up();
    wait_for(|| async { get(&app, "/ready").await.0 == StatusCode::OK }).await;
    wait_for(|| async { care_plan_version(&app, &id).await == "4" }).await;
}
