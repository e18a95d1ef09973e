//! Every resource the mapping writes is valid FHIR R4 according to two independent
//! validators: Python `fhir.resources` 6.1.0 (FHIR 4.0.1) plus the required value sets
//! (`scripts/validate_fhir.py`), and Medplum's (`@medplum/core` 5.2.13 with the R4
//! definitions: reference targets, cardinalities, invariants, bindings and ids;
//! `scripts/validate_fhir_medplum.mjs`). `scripts/test.sh` installs them into
//! `target/fhir-validator` and `target/fhir-node`; `PKGW_FHIR_PYTHON` and
//! `PKGW_FHIR_NODE` may point elsewhere.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pkgw::domain::{ContractId, Version};
use pkgw::fhir::{Profile, VersionProvenance, to_fhir, to_provenance};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs both validators on `files`; returns (success, what they printed).
fn validate(files: &[PathBuf]) -> (bool, String) {
    common::validate_files(files)
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

#[test]
fn every_mapped_fixture_is_valid_r4_with_every_profile() {
    let dir = tempfile::tempdir().unwrap();
    let id = ContractId::parse("3f1c9a52-7d1e-4c1b-9a0e-5b6d7c8e9f01").unwrap();
    let mut files = Vec::new();
    for profile in [
        Profile::default_profile(),
        Profile::built_in("cosmic").unwrap(),
    ] {
        for (name, contract) in pkgw::demo::contracts().unwrap() {
            let bundle = to_fhir(&id, &contract, &profile).to_bundle();
            files.push(write(
                dir.path(),
                &format!("{}-{name}.json", profile.name),
                &bundle,
            ));
        }
    }
    // The templates, as PlanDefinitions and the draft CarePlans they make.
    for entry in std::fs::read_dir(root().join("fixtures/fhir/templates")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for version in [1, 2, 3] {
        // Version 3 is a care transition, with the sending and receiving units as agents.
        let transfer = (version == 3).then(|| pkgw::domain::TransferNote {
            from: pkgw::domain::UnitRef {
                hsa_id: pkgw::domain::HsaId::parse("SE2321000016-GER2").unwrap(),
                name: "Geriatriska kliniken".into(),
            },
            to: pkgw::domain::UnitRef {
                hsa_id: pkgw::domain::HsaId::parse("SE2321000016-VC01").unwrap(),
                name: "Vårdcentralen Solna".into(),
            },
            at: "2026-11-20T12:00:00Z".parse().unwrap(),
            kind: "hospital-to-primary-care".into(),
        });
        let provenance = VersionProvenance {
            version: Version::try_from(version).unwrap(),
            recorded: "2026-11-20T12:00:00Z".parse().unwrap(),
            source: "api".into(),
            author: Some("Anna Berg".into()),
            reason: Some("Ny tid överenskommen".into()),
            transfer,
            targets: vec![format!("CarePlan/{id}"), format!("CareTeam/{id}")],
        };
        let name = format!("provenance-{version}.json");
        files.push(write(dir.path(), &name, &to_provenance(&id, &provenance)));
    }
    let (ok, output) = validate(&files);
    assert!(ok, "{output}");
    // Every resource written was checked: each Bundle's entries, and the Provenances.
    let resources: usize = files
        .iter()
        .map(|f| {
            let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
            v["entry"].as_array().map_or(1, Vec::len)
        })
        .sum();
    assert!(
        output.contains(&format!("checked {resources} resources, 0 problems")),
        "{output}"
    );
}

#[test]
fn the_validator_catches_codes_outside_required_value_sets() {
    let dir = tempfile::tempdir().unwrap();
    let id = ContractId::parse("3f1c9a52-7d1e-4c1b-9a0e-5b6d7c8e9f01").unwrap();
    let contract = pkgw::demo::contracts().unwrap().remove(0).1;
    let mut resources = to_fhir(&id, &contract, &Profile::default_profile());
    resources.care_plan["intent"] = "plann".into();
    resources.appointments[0]["participant"][0]["status"] = "yes".into();
    let files = [write(dir.path(), "bad.json", &resources.to_bundle())];
    let (ok, output) = validate(&files);
    assert!(!ok, "{output}");
    assert!(output.contains("CarePlan.intent = 'plann'"), "{output}");
    assert!(
        output.contains("Appointment.participant.status = 'yes'"),
        "{output}"
    );
}

/// The second validator catches what `fhir.resources` lets pass — a reference to a type
/// the element may not name, a broken invariant — and, as the first does, an id longer
/// than R4 allows and a missing required element.
#[test]
fn the_second_validator_catches_what_the_first_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let id = ContractId::parse("3f1c9a52-7d1e-4c1b-9a0e-5b6d7c8e9f01").unwrap();
    let contract = pkgw::demo::contracts().unwrap().remove(0).1;
    let mut resources = to_fhir(&id, &contract, &Profile::default_profile());
    resources.appointments[0]["basedOn"] =
        serde_json::json!([{ "reference": format!("CarePlan/{id}") }]);
    resources.care_team["id"] = "x".repeat(65).into();
    resources
        .care_plan
        .as_object_mut()
        .unwrap()
        .remove("subject");
    // gol-1: a target's detail needs its measure.
    resources.goals[0]["target"] = serde_json::json!([{ "detailString": "x" }]);
    let files = [write(dir.path(), "bad.json", &resources.to_bundle())];
    let first = Command::new(common::test_python())
        .arg(root().join("scripts/validate_fhir.py"))
        .args(&files)
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&first.stdout).into_owned();
    let (ok, output) = validate(&files);
    assert!(!ok, "{output}");
    for (what, found, first_too) in [
        (
            "the reference target",
            "Invalid reference: got \"CarePlan\"",
            false,
        ),
        ("the invariant", "gol-1", false),
        ("the id's length", "is not an R4 id", true),
        ("the missing subject", "Missing required property", true),
    ] {
        assert!(output.contains(found), "{what}: {output}");
        if !first_too {
            assert!(
                !first.contains(found),
                "{what} was caught by the first already: {first}"
            );
        }
    }
}

