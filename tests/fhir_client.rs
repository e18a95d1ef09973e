//! A third-party FHIR client works against the gateway unchanged: Python `fhirpy`
//! (installed by `scripts/test.sh`) creates, reads, searches, updates, reads the history
//! of and deletes a CarePlan over a real socket (`tests/clients/fhirpy_walkthrough.py`),
//! on SQLite and PostgreSQL.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::app::spawn_app;
use common::{TestDb, fixture, test_python};
use pkgw::domain::ContractId;
use pkgw::fhir::{Profile, to_fhir};
use serde_json::Value;

async fn fhirpy_does_create_read_search_update_history_delete(db: &TestDb) {
    let app = spawn_app(db).await;
    let contract = fixture("eget-initiativ");
    let person = contract.patient.id.to_string();
    let id = ContractId::parse("tillfalligt").unwrap();
    let mut plan = to_fhir(&id, &contract, &Profile::default_profile()).care_plan;
    for field in ["id", "identifier", "goal"] {
        plan.as_object_mut().unwrap().remove(field);
    }
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("careplan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/fhirpy_walkthrough.py"
    );
    let base = app.url("/fhir");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(test_python())
            .arg(script)
            .arg(base)
            .arg(&plan_file)
            .arg(person)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "fhirpy walkthrough failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["versions"], serde_json::json!(["3", "2", "1"]));

    // What the client did is what the store holds.
    let id = ContractId::parse(seen["id"].as_str().unwrap()).unwrap();
    let history = app.store.history(&id).await.unwrap();
    let deleted: Vec<bool> = history.versions.iter().map(|v| v.deleted).collect();
    assert_eq!(deleted, [false, false, false, true]);
    assert_eq!(
        db.count("contracts").await,
        1,
        "the conditional create made nothing"
    );
    let description = history.versions[2]
        .foreign_fhir
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    assert!(
        description.contains("Villkorligt uppdaterad"),
        "the client's own element is kept: {description}"
    );
}

on_both_backends!(fhirpy_does_create_read_search_update_history_delete);
