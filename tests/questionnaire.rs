//! "7 frågor": the gateway serves the patient's and care's questionnaires with the seven
//! questions in the seeds' own words (checked against `shared/seeds`), linked item by
//! item, answered from one coded scale, and valid R4.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use common::app::spawn_app;
use common::fhir::fhir_get;
use reqwest::StatusCode;
use serde_json::Value;

/// The seven questions under a heading of the seed text, as its bullets.
fn seed_questions(heading: &str) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/seeds/002_4278d79e5ee39a16.txt"
    );
    let seed = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the seed texts are beside the project (../shared/seeds): {e}"));
    seed.lines()
        .skip_while(|l| l.trim() != heading)
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with('•'))
        .map(|l| l.trim_start().trim_start_matches('•').trim().to_owned())
        .collect()
}

fn texts(q: &Value) -> Vec<String> {
    q["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_seven_questions_are_served_in_the_seeds_words(db: &TestDb) {
    let app = spawn_app(db).await;
    let patient = fhir_get(&app, "/fhir/Questionnaire/sju-fragor-patient").await;
    let care = fhir_get(&app, "/fhir/Questionnaire/sju-fragor-vardgivare").await;
    assert_eq!(
        (patient.status, care.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(
        texts(&patient.body),
        seed_questions("Sju frågor till patienten")
    );
    assert_eq!(
        texts(&care.body),
        seed_questions("Sju frågor till vårdgivaren")
    );
    assert_eq!(texts(&patient.body).len(), 7);
    let links = |q: &Value| -> Vec<String> {
        q["item"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["linkId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        links(&patient.body),
        links(&care.body),
        "linked item by item"
    );
    let scale: Vec<&str> = patient.body["item"][0]["answerOption"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["valueCoding"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(scale, ["ja", "delvis", "nej", "vet-inte"]);
    let all = fhir_get(&app, "/fhir/Questionnaire").await.body;
    assert_eq!(all["total"], 2);
    let one = fhir_get(
        &app,
        "/fhir/Questionnaire?url=https://pkgw.example/fhir/Questionnaire/sju-fragor-vardgivare",
    )
    .await
    .body;
    assert_eq!(one["total"], 1);
    assert_eq!(
        fhir_get(&app, "/fhir/Questionnaire/okand").await.status,
        StatusCode::NOT_FOUND
    );

    // Valid R4, by the independent validator.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("questionnaires.json");
    std::fs::write(&file, all.to_string()).unwrap();
    let out = std::process::Command::new(common::test_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/validate_fhir.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

on_both_backends!(the_seven_questions_are_served_in_the_seeds_words);
