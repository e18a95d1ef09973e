//! The person's side, from a portal with the person's own token, over HTTP on SQLite and
//! PostgreSQL, with the contract synced to a separate FHIR server (sekmet-fhir) playing
//! the unit's EHR: the person answers an agreed time (`AppointmentResponse`) — accepts
//! one care has accepted, declines one and proposes another — and each answer is a
//! version with the person as author that reaches the EHR; what the person may not answer
//! is refused, naming why, with nothing stored.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use common::app::{TestApp, spawn_state};
use common::peer::{FhirPeer, assert_holds, engine, settle, target};
use pkgw::auth::{AuthSettings, DevToken, Mode, Verifier};
use pkgw::config::Secret;
use pkgw::domain::{AgreedTimeStatus, ContractId, Status};
use pkgw::fhir::{Profile, appointment_id};
use pkgw::store::{Change, Record};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn auth() -> AuthSettings {
    AuthSettings {
        mode: Mode::Required,
        issuer: "pkgw-test".into(),
        audience: "pkgw".into(),
        leeway_secs: 30,
        hs256_secret: Secret::new("the-person-test-secret"),
        jwks_file: String::new(),
        jwks_url: String::new(),
        authorize_url: String::new(),
        token_url: String::new(),
        grant_types: Vec::new(),
        smart_capabilities: Vec::new(),
    }
}

fn token(scope: &str, patient: Option<&str>) -> String {
    let token = DevToken {
        client: "portal".into(),
        subject: "portal".into(),
        scope: scope.into(),
        patient: patient.map(str::to_owned),
        units: None,
        valid_for: std::time::Duration::from_secs(600),
    };
    pkgw::auth::dev_token(&auth(), &token).unwrap()
}

async fn portal(db: &TestDb) -> TestApp {
    let verifier = Verifier::from_settings(&auth()).await.unwrap();
    let state = pkgw::api::AppState::new(db.store().await).with_verifier(verifier);
    spawn_state(state, pkgw::api::Limits::default()).await
}

/// The heart-failure fixture with its times moved around now: a doctor's visit in five
/// days (agreed), a phone call in ten (care has accepted, the person not yet), and a
/// visit a week ago.
fn contract(status: Status) -> pkgw::domain::Contract {
    let mut contract = common::fixture("hjartsvikt-primarvard");
    contract.status = status;
    let now = jiff::Timestamp::now();
    let at = |days: i64| now + jiff::SignedDuration::from_hours(24 * days);
    let mut past = contract.agreed_times[0].clone();
    for (time, days) in contract.agreed_times.iter_mut().zip([5, 10]) {
        time.start = at(days);
        time.end = at(days) + jiff::SignedDuration::from_mins(30);
    }
    assert_eq!(contract.agreed_times[1].status, AgreedTimeStatus::Proposed);
    past.id = "forra-veckan".into();
    past.start = at(-7);
    past.end = at(-7) + jiff::SignedDuration::from_mins(30);
    contract.agreed_times.push(past);
    contract
}

