//! Bulk `$export` as the FHIR Bulk Data pattern has it — kick-off, status polling,
//! NDJSON files, cancel — over a real socket, on SQLite and PostgreSQL.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::app::{TestApp, spawn_app};
use common::{TestDb, fixture};
use pkgw::store::Change;
use reqwest::StatusCode;
use serde_json::Value;

/// Starts an export; the status URL.
async fn kick_off(app: &TestApp, query: &str) -> String {
    let response = app
        .client
        .get(app.url(&format!("/fhir/$export{query}")))
        .header("Prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Polls until the manifest is ready.
async fn wait_for_manifest(app: &TestApp, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = app.client.get(status).send().await.unwrap();
        match response.status() {
            StatusCode::OK => return response.json().await.unwrap(),
            StatusCode::ACCEPTED => assert!(response.headers().contains_key("x-progress")),
            other => panic!("status {other}"),
        }
        assert!(Instant::now() < deadline, "the export did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lines(app: &TestApp, url: &str) -> Vec<Value> {
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/fhir+ndjson"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The audit rows about `person` of the interaction, once there are any (the guard
/// writes them just after the answer).
async fn audit_rows_about(
    app: &TestApp,
    person: &str,
    interaction: &str,
) -> Vec<pkgw::store::AuditRow> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<_> = app
            .store
            .audit(&pkgw::store::AuditQuery {
                patient: Some(person.to_owned()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.action == interaction)
            .collect();
        if !rows.is_empty() || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_bulk_export_runs_to_files(db: &TestDb) {
    let app = spawn_app(db).await;
    let store = &app.store;
    let old = store
        .create(fixture("eget-initiativ"), Change::from_source("api"))
        .await
        .unwrap();
    let gone = store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();
    store
        .delete(&gone.id, gone.revision.version, Change::from_source("api"))
        .await
        .unwrap();
    let since = jiff::Timestamp::now();
    let recent = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();

    let refused = app
        .client
        .get(app.url("/fhir/$export"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::BAD_REQUEST,
        "Prefer: respond-async is required"
    );

    let status = kick_off(&app, "").await;
    let manifest = wait_for_manifest(&app, &status).await;
    assert_eq!(manifest["requiresAccessToken"], false);
    let output = manifest["output"].as_array().unwrap();
    let plans = output.iter().find(|o| o["type"] == "CarePlan").unwrap();
    assert_eq!(plans["count"], 2, "the deleted contract is not exported");
    let exported = lines(&app, plans["url"].as_str().unwrap()).await;
    let mut ids: Vec<&str> = exported.iter().map(|p| p["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec![old.id.as_str(), recent.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(exported.iter().all(|p| p["resourceType"] == "CarePlan"));
    // The download left one audit row per person in the file, and none for the person
    // whose contract was deleted before.
    for record in [&old, &recent] {
        let person = record.revision.contract.patient.id.to_string();
        let rows = audit_rows_about(&app, &person, "operation").await;
        assert_eq!(rows.len(), 1, "one row for {person}: {rows:?}");
        assert_eq!(rows[0].status, Some(200));
    }
    let deleted = gone.revision.contract.patient.id.to_string();
    assert!(
        app.store
            .audit(&pkgw::store::AuditQuery {
                patient: Some(deleted),
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .all(|r| r.action != "operation"),
        "the deleted contract's person was not in the file"
    );
    for kind in ["CareTeam", "Goal", "Appointment"] {
        assert!(
            output.iter().any(|o| o["type"] == kind),
            "{kind} in {manifest}"
        );
    }

    let status = kick_off(&app, &format!("?_type=Goal&_since={since}")).await;
    let manifest = wait_for_manifest(&app, &status).await;
    let output = manifest["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{manifest}");
    let goals = lines(&app, output[0]["url"].as_str().unwrap()).await;
    assert_eq!(
        goals.len(),
        recent.revision.contract.agreement.what_matters.len()
    );
    assert!(
        goals
            .iter()
            .all(|g| g["id"].as_str().unwrap().starts_with(recent.id.as_str()))
    );

    let cancelled = app.client.delete(&status).send().await.unwrap();
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    let after = app.client.get(&status).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::NOT_FOUND);

    let bad = app
        .client
        .get(app.url("/fhir/$export?_type=Patient"))
        .header("Prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let outcome: Value = bad.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["expression"][0], "_type");
}

on_both_backends!(a_bulk_export_runs_to_files);
