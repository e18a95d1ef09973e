//! Third-party FHIR clients work against the gateway unchanged, over a real socket, on
//! SQLite and PostgreSQL: Python `fhirpy` (`tests/clients/fhirpy_walkthrough.py`) and
//! JavaScript's fhir-kit-client and Medplum's MedplumClient
//! (`tests/clients/js_walkthrough.mjs`), all installed by `scripts/test.sh`.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::app::spawn_app;
use common::{TestDb, fixture, test_python};
use pkgw::domain::ContractId;
use pkgw::fhir::{Profile, to_fhir};
use serde_json::Value;

async fn fhirpy_does_an_integrators_walkthrough(db: &TestDb) {
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
        2,
        "the conditional creates made nothing twice"
    );
    // The contract made by the EHR's identifier: create, conditional update, patch and
    // the transaction's conditional update.
    let own = ContractId::parse(seen["own"].as_str().unwrap()).unwrap();
    assert_eq!(app.store.get(&own).await.unwrap().revision.version.get(), 4);
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

/// Two stock JavaScript clients — fhir-kit-client and Medplum's MedplumClient — do an
/// integrator's walkthrough unchanged (`tests/clients/js_walkthrough.mjs`): conditional
/// create and update by the EHR's own identifier, read, search paged with a time zone in
/// the query, update, JSON Patch, batch and transaction at the base, `$validate`, delete.
async fn js_clients_do_an_integrators_walkthrough(db: &TestDb) {
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
        "/tests/clients/js_walkthrough.mjs"
    );
    let (base, tools) = (app.base.clone(), common::test_node_tools());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(base)
            .arg(&plan_file)
            .arg(person)
            .env("PKGW_FHIR_NODE", tools)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the JavaScript walkthrough failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    // What the clients did is what the store holds: per client two contracts, the
    // first at version 4 (create, update, conditional update, patch), the second deleted.
    for client in ["fhirKit", "medplum"] {
        let created = &seen[client]["created"];
        let first = ContractId::parse(created[0].as_str().unwrap()).unwrap();
        let kept = app.store.get(&first).await.unwrap();
        assert_eq!(kept.revision.version.get(), 4, "{client}");
        let second = ContractId::parse(created[1].as_str().unwrap()).unwrap();
        let history = app.store.history(&second).await.unwrap();
        assert!(history.versions.last().unwrap().deleted, "{client}");
    }
    assert_eq!(
        db.count("contracts").await,
        4,
        "the conditional creates made nothing twice"
    );
}

on_both_backends!(
    fhirpy_does_an_integrators_walkthrough,
    js_clients_do_an_integrators_walkthrough
);
