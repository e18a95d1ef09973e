//! Reservnummer (issue rule 8): a person a region knows only by its temporary number
//! gets a contract like anyone, under the region's system and in its form, and when
//! they get their real number `Patient/$merge` moves every contract onto it — one
//! version each, its Provenance saying which identity became which, the targets sent
//! the new subject. Nothing else changes a contract's person. Over HTTP, with a
//! separate FHIR server as the sync target, on SQLite and PostgreSQL.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::{TestApp, spawn_state};
use common::fhir::{Reply, fhir_get, send};
use common::peer::{FhirPeer, engine, settle, target};
use common::{TestDb, fixture};
use pkgw::api::{AppState, Limits};
use pkgw::domain::{Pattern, PersonId, ReservnummerScheme};
use pkgw::fhir::Profile;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SYSTEM: &str = "urn:oid:1.2.752.97.3.1.3";
const RESERV: &str = "99123456-0001";
const PNR: &str = "199001012385";
const PNR_SYSTEM: &str = "http://electronichealth.se/identifier/personnummer";

fn stockholm() -> ReservnummerScheme {
    ReservnummerScheme {
        region: "Region Stockholm".into(),
        system: SYSTEM.into(),
        key: "sll".into(),
        pattern: Pattern::new(r"99\d{6}-\d{4}").unwrap(),
    }
}

fn profile() -> Profile {
    Profile::default_profile().with_reservnummer(&[stockholm()])
}

async fn app(db: &TestDb) -> TestApp {
    let state = AppState::new(db.store().await).with_profile(profile());
    spawn_state(state, Limits::default()).await
}

/// A contract about the person known by `person` (as the native API writes it).
fn contract_about(person: &str) -> Value {
    let mut c = serde_json::to_value(fixture("hjartsvikt-primarvard")).unwrap();
    c["patient"]["id"] = json!(person);
    c
}

async fn create(app: &TestApp, contract: &Value) -> Reply {
    send(app, Method::POST, "/api/contracts", &[], Some(contract)).await
}

fn merge_parameters(source: (&str, &str), target: (&str, &str), preview: bool) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": [
            { "name": "source-patient-identifier", "valueIdentifier": { "system": source.0, "value": source.1 } },
            { "name": "target-patient-identifier", "valueIdentifier": { "system": target.0, "value": target.1 } },
            { "name": "preview", "valueBoolean": preview },
        ],
    })
}

async fn merge(app: &TestApp, body: &Value) -> Reply {
    send(app, Method::POST, "/fhir/Patient/$merge", &[], Some(body)).await
}

/// The native API's first issue: (field, message).
fn native_issue(reply: &Reply) -> (&str, &str) {
    let issue = &reply.body["error"]["issues"][0];
    (
        issue["field"].as_str().unwrap_or_default(),
        issue["message"].as_str().unwrap_or_default(),
    )
}

/// An OperationOutcome's first issue: (expression, diagnostics).
fn issue(reply: &Reply) -> (&str, &str) {
    let issue = &reply.body["issue"][0];
    (
        issue["expression"][0].as_str().unwrap_or_default(),
        issue["diagnostics"].as_str().unwrap_or_default(),
    )
}