/// What the running server answers — its CapabilityStatement, resources, search,
/// history, `$coordinated-plan`, transaction and batch responses and OperationOutcomes —
/// is valid R4 too.
#[tokio::test]
async fn what_the_server_answers_is_valid_r4() {
    let db = common::TestDb::sqlite();
    let app = common::app::spawn_app(&db).await;
    let record = app
        .store
        .create(
            common::fixture("hjartsvikt-primarvard"),
            pkgw::store::Change::from_source("api"),
        )
        .await
        .unwrap();
    let (id, person) = (record.id.to_string(), record.revision.contract.patient.id);
    let get = |path: String| {
        let (client, url) = (app.client.clone(), app.url(&path));
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut answers = vec![
        ("metadata", get("/fhir/metadata".into()).await),
        ("careplan", get(format!("/fhir/CarePlan/{id}")).await),
        (
            "search",
            get(format!(
                "/fhir/CarePlan?patient={person}&_include=CarePlan:care-team&bogus=1"
            ))
            .await,
        ),
        (
            "appointments",
            get(format!("/fhir/Appointment?patient={person}")).await,
        ),
        (
            "provenance",
            get(format!("/fhir/Provenance?patient={person}")).await,
        ),
        (
            "history",
            get(format!("/fhir/CarePlan/{id}/_history")).await,
        ),
        ("type-history", get("/fhir/Goal/_history".into()).await),
        (
            "coordinated",
            get(format!("/fhir/CarePlan/$coordinated-plan?patient={person}")).await,
        ),
        ("not-found", get("/fhir/CarePlan/finns-inte".into()).await),
    ];
    let plan = answers[1].1.clone();
    // A change (a write that changes nothing makes no version), then a stale one.
    let mut changed = plan.clone();
    changed["note"] = serde_json::json!([{ "text": "Ringer på fredag" }]);
    let batch = serde_json::json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            { "request": { "method": "GET", "url": format!("CareTeam/{id}") } },
            { "resource": changed, "request": { "method": "PUT", "url": format!("CarePlan/{id}"), "ifMatch": "W/\"1\"" } },
            { "resource": plan, "request": { "method": "PUT", "url": format!("CarePlan/{id}"), "ifMatch": "W/\"1\"" } },
        ],
    });
    let response = app
        .client
        .post(app.url("/fhir"))
        .header("content-type", "application/fhir+json")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    answers.push(("batch-response", response.json().await.unwrap()));
    assert_eq!(
        answers[9].1["entry"][2]["response"]["status"], "412 Precondition Failed",
        "the batch holds an outcome too"
    );
    answers.push((
        "operation-definitions",
        get("/fhir/OperationDefinition".into()).await,
    ));

    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = answers
        .iter()
        .map(|(name, value)| write(dir.path(), &format!("{name}.json"), value))
        .collect();
    let (ok, output) = validate(&files);
    assert!(ok, "{output}");
    assert!(output.contains(", 0 problems"), "{output}");
}
