//! The FHIR read API over real sockets, on SQLite and PostgreSQL: metadata, read, vread,
//! history, search and `$coordinated-plan`, with OperationOutcomes for every error.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::{TestApp, spawn_app};
use common::{TestDb, fixture};
use pkgw::domain::{ContractId, Status, Version};
use pkgw::store::Change;
use reqwest::StatusCode;
use serde_json::Value;

const PNR: &str = "http://electronichealth.se/identifier/personnummer";

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json"),
        "{path}: {:?}",
        response.headers()["content-type"]
    );
    (status, response.json().await.unwrap())
}

/// The body of a `GET` answered 200.
async fn text(app: &TestApp, path: &str) -> String {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

/// Stores the heart-failure contract and a second version of it.
async fn two_versions(app: &TestApp) -> ContractId {
    let store = &app.store;
    let record = store
        .create(
            fixture("hjartsvikt-primarvard"),
            Change::from_source("cosmic"),
        )
        .await
        .unwrap();
    let mut next = record.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att få träffa barnbarnen".into());
    let change = Change {
        source: "api".into(),
        author: Some("Anna Berg".into()),
        reason: Some("Nytt mål".into()),
        transfer: None,
        merged_from: None,
    };
    store
        .update(&record.id, Version::FIRST, next, change)
        .await
        .unwrap();
    record.id
}

fn types(bundle: &Value) -> Vec<&str> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect()
}

async fn metadata_describes_what_is_served(db: &TestDb) {
    let app = spawn_app(db).await;
    let (status, cs) = get(&app, "/fhir/metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (cs["resourceType"].as_str(), cs["fhirVersion"].as_str()),
        (Some("CapabilityStatement"), Some("4.0.1"))
    );
    let served: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        served,
        [
            "CarePlan",
            "CareTeam",
            "Goal",
            "Appointment",
            "CommunicationRequest",
            "Provenance",
            "Questionnaire",
            "QuestionnaireResponse",
            "AuditEvent",
            "Subscription",
            "Patient",
            "PlanDefinition",
            "OperationDefinition"
        ]
    );
}

/// A value for an operation's input parameter, as its definition types it.
fn value_of(name: &str, kind: &str, person: &str, unit: &str) -> Option<Value> {
    let text = match name {
        "patient" => person.to_owned(),
        "unit" => unit.to_owned(),
        "hsaId" => "SE2321000016-9ZZZ".into(),
        "name" => "Vårdcentralen Norra".into(),
        "phone" => "08-123 400 00".into(),
        "handover" => jiff::Timestamp::now().to_string(),
        "kind" => "hospital-to-primary-care".into(),
        _ => return None,
    };
    let key = match kind {
        "instant" => "valueInstant",
        "code" => "valueCode",
        _ => "valueString",
    };
    Some(serde_json::json!({ "name": name, key: text }))
}

/// The Parameters an operation's definition asks for: every input it requires, and
/// any part of one the test has a value for.
fn parameters_for(definition: &Value, person: &str, unit: &str, contact: &str) -> Value {
    let mut parameter = Vec::new();
    for p in definition["parameter"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        if p["use"] != "in" || (p["min"] == 0 && name != "fastVardkontakt") {
            continue;
        }
        if let Some(parts) = p["part"].as_array() {
            let part: Vec<Value> = parts
                .iter()
                .filter_map(|q| {
                    let part = q["name"].as_str().unwrap();
                    let part = if name == "fastVardkontakt" && part == "name" {
                        return Some(serde_json::json!({ "name": "name", "valueString": contact }));
                    } else {
                        part
                    };
                    value_of(part, q["type"].as_str().unwrap(), person, unit)
                })
                .collect();
            parameter.push(serde_json::json!({ "name": name, "part": part }));
        } else {
            let value = value_of(name, p["type"].as_str().unwrap(), person, unit);
            parameter.push(value.unwrap_or_else(|| panic!("no test value for {name}")));
        }
    }
    serde_json::json!({ "resourceType": "Parameters", "parameter": parameter })
}

