//! Inbound edits from syncing systems (EHRs configured as targets, naming themselves in
//! `X-Source`) are merged part by part against the version they last saw (`If-Match`):
//! edits to different parts both survive, edits to the same part are refused with 409
//! naming the part and kept as a conflict record; over real sockets, on SQLite and
//! PostgreSQL.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::{TestApp, spawn_state};
use common::fhir::{Reply, fhir_get, send};
use common::{TestDb, fixture};
use pkgw::api::{AppState, Limits};
use pkgw::store::{Change, Record};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn app_with_two_ehrs(db: &TestDb) -> (TestApp, Record) {
    let store = db.store().await;
    let state =
        AppState::new(store.clone()).with_sync(vec!["journal-a".into(), "journal-b".into()], None);
    let app = spawn_state(state, Limits::default()).await;
    let record = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    (app, record)
}

/// `PUT` from a system, based on the version it saw.
async fn put_from(app: &TestApp, source: &str, seen: &str, path: &str, body: &Value) -> Reply {
    let mut headers = vec![("If-Match", seen)];
    if !source.is_empty() {
        headers.push(("X-Source", source));
    }
    send(app, Method::PUT, path, &headers, Some(body)).await
}

/// A Goal (what matters: the agreement) and a CareTeam (the fixed care contact) edit.
async fn edits(app: &TestApp, id: &str) -> (Value, Value) {
    let mut goal = fhir_get(app, &format!("/fhir/Goal/{id}-mal-1")).await.body;
    goal["description"]["text"] = "Att kunna gå till affären själv".into();
    let mut team = fhir_get(app, &format!("/fhir/CareTeam/{id}")).await.body;
    team["participant"].as_array_mut().unwrap().truncate(1);
    (goal, team)
}

