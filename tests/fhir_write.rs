//! Writes through the FHIR API over real sockets, on SQLite and PostgreSQL: create and
//! conditional create, update of every writable type and conditional update, delete,
//! `Prefer: return`, type-level history, `POST _search` and batch Bundles.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::{TestApp, spawn_app};
use common::fhir::{Reply, fhir_get, send, send_text};
use common::{TestDb, fixture};
use pkgw::domain::ContractId;
use pkgw::fhir::{ContractResources, Profile, to_fhir};
use pkgw::store::Change;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CONTRACT: &str = "https://pkgw.example/fhir/sid/patientkontrakt";
const PNR: &str = "http://electronichealth.se/identifier/personnummer";

/// A fixture's resources, as an EHR would hold them, under `id`.
fn resources(name: &str, id: &str) -> ContractResources {
    to_fhir(
        &ContractId::parse(id).unwrap(),
        &fixture(name),
        &Profile::default_profile(),
    )
}

/// The CarePlan of a new draft contract: no id or identifier yet, and no Goals to
/// refer to.
fn draft_plan(name: &str, id: &str) -> Value {
    let mut plan = resources(name, id).care_plan;
    plan["status"] = "draft".into();
    let fields = plan.as_object_mut().unwrap();
    for field in ["goal", "id", "identifier"] {
        fields.remove(field);
    }
    plan
}

fn issue_expression(outcome: &Value) -> &str {
    outcome["issue"][0]["expression"][0]
        .as_str()
        .unwrap_or_default()
}

async fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    send(app, Method::POST, path, headers, Some(body)).await
}

async fn put(app: &TestApp, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    send(app, Method::PUT, path, headers, Some(body)).await
}

async fn delete(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(app, Method::DELETE, path, headers, None).await
}

