//! Every resource the mapping writes is valid FHIR R4 according to an independent
//! validator: Python `fhir.resources` 6.1.0 (FHIR 4.0.1) plus the required value sets
//! (`scripts/validate_fhir.py`). `scripts/test.sh` installs it into
//! `target/fhir-validator`; `PKGW_FHIR_PYTHON` may point at another interpreter.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pkgw::domain::{ContractId, Version};
use pkgw::fhir::{Profile, VersionProvenance, to_fhir, to_provenance};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let path = std::env::var_os("PKGW_FHIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/fhir-validator/bin/python"));
    assert!(
        path.exists(),
        "no FHIR validator at {}: run scripts/test.sh (it installs fhir.resources==6.1.0), or set PKGW_FHIR_PYTHON",
        path.display()
    );
    path
}

/// Runs the validator on `files`; returns (success, what it printed).
fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(python())
        .arg(root().join("scripts/validate_fhir.py"))
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
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
    for version in [1, 2] {
        let provenance = VersionProvenance {
            version: Version::try_from(version).unwrap(),
            recorded: "2026-11-20T12:00:00Z".parse().unwrap(),
            source: "api".into(),
            author: Some("Anna Berg".into()),
            reason: Some("Ny tid överenskommen".into()),
        };
        let name = format!("provenance-{version}.json");
        files.push(write(dir.path(), &name, &to_provenance(&id, &provenance)));
    }
    let (ok, output) = validate(&files);
    assert!(ok, "{output}");
    assert!(
        output.contains("checked 66 resources, 0 problems"),
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

#[test]
fn the_capability_statement_is_valid_r4() {
    let dir = tempfile::tempdir().unwrap();
    let files = [write(
        dir.path(),
        "metadata.json",
        &pkgw::api::fhir::capability_statement(),
    )];
    let (ok, output) = validate(&files);
    assert!(ok, "{output}");
    assert!(
        output.contains("checked 1 resources, 0 problems"),
        "{output}"
    );
}