async fn a_person_known_by_a_reservnummer_has_a_contract_like_anyone(db: &TestDb) {
    let app = app(db).await;
    let reserv = format!("{SYSTEM}|{RESERV}");
    let created = create(&app, &contract_about(&reserv)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Served with the region's system, found by it, and as a Patient of its own.
    let plan = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await.body;
    assert_eq!(
        plan["subject"]["identifier"],
        json!({ "system": SYSTEM, "value": RESERV })
    );
    let found = fhir_get(
        &app,
        &format!("/fhir/CarePlan?patient.identifier={SYSTEM}|{RESERV}"),
    )
    .await;
    assert_eq!(found.body["total"], 1, "{}", found.body);
    let patient = fhir_get(&app, &format!("/fhir/Patient/sll-{RESERV}")).await;
    assert_eq!(patient.status, StatusCode::OK, "{}", patient.body);
    assert_eq!(patient.body["id"], format!("sll-{RESERV}"));
    assert_eq!(
        patient.body["identifier"][0],
        json!({ "use": "temp", "system": SYSTEM, "value": RESERV })
    );
    let everything = fhir_get(&app, &format!("/fhir/Patient/sll-{RESERV}/$everything")).await;
    assert_eq!(everything.status, StatusCode::OK, "{}", everything.body);
    let by_identifier =
        fhir_get(&app, &format!("/fhir/Patient?identifier={SYSTEM}|{RESERV}")).await;
    assert_eq!(
        by_identifier.body["entry"][0]["resource"]["id"],
        format!("sll-{RESERV}")
    );

    // A FHIR write with the reservnummer as subject maps back to the same person.
    let etag = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await;
    let mut changed = etag.body.clone();
    changed["description"] = json!("Uppdaterad");
    let tag = etag.header("etag").unwrap().to_owned();
    let put = send(
        &app,
        Method::PUT,
        &format!("/fhir/CarePlan/{id}"),
        &[("If-Match", &tag)],
        Some(&changed),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

async fn a_reservnummer_outside_the_regions_form_is_refused(db: &TestDb) {
    let app = app(db).await;
    // Not in the region's form.
    let bad = create(&app, &contract_about(&format!("{SYSTEM}|12345"))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let (field, why) = native_issue(&bad);
    assert_eq!(field, "patient.id");
    assert!(
        why.contains("Region Stockholm") && why.contains(r"99\d{6}-\d{4}"),
        "{why}"
    );
    // Another region's system, which this gateway was not told of.
    let other = create(
        &app,
        &contract_about("urn:oid:1.2.752.129.2.1.3|99123456-0001"),
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.body
    );
    assert!(
        native_issue(&other)
            .1
            .contains("not a reservnummer system of this region")
    );

    // The same through FHIR: the element is named.
    let plan = |system: &str, value: &str| {
        let mut plan = pkgw::fhir::to_fhir(
            &pkgw::domain::ContractId::parse("ny-1").unwrap(),
            &fixture("hjartsvikt-primarvard"),
            &profile(),
        )
        .care_plan;
        plan.as_object_mut().unwrap().remove("id");
        plan["subject"]["identifier"] = json!({ "system": system, "value": value });
        plan
    };
    let wrong_form = send(
        &app,
        Method::POST,
        "/fhir/CarePlan",
        &[],
        Some(&plan(SYSTEM, "12345")),
    )
    .await;
    assert_eq!(
        wrong_form.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong_form.body
    );
    assert_eq!(issue(&wrong_form).0, "CarePlan.subject.identifier.value");
    let unknown = send(
        &app,
        Method::POST,
        "/fhir/CarePlan",
        &[],
        Some(&plan("urn:oid:1.2.752.129.2.1.3", RESERV)),
    )
    .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    assert_eq!(issue(&unknown).0, "CarePlan.subject.identifier.system");
    // Nothing was written.
    assert!(
        app.store
            .find_by_patient(&PersonId::parse(&format!("{SYSTEM}|12345")).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_update_does_not_change_whom_the_contract_is_about(db: &TestDb) {
    let app = app(db).await;
    let created = create(&app, &contract_about(PNR)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let current = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await;
    let mut plan = current.body.clone();
    plan["subject"]["identifier"]["value"] = json!("195208239813");
    let tag = current.header("etag").unwrap().to_owned();
    let put = send(
        &app,
        Method::PUT,
        &format!("/fhir/CarePlan/{id}"),
        &[("If-Match", &tag)],
        Some(&plan),
    )
    .await;
    assert_eq!(put.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", put.body);
    let (field, why) = issue(&put);
    assert_eq!(field, "CarePlan.subject.identifier");
    assert!(why.contains("Patient/$merge"), "{why}");
    let after = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await;
    assert_eq!(
        after.body["meta"]["versionId"],
        current.body["meta"]["versionId"]
    );
}

async fn a_reservnummer_is_merged_onto_the_real_number(db: &TestDb) {
    let app = app(db).await;
    let peer = FhirPeer::start().await;
    let engine = engine(&app.store, &[target("ehr", &peer.base, &[])]);
    let reserv = format!("{SYSTEM}|{RESERV}");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = create(&app, &contract_about(&reserv)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    // Someone else's contract stays theirs.
    let other = create(&app, &contract_about("195208239813")).await;
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    settle(&engine, &app.store).await;
    let (_, at_target) = peer.get(&format!("CarePlan/{}", ids[0])).await;
    assert_eq!(at_target["subject"]["identifier"]["value"], RESERV);

    // A preview says what would move, and moves nothing.
    let preview = merge(
        &app,
        &merge_parameters((SYSTEM, RESERV), (PNR_SYSTEM, PNR), true),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    let outcome = &preview.body["parameter"][0]["resource"];
    assert_eq!(outcome["issue"].as_array().unwrap().len(), 2, "{outcome}");
    assert!(outcome.to_string().contains("would move"));
    let plan = fhir_get(&app, &format!("/fhir/CarePlan/{}", ids[0]))
        .await
        .body;
    assert_eq!(plan["meta"]["versionId"], "1");

    let trail = pkgw::store::AuditQuery::default();
    let before = app.store.audit(&trail).await.unwrap().len();
    let merged = merge(
        &app,
        &merge_parameters((SYSTEM, RESERV), (PNR_SYSTEM, PNR), false),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    // The merge request is in the trail under both identities.
    let rows = app.store.audit(&trail).await.unwrap().split_off(before);
    let named: Vec<&str> = rows
        .iter()
        .filter(|r| r.action == "operation" && r.status == Some(200))
        .filter_map(|r| r.patient.as_deref())
        .collect();
    assert!(
        named.iter().any(|p| p.contains("99123456")) && named.contains(&PNR),
        "{rows:?}"
    );
    let result = &merged.body["parameter"][1];
    assert_eq!(result["name"], "result");
    assert_eq!(result["resource"]["id"], PNR);
    for id in &ids {
        let plan = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await.body;
        assert_eq!(plan["meta"]["versionId"], "2", "one new version each");
        assert_eq!(
            plan["subject"]["identifier"],
            json!({ "system": PNR_SYSTEM, "value": PNR })
        );
        // The history says which identity became which.
        let provenance = fhir_get(&app, &format!("/fhir/Provenance/{id}-v2"))
            .await
            .body;
        let text = provenance.to_string();
        assert!(
            text.contains(&format!(
                "Sammanslagning: reservnummer {RESERV} ersatt av personnummer {PNR}"
            )),
            "{text}"
        );
    }
    // Found by the real number, no longer by the reservnummer.
    let by_pnr = fhir_get(&app, &format!("/fhir/CarePlan?patient={PNR}"))
        .await
        .body;
    assert_eq!(by_pnr["total"], 2);
    let by_reserv = fhir_get(
        &app,
        &format!("/fhir/CarePlan?patient.identifier={SYSTEM}|{RESERV}"),
    )
    .await
    .body;
    assert_eq!(by_reserv["total"], 0);
    let other_plan = fhir_get(&app, &format!("/fhir/CarePlan/{other_id}"))
        .await
        .body;
    assert_eq!(other_plan["meta"]["versionId"], "1");

    // The target is sent the new subject.
    settle(&engine, &app.store).await;
    for id in &ids {
        let (_, theirs) = peer.get(&format!("CarePlan/{id}")).await;
        assert_eq!(theirs["subject"]["identifier"]["value"], PNR, "{theirs}");
    }

    // Done is done: the reservnummer has nothing left to merge.
    let again = merge(
        &app,
        &merge_parameters((SYSTEM, RESERV), (PNR_SYSTEM, PNR), false),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
}

async fn a_merge_that_cannot_be_done_is_refused(db: &TestDb) {
    let app = app(db).await;
    let reserv = format!("{SYSTEM}|{RESERV}");
    create(&app, &contract_about(&reserv)).await;
    let cases = [
        (
            merge_parameters((SYSTEM, RESERV), (SYSTEM, "99123456-0002"), false),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target-patient",
        ),
        (
            merge_parameters((SYSTEM, RESERV), (SYSTEM, RESERV), false),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target-patient",
        ),
        (
            merge_parameters((SYSTEM, RESERV), (PNR_SYSTEM, "199001012386"), false),
            StatusCode::BAD_REQUEST,
            "Parameters.parameter[1].valueIdentifier",
        ),
        (
            json!({ "resourceType": "Parameters", "parameter": [
                { "name": "source-patient", "valueReference": { "reference": format!("Patient/sll-{RESERV}") } },
                { "name": "target-patient-identifier", "valueIdentifier": { "system": PNR_SYSTEM, "value": PNR } },
                { "name": "result-patient", "resource": { "resourceType": "Patient" } },
            ] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Parameters.parameter[2]",
        ),
        (
            json!({ "resourceType": "Parameters", "parameter": [
                { "name": "source-patient", "valueReference": { "reference": format!("Patient/sll-{RESERV}") } },
                { "name": "source-patient-identifier", "valueIdentifier": { "system": PNR_SYSTEM, "value": "195208239813" } },
                { "name": "target-patient-identifier", "valueIdentifier": { "system": PNR_SYSTEM, "value": PNR } },
            ] }),
            StatusCode::BAD_REQUEST,
            "Parameters.parameter[1]",
        ),
        (
            json!({ "resourceType": "Parameters", "parameter": [
                { "name": "source-patient", "valueReference": { "reference": format!("Patient/sll-{RESERV}") } },
            ] }),
            StatusCode::BAD_REQUEST,
            "Parameters.parameter",
        ),
        (
            json!({ "resourceType": "Parameters", "parameter": [
                { "name": "source", "valueString": RESERV },
            ] }),
            StatusCode::BAD_REQUEST,
            "Parameters.parameter[0]",
        ),
    ];
    for (body, status, field) in cases {
        let reply = merge(&app, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(issue(&reply).0, field, "{}", reply.body);
    }
    // Nothing moved.
    let person = PersonId::parse(&reserv).unwrap();
    let still = app.store.find_by_patient(&person).await.unwrap();
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].revision.version.get(), 1);
}

on_both_backends!(
    a_person_known_by_a_reservnummer_has_a_contract_like_anyone,
    a_reservnummer_outside_the_regions_form_is_refused,
    an_update_does_not_change_whom_the_contract_is_about,
    a_reservnummer_is_merged_onto_the_real_number,
    a_merge_that_cannot_be_done_is_refused,
);