async fn a_contract_is_built_resource_by_resource(db: &TestDb) {
    let app = spawn_app(db).await;
    let condition = format!("identifier={CONTRACT}|kontrakt-1");
    let plan = draft_plan("hjartsvikt-primarvard", "kontrakt-1");

    let created = post(
        &app,
        "/fhir/CarePlan",
        &[("If-None-Exist", &condition)],
        &plan,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert!(
        created
            .header("location")
            .unwrap()
            .ends_with("/fhir/CarePlan/kontrakt-1/_history/1"),
        "{:?}",
        created.header("location")
    );
    assert_eq!(created.body["id"], "kontrakt-1");
    assert_eq!(created.body["status"], "draft");

    let again = post(
        &app,
        "/fhir/CarePlan",
        &[("If-None-Exist", &condition)],
        &plan,
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "an existing match is answered"
    );
    assert_eq!(again.header("etag"), Some("W/\"1\""));
    assert_eq!(db.count("contracts").await, 1);

    // The unit and the fast vårdkontakt arrive with the CareTeam.
    let team = resources("hjartsvikt-primarvard", "kontrakt-1").care_team;
    let stale = put(
        &app,
        "/fhir/CareTeam/kontrakt-1",
        &[("If-Match", "W/\"7\"")],
        &team,
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let updated = put(
        &app,
        "/fhir/CareTeam/kontrakt-1",
        &[("If-Match", "W/\"1\"")],
        &team,
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.header("etag"), Some("W/\"2\""));
    assert_eq!(
        updated.body["managingOrganization"][0]["display"],
        team["managingOrganization"][0]["display"]
    );

    // An agreed time is added to the contract it names: in supportingInformation, or in
    // basedOn as older clients send it (served back in supportingInformation: R4's
    // basedOn may only name a ServiceRequest).
    let mut time = resources("hjartsvikt-primarvard", "kontrakt-1").appointments[0].clone();
    time.as_object_mut().unwrap().remove("id");
    time["identifier"] = json!([]);
    time.as_object_mut()
        .unwrap()
        .remove("supportingInformation");
    time["basedOn"] = json!([{ "reference": "CarePlan/kontrakt-1" }]);
    let added = post(&app, "/fhir/Appointment", &[], &time).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(
        added.body["supportingInformation"][0]["reference"],
        "CarePlan/kontrakt-1"
    );
    assert!(added.body.get("basedOn").is_none(), "{}", added.body);
    let appointment = added.body["id"].as_str().unwrap().to_owned();
    assert!(appointment.starts_with("kontrakt-1-"), "{appointment}");
    assert_eq!(added.header("etag"), Some("W/\"3\""));
    let read = fhir_get(&app, &format!("/fhir/Appointment/{appointment}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["start"], time["start"]);

    // The contract comes into force by a conditional update of its CarePlan.
    let mut active = resources("hjartsvikt-primarvard", "kontrakt-1").care_plan;
    active.as_object_mut().unwrap().remove("goal");
    let activated = put(
        &app,
        &format!("/fhir/CarePlan?identifier={CONTRACT}|kontrakt-1"),
        &[("If-Match", "W/\"3\"")],
        &active,
    )
    .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    assert_eq!(activated.body["status"], "active");
    assert_eq!(activated.header("etag"), Some("W/\"4\""));
    let stored = app
        .store
        .get(&ContractId::parse("kontrakt-1").unwrap())
        .await
        .unwrap();
    let contract = &stored.revision.contract;
    assert_eq!(contract.status.as_str(), "active");
    assert_eq!(contract.agreed_times.len(), 1);
    assert!(contract.responsible_unit.is_some());

    // A conditional update for an identifier no contract has creates it.
    let second = put(
        &app,
        &format!("/fhir/CarePlan?identifier={CONTRACT}|kontrakt-2"),
        &[],
        &draft_plan("ung-diabetes", "kontrakt-2"),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["id"], "kontrakt-2");
    assert_eq!(db.count("contracts").await, 2);
}

async fn writes_answer_as_prefer_asks(db: &TestDb) {
    let app = spawn_app(db).await;
    let plan = draft_plan("eget-initiativ", "ett-id");
    let minimal = post(
        &app,
        "/fhir/CarePlan",
        &[("Prefer", "return=minimal")],
        &plan,
    )
    .await;
    assert_eq!(minimal.status, StatusCode::CREATED);
    assert_eq!(minimal.body, Value::Null, "no body");
    let location = minimal.header("location").unwrap().to_owned();
    assert!(location.contains("/fhir/CarePlan/"), "{location}");
    assert_eq!(minimal.header("etag"), Some("W/\"1\""));

    let outcome = post(
        &app,
        "/fhir/CarePlan",
        &[("Prefer", "return=OperationOutcome")],
        &plan,
    )
    .await;
    assert_eq!(outcome.status, StatusCode::CREATED);
    assert_eq!(outcome.body["resourceType"], "OperationOutcome");
    assert_eq!(outcome.body["issue"][0]["severity"], "information");

    let full = post(&app, "/fhir/CarePlan", &[], &plan).await;
    assert_eq!(full.body["resourceType"], "CarePlan");
    assert_eq!(full.body["meta"]["versionId"], "1");
    assert_eq!(
        db.count("contracts").await,
        3,
        "each POST without a condition creates"
    );

    // The resource a write answers is byte for byte what a read of it then gives: as
    // written from the mapping, and with content the contract does not model put back.
    let (status, _, created) =
        send_text(&app, Method::POST, "/fhir/CarePlan", &[], Some(&plan)).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut plan: Value = serde_json::from_str(&created).unwrap();
    let path = format!("/fhir/CarePlan/{}", plan["id"].as_str().unwrap());
    let read = || send_text(&app, Method::GET, &path, &[], None);
    assert_eq!(read().await.2, created);
    plan["note"] = json!([{ "text": "Från journalen" }]);
    let (status, _, updated) = send_text(
        &app,
        Method::PUT,
        &path,
        &[("If-Match", "W/\"1\"")],
        Some(&plan),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert!(updated.contains("Från journalen"), "{updated}");
    assert_eq!(read().await.2, updated);
}

async fn bad_writes_are_refused_whole(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let plan = draft_plan("eget-initiativ", "x");

    let mut same_identifier = plan.clone();
    same_identifier["identifier"] = json!([{ "system": CONTRACT, "value": id }]);
    let taken = post(&app, "/fhir/CarePlan", &[], &same_identifier).await;
    assert_eq!(
        taken.status,
        StatusCode::CONFLICT,
        "a contract's identifier is unique"
    );

    let goal = post(&app, "/fhir/Goal", &[], &json!({ "resourceType": "Goal" })).await;
    assert_eq!(goal.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(goal.body["resourceType"], "OperationOutcome");

    let unsupported = post(
        &app,
        "/fhir/CarePlan",
        &[("If-None-Exist", "status=active")],
        &plan,
    )
    .await;
    assert_eq!(unsupported.status, StatusCode::BAD_REQUEST);
    assert_eq!(issue_expression(&unsupported.body), "If-None-Exist");

    let wrong_type = post(
        &app,
        "/fhir/CarePlan",
        &[],
        &json!({ "resourceType": "Goal" }),
    )
    .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(issue_expression(&wrong_type.body), "resourceType");

    let mut time = resources("cancer-min-vardplan", &id).appointments[0].clone();
    time.as_object_mut()
        .unwrap()
        .remove("supportingInformation");
    let orphan = post(&app, "/fhir/Appointment", &[], &time).await;
    assert_eq!(orphan.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        issue_expression(&orphan.body),
        "Appointment.supportingInformation"
    );
    time["supportingInformation"] = json!([{ "reference": "CarePlan/finns-inte" }]);
    let unknown_plan = post(&app, "/fhir/Appointment", &[], &time).await;
    assert_eq!(unknown_plan.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        issue_expression(&unknown_plan.body),
        "Appointment.supportingInformation"
    );

    // An active contract may not lose its responsible unit: 422 naming the element.
    let mut team = resources("cancer-min-vardplan", &id).care_team;
    team.as_object_mut().unwrap().remove("managingOrganization");
    let broken = put(&app, &format!("/fhir/CareTeam/{id}"), &[], &team).await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        broken.body
    );
    assert_eq!(
        issue_expression(&broken.body),
        "CareTeam.managingOrganization"
    );

    let mismatched = put(
        &app,
        &format!("/fhir/CareTeam/{id}"),
        &[],
        &json!({ "resourceType": "CareTeam", "id": "annat" }),
    )
    .await;
    assert_eq!(mismatched.status, StatusCode::BAD_REQUEST);
    assert_eq!(issue_expression(&mismatched.body), "CareTeam.id");

    let provenance = put(
        &app,
        &format!("/fhir/Provenance/{id}-v1"),
        &[],
        &json!({ "resourceType": "Provenance", "id": format!("{id}-v1") }),
    )
    .await;
    assert_eq!(provenance.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        app.store.history(&record.id).await.unwrap().versions.len(),
        1,
        "nothing was written"
    );
}

async fn goals_and_appointments_are_updated_in_place(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let goal_id = format!("{id}-mal-1");
    let goal = fhir_get(&app, &format!("/fhir/Goal/{goal_id}")).await.body;
    let mut changed = goal.clone();
    changed["description"]["text"] = "Att orka gå till affären själv".into();
    let updated = put(
        &app,
        &format!("/fhir/Goal/{goal_id}"),
        &[("If-Match", "W/\"1\"")],
        &changed,
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(
        updated.body["description"]["text"],
        "Att orka gå till affären själv"
    );
    let stored = app.store.get(&record.id).await.unwrap();
    assert_eq!(
        stored.revision.contract.agreement.what_matters[0],
        "Att orka gå till affären själv"
    );

    let appointments = fhir_get(
        &app,
        &format!(
            "/fhir/Appointment?patient={PNR}|{}",
            stored.revision.contract.patient.id
        ),
    )
    .await
    .body;
    let mut time = appointments["entry"][0]["resource"].clone();
    let time_id = time["id"].as_str().unwrap().to_owned();
    time["description"] = "Återbesök, nu per telefon".into();
    // The gateway's identifier of the agreed time is kept even when the sender drops it.
    time.as_object_mut().unwrap().remove("identifier");
    let updated = put(&app, &format!("/fhir/Appointment/{time_id}"), &[], &time).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["id"], time_id.as_str());
    assert_eq!(updated.body["description"], "Återbesök, nu per telefon");

    let unknown = put(
        &app,
        &format!("/fhir/Goal/{id}-mal-9"),
        &[],
        &json!({ "resourceType": "Goal", "id": format!("{id}-mal-9") }),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn delete_revokes_the_contract_and_keeps_its_history(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let person = record.revision.contract.patient.id.to_string();

    let stale = delete(
        &app,
        &format!("/fhir/CarePlan/{id}"),
        &[("If-Match", "W/\"4\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let deleted = delete(
        &app,
        &format!("/fhir/CarePlan/{id}"),
        &[("If-Match", "W/\"1\"")],
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.header("etag"), Some("W/\"2\""));

    for path in [
        format!("/fhir/CarePlan/{id}"),
        format!("/fhir/CareTeam/{id}"),
    ] {
        let gone = fhir_get(&app, &path).await;
        assert_eq!(gone.status, StatusCode::GONE, "{path}");
        assert_eq!(gone.body["issue"][0]["code"], "deleted");
    }
    let v1 = fhir_get(&app, &format!("/fhir/CarePlan/{id}/_history/1")).await;
    assert_eq!(v1.status, StatusCode::OK, "earlier versions stay readable");
    assert_eq!(v1.body["status"], "active");
    let history = fhir_get(&app, &format!("/fhir/CarePlan/{id}/_history"))
        .await
        .body;
    assert_eq!(history["total"], 2);
    assert_eq!(history["entry"][0]["request"]["method"], "DELETE");
    assert!(history["entry"][0].get("resource").is_none());
    assert_eq!(history["entry"][1]["request"]["method"], "POST");
    let search = fhir_get(&app, &format!("/fhir/CarePlan?patient={PNR}|{person}"))
        .await
        .body;
    assert_eq!(search["total"], 0, "deleted resources are not found");

    let again = delete(&app, &format!("/fhir/CarePlan/{id}"), &[]).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "delete is idempotent");
    let plan = v1.body.clone();
    let revived = put(&app, &format!("/fhir/CarePlan/{id}"), &[], &plan).await;
    assert_eq!(revived.status, StatusCode::GONE);

    let stored = app.store.get(&record.id).await.unwrap();
    assert_eq!(
        (
            stored.revision.version.get(),
            stored.revision.contract.status.as_str()
        ),
        (2, "revoked"),
        "revoked, not erased"
    );
    let actions: Vec<String> = app
        .store
        .audit_for(&record.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(actions, ["create", "delete"]);
    assert_eq!(
        db.count("outbox").await,
        2,
        "the deletion goes out to the targets"
    );
}

async fn deleting_an_appointment_removes_the_agreed_time(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let times = record.revision.contract.agreed_times.len();
    assert!(times > 0);
    let person = record.revision.contract.patient.id.to_string();
    let found = fhir_get(&app, &format!("/fhir/Appointment?patient={person}"))
        .await
        .body;
    let time_id = found["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/fhir/Appointment/{time_id}");
    let deleted = delete(&app, &path, &[("Prefer", "return=OperationOutcome")]).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["resourceType"], "OperationOutcome");
    let gone = fhir_get(&app, &path).await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
    let stored = app.store.get(&record.id).await.unwrap();
    assert_eq!(stored.revision.contract.agreed_times.len(), times - 1);
    let never = fhir_get(
        &app,
        &format!("/fhir/Appointment/{}-0000000000000000", record.id),
    )
    .await;
    assert_eq!(never.status, StatusCode::NOT_FOUND);
}

async fn concurrent_conditional_creates_through_post_make_one(db: &TestDb) {
    let app = spawn_app(db).await;
    let plan = draft_plan("ung-diabetes", "x");
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (client, url, body) = (
                app.client.clone(),
                app.url("/fhir/CarePlan"),
                plan.to_string(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("content-type", "application/fhir+json")
                    .header("If-None-Exist", format!("identifier={CONTRACT}|samma"))
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(db.count("contracts").await, 1);
}

async fn concurrent_puts_without_if_match_lose_nothing(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let plan = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await.body;
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (client, url, mut body) = (
                app.client.clone(),
                app.url(&format!("/fhir/CarePlan/{id}")),
                plan.clone(),
            );
            body["activity"][0]["detail"]["description"] = format!("Ändring {i}").into();
            tokio::spawn(async move {
                client
                    .put(url)
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "without If-Match a lost race is a conflict, not a failed precondition: {statuses:?}"
    );
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(ok >= 1);
    assert_eq!(
        app.store.history(&record.id).await.unwrap().versions.len(),
        1 + ok,
        "every 200 is a version of its own: {statuses:?}"
    );
}

async fn type_history_and_search_by_post(db: &TestDb) {
    let app = spawn_app(db).await;
    let first = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let mut next = first.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att kunna sjunga i kören".into());
    common::next_version(&app.store, &first, next).await;
    let second = app
        .store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();

    let all = fhir_get(&app, "/fhir/CarePlan/_history").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["type"], "history");
    let listed: Vec<(String, String)> = all.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resource"]["id"].as_str().unwrap().to_owned(),
                e["resource"]["meta"]["versionId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (second.id.to_string(), "1".into()),
            (first.id.to_string(), "2".into()),
            (first.id.to_string(), "1".into()),
        ],
        "every version, newest first"
    );
    let since = second.revision.recorded_at.to_string();
    let recent = fhir_get(&app, &format!("/fhir/CarePlan/_history?_since={since}"))
        .await
        .body;
    assert_eq!(recent["entry"].as_array().unwrap().len(), 1);
    let page = fhir_get(&app, "/fhir/CarePlan/_history?_count=2")
        .await
        .body;
    assert_eq!(page["entry"].as_array().unwrap().len(), 2);
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap();
    let next_path = next["url"]
        .as_str()
        .unwrap()
        .split_once("/fhir/")
        .unwrap()
        .1;
    let rest = fhir_get(&app, &format!("/fhir/{next_path}")).await.body;
    assert_eq!(rest["entry"].as_array().unwrap().len(), 1);
    let bad = fhir_get(&app, "/fhir/CarePlan/_history?_since=igår").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(issue_expression(&bad.body), "_since");

    let person = second.revision.contract.patient.id.to_string();
    let by_get = fhir_get(&app, &format!("/fhir/CarePlan?patient={person}"))
        .await
        .body;
    let response = app
        .client
        .post(app.url("/fhir/CarePlan/_search"))
        .form(&[("patient", person.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let by_post: Value = response.json().await.unwrap();
    assert_eq!(by_post["total"], 1);
    assert_eq!(
        by_post["entry"][0]["resource"],
        by_get["entry"][0]["resource"]
    );
    let not_form = post(&app, "/fhir/CarePlan/_search", &[], &json!({})).await;
    assert_eq!(not_form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn participants_and_actors_are_searchable(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let person = record.revision.contract.patient.id.to_string();
    let team = fhir_get(&app, &format!("/fhir/CareTeam/{}", record.id))
        .await
        .body;
    let member = &team["participant"][0]["member"]["identifier"];
    let (system, value) = (
        member["system"].as_str().unwrap(),
        member["value"].as_str().unwrap(),
    );
    let hit = fhir_get(
        &app,
        &format!("/fhir/CareTeam?patient={person}&participant={system}|{value}"),
    )
    .await
    .body;
    assert_eq!(hit["total"], 1);
    let bare = fhir_get(
        &app,
        &format!("/fhir/CareTeam?patient={person}&participant={value}"),
    )
    .await
    .body;
    assert_eq!(bare["total"], 1);
    let miss = fhir_get(
        &app,
        &format!("/fhir/CareTeam?patient={person}&participant={system}|SE0000000000-XXXX"),
    )
    .await
    .body;
    assert_eq!(miss["total"], 0);
    let with_patient = fhir_get(
        &app,
        &format!("/fhir/Appointment?patient={person}&actor={PNR}|{person}"),
    )
    .await
    .body;
    let all = fhir_get(&app, &format!("/fhir/Appointment?patient={person}"))
        .await
        .body;
    assert!(all["total"].as_u64().unwrap() > 0);
    assert_eq!(with_patient["total"], all["total"]);
    let nobody = fhir_get(
        &app,
        &format!("/fhir/Appointment?patient={person}&actor=Practitioner/ingen"),
    )
    .await
    .body;
    assert_eq!(nobody["total"], 0);
}

async fn batch_entries_succeed_or_fail_on_their_own(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let person = record.revision.contract.patient.id.to_string();
    let plan = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await.body;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            { "request": { "method": "GET", "url": format!("CarePlan/{id}") } },
            { "request": { "method": "GET", "url": format!("CarePlan?patient={PNR}|{person}") } },
            { "resource": draft_plan("eget-initiativ", "x"), "request": { "method": "POST", "url": "CarePlan", "ifNoneExist": format!("identifier={CONTRACT}|ny-i-batch") } },
            { "resource": plan.clone(), "request": { "method": "PUT", "url": format!("CarePlan/{id}"), "ifMatch": "W/\"9\"" } },
            { "request": { "method": "GET", "url": format!("Goal/{id}-mal-9") } },
            { "request": { "method": "DELETE", "url": format!("{}/fhir/Appointment/{id}-0000000000000000", app.base) } },
            { "request": { "method": "PATCH", "url": format!("CarePlan/{id}") } },
            { "resource": plan, "request": { "method": "PUT", "url": format!("CarePlan/{id}") } },
            { "resource": plan, "request": { "method": "PUT", "url": format!("CarePlan/{id}") } },
        ],
    });
    let reply = post(&app, "/fhir", &[], &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["type"], "batch-response");
    let entries = reply.body["entry"].as_array().unwrap();
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "200 OK",
            "200 OK",
            "201 Created",
            "412 Precondition Failed",
            "404 Not Found",
            "404 Not Found",
            "400 Bad Request",
            "200 OK",
            "200 OK"
        ]
    );
    // The same version of the same resource twice: R4's bdl-7 allows its fullUrl once.
    assert_eq!(
        entries[7]["fullUrl"],
        app.url(&format!("/fhir/CarePlan/{id}"))
    );
    assert!(entries[8].get("fullUrl").is_none(), "{}", entries[8]);
    assert_eq!(entries[8]["resource"]["id"], id.as_str());
    common::assert_valid_r4(&[&reply.body]);
    assert_eq!(entries[0]["resource"]["id"], id.as_str());
    assert_eq!(entries[1]["resource"]["total"], 1);
    assert_eq!(
        entries[2]["response"]["location"],
        "CarePlan/ny-i-batch/_history/1"
    );
    assert_eq!(
        entries[3]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(
        db.count("contracts").await,
        2,
        "the create stands though later entries failed"
    );
    assert_eq!(
        app.store
            .get(&record.id)
            .await
            .unwrap()
            .revision
            .version
            .get(),
        1
    );
}

/// Each resource has its own version (the contract version at which it last changed):
/// after one EHR edits a Goal, another EHR's PUT of the CareTeam with the ETag it read
/// before is not stale; vread and history of the CareTeam show its own versions; a PUT
/// that changes nothing makes no version and sends nothing.
async fn each_resource_has_its_own_version(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let team = fhir_get(&app, &format!("/fhir/CareTeam/{id}")).await;
    assert_eq!(team.header("etag"), Some("W/\"1\""));
    let mut goal = fhir_get(&app, &format!("/fhir/Goal/{id}-mal-1")).await.body;
    goal["description"]["text"] = json!("Att orka gå med hunden till sjön");
    let edited = put(
        &app,
        &format!("/fhir/Goal/{id}-mal-1"),
        &[("If-Match", "W/\"1\"")],
        &goal,
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.header("etag"), Some("W/\"2\""));
    let read = fhir_get(&app, &format!("/fhir/CareTeam/{id}")).await;
    assert_eq!(
        read.header("etag"),
        Some("W/\"1\""),
        "the CareTeam did not change"
    );
    assert_eq!(read.body["meta"]["versionId"], "1");
    let sibling = fhir_get(&app, &format!("/fhir/Goal/{id}-mal-2")).await;
    assert_eq!(sibling.body["meta"]["versionId"], "1");
    // The version's Provenance names the resource versions it made, and no other.
    let provenance = fhir_get(&app, &format!("/fhir/Provenance/{id}-v2"))
        .await
        .body;
    let targets: Vec<&str> = provenance["target"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reference"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&format!("Goal/{id}-mal-1/_history/2").as_str()),
        "{targets:?}"
    );
    assert!(
        !targets
            .iter()
            .any(|t| t.starts_with("CareTeam/") || t.contains("-mal-2")),
        "{targets:?}"
    );

    let mut changed = team.body.clone();
    changed["note"] = json!([{ "text": "Anna har semester vecka 28–31" }]);
    let updated = put(
        &app,
        &format!("/fhir/CareTeam/{id}"),
        &[("If-Match", "W/\"1\"")],
        &changed,
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.header("etag"), Some("W/\"3\""));
    assert_eq!(
        updated
            .header("location")
            .map(|l| l.ends_with(&format!("/CareTeam/{id}/_history/3"))),
        Some(true)
    );

    // The CareTeam's versions are 1 and 3: there is no version 2 of it.
    let vread = fhir_get(&app, &format!("/fhir/CareTeam/{id}/_history/2")).await;
    assert_eq!(vread.status, StatusCode::NOT_FOUND, "{}", vread.body);
    let first = fhir_get(&app, &format!("/fhir/CareTeam/{id}/_history/1")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["meta"]["versionId"], "1");
    let history = fhir_get(&app, &format!("/fhir/CareTeam/{id}/_history"))
        .await
        .body;
    let versions: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["3", "1"]);

    // The same CareTeam again: no new version, nothing for the sync targets.
    let outbox = db.count("outbox").await;
    let again = put(
        &app,
        &format!("/fhir/CareTeam/{id}"),
        &[("If-Match", "W/\"3\"")],
        &updated.body,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.header("etag"), Some("W/\"3\""));
    assert_eq!(db.count("outbox").await, outbox);
    assert_eq!(
        app.store.history(&record.id).await.unwrap().versions.len(),
        3
    );
}

/// Markup a sender puts in a narrative never reaches those who read the resource: the
/// narrative is the gateway's own (the CarePlan's written from the contract, the others
/// none), so a received `text` is not kept.
async fn a_received_narrative_is_not_kept(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let evil = json!({
        "status": "generated",
        "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script><img src=\"x\" onerror=\"alert(2)\"/><a href=\"javascript:alert(3)\">x</a></div>"
    });
    let times = fhir_get(
        &app,
        &format!(
            "/fhir/Appointment?patient={}",
            record.revision.contract.patient.id
        ),
    )
    .await
    .body;
    let time = times["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/fhir/Goal/{id}-mal-1"),
        format!("/fhir/CareTeam/{id}"),
        format!("/fhir/Appointment/{time}"),
        format!("/fhir/CarePlan/{id}"),
    ] {
        let mut resource = fhir_get(&app, &path).await.body;
        resource["text"] = evil.clone();
        let reply = put(&app, &path, &[], &resource).await;
        assert!(reply.status.is_success(), "{path}: {}", reply.body);
        let served = fhir_get(&app, &path).await.body.to_string();
        for markup in ["<script", "onerror", "javascript:"] {
            assert!(!served.contains(markup), "{path}: {served}");
        }
    }
}

/// R4 ids are at most 64 characters, and a contract's resources add to its id (a
/// Provenance `-v` and its version): a new contract's id is at most 42, longer ones are
/// refused naming the id, and every resource of one at the limit fits.
async fn every_id_fits_r4(db: &TestDb) {
    let app = spawn_app(db).await;
    let long = "k".repeat(43);
    let refused = put(
        &app,
        &format!("/fhir/CarePlan?identifier={CONTRACT}|{long}"),
        &[],
        &draft_plan("ung-diabetes", &long),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.to_string().contains("at most 42"),
        "{}",
        refused.body
    );
    assert_eq!(db.count("contracts").await, 0);
    let longest = "k".repeat(42);
    let created = put(
        &app,
        &format!("/fhir/CarePlan?identifier={CONTRACT}|{longest}"),
        &[],
        &draft_plan("ung-diabetes", &longest),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let stored = app
        .store
        .get(&ContractId::parse(&longest).unwrap())
        .await
        .unwrap();
    let resources = pkgw::fhir::stored::resources_of(&stored, &Profile::default_profile());
    for r in resources.all() {
        let id = r["id"].as_str().unwrap();
        assert!(id.len() <= 64, "{id}");
    }
    // The Provenance of the furthest version there can be.
    let provenance = format!("{}-v{}", stored.id, u64::MAX);
    assert!(provenance.len() <= 64, "{provenance}");
}

/// `DELETE /fhir/CarePlan?identifier=…` revokes the contract the gateway's identifier
/// names, as `DELETE CarePlan/{id}` does; none is 404; other conditions are refused.
async fn a_contract_is_deleted_by_its_identifier(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();
    let by_identifier = format!("/fhir/CarePlan?identifier={CONTRACT}|{}", record.id);
    let deleted = delete(&app, &by_identifier, &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = fhir_get(&app, &format!("/fhir/CarePlan/{}", record.id)).await;
    assert_eq!(gone.status, StatusCode::GONE);
    let none = delete(
        &app,
        &format!("/fhir/CarePlan?identifier={CONTRACT}|finns-inte"),
        &[],
    )
    .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);
    let other = delete(&app, "/fhir/CarePlan?status=active", &[]).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.body);
    assert_eq!(issue_expression(&other.body), "identifier");
    let goal = delete(&app, "/fhir/Goal?identifier=x", &[]).await;
    assert_eq!(goal.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// `$validate` makes every check a write makes and stores nothing: its issues are the
/// ones the write answers.
async fn validate_checks_as_a_write_does_and_stores_nothing(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();

    // A new contract that would be accepted: information only, and no contract made.
    let plan = draft_plan("eget-initiativ", "x");
    let fine = post(&app, "/fhir/CarePlan/$validate", &[], &plan).await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.body);
    assert_eq!(fine.body["resourceType"], "OperationOutcome");
    assert_eq!(
        fine.body["issue"][0]["severity"], "information",
        "{}",
        fine.body
    );
    assert_eq!(db.count("contracts").await, 1, "$validate stored nothing");

    // An update that breaks a rule: the same issues as the PUT, but 200 and nothing stored.
    let mut team = resources("cancer-min-vardplan", &id).care_team;
    team.as_object_mut().unwrap().remove("managingOrganization");
    let checked = post(&app, &format!("/fhir/CareTeam/{id}/$validate"), &[], &team).await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert_eq!(checked.body["issue"][0]["severity"], "error");
    assert_eq!(
        issue_expression(&checked.body),
        "CareTeam.managingOrganization"
    );
    let written = put(&app, &format!("/fhir/CareTeam/{id}"), &[], &team).await;
    assert_eq!(written.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(checked.body["issue"], written.body["issue"]);
    // The same, as Parameters; the id may come from the resource (type level, mode update).
    let parameters = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "mode", "valueCode": "update" },
        { "name": "resource", "resource": team },
    ] });
    let by_parameters = post(&app, "/fhir/CareTeam/$validate", &[], &parameters).await;
    assert_eq!(by_parameters.status, StatusCode::OK);
    assert_eq!(by_parameters.body["issue"], written.body["issue"]);

    // Content the typed R4 model refuses: the element is named.
    let mut bad = resources("cancer-min-vardplan", &id).care_plan;
    bad["status"] = "halvklar".into();
    let structure = post(&app, &format!("/fhir/CarePlan/{id}/$validate"), &[], &bad).await;
    assert_eq!(structure.status, StatusCode::OK);
    assert_eq!(structure.body["issue"][0]["severity"], "error");
    assert!(
        structure.body.to_string().contains("CarePlan.status"),
        "{}",
        structure.body
    );

    // A delete is checked on the instance.
    let deleting = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "mode", "valueCode": "delete" },
    ] });
    let delete_ok = post(
        &app,
        &format!("/fhir/CarePlan/{id}/$validate"),
        &[],
        &deleting,
    )
    .await;
    assert_eq!(delete_ok.status, StatusCode::OK);
    assert_eq!(delete_ok.body["issue"][0]["severity"], "information");

    // What cannot be checked is an error status, naming why.
    let unknown = post(&app, "/fhir/CareTeam/finns-inte/$validate", &[], &team).await;
    assert_eq!(
        unknown.status,
        StatusCode::BAD_REQUEST,
        "the ids differ: {}",
        unknown.body
    );
    let mut elsewhere = team.clone();
    elsewhere["id"] = "finns-inte".into();
    let unknown = post(&app, "/fhir/CareTeam/finns-inte/$validate", &[], &elsewhere).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let profile = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "profile", "valueUri": "http://example.org/StructureDefinition/x" },
        { "name": "resource", "resource": plan },
    ] });
    let refused = post(&app, "/fhir/CarePlan/$validate", &[], &profile).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        issue_expression(&refused.body),
        "Parameters.parameter[0].name"
    );
    let wrong_type = post(&app, "/fhir/CarePlan/$validate", &[], &team).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(issue_expression(&wrong_type.body), "resourceType");
    assert_eq!(
        app.store.history(&record.id).await.unwrap().versions.len(),
        1,
        "nothing was written"
    );
}

