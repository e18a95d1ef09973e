//! "7 frågor": the gateway serves the patient's and care's questionnaires with the seven
//! questions in the seeds' own words (checked against the seed's text, quoted in
//! `fixtures/seeds/sju-fragor.txt`), linked item by
//! item, answered from one coded scale, and valid R4; takes answers only when they fit
//! the questionnaire; finds them again; and reports samsyn per unit with scores computed
//! by hand here, as Parameters and as an SVG chart a headless browser shows.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use common::app::{TestApp, spawn_app};
use common::browser::{screenshot, well_formed};
use common::fhir::{Reply, fhir_get, send};
use pkgw::store::Change;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const HSA: &str = "urn:oid:1.2.752.29.4.19";
const PNR: &str = "http://electronichealth.se/identifier/personnummer";
const SCALE: &str = "https://pkgw.example/fhir/CodeSystem/sju-fragor-svar";
const UNIT_EXTENSION: &str = "https://pkgw.example/fhir/StructureDefinition/sju-fragor-enhet";
const UNIT: &str = "SE2321000016-1A2B";
const OTHER_UNIT: &str = "SE2321000016-KARD";

/// The seven questions under a heading of the seed text, as its bullets.
fn seed_questions(heading: &str) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seeds/sju-fragor.txt");
    let seed = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    seed.lines()
        .skip_while(|l| l.trim() != heading)
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with('•'))
        .map(|l| l.trim_start().trim_start_matches('•').trim().to_owned())
        .collect()
}

/// The texts of the seven questions (the choice items).
fn texts(q: &Value) -> Vec<String> {
    q["item"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "choice")
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
            .filter(|i| i["type"] == "choice")
            .map(|i| i["linkId"].as_str().unwrap().to_owned())
            .collect()
    };
    // Care's ends with the seeds' own free-text question.
    let last = care.body["item"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (
            last["text"].as_str(),
            last["type"].as_str(),
            last["required"].as_bool()
        ),
        (
            Some("Vad behöver ni förnya och utveckla?"),
            Some("text"),
            Some(false)
        )
    );
    // "Inte aktuellt för mig" only where the question is asked "vid behov" (4 and 7).
    for item in patient.body["item"].as_array().unwrap() {
        let codes: Vec<&str> = item["answerOption"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["valueCoding"]["code"].as_str().unwrap())
            .collect();
        let when_needed = item["text"].as_str().unwrap().contains("vid behov");
        assert_eq!(codes.contains(&"inte-aktuellt"), when_needed, "{item}");
    }
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
    common::assert_valid_r4(&[&all]);
}

/// The seven items, answered with these codes in order.
fn items(codes: [&str; 7]) -> Value {
    codes
        .iter()
        .enumerate()
        .map(|(i, code)| json!({ "linkId": (i + 1).to_string(), "answer": [{ "valueCoding": { "system": SCALE, "code": code } }] }))
        .collect()
}

/// A patient's answers about `unit`, by personnummer.
fn patient_answers(person: &str, unit: &str, authored: &str, codes: [&str; 7]) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://pkgw.example/fhir/Questionnaire/sju-fragor-patient",
        "status": "completed",
        "subject": { "type": "Patient", "identifier": { "system": PNR, "value": person } },
        "extension": [{ "url": UNIT_EXTENSION, "valueReference": { "type": "Organization", "identifier": { "system": HSA, "value": unit } } }],
        "authored": authored,
        "item": items(codes),
    })
}

/// A unit's own answers.
fn care_answers(unit: &str, authored: &str, codes: [&str; 7]) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://pkgw.example/fhir/Questionnaire/sju-fragor-vardgivare",
        "status": "completed",
        "subject": { "type": "Organization", "identifier": { "system": HSA, "value": unit }, "display": "Vårdcentralen Björkhagen" },
        "authored": authored,
        "item": items(codes),
    })
}

async fn post(app: &TestApp, body: &Value) -> Reply {
    send(
        app,
        Method::POST,
        "/fhir/QuestionnaireResponse",
        &[],
        Some(body),
    )
    .await
}