/// Every operation the CapabilityStatement declares has its definition where it says,
/// and works when invoked as the definition says.
async fn every_declared_operation_is_defined_and_works(db: &TestDb) {
    let templates = pkgw::templates::Templates::examples().unwrap();
    let state = pkgw::api::AppState::new(db.store().await).with_templates(templates);
    let app = common::app::spawn_state(state, pkgw::api::Limits::default()).await;
    let record = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let contract = &record.revision.contract;
    let person = contract.patient.id.to_string();
    let unit = contract
        .responsible_unit
        .as_ref()
        .unwrap()
        .hsa_id
        .to_string();
    let (_, cs) = get(&app, "/fhir/metadata").await;
    let rest = &cs["rest"][0];
    let mut declared: Vec<(Option<String>, Value)> = rest["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (None, o.clone()))
        .collect();
    for resource in rest["resource"].as_array().unwrap() {
        for o in resource["operation"].as_array().into_iter().flatten() {
            declared.push((
                Some(resource["type"].as_str().unwrap().to_owned()),
                o.clone(),
            ));
        }
    }
    let mut tried = Vec::new();
    for (on, operation) in declared {
        let code = operation["name"].as_str().unwrap();
        let url = operation["definition"].as_str().unwrap();
        let definition: Option<Value> = if url.starts_with(&app.url("/fhir/")) {
            let response = app.client.get(url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            let definition: Value = response.json().await.unwrap();
            assert_eq!(definition["resourceType"], "OperationDefinition");
            assert_eq!(
                (definition["url"].as_str(), definition["code"].as_str()),
                (Some(url), Some(code))
            );
            if let Some(on) = &on {
                assert_eq!(definition["resource"], serde_json::json!([on]), "{code}");
            }
            Some(definition)
        } else {
            // Defined by FHIR itself.
            assert!(url.starts_with("http://hl7.org/fhir/"), "{url}");
            None
        };
        let type_path = on
            .as_deref()
            .map(|t| format!("/fhir/{t}"))
            .unwrap_or("/fhir".into());
        if code == "confirm" {
            // The person's own word: tried with their token in tests/person.rs; a client
            // that is not the person is refused.
            let response = app
                .client
                .post(app.url(&format!("/fhir/CarePlan/{}/$confirm", record.id)))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            tried.push(code.to_owned());
            continue;
        }
        let request = match (code, &definition) {
            // Last of all (the Patient's operations come after the CarePlan's): the
            // person's number changed, and the contract moves onto the new one.
            ("merge", Some(_)) => app
                .client
                .post(app.url("/fhir/Patient/$merge"))
                .header("content-type", "application/fhir+json")
                .body(
                    serde_json::json!({ "resourceType": "Parameters", "parameter": [
                        { "name": "source-patient", "valueReference": { "reference": format!("Patient/{person}") } },
                        { "name": "target-patient-identifier", "valueIdentifier": {
                            "system": "http://electronichealth.se/identifier/personnummer",
                            "value": "199001012385",
                        } },
                    ] })
                    .to_string(),
                ),
            (_, Some(d)) if d["instance"] == true => {
                let body = parameters_for(d, &person, &unit, "Karin Lind");
                app.client
                    .post(app.url(&format!("{type_path}/{}/${code}", record.id)))
                    .header("content-type", "application/fhir+json")
                    .header("if-match", record.revision.version.etag())
                    .body(body.to_string())
            }
            (_, Some(d)) => {
                let body = parameters_for(d, &person, &unit, "Karin Lind");
                let query: Vec<(String, String)> = body["parameter"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().to_owned(),
                            p["valueString"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                app.client
                    .get(app.url(&format!("{type_path}/${code}")))
                    .query(&query)
            }
            ("validate", None) => {
                let plan = pkgw::fhir::to_fhir(
                    &record.id,
                    contract,
                    &pkgw::fhir::Profile::default_profile(),
                );
                let resource = match on.as_deref() {
                    Some("CarePlan") => plan.care_plan,
                    Some("CareTeam") => plan.care_team,
                    Some("Goal") => plan.goals[0].clone(),
                    Some("Appointment") => plan.appointments[0].clone(),
                    Some("CommunicationRequest") => {
                        let mut asked = contract.clone();
                        asked.contact_requests.push(pkgw::domain::ContactRequest {
                            number: 1,
                            reason: pkgw::domain::ContactReason::Contact,
                            message: "Ring mig, tack".into(),
                            asked_at: jiff::Timestamp::now(),
                            about_time: None,
                            status: pkgw::domain::RequestStatus::Open,
                        });
                        let mapped = pkgw::fhir::to_fhir(
                            &record.id,
                            &asked,
                            &pkgw::fhir::Profile::default_profile(),
                        );
                        // An instance's $validate is of a resource there: the request is
                        // made first.
                        let request = mapped.communication_requests[0].clone();
                        let made = app
                            .client
                            .post(app.url("/fhir/CommunicationRequest"))
                            .header("content-type", "application/fhir+json")
                            .body(request.to_string())
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(made.status(), StatusCode::CREATED);
                        request
                    }
                    other => panic!("$validate on {other:?}"),
                };
                let id = resource["id"].as_str().unwrap().to_owned();
                app.client
                    .post(app.url(&format!("{type_path}/{id}/$validate")))
                    .header("content-type", "application/fhir+json")
                    .body(resource.to_string())
            }
            ("export", None) => app
                .client
                .get(app.url("/fhir/$export"))
                .header("prefer", "respond-async"),
            ("everything", None) => app
                .client
                .get(app.url(&format!("/fhir/Patient/{person}/$everything"))),
            ("apply", None) => app.client.get(app.url(&format!(
                "/fhir/PlanDefinition/hjartsvikt/$apply?subject=Patient/{person}"
            ))),
            (other, None) => panic!("no way to try ${other}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert!(status.is_success(), "${code} on {on:?}: {status} {body}");
        if let Some(d) = &definition {
            // One `return` comes as itself; other outputs in a Parameters.
            let returns = d["parameter"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["use"] == "out" && p["name"] == "return")
                .map_or("Parameters", |p| p["type"].as_str().unwrap());
            assert_eq!(body["resourceType"], returns, "${code}: {body}");
        } else if code == "validate" {
            assert_eq!(
                body["issue"][0]["severity"], "information",
                "{on:?}: {body}"
            );
        } else if code == "apply" {
            // R4's $apply returns the CarePlan it makes.
            assert_eq!(body["resourceType"], "CarePlan", "{body}");
        }
        tried.push(code.to_owned());
    }
    tried.sort();
    tried.dedup();
    assert_eq!(
        tried,
        [
            "apply",
            "confirm",
            "coordinated-plan",
            "everything",
            "export",
            "merge",
            "samsyn",
            "transfer",
            "validate"
        ]
    );
    // The definitions are found by their URL too.
    let url = format!("{}/OperationDefinition/samsyn", app.url("/fhir"));
    let (status, found) = get(&app, &format!("/fhir/OperationDefinition?url={url}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["url"], url.as_str());
    let (status, unknown) = get(&app, "/fhir/OperationDefinition/finns-inte").await;
    assert_eq!(
        (status, unknown["resourceType"].as_str()),
        (StatusCode::NOT_FOUND, Some("OperationOutcome"))
    );
}

async fn read_vread_and_history(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = two_versions(&app).await;
    let response = app
        .client
        .get(app.url(&format!("/fhir/CarePlan/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let plan: Value = response.json().await.unwrap();
    assert_eq!(plan["meta"]["versionId"], "2");
    assert_eq!(plan["meta"]["source"], "api");
    assert_eq!(
        plan["meta"]["tag"][0],
        serde_json::json!({ "system": "https://pkgw.example/fhir/sid/andringskalla", "code": "api" }),
        "where the change came from, for receivers to tell their own echo"
    );
    assert_eq!(plan["goal"].as_array().unwrap().len(), 3);

    let (status, v1) = get(&app, &format!("/fhir/CarePlan/{id}/_history/1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v1["meta"]["versionId"], "1");
    assert_eq!(
        v1["goal"].as_array().unwrap().len(),
        2,
        "vread returns the old version exactly"
    );
    let (_, v1_again) = get(&app, &format!("/fhir/CarePlan/{id}/_history/1")).await;
    assert_eq!(v1, v1_again);

    let (status, history) = get(&app, &format!("/fhir/CarePlan/{id}/_history")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (history["type"].as_str(), history["total"].as_u64()),
        (Some("history"), Some(2))
    );
    let versions: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2", "1"], "newest first");
    assert_eq!(history["entry"][1]["request"]["method"], "POST");

    let goal_id = plan["goal"][2]["reference"].as_str().unwrap().to_owned();
    let (status, goal) = get(&app, &format!("/fhir/{goal_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(goal["description"]["text"], "Att få träffa barnbarnen");
    let (status, _) = get(&app, &format!("/fhir/{goal_id}/_history/1")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the goal did not exist in version 1"
    );

    let (status, provenance) = get(&app, &format!("/fhir/Provenance/{id}-v2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(provenance["reason"][0]["text"], "Nytt mål");
    assert_eq!(
        provenance["target"][0]["reference"],
        format!("CarePlan/{id}/_history/2")
    );
}

async fn search_by_person_id_and_identifier(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = two_versions(&app).await;
    app.store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();
    for query in [
        format!("patient={PNR}|19400312-9865"),
        "patient.identifier=urn:oid:1.2.752.129.2.1.3.1|194003129865".to_owned(),
        "subject=Patient/194003129865".to_owned(),
        format!("_id={id}"),
        format!("identifier=https://pkgw.example/fhir/sid/patientkontrakt|{id}"),
    ] {
        let (status, bundle) = get(&app, &format!("/fhir/CarePlan?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(bundle["total"], 1, "{query}");
        assert_eq!(bundle["entry"][0]["resource"]["id"], id.as_str(), "{query}");
        assert!(
            bundle["entry"][0]["fullUrl"]
                .as_str()
                .unwrap()
                .starts_with("http://"),
            "absolute fullUrl"
        );
    }
    // A search gives each of a contract's resources byte for byte as a read of it does,
    // filtered or not, included or matched.
    for query in [
        "CarePlan?patient=194003129865",
        "CarePlan?patient=194003129865&status=active&_include=CarePlan:care-team",
        "Goal?patient=194003129865&lifecycle-status=active,proposed,accepted",
    ] {
        let searched = text(&app, &format!("/fhir/{query}")).await;
        let bundle: Value = serde_json::from_str(&searched).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        assert!(!entries.is_empty(), "{query}: {searched}");
        for entry in entries {
            let url = entry["fullUrl"].as_str().unwrap();
            let read = text(&app, &url[url.find("/fhir").unwrap()..]).await;
            assert!(searched.contains(&read), "{query}: {url} as read: {read}");
        }
        // `_pretty`: the same Bundle, indented.
        let pretty = text(&app, &format!("/fhir/{query}&_pretty=true")).await;
        assert!(pretty.contains("\n  \"type\": \"searchset\""), "{pretty}");
        let mut indented: Value = serde_json::from_str(&pretty).unwrap();
        let mut compact = bundle.clone();
        for b in [&mut indented, &mut compact] {
            b["link"] = Value::Null;
        }
        assert_eq!(indented, compact, "{query}");
    }
    let (_, none) = get(&app, "/fhir/CarePlan?patient=194003129865&status=revoked").await;
    assert_eq!(none["total"], 0);
    let (_, goals) = get(&app, "/fhir/Goal?patient=194003129865&_count=2").await;
    assert_eq!(
        (
            goals["total"].as_u64(),
            goals["entry"].as_array().unwrap().len()
        ),
        (Some(3), 2)
    );
    let next = goals["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap();
    let next_path = &next[next.find("/fhir").unwrap()..];
    let (_, page2) = get(&app, next_path).await;
    assert_eq!(page2["entry"].as_array().unwrap().len(), 1);
    let (_, count) = get(
        &app,
        "/fhir/Appointment?patient=194003129865&_summary=count",
    )
    .await;
    assert_eq!(count["total"], 2);
    assert!(count.get("entry").is_none());
    let (_, provenances) = get(
        &app,
        &format!("/fhir/Provenance?_id={id}-v1&patient=194003129865"),
    )
    .await;
    assert_eq!(provenances["total"], 1);
}

async fn unknown_parameters_warn_or_fail(db: &TestDb) {
    let app = spawn_app(db).await;
    two_versions(&app).await;
    let (status, lenient) = get(&app, "/fhir/CarePlan?patient=194003129865&colour=blue").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(types(&lenient), ["CarePlan", "OperationOutcome"]);
    let strict = app
        .client
        .get(app.url("/fhir/CarePlan?patient=194003129865&colour=blue"))
        .header("Prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), StatusCode::BAD_REQUEST);
    let outcome: Value = strict.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["expression"][0], "colour");
    let (status, outcome) = get(&app, "/fhir/CarePlan?status=active").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no listing of everyone's contracts"
    );
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let (status, outcome) = get(&app, "/fhir/CarePlan?patient=194003129866").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("check digit"),
        "{outcome}"
    );
}

async fn coordinated_plan_for_a_portal(db: &TestDb) {
    let app = spawn_app(db).await;
    // The booked time lies ahead whenever the test runs; the proposed one is not agreed.
    let mut contract = fixture("hjartsvikt-primarvard");
    let ahead = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 7);
    contract.agreed_times[0].start = ahead;
    contract.agreed_times[0].end = ahead + jiff::SignedDuration::from_mins(30);
    let record = app
        .store
        .create(contract.clone(), Change::from_source("api"))
        .await
        .unwrap();
    contract
        .agreement
        .what_matters
        .push("Att få träffa barnbarnen".into());
    app.store
        .update(
            &record.id,
            Version::FIRST,
            contract,
            Change::from_source("api"),
        )
        .await
        .unwrap();
    let (status, bundle) = get(
        &app,
        &format!("/fhir/CarePlan/$coordinated-plan?patient={PNR}|194003129865"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // One contract: CarePlan, CareTeam, three Goals, and the one booked appointment ahead
    // (the other is only proposed).
    assert_eq!(
        types(&bundle),
        [
            "CarePlan",
            "CareTeam",
            "Goal",
            "Goal",
            "Goal",
            "Appointment"
        ]
    );
    let plan = &bundle["entry"][0]["resource"];
    assert_eq!(
        plan["activity"][0]["detail"]["code"]["coding"][0]["code"], "nasta-steg",
        "the next step comes first"
    );
    assert_eq!(
        plan["supportingInfo"][0]["display"],
        "SIP med hemsjukvården i Stockholms stad"
    );
    assert_eq!(plan["meta"]["versionId"], "2");

    // A change shows at once (the answer is built from the current version, however
    // often it was asked for before); a contract no longer in force is left out, and
    // so is a booked time that has passed.
    let mut changed = app.store.get(&record.id).await.unwrap().revision.contract;
    changed
        .agreement
        .what_matters
        .push("Att orka gå till affären".into());
    changed.agreed_times[0].start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    changed.agreed_times[0].end =
        changed.agreed_times[0].start + jiff::SignedDuration::from_mins(30);
    app.store
        .update(
            &record.id,
            Version::FIRST.next(),
            changed.clone(),
            Change::from_source("api"),
        )
        .await
        .unwrap();
    let mut ended = changed;
    ended.status = Status::Completed;
    app.store
        .create(ended, Change::from_source("api"))
        .await
        .unwrap();
    let path = format!("/fhir/CarePlan/$coordinated-plan?patient={PNR}|194003129865");
    let (status, bundle) = get(&app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        types(&bundle),
        ["CarePlan", "CareTeam", "Goal", "Goal", "Goal", "Goal"]
    );
    assert_eq!(bundle["entry"][0]["resource"]["meta"]["versionId"], "3");
    assert!(
        bundle["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/fhir/CarePlan/{}", record.id)),
        "{bundle}"
    );
    let (_, pretty) = get(&app, &format!("{path}&_pretty=true")).await;
    assert_eq!(pretty["entry"], bundle["entry"]);
    // The operation invoked by POST, the person in a Parameters resource.
    let post = |parameters: Value| {
        app.client
            .post(app.url("/fhir/CarePlan/$coordinated-plan"))
            .header("content-type", "application/fhir+json")
            .body(parameters.to_string())
            .send()
    };
    let by_post = post(
        serde_json::json!({ "resourceType": "Parameters", "parameter": [
        { "name": "patient", "valueIdentifier": { "system": PNR, "value": "194003129865" } },
    ] }),
    )
    .await
    .unwrap();
    assert_eq!(by_post.status(), StatusCode::OK);
    let posted: Value = by_post.json().await.unwrap();
    assert_eq!(posted["entry"], bundle["entry"]);
    let wrong = post(
        serde_json::json!({ "resourceType": "Parameters", "parameter": [
        { "name": "person", "valueString": "194003129865" },
    ] }),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let outcome: Value = wrong.json().await.unwrap();
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Parameters.parameter[0].name"
    );

    let (status, outcome) = get(
        &app,
        "/fhir/CarePlan/$coordinated-plan?patient=191212121212",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

async fn errors_are_operation_outcomes(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = two_versions(&app).await;
    for (path, expected) in [
        ("/fhir/Patient/1".to_owned(), StatusCode::NOT_FOUND),
        (
            "/fhir/CarePlan/no-such-contract".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/fhir/CarePlan/{id}/_history/9"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/fhir/CarePlan/{id}/_history/x"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/fhir/CarePlan/{id}?_format=xml"),
            StatusCode::NOT_ACCEPTABLE,
        ),
        ("/fhir/CarePlan/a/b/c/d".to_owned(), StatusCode::NOT_FOUND),
    ] {
        let (status, outcome) = get(&app, &path).await;
        assert_eq!(status, expected, "{path}");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{path}");
    }
    let xml = app
        .client
        .get(app.url("/fhir/metadata"))
        .header("Accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), StatusCode::NOT_ACCEPTABLE);
    let delete = app
        .client
        .delete(app.url("/fhir/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
}

async fn search_by_dates_category_and_include(db: &TestDb) {
    let app = spawn_app(db).await;
    two_versions(&app).await;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Stockholm").unwrap())
        .date();
    let q = |s: &str| format!("/fhir/CarePlan?patient=194003129865&{s}");
    for (query, total) in [
        (format!("_lastUpdated=ge{today}"), 1),
        (format!("_lastUpdated=lt{today}"), 0),
        ("_lastUpdated=gt2020-01-01T00:00:00Z".to_owned(), 1),
        (
            "category=https://pkgw.example/fhir/CodeSystem/patientkontrakt|patientkontrakt"
                .to_owned(),
            1,
        ),
        ("category=annat".to_owned(), 0),
    ] {
        let (status, bundle) = get(&app, &q(&query)).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(bundle["total"], total, "{query}");
    }
    // The fixture's booked time is 2026-12-10 09.30 Swedish time, the proposed one 2027-01-14.
    let (_, december) = get(
        &app,
        "/fhir/Appointment?patient=194003129865&date=2026-12-10",
    )
    .await;
    assert_eq!(december["total"], 1);
    let (_, later) = get(
        &app,
        "/fhir/Appointment?patient=194003129865&date=gt2026-12-10&date=lt2027-02-01",
    )
    .await;
    assert_eq!(later["total"], 1);
    assert_eq!(later["entry"][0]["resource"]["status"], "proposed");
    let (status, _) = get(&app, "/fhir/Appointment?patient=194003129865&date=snart").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, with_team) = get(
        &app,
        "/fhir/CarePlan?patient=194003129865&_include=CarePlan:care-team",
    )
    .await;
    assert_eq!(types(&with_team), ["CarePlan", "CareTeam"]);
    assert_eq!(with_team["entry"][1]["search"]["mode"], "include");
    assert_eq!(with_team["total"], 1, "included resources do not count");
    let (_, with_provenance) = get(
        &app,
        "/fhir/CarePlan?patient=194003129865&_revinclude=Provenance:target",
    )
    .await;
    let versions: usize = with_provenance["entry"][0]["resource"]["meta"]["versionId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut expected = vec!["CarePlan"];
    expected.extend(std::iter::repeat_n("Provenance", versions));
    assert_eq!(
        types(&with_provenance),
        expected,
        "one Provenance per version"
    );
    assert_eq!(
        with_provenance["entry"][1]["resource"]["target"][0]["reference"]
            .as_str()
            .unwrap()
            .split("/_history")
            .next(),
        with_provenance["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .split_once("/fhir/")
            .map(|(_, path)| path)
    );
}

async fn put(
    app: &TestApp,
    id: &str,
    if_match: Option<&str>,
    body: &Value,
) -> (StatusCode, Value, Option<String>) {
    let mut req = app
        .client
        .put(app.url(&format!("/fhir/CarePlan/{id}")))
        .header("content-type", "application/fhir+json")
        .json(body);
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    let response = req.send().await.unwrap();
    let etag = response
        .headers()
        .get("etag")
        .map(|e| e.to_str().unwrap().to_owned());
    (response.status(), response.json().await.unwrap(), etag)
}

async fn update_a_care_plan_keeping_what_the_contract_does_not_model(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.as_str();
    let (_, mut plan) = get(&app, &format!("/fhir/CarePlan/{id}")).await;
    plan["activity"][0]["detail"]["description"] = "Ring Anna på måndag".into();
    plan["note"] = serde_json::json!([{ "text": "Från COSMIC: patienten har hörapparat" }]);
    let (status, updated, etag) = put(&app, id, Some("W/\"1\""), &plan).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(etag.as_deref(), Some("W/\"2\""));
    assert_eq!(updated["meta"]["versionId"], "2");
    let stored = app.store.get(&record.id).await.unwrap();
    assert_eq!(
        stored.revision.contract.next_step.unwrap().description,
        "Ring Anna på måndag"
    );
    assert_eq!(
        stored.revision.contract.care_contacts, record.revision.contract.care_contacts,
        "the CareTeam is untouched"
    );
    let (_, again) = get(&app, &format!("/fhir/CarePlan/{id}")).await;
    assert_eq!(
        again["note"], plan["note"],
        "foreign content survives into the next version"
    );

    let (status, outcome, _) = put(&app, id, Some("W/\"1\""), &plan).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    let mut no_next_step = again.clone();
    no_next_step["activity"].as_array_mut().unwrap().remove(0);
    let (status, outcome, _) = put(&app, id, Some("W/\"2\""), &no_next_step).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "CarePlan.activity");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("next step")
    );

    let mut bad_person = again.clone();
    bad_person["subject"]["identifier"]["value"] = "194003129866".into();
    let (status, outcome, _) = put(&app, id, None, &bad_person).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "CarePlan.subject.identifier.value"
    );

    let (status, _, _) = put(&app, "another-id", None, &again).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the body's id must match the URL"
    );
    let text = app
        .client
        .put(app.url(&format!("/fhir/CarePlan/{id}")))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken = app
        .client
        .put(app.url(&format!("/fhir/CarePlan/{id}")))
        .header("content-type", "application/fhir+json")
        .body("{\"resourceType\":")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let team = app
        .client
        .put(app.url(&format!("/fhir/CareTeam/{id}")))
        .header("content-type", "application/fhir+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(team.status(), StatusCode::BAD_REQUEST, "not a CareTeam");
    assert_eq!(
        app.store
            .get(&record.id)
            .await
            .unwrap()
            .revision
            .version
            .get(),
        2,
        "refused updates change nothing"
    );
}

async fn concurrent_updates_with_one_if_match_lose_nothing(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let (_, plan) = get(&app, &format!("/fhir/CarePlan/{id}")).await;
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
                    .header("If-Match", "W/\"1\"")
                    .json(&body)
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
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::PRECONDITION_FAILED),
        "{statuses:?}"
    );
    assert_eq!(
        app.store.history(&record.id).await.unwrap().versions.len(),
        2
    );
}

/// A transaction Bundle pushing a whole contract, as an EHR would: a new contract as
/// `POST`s with `urn:uuid:` fullUrls; a change of contract `put` (its id and the
/// contract as stored) as a `PUT` of each resource it has, and a `POST` of each new one.
fn transaction(
    contract: &pkgw::domain::Contract,
    put: Option<(&str, &pkgw::domain::Contract)>,
    if_match: Option<&str>,
) -> Value {
    let profile = pkgw::fhir::Profile::default_profile();
    let id = ContractId::parse(put.map_or("tillfalligt-id", |(id, _)| id)).unwrap();
    let resources = pkgw::fhir::to_fhir(&id, contract, &profile);
    let stored: Vec<Value> = put
        .map(|(_, before)| {
            pkgw::fhir::to_fhir(&id, before, &profile)
                .all()
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let entries: Vec<Value> = resources
        .all()
        .enumerate()
        .map(|(n, r)| {
            let kind = r["resourceType"].as_str().unwrap();
            let known = stored.iter().any(|s| s["resourceType"] == kind && s["id"] == r["id"]);
            let mut request = if known {
                serde_json::json!({ "method": "PUT", "url": format!("{kind}/{}", r["id"].as_str().unwrap()) })
            } else {
                serde_json::json!({ "method": "POST", "url": kind })
            };
            if let (Some(tag), "CarePlan") = (if_match, kind) {
                request["ifMatch"] = tag.into();
            }
            serde_json::json!({ "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{n:012}"), "resource": r, "request": request })
        })
        .collect();
    serde_json::json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
}

async fn post_bundle(app: &TestApp, bundle: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/fhir"))
        .header("content-type", "application/fhir+json")
        .json(bundle)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn an_ehr_pushes_a_whole_contract_in_one_transaction(db: &TestDb) {
    let app = spawn_app(db).await;
    let contract = fixture("psykiatri-sip");
    let (status, response) = post_bundle(&app, &transaction(&contract, None, None)).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["type"], "transaction-response");
    assert_eq!(response["entry"][0]["response"]["status"], "201 Created");
    let location = response["entry"][0]["response"]["location"]
        .as_str()
        .unwrap();
    let id = location
        .strip_prefix("CarePlan/")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let stored = app
        .store
        .get(&ContractId::parse(&id).unwrap())
        .await
        .unwrap();
    assert_eq!(
        stored.revision.contract, contract,
        "the whole contract arrived"
    );

    let mut changed = contract.clone();
    changed
        .agreement
        .what_matters
        .push("Att kunna resa till min syster i Umeå".into());
    let (status, outcome) = post_bundle(
        &app,
        &transaction(&changed, Some((&id, &contract)), Some("W/\"2\"")),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{outcome}");
    let (status, response) = post_bundle(
        &app,
        &transaction(&changed, Some((&id, &contract)), Some("W/\"1\"")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["entry"][0]["response"]["etag"], "W/\"2\"");
    assert_eq!(
        app.store.get(&stored.id).await.unwrap().revision.contract,
        changed
    );
}

async fn a_transaction_with_a_failing_entry_leaves_nothing_behind(db: &TestDb) {
    let app = spawn_app(db).await;
    let mut bundle = transaction(&fixture("cancer-min-vardplan"), None, None);
    let last = bundle["entry"].as_array().unwrap().len() - 1;
    bundle["entry"][last]["resource"]["participant"][0]["actor"]["identifier"]["value"] =
        "195208239814".into();
    let (status, outcome) = post_bundle(&app, &bundle).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert!(
        outcome["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .starts_with("Appointment"),
        "{outcome}"
    );
    let mut no_unit = transaction(&fixture("cancer-min-vardplan"), None, None);
    no_unit["entry"].as_array_mut().unwrap().remove(1); // the CareTeam, with the responsible unit
    let (status, outcome) = post_bundle(&app, &no_unit).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "CareTeam.managingOrganization"
    );
    assert_eq!(
        (db.count("contracts").await, db.count("outbox").await),
        (0, 0)
    );
    let (status, _) = post_bundle(
        &app,
        &serde_json::json!({ "resourceType": "Bundle", "type": "collection", "entry": [] }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn concurrent_conditional_creates_make_one_contract(db: &TestDb) {
    let app = spawn_app(db).await;
    let mut bundle = transaction(&fixture("ung-diabetes"), None, None);
    bundle["entry"][0]["request"]["ifNoneExist"] =
        "identifier=https://pkgw.example/fhir/sid/patientkontrakt|alva-2026".into();
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "alva-2026".into();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (client, url, body) = (app.client.clone(), app.url("/fhir"), bundle.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .header("content-type", "application/fhir+json")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let (status, response) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{response}");
        assert_eq!(
            response["entry"][0]["response"]["location"],
            "CarePlan/alva-2026/_history/1"
        );
        let made = response["entry"][0]["response"]["status"] == "201 Created";
        created += usize::from(made);
        if !made {
            // Nothing of the contract was written: its Goals are not named as if they were.
            for entry in response["entry"].as_array().unwrap() {
                assert!(
                    !entry["resource"].is_null() || entry.get("resource").is_none(),
                    "{entry}"
                );
                if entry["response"]["location"].is_null() {
                    assert!(
                        entry["response"]["outcome"]["issue"][0]["diagnostics"]
                            .as_str()
                            .unwrap()
                            .contains("was not written")
                    );
                } else {
                    let location = entry["response"]["location"].as_str().unwrap();
                    let (status, _) = get(&app, &format!("/fhir/{location}")).await;
                    assert_eq!(status, StatusCode::OK, "{location} is named but not there");
                }
            }
            common::assert_valid_r4(&[&response]);
        }
    }
    assert_eq!(created, 1);
    assert_eq!(db.count("contracts").await, 1);
}

/// What a search answers is exactly what it was asked: a parameter the type does not
/// have is ignored and named (never half-applied), or refused under handling=strict;
/// repeated and listed values mean AND and OR as R4 says; token systems count; dates at
/// every precision; links that, followed, give the next page.
async fn searches_answer_exactly_what_was_asked(db: &TestDb) {
    let app = spawn_app(db).await;
    let a = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let b = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let person = "194003129865";
    let total = |bundle: &Value| bundle["total"].as_u64().unwrap();
    let goals = a.revision.contract.agreement.what_matters.len() as u64 * 2;
    // Goal has no `status` (R4 calls it lifecycle-status): ignored and said so, not applied.
    let (status, bundle) = get(&app, &format!("/fhir/Goal?patient={person}&status=active")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total(&bundle), goals, "{bundle}");
    assert!(
        bundle
            .to_string()
            .contains("ignored unknown search parameters: status")
    );
    assert!(
        !bundle["link"][0]["url"]
            .as_str()
            .unwrap()
            .contains("status"),
        "the self link says what was done"
    );
    let strict = app
        .client
        .get(app.url(&format!("/fhir/Goal?patient={person}&status=active")))
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), StatusCode::BAD_REQUEST);
    // R4's name for a Goal's status is lifecycle-status.
    let path = format!("/fhir/Goal?patient={person}&lifecycle-status=active");
    assert_eq!(total_of(&app, &path).await, goals);
    let path = format!("/fhir/Goal?patient={person}&lifecycle-status=completed");
    assert_eq!(total_of(&app, &path).await, 0);
    // An identifier beside the person narrows to that contract.
    let contract = format!("https://pkgw.example/fhir/sid/patientkontrakt|{}", a.id);
    assert_eq!(
        total_of(
            &app,
            &format!(
                "/fhir/CarePlan?patient={person}&identifier={}",
                urlencode(&contract)
            )
        )
        .await,
        1
    );
    assert_eq!(
        total_of(
            &app,
            &format!("/fhir/CarePlan?patient={person}&identifier=not-a-contract")
        )
        .await,
        0
    );
    // `_id=a,b` is either; `patient=A&patient=B` is both (nobody).
    assert_eq!(
        total_of(
            &app,
            &format!("/fhir/CarePlan?patient={person}&_id={},{}", a.id, b.id)
        )
        .await,
        2
    );
    assert_eq!(
        total_of(
            &app,
            &format!("/fhir/CarePlan?patient={person}&patient=195208239813")
        )
        .await,
        0
    );
    // Token systems: the right one matches, another does not.
    for (token, expected) in [
        ("http://hl7.org/fhir/appointmentstatus|booked", 2),
        ("http://example.org/status|booked", 0),
    ] {
        let path = format!(
            "/fhir/Appointment?patient={person}&status={}",
            urlencode(token)
        );
        assert_eq!(total_of(&app, &path).await, expected, "{token}");
    }
    // Dates at every precision (the booked time is 2026-12-10 09.30 Swedish time).
    for (date, expected) in [
        ("2026", 2),
        ("2026-12", 2),
        ("2026-12-10T09:30", 2),
        ("2026-12-10T23:00", 0),
        ("2026-12-10T08:30Z", 2),
    ] {
        let (status, found) = get(
            &app,
            &format!(
                "/fhir/Appointment?patient={person}&status=booked&date={}",
                urlencode(date)
            ),
        )
        .await;
        assert_eq!(
            (status, total(&found)),
            (StatusCode::OK, expected),
            "{date}: {found}"
        );
    }
    // An _include the gateway does not do is named, or refused under strict.
    let (_, included) = get(
        &app,
        &format!("/fhir/CarePlan?patient={person}&_include=CarePlan:author"),
    )
    .await;
    assert!(
        included
            .to_string()
            .contains("ignored unknown search parameters: _include"),
        "{included}"
    );
    assert!(
        !included["link"][0]["url"]
            .as_str()
            .unwrap()
            .contains("_include"),
        "{included}"
    );
    // Paging: the next link, followed as given, is page 2 (the `|` and `+` survive).
    let first = format!(
        "/fhir/Appointment?patient={}&date={}&_count=1",
        urlencode(&format!("{PNR}|{person}")),
        urlencode("ge2026-01-01T00:00:00+01:00")
    );
    let (_, page1) = get(&app, &first).await;
    assert_eq!(page1["entry"].as_array().unwrap().len(), 1);
    let next = page1["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(next.matches("_count=").count(), 1, "{next}");
    let response = app.client.get(&next).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{next}");
    let page2: Value = response.json().await.unwrap();
    assert_eq!(page2["entry"].as_array().unwrap().len(), 1, "{page2}");
    assert_ne!(page1["entry"][0]["fullUrl"], page2["entry"][0]["fullUrl"]);
    // `_count=0`: the total only, and no link to itself as "next".
    let (_, counted) = get(&app, &format!("/fhir/CarePlan?patient={person}&_count=0")).await;
    assert_eq!(total(&counted), 2);
    assert!(counted.get("entry").is_none(), "{counted}");
    assert!(
        counted["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next")
    );
}

/// A read-only Patient per person with a live contract: read, searched by identifier,
/// included from a CarePlan search, and `$everything`, the person's compartment.
async fn a_patient_per_person_with_a_contract(db: &TestDb) {
    let app = spawn_app(db).await;
    let first = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let second = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let other = app
        .store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();
    let person = first.revision.contract.patient.id.to_string();

    let (status, patient) = get(&app, &format!("/fhir/Patient/{person}")).await;
    assert_eq!(status, StatusCode::OK, "{patient}");
    assert_eq!(patient["identifier"][0]["system"], PNR);
    assert_eq!(patient["identifier"][0]["value"], person.as_str());
    assert_eq!(patient["name"][0]["text"], "Gunnar Lindqvist");
    for nobody in ["199001012389", "finns-inte"] {
        let (status, outcome) = get(&app, &format!("/fhir/Patient/{nobody}")).await;
        assert_eq!(
            (status, outcome["resourceType"].as_str()),
            (StatusCode::NOT_FOUND, Some("OperationOutcome"))
        );
    }

    assert_eq!(
        total_of(&app, &format!("/fhir/Patient?identifier={PNR}|{person}")).await,
        1
    );
    assert_eq!(
        total_of(&app, &format!("/fhir/Patient?_id={person}")).await,
        1
    );
    assert_eq!(
        total_of(
            &app,
            &format!("/fhir/Patient?identifier=http://annat.example|{person}")
        )
        .await,
        0
    );
    for refused in ["/fhir/Patient", "/fhir/Patient?name=Gunnar"] {
        let (status, _) = get(&app, refused).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    }

    // Included once from a search of the person's plans.
    let (_, plans) = get(
        &app,
        &format!("/fhir/CarePlan?patient={person}&_include=CarePlan:subject"),
    )
    .await;
    let included: Vec<&Value> = plans["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| &e["resource"])
        .collect();
    assert_eq!(included, [&patient]);

    // $everything: the Patient and every resource of both contracts, nothing of others.
    let (status, everything) = get(&app, &format!("/fhir/Patient/{person}/$everything")).await;
    assert_eq!(status, StatusCode::OK, "{everything}");
    let kinds: Vec<&str> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(
        (
            count("Patient"),
            count("CarePlan"),
            count("CareTeam"),
            count("Provenance")
        ),
        (1, 2, 2, 2)
    );
    let goals = first.revision.contract.agreement.what_matters.len();
    assert_eq!(count("Goal"), 2 * goals);
    assert_eq!(everything["total"].as_u64().unwrap() as usize, kinds.len());
    // Each resource byte for byte as a read of it gives (the contracts' from the read
    // cache), and `_pretty` the same Bundle, indented.
    let raw = text(&app, &format!("/fhir/Patient/{person}/$everything")).await;
    for entry in everything["entry"].as_array().unwrap() {
        let url = entry["fullUrl"].as_str().unwrap();
        let read = text(&app, &url[url.find("/fhir").unwrap()..]).await;
        assert!(raw.contains(&read), "{url} as read: {read}");
    }
    let pretty = text(
        &app,
        &format!("/fhir/Patient/{person}/$everything?_pretty=true"),
    )
    .await;
    assert!(pretty.contains("\n  \"type\": \"searchset\""), "{pretty}");
    let indented: Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(indented, everything);
    let text = everything.to_string();
    assert!(
        !text.contains(other.id.as_str())
            && !text.contains(&other.revision.contract.patient.id.to_string())
    );
    common::assert_valid_r4(&[&patient, &everything, &plans]);

    // Without a live contract, no Patient.
    for record in [&first, &second] {
        app.store
            .delete(
                &record.id,
                record.revision.version,
                Change::from_source("api"),
            )
            .await
            .unwrap();
    }
    let (status, _) = get(&app, &format!("/fhir/Patient/{person}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The README's table of search parameters, as the code serves them.
fn search_parameters_table() -> String {
    let statement = pkgw::api::fhir::capability_statement("http://localhost/fhir");
    let cell = |text: &str| text.replace('|', "\\|");
    let mut out = String::from("| type | parameter | kind | what it finds |\n|---|---|---|---|\n");
    for resource in statement["rest"][0]["resource"].as_array().unwrap() {
        for param in resource["searchParam"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                resource["type"].as_str().unwrap(),
                param["name"].as_str().unwrap(),
                param["type"].as_str().unwrap(),
                cell(param["documentation"].as_str().unwrap_or_default()),
            ));
        }
    }
    let list = |items: Vec<String>| items.join(", ");
    let code = |items: &[&str]| list(items.iter().map(|i| format!("`{i}`")).collect());
    out.push_str(&format!(
        "\nThe person, on every contract resource: {}. Date prefixes: {}. `_include`: {}. `_revinclude`: {}. Shaping the result: `_count`, `_offset`, `_sort` (`-` for descending), `_summary`, `_elements`, `_format`, `_pretty`.\n",
        code(pkgw::api::fhir::PATIENT_SPELLINGS),
        code(pkgw::api::fhir::DATE_PREFIXES),
        code(&pkgw::api::fhir::INCLUDES.iter().map(|(_, v)| *v).collect::<Vec<_>>()),
        code(&pkgw::api::fhir::REVINCLUDES.iter().map(|(_, v)| *v).collect::<Vec<_>>()),
    ));
    out
}

/// The README lists exactly the search parameters, prefixes and includes the server
/// declares (`PKGW_UPDATE_README=1` writes the table anew).
#[test]
fn the_readme_lists_the_search_parameters_served() {
    const START: &str = "<!-- search-parameters: made by tests/fhir_api.rs -->\n";
    const END: &str = "<!-- /search-parameters -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md has no {START:?} … {END:?} section");
    };
    let listed = &readme[start + START.len()..end];
    let served = search_parameters_table();
    if listed != served && std::env::var_os("PKGW_UPDATE_README").is_some() {
        let updated = format!("{}{START}{served}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        listed, served,
        "README.md's search parameters differ from what is served: PKGW_UPDATE_README=1 cargo test the_readme_lists writes them"
    );
}

/// The ids of a searchset's matches, in order.
fn match_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `_sort`, `_summary`, `_elements` and the includes shape what a search returns as R4
/// says: ordered by instants, subsets marked SUBSETTED (and never taken back as a
/// write), what cannot be done named or refused.
async fn searches_sort_subset_and_include(db: &TestDb) {
    let app = spawn_app(db).await;
    let first = app
        .store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    let mut later = fixture("hjartsvikt-primarvard");
    later
        .agreement
        .what_matters
        .push("Att resa till Gotland i sommar".into());
    let second = app
        .store
        .create(later, Change::from_source("api"))
        .await
        .unwrap();
    let person = first.revision.contract.patient.id.to_string();
    let search = |query: &str| format!("/fhir/CarePlan?patient={person}&{query}");

    let (_, newest) = get(&app, &search("_sort=-_lastUpdated")).await;
    assert_eq!(
        match_ids(&newest),
        [second.id.to_string(), first.id.to_string()]
    );
    let (_, oldest) = get(&app, &search("_sort=_lastUpdated")).await;
    assert_eq!(
        match_ids(&oldest),
        [first.id.to_string(), second.id.to_string()]
    );
    assert!(
        oldest["link"][0]["url"]
            .as_str()
            .unwrap()
            .contains("_sort=_lastUpdated")
    );
    let starts = |bundle: &Value| -> Vec<jiff::Timestamp> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["start"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (_, soonest) = get(
        &app,
        &format!("/fhir/Appointment?patient={person}&_sort=date"),
    )
    .await;
    let times = starts(&soonest);
    assert!(
        times.len() >= 4 && times.windows(2).all(|w| w[0] <= w[1]),
        "{times:?}"
    );
    let (_, latest) = get(
        &app,
        &format!("/fhir/Appointment?patient={person}&_sort=-date"),
    )
    .await;
    let times = starts(&latest);
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    // A sort the gateway cannot do: named and not applied, or refused under strict.
    let (_, unsorted) = get(&app, &search("_sort=title")).await;
    assert!(
        unsorted
            .to_string()
            .contains("ignored unknown search parameters: _sort"),
        "{unsorted}"
    );
    assert!(
        !unsorted["link"][0]["url"]
            .as_str()
            .unwrap()
            .contains("_sort")
    );
    let strict = app
        .client
        .get(app.url(&search("_sort=title")))
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), StatusCode::BAD_REQUEST);

    // Subsets: what R4 lists for each, marked SUBSETTED.
    let subsetted = |r: &Value| r["meta"]["tag"].to_string().contains("SUBSETTED");
    let (_, summary) = get(&app, &search("_summary=true")).await;
    let plan = &summary["entry"][0]["resource"];
    assert!(
        subsetted(plan) && plan.get("text").is_none() && plan.get("activity").is_none(),
        "{plan}"
    );
    assert_eq!(
        (plan["status"].as_str(), plan["title"].as_str()),
        (Some("active"), Some("Patientkontrakt"))
    );
    let (_, text) = get(&app, &search("_summary=text")).await;
    let plan = &text["entry"][0]["resource"];
    assert!(
        subsetted(plan) && plan.get("text").is_some() && plan.get("title").is_none(),
        "{plan}"
    );
    let (_, data) = get(&app, &search("_summary=data")).await;
    let plan = &data["entry"][0]["resource"];
    assert!(
        subsetted(plan) && plan.get("text").is_none() && plan.get("activity").is_some(),
        "{plan}"
    );
    let (_, elements) = get(&app, &search("_elements=title")).await;
    let plan = &elements["entry"][0]["resource"];
    let mut keys: Vec<&String> = plan.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "id",
            "intent",
            "meta",
            "resourceType",
            "status",
            "subject",
            "title"
        ]
    );
    let (status, bad) = get(&app, &search("_elements=rubrik")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.to_string().contains("rubrik"), "{bad}");
    // A read takes them too; a subset is never taken back as a write.
    let (_, read) = get(&app, &format!("/fhir/CarePlan/{}?_summary=true", first.id)).await;
    assert!(subsetted(&read) && read.get("activity").is_none(), "{read}");
    let refused = app
        .client
        .put(app.url(&format!("/fhir/CarePlan/{}", first.id)))
        .header("content-type", "application/fhir+json")
        .body(read.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let outcome: Value = refused.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["expression"][0], "CarePlan.meta.tag");
    common::assert_valid_r4(&[&summary, &text, &data, &elements, &read]);

    // Includes: the Goals a plan references, the Appointments that name it.
    let (_, with_goals) = get(&app, &search("_count=1&_include=CarePlan:goal")).await;
    let included: Vec<&str> = with_goals["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    let goals = with_goals["entry"][0]["resource"]["goal"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(included, vec!["Goal"; goals]);
    let (_, with_times) = get(
        &app,
        &search("_count=1&_revinclude=Appointment:supporting-info"),
    )
    .await;
    let times: Vec<&Value> = with_times["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| &e["resource"])
        .collect();
    let plan_id = with_times["entry"][0]["resource"]["id"].as_str().unwrap();
    assert!(!times.is_empty());
    for time in times {
        assert_eq!(time["resourceType"], "Appointment");
        assert_eq!(
            time["supportingInformation"][0]["reference"],
            format!("CarePlan/{plan_id}")
        );
    }
    let (_, cs) = get(&app, "/fhir/metadata").await;
    assert_eq!(
        cs["rest"][0]["resource"][0]["searchInclude"],
        serde_json::json!(["CarePlan:care-team", "CarePlan:goal", "CarePlan:subject"])
    );
}

/// The base with a trailing slash takes a batch, as fhir-kit-client sends it.
async fn the_base_takes_a_trailing_slash(db: &TestDb) {
    let app = spawn_app(db).await;
    let batch = serde_json::json!({ "resourceType": "Bundle", "type": "batch", "entry": [
        { "request": { "method": "GET", "url": "CarePlan?patient=194003129865" } },
    ] });
    let response = app
        .client
        .post(app.url("/fhir/"))
        .header("content-type", "application/fhir+json")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["type"], "batch-response", "{answer}");
}

/// The `total` a search answers.
async fn total_of(app: &TestApp, path: &str) -> u64 {
    let (status, bundle) = get(app, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {bundle}");
    bundle["total"].as_u64().unwrap()
}

/// Percent-encodes a query value.
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A read answers 304 when the client holds the version: `If-None-Match` with the ETag,
/// in a list, or `*`; or, without it, `If-Modified-Since` no earlier than the version.
async fn conditional_reads_follow_rfc_9110(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = two_versions(&app).await;
    let path = app.url(&format!("/fhir/CarePlan/{id}"));
    let first = app.client.get(&path).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(etag, "W/\"2\"");
    let status = |headers: Vec<(&'static str, String)>| {
        let mut request = app.client.get(&path);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status() }
    };
    let earlier = "Mon, 01 Jan 2024 00:00:00 GMT".to_owned();
    for (headers, expected) in [
        (
            vec![("if-none-match", etag.clone())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", format!("W/\"1\", {etag}"))],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", "*".to_owned())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", "W/\"1\"".to_owned())],
            StatusCode::OK,
        ),
        (
            vec![("if-modified-since", modified.clone())],
            StatusCode::NOT_MODIFIED,
        ),
        (vec![("if-modified-since", earlier.clone())], StatusCode::OK),
        // If-None-Match decides when both are sent.
        (
            vec![
                ("if-none-match", "W/\"1\"".to_owned()),
                ("if-modified-since", modified.clone()),
            ],
            StatusCode::OK,
        ),
    ] {
        let shown = format!("{headers:?}");
        assert_eq!(status(headers).await, expected, "{shown}");
    }
}

on_both_backends!(
    conditional_reads_follow_rfc_9110,
    searches_answer_exactly_what_was_asked,
    the_base_takes_a_trailing_slash,
    metadata_describes_what_is_served,
    searches_sort_subset_and_include,
    a_patient_per_person_with_a_contract,
    every_declared_operation_is_defined_and_works,
    read_vread_and_history,
    search_by_person_id_and_identifier,
    unknown_parameters_warn_or_fail,
    coordinated_plan_for_a_portal,
    errors_are_operation_outcomes,
    search_by_dates_category_and_include,
    update_a_care_plan_keeping_what_the_contract_does_not_model,
    concurrent_updates_with_one_if_match_lose_nothing,
    an_ehr_pushes_a_whole_contract_in_one_transaction,
    a_transaction_with_a_failing_entry_leaves_nothing_behind,
    concurrent_conditional_creates_make_one_contract,
);