async fn answer(
    app: &TestApp,
    token: &str,
    body: &Value,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = app
        .client
        .post(app.url("/fhir/AppointmentResponse"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .json(body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, response.json().await.unwrap(), headers)
}

async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn response_to(appointment: &str, status: &str) -> Value {
    json!({
        "resourceType": "AppointmentResponse",
        "appointment": { "reference": format!("Appointment/{appointment}") },
        "participantStatus": status,
    })
}

async fn latest(app: &TestApp, record: &Record) -> Record {
    app.store.get(&record.id).await.unwrap()
}

/// The portal over `db` with one contract in force (see [`contract`]), the person's
/// personnummer and their own writing token.
async fn portal_with_contract(db: &TestDb) -> (TestApp, Record, String, String) {
    let app = portal(db).await;
    let record = app
        .store
        .create(contract(Status::Active), Change::from_source("ehr"))
        .await
        .unwrap();
    let pnr = record.revision.contract.patient.id.to_string();
    let person = token("patient/*.cruds", Some(&pnr));
    (app, record, pnr, person)
}

async fn a_person_answers_an_agreed_time_and_the_ehr_gets_it(db: &TestDb) {
    let (app, record, pnr, person) = portal_with_contract(db).await;
    let ehr = FhirPeer::start().await;
    let engine = engine(&app.store, &[target("journal", &ehr.base, &[])]);
    let time = |id: &str| appointment_id(&record.id, id);

    // Accepting the phone call care has accepted makes it agreed.
    let (status, body, headers) = answer(
        &app,
        &person,
        &response_to(&time("telefon-jan"), "accepted"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["participantStatus"], "accepted");
    assert_eq!(body["actor"]["identifier"]["value"], pnr);
    let location = headers["location"].to_str().unwrap();
    assert!(
        location.contains(&format!(
            "/fhir/AppointmentResponse/{}-svar/_history/2",
            time("telefon-jan")
        )),
        "{location}"
    );
    let (status, appointment) = get(
        &app,
        &person,
        &format!("/fhir/Appointment/{}", time("telefon-jan")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["participant"][0]["status"], "accepted");
    let (status, read) = get(
        &app,
        &person,
        &format!("/fhir/AppointmentResponse/{}-svar", time("telefon-jan")),
    )
    .await;
    assert_eq!((status, &read), (StatusCode::OK, &body));
    // The person is the version's author.
    let (_, provenance) = get(&app, &person, &format!("/fhir/Provenance/{}-v2", record.id)).await;
    assert_eq!(
        provenance["agent"][0]["who"]["reference"],
        format!("Patient/{pnr}")
    );
    assert!(
        provenance["target"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["reference"] == format!("Appointment/{}/_history/2", time("telefon-jan")))
    );

    // Declining the doctor's visit, with another time proposed.
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 12);
    let end = start + jiff::SignedDuration::from_mins(30);
    let mut declined = response_to(&time("lakarbesok-dec"), "declined");
    declined["start"] = json!(start.to_string());
    declined["end"] = json!(end.to_string());
    let (status, body, _) = answer(&app, &person, &declined).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["participantStatus"], "declined");
    assert_eq!(body["start"], start.to_string());
    let now = latest(&app, &record).await;
    let times = &now.revision.contract.agreed_times;
    let visit = times.iter().find(|t| t.id == "lakarbesok-dec").unwrap();
    assert_eq!(
        (
            visit.status,
            visit.declined_by_patient,
            visit.accepted_by_patient
        ),
        (AgreedTimeStatus::Proposed, true, false)
    );
    let proposal = times
        .iter()
        .find(|t| t.id == "lakarbesok-dec-forslag")
        .unwrap();
    assert!(
        proposal.is_persons_proposal() && proposal.start == start,
        "{proposal:?}"
    );
    let (_, appointment) = get(
        &app,
        &person,
        &format!("/fhir/Appointment/{}", time("lakarbesok-dec")),
    )
    .await;
    assert_eq!(
        (
            &appointment["status"],
            &appointment["participant"][0]["status"]
        ),
        (&json!("proposed"), &json!("declined"))
    );

    // The EHR gets the person's answers.
    settle(&engine, &app.store).await;
    assert_holds(&ehr, &now, &Profile::default_profile()).await;
    let (_, theirs) = ehr
        .get(&format!("Appointment/{}", time("lakarbesok-dec-forslag")))
        .await;
    assert_eq!(theirs["status"], "proposed");
}

async fn what_the_person_may_not_answer_is_refused_and_nothing_stored(db: &TestDb) {
    let (app, record, _, person) = portal_with_contract(db).await;
    let time = |id: &str| appointment_id(&record.id, id);
    let refused =
        |body: Value, status: StatusCode, expression: &'static str, says: &'static str| {
            let (app, person) = (&app, &person);
            async move {
                let (got, outcome, _) = answer(app, person, &body).await;
                assert_eq!(got, status, "{outcome}");
                let issue = &outcome["issue"][0];
                if !expression.is_empty() {
                    assert_eq!(issue["expression"][0], expression, "{outcome}");
                }
                assert!(
                    issue["diagnostics"].as_str().unwrap().contains(says),
                    "{outcome}"
                );
            }
        };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    refused(
        response_to(&time("forra-veckan"), "accepted"),
        unprocessable,
        "AppointmentResponse.appointment",
        "already begun",
    )
    .await;
    let mut commented = response_to(&time("telefon-jan"), "accepted");
    commented["comment"] = json!("Jag kan bara på eftermiddagen");
    refused(
        commented,
        unprocessable,
        "AppointmentResponse.comment",
        "not kept",
    )
    .await;
    refused(
        response_to(&time("telefon-jan"), "tentative"),
        unprocessable,
        "AppointmentResponse.participantStatus",
        "accepts or declines",
    )
    .await;
    let mut proposed = response_to(&time("telefon-jan"), "accepted");
    proposed["start"] = json!("2030-01-01T10:00:00Z");
    proposed["end"] = json!("2030-01-01T10:30:00Z");
    refused(
        proposed,
        unprocessable,
        "AppointmentResponse.start",
        "declined",
    )
    .await;
    let mut for_someone = response_to(&time("telefon-jan"), "accepted");
    for_someone["actor"] = json!({ "reference": "Patient/195208239813" });
    refused(
        for_someone,
        unprocessable,
        "AppointmentResponse.actor",
        "the person",
    )
    .await;

    // Another person's time is not known, as one that does not exist.
    let other = app
        .store
        .create(
            common::fixture("cancer-min-vardplan"),
            Change::from_source("ehr"),
        )
        .await
        .unwrap();
    let theirs = appointment_id(&other.id, "behandling-3");
    refused(
        response_to(&theirs, "accepted"),
        StatusCode::NOT_FOUND,
        "",
        "is not known",
    )
    .await;
    let nowhere = appointment_id(&ContractId::parse("finns-inte").unwrap(), "x");
    refused(
        response_to(&nowhere, "accepted"),
        StatusCode::NOT_FOUND,
        "",
        "is not known",
    )
    .await;

    // A contract not in force has no time to answer.
    let ended = app
        .store
        .create(contract(Status::OnHold), Change::from_source("ehr"))
        .await
        .unwrap();
    refused(
        response_to(&appointment_id(&ended.id, "telefon-jan"), "accepted"),
        unprocessable,
        "AppointmentResponse.appointment",
        "not in force",
    )
    .await;

    // Care's systems answer in the Appointment, not as the person.
    let (status, outcome, _) = answer(
        &app,
        &token("system/*.cruds", None),
        &response_to(&time("telefon-jan"), "accepted"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{outcome}");

    for contract in [&record, &other, &ended] {
        assert_eq!(
            latest(&app, contract).await.revision.version.get(),
            1,
            "nothing stored"
        );
    }
    // Unanswered, there is no answer to read.
    let (status, _) = get(
        &app,
        &person,
        &format!("/fhir/AppointmentResponse/{}-svar", time("telefon-jan")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

on_both_backends!(
    a_person_answers_an_agreed_time_and_the_ehr_gets_it,
    what_the_person_may_not_answer_is_refused_and_nothing_stored,
);