async fn edits_to_different_parts_both_survive(db: &TestDb) {
    let (app, record) = app_with_two_ehrs(db).await;
    let id = record.id.to_string();
    let (goal, team) = edits(&app, &id).await;
    let a = put_from(
        &app,
        "journal-a",
        "W/\"1\"",
        &format!("/fhir/Goal/{id}-mal-1"),
        &goal,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // B saw version 1 too, and edits another part: merged, not refused.
    let b = put_from(
        &app,
        "journal-b",
        "W/\"1\"",
        &format!("/fhir/CareTeam/{id}"),
        &team,
    )
    .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(b.header("etag"), Some("W/\"3\""));
    let stored = app.store.get(&record.id).await.unwrap().revision.contract;
    assert_eq!(
        stored.agreement.what_matters[0], "Att kunna gå till affären själv",
        "A's edit kept"
    );
    assert_eq!(stored.care_contacts.len(), 1, "B's edit applied");
    assert!(app.store.conflicts().await.unwrap().is_empty());
}

async fn edits_to_the_same_part_conflict_naming_it(db: &TestDb) {
    let (app, record) = app_with_two_ehrs(db).await;
    let id = record.id.to_string();
    let (goal, _) = edits(&app, &id).await;
    let a = put_from(
        &app,
        "journal-a",
        "W/\"1\"",
        &format!("/fhir/Goal/{id}-mal-1"),
        &goal,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let mut other = goal.clone();
    other["description"]["text"] = "Att orka laga mat".into();
    let b = put_from(
        &app,
        "journal-b",
        "W/\"1\"",
        &format!("/fhir/Goal/{id}-mal-1"),
        &other,
    )
    .await;
    assert_eq!(b.status, StatusCode::CONFLICT, "{}", b.body);
    let issue = &b.body["issue"][0];
    assert_eq!(issue["code"], "conflict");
    assert!(
        issue["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Överenskommelse"),
        "{issue}"
    );
    assert!(issue["expression"][0].as_str().is_some(), "{issue}");
    assert_eq!(
        app.store
            .get(&record.id)
            .await
            .unwrap()
            .revision
            .version
            .get(),
        2,
        "nothing applied"
    );
    let conflicts = app.store.conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        (
            conflicts[0].source.as_str(),
            conflicts[0].seen_version.get(),
            conflicts[0].current_version.get()
        ),
        ("journal-b", 1, 2)
    );
    assert_eq!(conflicts[0].parts, ["agreement"]);
    assert_eq!(
        conflicts[0].received["description"]["text"], "Att orka laga mat",
        "what was sent is kept"
    );

    // A client that is not a syncing system gets the plain precondition failure.
    let plain = put_from(
        &app,
        "",
        "W/\"1\"",
        &format!("/fhir/Goal/{id}-mal-1"),
        &other,
    )
    .await;
    assert_eq!(plain.status, StatusCode::PRECONDITION_FAILED);

    // The operator sees it from the command line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args(["sync", "conflicts", "--json", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["contract"], id.as_str());
    assert_eq!(line["parts"], serde_json::json!(["agreement"]));
}

async fn concurrent_edits_to_different_parts_both_survive(db: &TestDb) {
    let (app, record) = app_with_two_ehrs(db).await;
    let id = record.id.to_string();
    let (goal, team) = edits(&app, &id).await;
    let requests = [
        ("journal-a", format!("/fhir/Goal/{id}-mal-1"), goal),
        ("journal-b", format!("/fhir/CareTeam/{id}"), team),
    ];
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(source, path, body)| {
            let (client, url) = (app.client.clone(), app.url(&path));
            tokio::spawn(async move {
                client
                    .put(url)
                    .header("content-type", "application/fhir+json")
                    .header("If-Match", "W/\"1\"")
                    .header("X-Source", source)
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let stored = app.store.get(&record.id).await.unwrap();
    assert_eq!(stored.revision.version.get(), 3);
    assert_eq!(
        stored.revision.contract.agreement.what_matters[0],
        "Att kunna gå till affären själv"
    );
    assert_eq!(stored.revision.contract.care_contacts.len(), 1);
}

async fn a_stale_transaction_push_is_merged(db: &TestDb) {
    let (app, record) = app_with_two_ehrs(db).await;
    let id = record.id.to_string();
    let (goal, _) = edits(&app, &id).await;
    let a = put_from(
        &app,
        "journal-a",
        "W/\"1\"",
        &format!("/fhir/Goal/{id}-mal-1"),
        &goal,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // B pushes its whole copy of version 1 with one change to the agreed times.
    let mut times = fhir_get(
        &app,
        &format!(
            "/fhir/Appointment?patient={}",
            record.revision.contract.patient.id
        ),
    )
    .await
    .body;
    let mut first = times["entry"][0]["resource"].take();
    first["description"] = "Återbesök per video".into();
    let plan = fhir_get(&app, &format!("/fhir/CarePlan/{id}/_history/1"))
        .await
        .body;
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "resource": plan, "request": { "method": "PUT", "url": format!("CarePlan/{id}"), "ifMatch": "W/\"1\"" } },
            { "resource": first, "request": { "method": "PUT", "url": format!("Appointment/{}", first["id"].as_str().unwrap()) } },
        ],
    });
    let pushed = send(
        &app,
        Method::POST,
        "/fhir",
        &[("X-Source", "journal-b")],
        Some(&bundle),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    let stored = app.store.get(&record.id).await.unwrap().revision.contract;
    assert_eq!(
        stored.agreement.what_matters[0], "Att kunna gå till affären själv",
        "A's edit kept"
    );
    assert!(
        stored
            .agreed_times
            .iter()
            .any(|t| t.what == "Återbesök per video"),
        "B's edit applied"
    );
}

on_both_backends!(
    edits_to_different_parts_both_survive,
    edits_to_the_same_part_conflict_naming_it,
    concurrent_edits_to_different_parts_both_survive,
    a_stale_transaction_push_is_merged,
);