async fn post_all(app: &TestApp, bodies: &[Value]) {
    for body in bodies {
        let reply = post(app, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
}

/// The expressions of a 422's issues.
fn expressions(reply: &Reply) -> Vec<String> {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["resourceType"], "OperationOutcome");
    reply.body["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["expression"][0].as_str().unwrap_or_default().to_owned())
        .collect()
}

const ALL_JA: [&str; 7] = ["ja"; 7];

async fn answers_are_checked_against_the_questionnaire(db: &TestDb) {
    let app = spawn_app(db).await;
    let contract = common::fixture("hjartsvikt-primarvard");
    let person = contract.patient.id.to_string();
    let unit = contract.responsible_unit.clone().unwrap();
    let record = app
        .store
        .create(contract, Change::from_source("api"))
        .await
        .unwrap();

    // Based on the person's contract: the person and the unit come from it.
    let answers = json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://pkgw.example/fhir/Questionnaire/sju-fragor-patient",
        "status": "completed",
        "basedOn": [{ "reference": format!("CarePlan/{}", record.id) }],
        "item": items(["ja", "delvis", "nej", "vet-inte", "ja", "ja", "nej"]),
    });
    let created = post(&app, &answers).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        created
            .header("location")
            .unwrap()
            .contains(&format!("/fhir/QuestionnaireResponse/{id}"))
    );
    assert_eq!(
        created.body["subject"]["identifier"]["value"],
        person.as_str()
    );
    let named = &created.body["extension"][0];
    assert_eq!(named["url"], UNIT_EXTENSION);
    assert_eq!(
        named["valueReference"]["identifier"]["value"],
        unit.hsa_id.as_str()
    );
    assert!(created.body["authored"].is_string());
    let read = fhir_get(&app, &format!("/fhir/QuestionnaireResponse/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, created.body);
    assert_eq!(
        fhir_get(&app, "/fhir/QuestionnaireResponse/okand")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Each way to get it wrong names the element and stores nothing.
    let mut unknown_link = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    unknown_link["item"][6]["linkId"] = json!("8");
    let mut wrong_type = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    wrong_type["item"][2]["answer"] = json!([{ "valueString": "ja" }]);
    let mut wrong_code = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    wrong_code["item"][3]["answer"][0]["valueCoding"]["code"] = json!("kanske");
    let mut missing = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    missing["item"].as_array_mut().unwrap().remove(4);
    let mut twice = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    twice["item"][1]["linkId"] = json!("1");
    let mut two_answers = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    two_answers["item"][0]["answer"] = json!([{ "valueCoding": { "system": SCALE, "code": "ja" } }, { "valueCoding": { "system": SCALE, "code": "nej" } }]);
    let mut other_questionnaire =
        patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    other_questionnaire["questionnaire"] = json!("http://example.org/Questionnaire/phq-9");
    let mut in_progress = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    in_progress["status"] = json!("in-progress");
    let mut no_unit = patient_answers(&person, UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    no_unit.as_object_mut().unwrap().remove("extension");
    let mut bad_unit = patient_answers(&person, "SE-nej", "2026-03-01T10:00:00+01:00", ALL_JA);
    bad_unit["authored"] = json!("igår");
    let mut unknown_plan = answers.clone();
    unknown_plan["basedOn"][0]["reference"] = json!("CarePlan/finns-inte");
    let mut someone_else = answers.clone();
    someone_else["subject"] = json!({ "identifier": { "system": PNR, "value": "195208239813" } });
    let mut care_on_a_plan = care_answers(UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    care_on_a_plan["basedOn"] = answers["basedOn"].clone();
    let mut care_without_unit = care_answers(UNIT, "2026-03-01T10:00:00+01:00", ALL_JA);
    care_without_unit.as_object_mut().unwrap().remove("subject");
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "unknown linkId",
            unknown_link,
            vec!["QuestionnaireResponse.item[6].linkId"],
        ),
        (
            "answer of the wrong type",
            wrong_type,
            vec!["QuestionnaireResponse.item[2].answer[0]"],
        ),
        (
            "code not in the scale",
            wrong_code,
            vec!["QuestionnaireResponse.item[3].answer[0]"],
        ),
        (
            "a required question left out",
            missing,
            vec!["QuestionnaireResponse.item"],
        ),
        (
            "a question answered twice",
            twice,
            vec!["QuestionnaireResponse.item[1].linkId"],
        ),
        (
            "two answers to one question",
            two_answers,
            vec!["QuestionnaireResponse.item[0].answer"],
        ),
        (
            "another questionnaire",
            other_questionnaire,
            vec!["QuestionnaireResponse.questionnaire"],
        ),
        (
            "not completed",
            in_progress,
            vec!["QuestionnaireResponse.status"],
        ),
        (
            "no unit named",
            no_unit,
            vec!["QuestionnaireResponse.extension"],
        ),
        (
            "a malformed HSA-id and date",
            bad_unit,
            vec![
                "QuestionnaireResponse.authored",
                "QuestionnaireResponse.extension.valueReference.identifier.value",
            ],
        ),
        (
            "an unknown CarePlan",
            unknown_plan,
            vec!["QuestionnaireResponse.basedOn[0].reference"],
        ),
        (
            "someone else's CarePlan",
            someone_else,
            vec!["QuestionnaireResponse.subject"],
        ),
        (
            "care's answers on one plan",
            care_on_a_plan,
            vec!["QuestionnaireResponse.basedOn"],
        ),
        (
            "care's answers without a unit",
            care_without_unit,
            vec!["QuestionnaireResponse.subject"],
        ),
    ];
    for (what, body, expected) in cases {
        let reply = post(&app, &body).await;
        let mut got = expressions(&reply);
        got.sort();
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(got, expected, "{what}: {}", reply.body);
    }
    assert_eq!(
        db.count("questionnaire_responses").await,
        1,
        "nothing half-written"
    );
    let not_fhir = send(
        &app,
        Method::POST,
        "/fhir/QuestionnaireResponse",
        &[],
        Some(&json!({ "resourceType": "Questionnaire" })),
    )
    .await;
    assert_eq!(not_fhir.status, StatusCode::BAD_REQUEST);
}

async fn answers_are_found_by_patient_unit_plan_and_date(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(
            common::fixture("hjartsvikt-primarvard"),
            Change::from_source("api"),
        )
        .await
        .unwrap();
    let gunnar = record.revision.contract.patient.id.to_string();
    let mut on_plan = patient_answers(&gunnar, UNIT, "2026-02-10T09:00:00+01:00", ALL_JA);
    on_plan["basedOn"] = json!([{ "reference": format!("CarePlan/{}", record.id) }]);
    post_all(
        &app,
        &[
            on_plan,
            patient_answers("195208239813", UNIT, "2026-03-05T09:00:00+01:00", ALL_JA),
            patient_answers(
                "195208239813",
                OTHER_UNIT,
                "2026-04-01T09:00:00+02:00",
                ALL_JA,
            ),
            care_answers(UNIT, "2026-01-15T12:00:00+01:00", ALL_JA),
        ],
    )
    .await;
    let total = |reply: Reply| {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["total"].as_u64().unwrap()
    };
    let searches = [
        ("", 4),
        (&*format!("?patient={gunnar}"), 1),
        (
            "?patient=http://electronichealth.se/identifier/personnummer|195208239813",
            2,
        ),
        (&*format!("?unit={UNIT}"), 3),
        (&*format!("?unit={HSA}|{OTHER_UNIT}"), 1),
        (&*format!("?subject=Organization/{UNIT}"), 1),
        (&*format!("?based-on=CarePlan/{}", record.id), 1),
        (
            "?questionnaire=https://pkgw.example/fhir/Questionnaire/sju-fragor-vardgivare",
            1,
        ),
        ("?questionnaire=sju-fragor-patient", 3),
        ("?authored=ge2026-03-01", 2),
        ("?authored=ge2026-02-01&authored=lt2026-04-01", 2),
        ("?authored=2026-01-15", 1),
        (&*format!("?unit={UNIT}&authored=lt2026-03-01"), 2),
    ];
    for (query, expected) in searches {
        let reply = fhir_get(&app, &format!("/fhir/QuestionnaireResponse{query}")).await;
        assert_eq!(total(reply), expected, "{query}");
    }
    let paged = fhir_get(&app, "/fhir/QuestionnaireResponse?_count=3")
        .await
        .body;
    assert_eq!(paged["entry"].as_array().unwrap().len(), 3);
    assert!(
        paged["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "next")
    );
    for bad in [
        "?unit=inte-hsa",
        "?authored=igår",
        "?questionnaire=phq-9",
        "?patient=123",
    ] {
        let reply = fhir_get(&app, &format!("/fhir/QuestionnaireResponse{bad}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.body["resourceType"], "OperationOutcome");
    }
}

/// The part named `name` of a Parameters `question`.
fn part<'a>(question: &'a Value, name: &str) -> Option<&'a Value> {
    question["part"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

fn score(question: &Value, name: &str) -> Option<f64> {
    part(question, name).map(|p| p["valueDecimal"].as_f64().unwrap())
}

fn questions(report: &Value) -> Vec<Value> {
    report["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "question")
        .cloned()
        .collect()
}

fn parameter<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    report["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name)
        .collect()
}

async fn samsyn_scores_are_the_hand_computed_ones(db: &TestDb) {
    // One patient's answers are shown here, to check the scores of a single answer.
    let state = pkgw::api::AppState::new(db.store().await).with_samsyn_minimum(1);
    let app = common::app::spawn_state(state, pkgw::api::Limits::default()).await;
    // Question 1: patients ja, ja, delvis, nej; the unit ja.
    // Question 2: patients nej ×3 and vet-inte; the unit ja.
    // Question 5: patients ja, vet-inte, ja, delvis; the unit delvis.
    // Others: everyone ja.
    let in_march = "2026-03-10T10:00:00+01:00";
    post_all(
        &app,
        &[
            // The unit's answers before and after the period do not count; those within do.
            care_answers(UNIT, "2025-11-01T10:00:00+01:00", ["nej"; 7]),
            care_answers(
                UNIT,
                "2026-02-01T10:00:00+01:00",
                ["ja", "ja", "ja", "ja", "delvis", "ja", "ja"],
            ),
            // Answers given after the period do not count either.
            care_answers(UNIT, "2026-07-01T10:00:00+02:00", ["vet-inte"; 7]),
            // A person who answers twice counts once, with the latest answers.
            patient_answers(
                "194003129865",
                UNIT,
                "2026-01-20T10:00:00+01:00",
                ["nej"; 7],
            ),
            patient_answers(
                "194003129865",
                UNIT,
                in_march,
                ["ja", "nej", "ja", "ja", "ja", "ja", "ja"],
            ),
            patient_answers(
                "195208239813",
                UNIT,
                in_march,
                ["ja", "nej", "ja", "ja", "vet-inte", "ja", "ja"],
            ),
            patient_answers(
                "197811049928",
                UNIT,
                in_march,
                ["delvis", "nej", "ja", "ja", "ja", "ja", "ja"],
            ),
            patient_answers(
                "198507789827",
                UNIT,
                in_march,
                ["nej", "vet-inte", "ja", "ja", "delvis", "ja", "ja"],
            ),
            // Outside the period, and about another unit: not counted.
            patient_answers(
                "200806159836",
                UNIT,
                "2025-12-30T10:00:00+01:00",
                ["nej"; 7],
            ),
            patient_answers("200806159836", OTHER_UNIT, in_march, ["nej"; 7]),
        ],
    )
    .await;
    let reply = fhir_get(
        &app,
        &format!("/fhir/$samsyn?unit={UNIT}&period=2026-01-01/2026-06-30"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let report = reply.body;
    assert_eq!(report["resourceType"], "Parameters");
    assert_eq!(parameter(&report, "patients")[0]["valueInteger"], 4);
    assert_eq!(
        parameter(&report, "unitName")[0]["valueString"],
        "Vårdcentralen Björkhagen"
    );
    let qs = questions(&report);
    assert_eq!(qs.len(), 7);

    let q1 = &qs[0];
    assert_eq!(part(q1, "patientAnswers").unwrap()["valueInteger"], 4);
    let counts: Vec<(String, u64)> = q1["part"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "answers")
        .map(|p| {
            (
                p["part"][0]["valueCoding"]["code"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                p["part"][1]["valueInteger"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("ja".into(), 2),
            ("delvis".into(), 1),
            ("nej".into(), 1),
            ("vet-inte".into(), 0),
            ("inte-aktuellt".into(), 0)
        ]
    );
    assert_eq!(part(q1, "unitAnswers").unwrap()["valueInteger"], 1);
    assert_eq!(score(q1, "unitMean"), Some(1.0));
    assert_eq!(score(q1, "exactAgreement"), Some(0.5));
    assert_eq!(score(q1, "weightedAgreement"), Some(0.625));
    assert_eq!(score(q1, "patientMean"), Some(0.625));
    assert_eq!(score(q1, "gap"), Some(0.375));

    // Three of four say nej where the unit says ja; "vet inte" has no value.
    let q2 = &qs[1];
    assert_eq!(score(q2, "exactAgreement"), Some(0.0));
    assert_eq!(score(q2, "weightedAgreement"), Some(0.0));
    assert_eq!(score(q2, "patientMean"), Some(0.0));
    assert_eq!(score(q2, "gap"), Some(1.0));

    // The unit says delvis: ja ½, ja ½, delvis 1 (vet inte left out) → 2/3.
    let q5 = &qs[4];
    assert_eq!(score(q5, "exactAgreement"), Some(0.25));
    assert_eq!(score(q5, "weightedAgreement"), Some(0.6667));
    assert_eq!(score(q5, "gap"), Some(-0.3333));

    let q3 = &qs[2];
    assert_eq!(
        (score(q3, "exactAgreement"), score(q3, "gap")),
        (Some(1.0), Some(0.0))
    );

    let gaps: Vec<&str> = parameter(&report, "largestGap")
        .iter()
        .map(|p| p["valueString"].as_str().unwrap())
        .collect();
    assert_eq!(gaps, ["2", "1", "5"]);

    // One answer: the period of one person's answers.
    let single = fhir_get(&app, &format!("/fhir/$samsyn?unit={UNIT}&period=2025-12"))
        .await
        .body;
    assert_eq!(parameter(&single, "patients")[0]["valueInteger"], 1);
    let q1 = &questions(&single)[0];
    // No one of the unit's staff answered that month: the patient's mean, no comparison.
    assert_eq!(part(q1, "unitAnswers").unwrap()["valueInteger"], 0);
    assert_eq!(score(q1, "patientMean"), Some(0.0));
    assert_eq!(
        (
            score(q1, "exactAgreement"),
            score(q1, "weightedAgreement"),
            score(q1, "gap")
        ),
        (None, None, None)
    );
    assert!(parameter(&single, "largestGap").is_empty());

    // No answers at all: counts of zero and no scores, not zeros.
    let empty = fhir_get(&app, "/fhir/$samsyn?unit=SE2321000016-ONK3")
        .await
        .body;
    assert_eq!(parameter(&empty, "patients")[0]["valueInteger"], 0);
    for q in questions(&empty) {
        assert_eq!(part(&q, "patientAnswers").unwrap()["valueInteger"], 0);
        for name in [
            "unitMean",
            "exactAgreement",
            "weightedAgreement",
            "patientMean",
            "gap",
        ] {
            assert!(part(&q, name).is_none(), "{name}");
        }
    }

    for bad in [
        "/fhir/$samsyn",
        "/fhir/$samsyn?unit=nej",
        &format!("/fhir/$samsyn?unit={UNIT}&period=förra-året"),
    ] {
        let reply = fhir_get(&app, bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.body["issue"][0]["diagnostics"].is_string());
    }

    // The report and the answers are valid R4, by the independent validator.
    let answers = fhir_get(&app, "/fhir/QuestionnaireResponse").await.body;
    common::assert_valid_r4(&[&report, &empty, &answers]);
}

/// One of the unit's staff answering, with who they are and what the unit should renew.
fn staff_answers(staff: &str, authored: &str, codes: [&str; 7], to_renew: Option<&str>) -> Value {
    let mut answers = care_answers(UNIT, authored, codes);
    answers["author"] =
        json!({ "type": "PractitionerRole", "identifier": { "system": HSA, "value": staff } });
    if let Some(text) = to_renew {
        answers["item"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "linkId": "fornya", "answer": [{ "valueString": text }] }));
    }
    answers
}

/// Every staff member's answers count (their latest each), "inte aktuellt för mig" is
/// no gap, too few patients are not shown as "the patients'", and what the unit says
/// it must renew is kept with the report. Computed by hand.
async fn samsyn_counts_the_staff_withholds_few_patients_and_keeps_what_to_renew(db: &TestDb) {
    let app = spawn_app(db).await;
    let in_march = "2026-03-10T10:00:00+01:00";
    let q4 = |code: &'static str| ["ja", "ja", "ja", code, "ja", "ja", "ja"];
    post_all(
        &app,
        &[
            // Staff A answered twice (the latest counts), staff B once.
            staff_answers(
                "SE2321000016-P001",
                "2026-02-01T10:00:00+01:00",
                ["nej"; 7],
                None,
            ),
            staff_answers(
                "SE2321000016-P001",
                "2026-02-15T10:00:00+01:00",
                ["ja"; 7],
                Some("Rutiner för överlämning till kommunen"),
            ),
            staff_answers(
                "SE2321000016-P002",
                "2026-02-20T10:00:00+01:00",
                q4("delvis"),
                Some("Fler tider för telefonrådgivning"),
            ),
            patient_answers("194003129865", UNIT, in_march, q4("ja")),
            patient_answers("195208239813", UNIT, in_march, q4("inte-aktuellt")),
            patient_answers("197811049928", UNIT, in_march, q4("ja")),
            patient_answers("198507789827", UNIT, in_march, q4("inte-aktuellt")),
        ],
    )
    .await;
    let in_2025 = "2025-05-10T10:00:00+02:00";
    post_all(
        &app,
        &[
            staff_answers("SE2321000016-P001", in_2025, ["ja"; 7], None),
            patient_answers("194003129865", UNIT, in_2025, ["nej"; 7]),
            patient_answers("195208239813", UNIT, in_2025, ["nej"; 7]),
            patient_answers("197811049928", UNIT, in_2025, ["nej"; 7]),
            patient_answers("198507789827", UNIT, in_2025, ["nej"; 7]),
            patient_answers("200806159836", UNIT, in_2025, ["nej"; 7]),
        ],
    )
    .await;
    let url = format!("/fhir/$samsyn?unit={UNIT}&period=2026");
    // Four patients: fewer than five, so their figures are withheld.
    let few = fhir_get(&app, &url).await.body;
    assert_eq!(parameter(&few, "patients")[0]["valueInteger"], 4);
    assert!(
        !parameter(&few, "patientFiguresWithheld").is_empty(),
        "{few}"
    );
    let q4_few = &questions(&few)[3];
    assert_eq!(part(q4_few, "patientAnswers").unwrap()["valueInteger"], 0);
    assert!(score(q4_few, "patientMean").is_none() && score(q4_few, "gap").is_none());
    assert_eq!(
        part(q4_few, "unitAnswers").unwrap()["valueInteger"],
        2,
        "both of the staff"
    );

    post_all(
        &app,
        &[patient_answers("200806159836", UNIT, in_march, q4("nej"))],
    )
    .await;
    let report = fhir_get(&app, &url).await.body;
    assert!(parameter(&report, "patientFiguresWithheld").is_empty());
    assert_eq!(parameter(&report, "staff")[0]["valueInteger"], 2);
    let q4 = &questions(&report)[3];
    // Patients: ja, ja, nej (two "inte aktuellt" left out) → ⅔; staff: ja, delvis → ¾.
    assert_eq!(part(q4, "patientAnswers").unwrap()["valueInteger"], 5);
    assert_eq!(score(q4, "patientMean"), Some(0.6667));
    assert_eq!(score(q4, "unitMean"), Some(0.75));
    assert_eq!(score(q4, "gap"), Some(0.0833));
    // 3 × 2 pairs: ja–ja twice equal → ⅓; weighted (1 + ½ + 1 + ½ + 0 + ½) / 6 = 3.5 / 6.
    assert_eq!(score(q4, "exactAgreement"), Some(0.3333));
    assert_eq!(score(q4, "weightedAgreement"), Some(0.5833));
    let count_of = |code: &str| {
        q4["part"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "answers" && p["part"][0]["valueCoding"]["code"] == code)
            .map(|p| p["part"][1]["valueInteger"].as_u64().unwrap())
    };
    assert_eq!(count_of("inte-aktuellt"), Some(2));
    // The trend: the three years before, oldest first; in 2025 five patients said nej to
    // question 1 and the one of staff who answered said ja; no one answered before that.
    let earlier = parameter(&report, "earlier");
    let periods: Vec<&str> = earlier
        .iter()
        .map(|e| e["part"][0]["valueString"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2023", "2024", "2025"]);
    let q1_2025 = &earlier[2]["part"][1];
    assert_eq!(q1_2025["part"][0]["valueString"], "1");
    assert_eq!(score(q1_2025, "patientMean"), Some(0.0));
    assert_eq!(score(q1_2025, "unitMean"), Some(1.0));
    assert!(score(&earlier[0]["part"][1], "patientMean").is_none());
    let chart = app
        .client
        .get(app.url(&format!("{url}&_format=svg")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        chart.contains("Patienterna tidigare: 2023 –, 2024 –, 2025 0 %"),
        "{chart}"
    );
    let renew: Vec<&str> = parameter(&report, "toRenew")
        .iter()
        .map(|p| p["valueString"].as_str().unwrap())
        .collect();
    assert_eq!(
        renew,
        [
            "Rutiner för överlämning till kommunen",
            "Fler tider för telefonrådgivning"
        ]
    );
    common::assert_valid_r4(&[&few, &report]);

    // "Inte aktuellt" only where a question is asked "vid behov"; the free text is care's.
    let mut wrong = ["ja"; 7];
    wrong[0] = "inte-aktuellt";
    let refused = post(
        &app,
        &patient_answers("194003129865", UNIT, in_march, wrong),
    )
    .await;
    assert_eq!(
        expressions(&refused),
        ["QuestionnaireResponse.item[0].answer[0]"]
    );
    let mut patient_text = patient_answers("194003129865", UNIT, in_march, ["ja"; 7]);
    patient_text["item"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "linkId": "fornya", "answer": [{ "valueString": "x" }] }));
    let refused = post(&app, &patient_text).await;
    assert_eq!(
        expressions(&refused),
        ["QuestionnaireResponse.item[7].linkId"]
    );
}

async fn the_chart_shows_all_seven_questions_in_a_browser(db: &TestDb) {
    let app = spawn_app(db).await;
    post_all(
        &app,
        &[
            care_answers(
                UNIT,
                "2026-02-01T10:00:00+01:00",
                ["ja", "ja", "ja", "ja", "delvis", "ja", "ja"],
            ),
            patient_answers(
                "194003129865",
                UNIT,
                "2026-03-10T10:00:00+01:00",
                ["ja", "nej", "ja", "delvis", "ja", "ja", "vet-inte"],
            ),
            patient_answers(
                "195208239813",
                UNIT,
                "2026-03-11T10:00:00+01:00",
                ["delvis", "nej", "ja", "ja", "nej", "ja", "ja"],
            ),
        ],
    )
    .await;
    let path = format!("/fhir/$samsyn?unit={UNIT}&period=2026&_format=svg");
    let response = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "image/svg+xml; charset=utf-8"
    );
    let svg = response.text().await.unwrap();
    well_formed(&svg).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let patient = fhir_get(&app, "/fhir/Questionnaire/sju-fragor-patient")
        .await
        .body;
    for question in texts(&patient) {
        assert!(svg.contains(&question), "the chart names: {question}");
    }
    // Asked for by Accept, the same chart.
    let by_accept = app
        .client
        .get(app.url(&format!("/fhir/$samsyn?unit={UNIT}&period=2026")))
        .header("accept", "image/svg+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(by_accept.text().await.unwrap(), svg);

    let dir = tempfile::tempdir().unwrap();
    let png = screenshot(&app.url(&path), dir.path()).await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 20_000,
        "the screenshot is not blank ({} bytes)",
        png.len()
    );
}

on_both_backends!(
    the_seven_questions_are_served_in_the_seeds_words,
    answers_are_checked_against_the_questionnaire,
    answers_are_found_by_patient_unit_plan_and_date,
    samsyn_scores_are_the_hand_computed_ones,
    samsyn_counts_the_staff_withholds_few_patients_and_keeps_what_to_renew,
    the_chart_shows_all_seven_questions_in_a_browser,
);
