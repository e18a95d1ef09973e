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
use pkgw::auth::{AuthSettings, DevToken, Verifier};
use pkgw::domain::{AgreedTimeStatus, ContactReason, ContractId, RequestStatus, Status};
use pkgw::fhir::{Profile, appointment_id};
use pkgw::store::{Change, Record};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn auth() -> AuthSettings {
    AuthSettings::hs256("pkgw-test", "pkgw", 30, "the-person-test-secret")
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

/// The Provenance of `version` of `contract` has the person `pnr` as author and, when
/// given, names `changed` (`{type}/{id}/_history/{version}`) among what it changed.
async fn assert_by_person(
    app: &TestApp,
    contract: &ContractId,
    version: u64,
    pnr: &str,
    changed: Option<String>,
) {
    let path = format!("/fhir/Provenance/{contract}-v{version}");
    let (_, provenance) = get(app, &token("system/*.cruds", None), &path).await;
    assert_eq!(
        provenance["agent"][0]["who"]["reference"],
        format!("Patient/{pnr}"),
        "{provenance}"
    );
    if let Some(changed) = changed {
        let targets = provenance["target"].as_array().unwrap();
        assert!(
            targets.iter().any(|t| t["reference"] == changed.as_str()),
            "{changed}: {provenance}"
        );
    }
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
    let changed = format!("Appointment/{}/_history/2", time("telefon-jan"));
    assert_by_person(&app, &record.id, 2, &pnr, Some(changed)).await;

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

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .json(body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// The person's request to be contacted about `plan` (and an Appointment, if given).
fn ask(plan: &ContractId, reason: &str, message: &str, appointment: Option<&str>) -> Value {
    let mut about = vec![json!({ "reference": format!("CarePlan/{plan}") })];
    about.extend(appointment.map(|a| json!({ "reference": format!("Appointment/{a}") })));
    json!({
        "resourceType": "CommunicationRequest",
        "status": "active",
        "about": about,
        "reasonCode": [{ "coding": [{
            "system": Profile::default_profile().extensions.contact_reason,
            "code": reason,
        }] }],
        "payload": [{ "contentString": message }],
    })
}

fn journal_target(base: &str) -> pkgw::sync::TargetSettings {
    pkgw::sync::TargetSettings {
        journal_note: true,
        ..target("journal", base, &[])
    }
}

async fn a_person_asks_to_be_contacted_and_confirms_the_agreement_and_the_journal_gets_it(
    db: &TestDb,
) {
    let (app, record, pnr, person) = portal_with_contract(db).await;
    let ehr = FhirPeer::start().await;
    let engine = engine(&app.store, &[journal_target(&ehr.base)]);
    let id = &record.id;
    let visit = appointment_id(id, "lakarbesok-dec");
    let message = "Kan vi flytta läkarbesöket till en eftermiddag?";

    // Asking for a new time, with a message to the fast vårdkontakt.
    let (status, asked) = send(
        &app,
        &person,
        reqwest::Method::POST,
        "/fhir/CommunicationRequest",
        Some(&ask(id, "ny-tid", message, Some(&visit))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let request = format!("{id}-kontakt-1");
    assert_eq!(asked["id"], request);
    assert_eq!(asked["subject"]["identifier"]["value"], pnr);
    assert_eq!(asked["requester"]["identifier"]["value"], pnr);
    assert_eq!(asked["recipient"][0]["reference"], format!("CareTeam/{id}"));
    assert_eq!(asked["payload"][0]["contentString"], message);
    let now = latest(&app, &record).await;
    let kept = &now.revision.contract.contact_requests;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (
            kept[0].reason,
            kept[0].message.as_str(),
            kept[0].about_time.as_deref(),
            kept[0].status
        ),
        (
            ContactReason::NewTime,
            message,
            Some("lakarbesok-dec"),
            RequestStatus::Open
        )
    );
    let (status, read) = send(
        &app,
        &person,
        reqwest::Method::GET,
        &format!("/fhir/CommunicationRequest/{request}"),
        None,
    )
    .await;
    assert_eq!(
        (status, &read["payload"]),
        (StatusCode::OK, &asked["payload"])
    );
    let changed = format!("CommunicationRequest/{request}/_history/2");
    assert_by_person(&app, id, 2, &pnr, Some(changed)).await;

    // "Vi är överens."
    let (status, plan) = send(
        &app,
        &person,
        reqwest::Method::POST,
        &format!("/fhir/CarePlan/{id}/$confirm"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let url = Profile::default_profile().extensions.agreement_confirmed;
    assert!(
        plan["extension"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["url"] == url.as_str() && e["valueDateTime"].is_string()),
        "{plan}"
    );
    let confirmed = latest(&app, &record).await;
    assert_eq!(confirmed.revision.version.get(), 3);
    assert!(confirmed.revision.contract.confirmed.is_some());
    assert_by_person(&app, id, 3, &pnr, None).await;

    // The EHR gets the request, the confirmation and a journal note under the keyword.
    settle(&engine, &app.store).await;
    assert_holds(&ehr, &confirmed, &Profile::default_profile()).await;
    let note_of = |version: u64| format!("DocumentReference/{id}-anteckning-v{version}");
    let (status, note) = ehr.get(&note_of(3)).await;
    assert_eq!(status, StatusCode::OK, "{note}");
    common::app::keep_for_validation(&note);
    let keyword = Profile::built_in("default").unwrap().category;
    assert_eq!(note["type"]["coding"][0]["code"], keyword.code.as_str());
    assert_eq!(
        note["context"]["related"][0]["reference"],
        format!("CarePlan/{id}")
    );
    let div = note["text"]["div"].as_str().unwrap();
    assert!(div.contains("vi är överens") && div.contains("Vi har samtalat om delarna"));
    assert!(div.contains(message), "the request is in the note: {div}");

    // Care answers the request; the person's words stay as written.
    let ehr_token = token("system/*.cruds", None);
    let mut done = read.clone();
    done["status"] = json!("completed");
    let (status, body) = send(
        &app,
        &ehr_token,
        reqwest::Method::PUT,
        &format!("/fhir/CommunicationRequest/{request}"),
        Some(&done),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answered = latest(&app, &record).await;
    assert_eq!(
        answered.revision.contract.contact_requests[0].status,
        RequestStatus::Done
    );

    // A change to the agreement cannot keep the person's confirmation of the earlier one.
    let step = json!([{ "op": "replace", "path": "/activity/0/detail/description",
        "value": "Ring mottagningen för att boka provtagning" }]);
    let patch = |body: Value| {
        let (app, ehr_token) = (&app, &ehr_token);
        async move {
            let response = app
                .client
                .patch(app.url(&format!("/fhir/CarePlan/{id}")))
                .bearer_auth(ehr_token)
                .header("content-type", "application/json-patch+json")
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, outcome) = patch(step.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert!(
        outcome
            .to_string()
            .contains("confirmed the agreement as it stood"),
        "{outcome}"
    );
    assert_eq!(
        latest(&app, &record).await.revision.version,
        answered.revision.version
    );
    let (_, plan) = get(&app, &ehr_token, &format!("/fhir/CarePlan/{id}")).await;
    let at = plan["extension"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["url"] == url.as_str())
        .unwrap();
    let mut without = step.as_array().unwrap().clone();
    without.push(json!({ "op": "remove", "path": format!("/extension/{at}") }));
    let (status, outcome) = patch(Value::Array(without)).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    let changed = latest(&app, &record).await;
    assert!(changed.revision.contract.confirmed.is_none());

    // A new note for the new agreement; the earlier one stays in the journal.
    settle(&engine, &app.store).await;
    let version = changed.revision.version.get();
    let (status, newer) = ehr.get(&note_of(version)).await;
    assert_eq!(status, StatusCode::OK, "{newer}");
    assert!(
        newer["text"]["div"]
            .as_str()
            .unwrap()
            .contains("provtagning")
    );
    assert_eq!(ehr.get(&note_of(3)).await.0, StatusCode::OK);
    // The request answered, the answer with it, and no note for that version alone: it
    // did not change what was agreed.
    assert_eq!(
        ehr.get(&note_of(version - 1)).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, theirs) = ehr.get(&format!("CommunicationRequest/{request}")).await;
    assert_eq!(theirs["status"], "completed");
}

async fn what_the_person_may_not_ask_or_confirm_is_refused_and_nothing_stored(db: &TestDb) {
    let (app, record, _, person) = portal_with_contract(db).await;
    let id = &record.id;
    let post = |path: String, body: Option<Value>| {
        let (app, person) = (&app, &person);
        async move { send(app, person, reqwest::Method::POST, &path, body.as_ref()).await }
    };
    let refused = |(status, outcome): (StatusCode, Value), want: StatusCode, says: &str| {
        assert_eq!(status, want, "{outcome}");
        assert!(outcome.to_string().contains(says), "{says}: {outcome}");
    };
    let requests = "/fhir/CommunicationRequest".to_owned();
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    // What the request must say.
    let mut silent = ask(id, "kontakt", "x", None);
    silent.as_object_mut().unwrap().remove("payload");
    refused(
        post(requests.clone(), Some(silent)).await,
        unprocessable,
        "one payload",
    );
    refused(
        post(requests.clone(), Some(ask(id, "prata", "Hej", None))).await,
        unprocessable,
        "kontakt, ny-tid or andra-overenskommelsen",
    );
    let mut elsewhere = ask(id, "kontakt", "Hej", None);
    elsewhere["recipient"] = json!([{ "reference": "Practitioner/someone" }]);
    refused(
        post(requests.clone(), Some(elsewhere)).await,
        unprocessable,
        "recipient",
    );
    let foreign_time = ask(id, "ny-tid", "Hej", Some("not-ours-0000000000000000"));
    refused(
        post(requests.clone(), Some(foreign_time)).await,
        unprocessable,
        "about",
    );

    // Another person's contract is not known; one not in force is refused.
    let other = app
        .store
        .create(
            common::fixture("cancer-min-vardplan"),
            Change::from_source("ehr"),
        )
        .await
        .unwrap();
    refused(
        post(
            requests.clone(),
            Some(ask(&other.id, "kontakt", "Hej", None)),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not known",
    );
    refused(
        post(format!("/fhir/CarePlan/{}/$confirm", other.id), None).await,
        StatusCode::NOT_FOUND,
        "not known",
    );
    let pnr = record.revision.contract.patient.id.clone();
    let mut ended = contract(Status::Completed);
    ended.patient.id = pnr;
    let ended = app
        .store
        .create(ended, Change::from_source("ehr"))
        .await
        .unwrap();
    refused(
        post(
            requests.clone(),
            Some(ask(&ended.id, "kontakt", "Hej", None)),
        )
        .await,
        unprocessable,
        "not in force",
    );
    refused(
        post(format!("/fhir/CarePlan/{}/$confirm", ended.id), None).await,
        unprocessable,
        "not in force",
    );
    // $confirm takes nothing, and is the person's word, not care's.
    refused(
        post(
            format!("/fhir/CarePlan/{id}/$confirm"),
            Some(json!({ "resourceType": "Parameters", "parameter": [{ "name": "x" }] })),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "no parameters",
    );
    refused(
        send(
            &app,
            &token("system/*.cruds", None),
            reqwest::Method::POST,
            &format!("/fhir/CarePlan/{id}/$confirm"),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "the person's own word",
    );
    for contract in [&record, &other, &ended] {
        assert_eq!(
            latest(&app, contract).await.revision.version.get(),
            1,
            "nothing stored"
        );
    }

    // The person withdraws their request, and cannot answer it for care.
    let (status, asked) = post(requests.clone(), Some(ask(id, "kontakt", "Ring mig", None))).await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let path = format!(
        "/fhir/CommunicationRequest/{}",
        asked["id"].as_str().unwrap()
    ); // Another person neither reads nor finds it.
    let stranger = token(
        "patient/*.cruds",
        Some(&other.revision.contract.patient.id.to_string()),
    );
    let (status, _) = get(&app, &stranger, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, found) = get(
        &app,
        &stranger,
        &format!(
            "/fhir/CommunicationRequest?_id={}",
            asked["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        (status, &found["total"]),
        (StatusCode::OK, &json!(0)),
        "{found}"
    );

    let mut done = asked.clone();
    done["status"] = json!("completed");
    refused(
        send(&app, &person, reqwest::Method::PUT, &path, Some(&done)).await,
        StatusCode::FORBIDDEN,
        "withdraw an open request",
    );
    let mut reworded = asked.clone();
    reworded["payload"][0]["contentString"] = json!("Något annat");
    refused(
        send(&app, &person, reqwest::Method::PUT, &path, Some(&reworded)).await,
        StatusCode::FORBIDDEN,
        "its words stay as written",
    );
    let mut withdrawn = asked.clone();
    withdrawn["status"] = json!("revoked");
    let (status, body) = send(&app, &person, reqwest::Method::PUT, &path, Some(&withdrawn)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        latest(&app, &record)
            .await
            .revision
            .contract
            .contact_requests[0]
            .status,
        RequestStatus::Withdrawn
    );
}

/// Runs `tests/portal/drive.mjs` (headless Chromium over the DevTools protocol) on the
/// portal with `token`; what it saw, and where it put its screenshots.
async fn drive(app: &TestApp, token: &str, mode: Option<&str>) -> (Value, tempfile::TempDir) {
    let node = std::env::var("PKGW_PORTAL_NODE").expect(
        "PKGW_PORTAL_NODE: run scripts/test.sh, which installs puppeteer-core and axe-core",
    );
    let out = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/portal/drive.mjs");
    let args = [
        app.base.clone(),
        token.to_owned(),
        out.path().display().to_string(),
    ];
    let mode = mode.map(str::to_owned);
    let chromium = common::browser::tool("chromium");
    let ran = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args(args)
            .args(mode)
            .env("PKGW_PORTAL_NODE", node)
            .env("PKGW_CHROMIUM", chromium)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let seen: Value = serde_json::from_str(printed.trim()).unwrap();
    assert!(seen["failure"].is_null(), "{}", seen["failure"]);
    assert_eq!(seen["errors"], json!([]), "the page logged errors");
    assert_eq!(
        seen["violations"],
        json!([]),
        "axe-core: {}",
        seen["violations"]
    );
    (seen, out)
}

/// One step of what [`drive`] saw.
fn step(seen: &Value, name: &str) -> Value {
    seen["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no step {name}: {seen}"))
}

/// The person's portal in headless Chromium (driven over the DevTools protocol by
/// `tests/portal/drive.mjs`): log in by keyboard with the person's token, see the first
/// page, accept a time, add a commitment of their own, see both after a reload; no
/// personal data in the address; axe-core finds nothing against WCAG 2.1 A and AA at
/// desktop and phone width; screenshots of both under `target/portal-screenshots/`.
async fn the_portal_shows_the_first_page_and_takes_the_persons_actions(db: &TestDb) {
    let (app, record, pnr, person) = portal_with_contract(db).await;
    let ehr_copy = FhirPeer::start().await;
    let engine = engine(&app.store, &[journal_target(&ehr_copy.base)]);
    let (seen, out) = drive(&app, &person, None).await;
    let step = |name: &str| step(&seen, name);

    // Logged in by keyboard: Tab to the token field, Tab to the button, Enter.
    let login = step("login");
    assert_eq!(login["tabs"].as_array().unwrap().last().unwrap(), "nyckel");
    assert_eq!(login["onButton"], "Logga in");
    // The first page on top: the unit and how to reach it, the next step, the next
    // agreed time, the fixed contacts — before what matters and the rest.
    let contract = &record.revision.contract;
    let text = step("first page")["text"].as_str().unwrap().to_owned();
    let unit = contract.responsible_unit.as_ref().unwrap();
    let contact = &contract.care_contacts[0].name;
    let at = |what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("{what} is not on the page: {text}"))
    };
    for first in [
        at(&unit.name),
        at("telefontider"),
        at("Mitt nästa steg"),
        at(contact),
    ] {
        assert!(first < at("Det här är viktigt för mig"), "{text}");
    }

    // Each action said it was done, and the contract holds it, by the person.
    for (name, said) in [
        ("accept", "Du har tackat ja till tiden."),
        ("commitment", "Tillagt: Jag väger mig varje morgon."),
        ("what matters", "Tillagt: Att kunna plocka svamp i höst."),
        ("what matters changed", "Sparat."),
        ("contact", "Skickat. Din fasta vårdkontakt hör av sig."),
        ("confirm", "Tack! Du har bekräftat att ni är överens."),
        ("7 frågor", "Tack för dina svar!"),
    ] {
        let done = step(name);
        assert_eq!(
            (done["said"].as_str(), done["error"].as_str()),
            (Some(said), Some("")),
            "{name}"
        );
    }
    let now = latest(&app, &record).await;
    let c = &now.revision.contract;
    let call = c
        .agreed_times
        .iter()
        .find(|t| t.id == "telefon-jan")
        .unwrap();
    assert!(call.is_agreed(), "{call:?}");
    let own = c
        .agreement
        .commitments
        .iter()
        .find(|c| c.what == "Jag väger mig varje morgon")
        .expect("the person's commitment is in the contract");
    assert_eq!(own.who, pkgw::domain::Actor::Patient);
    let mut matters = contract.agreement.what_matters.clone();
    matters[0] = "Att orka gå med hunden runt hela sjön".into();
    matters.push("Att kunna plocka svamp i höst".into());
    assert_eq!(c.agreement.what_matters, matters);
    assert_eq!(c.contact_requests.len(), 1);
    assert_eq!(c.contact_requests[0].reason, ContactReason::NewTime);
    assert!(c.confirmed.is_some());
    // Six versions, each with the person as author.
    assert_eq!(now.revision.version.get(), 7);
    for version in 2..=7 {
        assert_by_person(&app, &record.id, version, &pnr, None).await;
    }
    // All of it reaches the unit's EHR, with the journal note of the agreement confirmed.
    settle(&engine, &app.store).await;
    assert_holds(&ehr_copy, &now, &Profile::default_profile()).await;
    let note = format!("DocumentReference/{}-anteckning-v7", record.id);
    assert_eq!(ehr_copy.get(&note).await.0, StatusCode::OK, "{note}");
    let ehr = token("system/*.cruds", None);
    let (_, answers) = get(
        &app,
        &ehr,
        &format!(
            "/fhir/QuestionnaireResponse?based-on=CarePlan/{}",
            record.id
        ),
    )
    .await;
    assert_eq!(answers["total"], 1, "{answers}");
    // After a reload, the page shows what was done; the address holds no personal data.
    let reload = step("reload");
    let text = reload["text"].as_str().unwrap();
    for shown in [
        "Jag väger mig varje morgon (varje morgon)",
        "Bokad: ni är överens om tiden.",
        "Att kunna plocka svamp i höst",
        "Kan vi ses en eftermiddag i stället?",
        "Jag bekräftade",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
    for url in [&login["url"], &reload["url"]] {
        assert_eq!(url.as_str().unwrap(), app.url("/portal"));
    }

    // Readable at phone width; the screenshots, for the README.
    assert!(
        step("phone")["overflow"].as_i64().unwrap() <= 0,
        "scrolls sideways"
    );
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (file, width) in [("portal-desktop.png", 1280), ("portal-phone.png", 375)] {
        let png = std::fs::read(out.path().join(file)).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{file}");
        let shown = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(shown % width, 0, "{file} is {shown} pixels wide");
        std::fs::write(shots.join(file), png).unwrap();
    }
}

/// A person without a contract starts one from the portal: a draft, initiated by them,
/// with what matters to them, which the page then shows as waiting for the unit.
async fn a_person_starts_a_contract_from_the_portal(db: &TestDb) {
    let app = portal(db).await;
    let pnr = "199001012385";
    let (seen, _) = drive(&app, &token("patient/*.cruds", Some(pnr)), Some("start")).await;
    let text = step(&seen, "no contract")["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("Starta ett patientkontrakt"), "{text}");
    let started = step(&seen, "start");
    assert_eq!(
        started["said"], "Ditt patientkontrakt är påbörjat.",
        "{started}"
    );
    let text = step(&seen, "reload")["text"].as_str().unwrap().to_owned();
    assert!(text.contains("Det här är ett utkast"), "{text}");
    let person = pkgw::domain::PersonId::parse(pnr).unwrap();
    let mine = app.store.find_by_patient(&person).await.unwrap();
    assert_eq!(mine.len(), 1);
    let c = &mine[0].revision.contract;
    assert_eq!(
        (c.status, c.initiated_by),
        (Status::Draft, pkgw::domain::Initiator::Patient)
    );
    assert_eq!(
        c.agreement.what_matters,
        ["Att kunna cykla till jobbet igen"]
    );
}

/// What the test's identity provider saw: why it refused, if it did, and how many codes
/// were exchanged with a PKCE verifier matching the challenge.
#[derive(Debug, Default)]
struct IdpLog {
    refused: Vec<String>,
    exchanged: usize,
    /// The challenge and redirect of each code given out.
    codes: std::collections::HashMap<String, (String, String)>,
}

/// A SMART identity provider for the portal's test: `/authorize` checks the request and
/// sends the person straight back with a code (the login itself is the region's
/// business); `/token` checks the code, the redirect, the client and the PKCE verifier,
/// and answers with a token for `pnr`.
async fn identity_provider(
    listener: tokio::net::TcpListener,
    portal: String,
    pnr: String,
) -> std::sync::Arc<std::sync::Mutex<IdpLog>> {
    use axum::extract::{Form, Query};
    use axum::response::IntoResponse;
    use base64::Engine;
    use sha2::Digest;
    use std::collections::HashMap;
    type Params = HashMap<String, String>;
    let log = std::sync::Arc::new(std::sync::Mutex::new(IdpLog::default()));
    let (a, t) = (log.clone(), log.clone());
    let redirect = format!("{portal}/portal");
    let (here, origin) = (redirect.clone(), portal.clone());
    let authorize = move |Query(q): Query<Params>| {
        let log = a.clone();
        let expected = [
            ("response_type", "code".to_owned()),
            ("client_id", "pkgw-portal".to_owned()),
            ("redirect_uri", redirect.clone()),
            ("code_challenge_method", "S256".to_owned()),
            ("aud", format!("{portal}/fhir")),
        ];
        async move {
            let mut log = log.lock().unwrap();
            for (key, value) in expected {
                if q.get(key) != Some(&value) {
                    log.refused
                        .push(format!("authorize: {key} = {:?}", q.get(key)));
                    return (StatusCode::BAD_REQUEST, "refused").into_response();
                }
            }
            if !q
                .get("scope")
                .is_some_and(|s| s.split(' ').any(|s| s == "launch/patient"))
            {
                log.refused
                    .push(format!("authorize: scope {:?}", q.get("scope")));
                return (StatusCode::BAD_REQUEST, "refused").into_response();
            }
            let code = uuid::Uuid::new_v4().to_string();
            log.codes.insert(
                code.clone(),
                (q["code_challenge"].clone(), q["redirect_uri"].clone()),
            );
            let back = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
            axum::response::Redirect::to(&back).into_response()
        }
    };
    let token_endpoint = move |Form(f): Form<Params>| {
        let (log, pnr, here, origin) = (t.clone(), pnr.clone(), here.clone(), origin.clone());
        async move {
            let mut log = log.lock().unwrap();
            let code = f.get("code").cloned().unwrap_or_default();
            let verified = log
                .codes
                .remove(&code)
                .is_some_and(|(challenge, redirect)| {
                    let digest =
                        sha2::Sha256::digest(f.get("code_verifier").cloned().unwrap_or_default());
                    let made = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                    made == challenge
                        && redirect == here
                        && f.get("redirect_uri") == Some(&here)
                        && f.get("grant_type").map(String::as_str) == Some("authorization_code")
                        && f.get("client_id").map(String::as_str) == Some("pkgw-portal")
                });
            let cors = [("access-control-allow-origin", origin)];
            if !verified {
                log.refused.push(format!("token: {f:?}"));
                return (
                    StatusCode::BAD_REQUEST,
                    cors,
                    axum::Json(json!({ "error": "invalid_grant" })),
                )
                    .into_response();
            }
            log.exchanged += 1;
            let answer = json!({
                "access_token": token("patient/*.cruds", Some(&pnr)),
                "token_type": "Bearer",
                "expires_in": 600,
                "scope": "launch/patient patient/*.cruds",
                "patient": pnr,
            });
            (cors, axum::Json(answer)).into_response()
        }
    };
    let router = axum::Router::new()
        .route("/authorize", axum::routing::get(authorize))
        .route("/token", axum::routing::post(token_endpoint));
    tokio::spawn(async move { axum::serve(listener, router).await });
    log
}

/// The person logs in to the portal at the region's identity provider (a SMART
/// standalone patient launch, authorization code with PKCE) and comes back logged in,
/// with nothing of the login left in the address.
async fn a_person_logs_in_to_the_portal_at_the_identity_provider(db: &TestDb) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = format!("http://{}", listener.local_addr().unwrap());
    let settings = AuthSettings {
        authorize_url: format!("{idp}/authorize"),
        token_url: format!("{idp}/token"),
        portal_client_id: "pkgw-portal".into(),
        ..auth()
    };
    let verifier = Verifier::from_settings(&settings).await.unwrap();
    let state = pkgw::api::AppState::new(db.store().await)
        .with_verifier(verifier)
        .with_discovery(&settings);
    let app = spawn_state(state, pkgw::api::Limits::default()).await;
    let record = app
        .store
        .create(contract(Status::Active), Change::from_source("ehr"))
        .await
        .unwrap();
    let pnr = record.revision.contract.patient.id.to_string();
    let log = identity_provider(listener, app.base.clone(), pnr).await;
    let (seen, _) = drive(&app, "-", Some("smart")).await;
    assert_eq!(log.lock().unwrap().refused, Vec::<String>::new());
    assert_eq!(log.lock().unwrap().exchanged, 1);
    let unit = &record
        .revision
        .contract
        .responsible_unit
        .as_ref()
        .unwrap()
        .name;
    for name in ["smart", "reload"] {
        let done = step(&seen, name);
        assert!(
            done["text"].as_str().unwrap().contains(unit.as_str()),
            "{done}"
        );
        assert_eq!(done["url"].as_str().unwrap(), app.url("/portal"), "{name}");
    }
}

on_both_backends!(
    a_person_answers_an_agreed_time_and_the_ehr_gets_it,
    what_the_person_may_not_answer_is_refused_and_nothing_stored,
    a_person_asks_to_be_contacted_and_confirms_the_agreement_and_the_journal_gets_it,
    what_the_person_may_not_ask_or_confirm_is_refused_and_nothing_stored,
    the_portal_shows_the_first_page_and_takes_the_persons_actions,
    a_person_starts_a_contract_from_the_portal,
    a_person_logs_in_to_the_portal_at_the_identity_provider,
);