async fn patch_with(
    app: &TestApp,
    path: &str,
    media: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Reply {
    let mut request = app
        .client
        .patch(app.url(path))
        .header("content-type", media)
        .body(body.to_string());
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// PATCH, as JSON Patch or FHIRPath Patch, changes exactly what it says of one resource
/// and goes through every rule of a PUT; what cannot be applied is refused, naming the
/// operation, and nothing is stored.
async fn patch_changes_one_resource_through_the_write_rules(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    const JSON_PATCH: &str = "application/json-patch+json";
    const FHIR: &str = "application/fhir+json";

    // JSON Patch of a Goal: what matters to the person, in their words.
    let goal = format!("/fhir/Goal/{id}-mal-1");
    let before = fhir_get(&app, &goal).await.body;
    let patched = patch_with(
        &app,
        &goal,
        JSON_PATCH,
        Some("W/\"1\""),
        &json!([
            { "op": "test", "path": "/description/text", "value": before["description"]["text"] },
            { "op": "replace", "path": "/description/text", "value": "Att orka leka med barnbarnen" },
        ]),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        patched.body["description"]["text"],
        "Att orka leka med barnbarnen"
    );
    assert_eq!(patched.header("etag"), Some("W/\"2\""));
    let stored = app.store.get(&record.id).await.unwrap();
    assert!(
        stored
            .revision
            .contract
            .agreement
            .what_matters
            .iter()
            .any(|w| w == "Att orka leka med barnbarnen"),
        "the contract holds the patched words"
    );

    // FHIRPath Patch of the CarePlan: a note added, kept beside the contract.
    let note = json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": [
        { "name": "type", "valueCode": "add" },
        { "name": "path", "valueString": "CarePlan" },
        { "name": "name", "valueString": "note" },
        { "name": "value", "valueAnnotation": { "text": "Ringer på fredag" } },
    ] }] });
    let noted = patch_with(&app, &format!("/fhir/CarePlan/{id}"), FHIR, None, &note).await;
    assert_eq!(noted.status, StatusCode::OK, "{}", noted.body);
    assert_eq!(noted.body["note"][0]["text"], "Ringer på fredag");
    assert_eq!(noted.body["meta"]["versionId"], "3");
    common::assert_valid_r4(&[&patched.body, &noted.body]);

    // Concurrent patches without If-Match: each one that is answered 200 is in the
    // result (a concurrent change makes a patch apply again, never overwrite).
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let (client, url) = (app.client.clone(), app.url(&format!("/fhir/CarePlan/{id}")));
            let mut body = note.clone();
            body["parameter"][0]["part"][3]["valueAnnotation"]["text"] =
                format!("Samtidig {n}").into();
            tokio::spawn(async move {
                client
                    .patch(url)
                    .header("content-type", FHIR)
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut landed = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            matches!(status, StatusCode::OK | StatusCode::CONFLICT),
            "{status}"
        );
        landed += usize::from(status == StatusCode::OK);
    }
    let plan = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await.body;
    let notes = plan["note"].as_array().unwrap();
    assert_eq!(notes.len(), 1 + landed, "{notes:?}");
    assert!(landed >= 1);
    let versions = 3 + landed;

    // A stale If-Match: 412, nothing stored.
    let stale = patch_with(
        &app,
        &goal,
        JSON_PATCH,
        Some("W/\"1\""),
        &json!([
            { "op": "replace", "path": "/description/text", "value": "x" },
        ]),
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );

    // The contract's rules hold: an active contract keeps its responsible unit.
    let team = format!("/fhir/CareTeam/{id}");
    let broken = patch_with(
        &app,
        &team,
        JSON_PATCH,
        None,
        &json!([
            { "op": "remove", "path": "/managingOrganization" },
        ]),
    )
    .await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        broken.body
    );
    assert_eq!(
        issue_expression(&broken.body),
        "CareTeam.managingOrganization"
    );

    // What cannot be applied, or is not a patch, is refused by name.
    let failed_test = patch_with(
        &app,
        &goal,
        JSON_PATCH,
        None,
        &json!([
            { "op": "test", "path": "/description/text", "value": "något annat" },
        ]),
    )
    .await;
    assert_eq!(
        failed_test.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        failed_test.body
    );
    assert_eq!(issue_expression(&failed_test.body), "JSON Patch[0]");
    let unknown_op = patch_with(
        &app,
        &goal,
        JSON_PATCH,
        None,
        &json!([{ "op": "merge", "path": "/x" }]),
    )
    .await;
    assert_eq!(
        unknown_op.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unknown_op.body
    );
    assert_eq!(issue_expression(&unknown_op.body), "JSON Patch[0].op");
    let where_path = json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": [
        { "name": "type", "valueCode": "delete" },
        { "name": "path", "valueString": "CarePlan.note.where(text = 'x')" },
    ] }] });
    let refused = patch_with(
        &app,
        &format!("/fhir/CarePlan/{id}"),
        FHIR,
        None,
        &where_path,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        issue_expression(&refused.body),
        "Parameters.parameter[0].part(path)"
    );
    let new_id = patch_with(
        &app,
        &goal,
        JSON_PATCH,
        None,
        &json!([{ "op": "replace", "path": "/id", "value": "annat" }]),
    )
    .await;
    assert_eq!(new_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(issue_expression(&new_id.body), "id");
    let text = patch_with(&app, &goal, "text/plain", None, &json!([])).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let provenance = patch_with(
        &app,
        &format!("/fhir/Provenance/{id}-v1"),
        JSON_PATCH,
        None,
        &json!([]),
    )
    .await;
    assert_eq!(provenance.status, StatusCode::METHOD_NOT_ALLOWED);
    let nobody = patch_with(
        &app,
        "/fhir/Goal/finns-inte-mal-1",
        JSON_PATCH,
        None,
        &json!([]),
    )
    .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.store.history(&record.id).await.unwrap().versions.len(),
        versions,
        "only the patches that could be applied were stored"
    );
}

/// An EHR creates, finds, updates and deletes a contract by its own identifier, as
/// integrators do: the identifier is kept on the CarePlan, names one contract only (also
/// when creates race), and is free again once that contract is deleted.
async fn an_ehr_works_by_its_own_identifier(db: &TestDb) {
    let app = spawn_app(db).await;
    const EHR: &str = "http://cosmic.example/sid/vardplan";
    let plan_with = |value: &str| {
        let mut plan = draft_plan("eget-initiativ", "x");
        plan["identifier"] = json!([{ "system": EHR, "value": value }]);
        plan
    };
    let encoded = |value: &str| {
        format!(
            "identifier={}",
            pkgw::percent::encode(&format!("{EHR}|{value}"), &[])
        )
    };

    // Conditional create, URL-encoded the first time and not the second: one contract.
    let created = post(
        &app,
        "/fhir/CarePlan",
        &[("If-None-Exist", &encoded("vp-1"))],
        &plan_with("vp-1"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        created.body["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["system"] == EHR && i["value"] == "vp-1")
    );
    let again = post(
        &app,
        "/fhir/CarePlan",
        &[("If-None-Exist", &format!("identifier={EHR}|vp-1"))],
        &plan_with("vp-1"),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(db.count("contracts").await, 1);

    // Found by it.
    let found = fhir_get(&app, &format!("/fhir/CarePlan?{}", encoded("vp-1"))).await;
    assert_eq!(found.body["total"], 1, "{}", found.body);
    assert_eq!(found.body["entry"][0]["resource"]["id"], id.as_str());
    let none = fhir_get(&app, &format!("/fhir/CarePlan?identifier={EHR}|finns-inte")).await;
    assert_eq!(none.body["total"], 0);

    // Conditional update: the same contract, a new version.
    let mut changed = plan_with("vp-1");
    changed["description"] = "Uppdaterad av journalen".into();
    let updated = put(
        &app,
        &format!("/fhir/CarePlan?{}", encoded("vp-1")),
        &[],
        &changed,
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(
        (
            updated.body["id"].as_str(),
            updated.body["meta"]["versionId"].as_str()
        ),
        (Some(id.as_str()), Some("2"))
    );
    // ... and a create when none carries it; the new CarePlan must carry it.
    let made = put(
        &app,
        &format!("/fhir/CarePlan?identifier={EHR}|vp-2"),
        &[],
        &plan_with("vp-2"),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_ne!(made.body["id"], id.as_str());
    let not_carried = put(
        &app,
        &format!("/fhir/CarePlan?identifier={EHR}|vp-3"),
        &[],
        &plan_with("vp-4"),
    )
    .await;
    assert_eq!(
        not_carried.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_carried.body
    );
    assert_eq!(issue_expression(&not_carried.body), "CarePlan.identifier");

    // One identifier names one contract.
    let taken = post(&app, "/fhir/CarePlan", &[], &plan_with("vp-1")).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(db.count("contracts").await, 2);

    // Concurrent conditional updates of a new identifier make one contract.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (client, url, body) = (
                app.client.clone(),
                app.url(&format!("/fhir/CarePlan?identifier={EHR}|vp-samtidig")),
                plan_with("vp-samtidig"),
            );
            tokio::spawn(async move {
                let reply = client
                    .put(url)
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                (reply.status(), reply.text().await.unwrap())
            })
        })
        .collect();
    for task in tasks {
        let (status, text) = task.await.unwrap();
        assert!(status.is_success(), "{status} {text}");
    }
    let raced = fhir_get(
        &app,
        &format!("/fhir/CarePlan?identifier={EHR}|vp-samtidig"),
    )
    .await;
    assert_eq!(raced.body["total"], 1, "{}", raced.body);
    assert_eq!(db.count("contracts").await, 3);

    // Conditional update inside a transaction.
    let mut in_bundle = plan_with("vp-2");
    in_bundle["description"] = "Ändrad i en transaktion".into();
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "resource": in_bundle, "request": { "method": "PUT", "url": format!("CarePlan?{}", encoded("vp-2")) } },
    ] });
    let reply = post(&app, "/fhir", &[], &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(reply.body["entry"][0]["resource"]["id"], made.body["id"]);

    // Conditional delete; then the identifier names nothing, and may name a new contract.
    let deleted = delete(&app, &format!("/fhir/CarePlan?{}", encoded("vp-1")), &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = fhir_get(&app, &format!("/fhir/CarePlan?identifier={EHR}|vp-1")).await;
    assert_eq!(gone.body["total"], 0);
    let missing = delete(&app, &format!("/fhir/CarePlan?identifier={EHR}|vp-1"), &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anew = post(
        &app,
        "/fhir/CarePlan",
        &[("If-None-Exist", &encoded("vp-1"))],
        &plan_with("vp-1"),
    )
    .await;
    assert_eq!(anew.status, StatusCode::CREATED, "{}", anew.body);
    assert_ne!(anew.body["id"], id.as_str());
}

on_both_backends!(
    an_ehr_works_by_its_own_identifier,
    patch_changes_one_resource_through_the_write_rules,
    validate_checks_as_a_write_does_and_stores_nothing,
    a_contract_is_deleted_by_its_identifier,
    every_id_fits_r4,
    a_received_narrative_is_not_kept,
    each_resource_has_its_own_version,
    a_contract_is_built_resource_by_resource,
    writes_answer_as_prefer_asks,
    bad_writes_are_refused_whole,
    goals_and_appointments_are_updated_in_place,
    delete_revokes_the_contract_and_keeps_its_history,
    deleting_an_appointment_removes_the_agreed_time,
    concurrent_conditional_creates_through_post_make_one,
    concurrent_puts_without_if_match_lose_nothing,
    type_history_and_search_by_post,
    participants_and_actors_are_searchable,
    batch_entries_succeed_or_fail_on_their_own,
);
