//! Transactions as R4 defines them (http.html#transaction), over real sockets and on
//! the write path itself, on SQLite and PostgreSQL: each entry acts on exactly the
//! resource its url names; several contracts are written together or not at all; a
//! resource's siblings stay; DELETE and GET entries; `urn:uuid:` references; `Prefer`;
//! and a property test of random transactions over several contracts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::app::{TestApp, spawn_app};
use common::fhir::{Reply, fhir_get, send};
use common::{TestDb, fixture};
use pkgw::domain::ContractId;
use pkgw::fhir::{ContractResources, Kind, Profile};
use pkgw::store::{Change, Record, Store};
use pkgw::write::{Action, Caller, Entry, Writer};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Two contracts of two persons, as version 1.
async fn two(store: &Store) -> (Record, Record) {
    let a = store
        .create(fixture("cancer-min-vardplan"), Change::from_source("test"))
        .await
        .unwrap();
    let b = store
        .create(
            fixture("hjartsvikt-primarvard"),
            Change::from_source("test"),
        )
        .await
        .unwrap();
    (a, b)
}

async fn read(app: &TestApp, kind: &str, id: &str) -> Value {
    let reply = fhir_get(app, &format!("/fhir/{kind}/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn post(app: &TestApp, bundle: &Value, headers: &[(&str, &str)]) -> Reply {
    send(app, Method::POST, "/fhir", headers, Some(bundle)).await
}

fn put(resource: &Value, if_match: Option<&str>) -> Value {
    let url = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let mut request = json!({ "method": "PUT", "url": url });
    if let Some(tag) = if_match {
        request["ifMatch"] = json!(tag);
    }
    json!({ "resource": resource, "request": request })
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
}

fn noted(mut resource: Value, text: &str) -> Value {
    resource["note"] = json!([{ "text": text }]);
    resource
}

async fn versions(store: &Store, record: &Record) -> usize {
    store.history(&record.id).await.unwrap().versions.len()
}

/// The report's first bug: a CareTeam of B's contract beside A's CarePlan went into A's
/// contract. Each now goes to the contract its url names, and both are written at once.
async fn entries_for_two_contracts_each_change_their_own(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, b) = two(&app.store).await;
    let plan = read(&app, "CarePlan", a.id.as_str()).await;
    let team = read(&app, "CareTeam", b.id.as_str()).await;
    let bundle = transaction(vec![
        put(&noted(plan, "för A"), Some("W/\"1\"")),
        put(&noted(team, "för B"), None),
    ]);
    let reply = post(&app, &bundle, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let entries = reply.body["entry"].as_array().unwrap();
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    assert_eq!(
        entries[0]["response"]["location"],
        format!("CarePlan/{}/_history/2", a.id)
    );
    assert_eq!(
        entries[1]["response"]["location"],
        format!("CareTeam/{}/_history/2", b.id)
    );
    for entry in entries {
        assert_eq!(entry["response"]["etag"], "W/\"2\"");
        assert!(entry["response"]["lastModified"].is_string(), "{entry}");
    }
    let a_team = read(&app, "CareTeam", a.id.as_str()).await;
    assert_eq!(
        a_team["participant"].as_array().unwrap().len(),
        a.revision.contract.care_contacts.len(),
        "A's fast vårdkontakt and läkarkontakt stay"
    );
    assert_eq!(a_team["note"], Value::Null);
    assert_eq!(
        read(&app, "CareTeam", b.id.as_str()).await["note"][0]["text"],
        "för B"
    );
    assert_eq!(
        read(&app, "CarePlan", a.id.as_str()).await["note"][0]["text"],
        "för A"
    );
}

/// One entry that cannot be done takes every other contract's change with it.
async fn a_failing_entry_leaves_every_contract_as_it_was(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, b) = two(&app.store).await;
    let plan = read(&app, "CarePlan", a.id.as_str()).await;
    let mut team = read(&app, "CareTeam", b.id.as_str()).await;
    team.as_object_mut().unwrap().remove("managingOrganization");
    let bundle = transaction(vec![put(&noted(plan, "för A"), None), put(&team, None)]);
    let reply = post(&app, &bundle, &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body["issue"][0]["expression"][0],
        "CareTeam.managingOrganization"
    );
    assert_eq!(
        (
            versions(&app.store, &a).await,
            versions(&app.store, &b).await
        ),
        (1, 1)
    );
    assert_eq!(db.count("outbox").await, 2, "only the two creates");
}

/// A resource whose type or id disagrees with its url is refused, naming the entry.
async fn a_resource_unlike_its_url_is_refused(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, b) = two(&app.store).await;
    let team = read(&app, "CareTeam", a.id.as_str()).await;
    let mut moved = put(&team, None);
    moved["request"]["url"] = json!(format!("CareTeam/{}", b.id));
    let reply = post(&app, &transaction(vec![moved]), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(
        reply.body["issue"][0]["expression"][0],
        "Bundle.entry[0].resource.id"
    );
    let mut wrong_type = put(&team, None);
    wrong_type["request"]["url"] = json!(format!("CarePlan/{}", a.id));
    let reply = post(&app, &transaction(vec![wrong_type]), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(
        reply.body["issue"][0]["expression"][0],
        "Bundle.entry[0].resource.resourceType"
    );
    let twice = transaction(vec![put(&team, None), put(&noted(team.clone(), "x"), None)]);
    let reply = post(&app, &twice, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(
        reply.body["issue"][0]["expression"][0],
        "Bundle.entry[1].request.url"
    );
    assert_eq!(
        (
            versions(&app.store, &a).await,
            versions(&app.store, &b).await
        ),
        (1, 1)
    );
}

/// The report's second bug: a PUT of one Goal removed its sibling.
async fn a_put_of_one_goal_leaves_its_siblings(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, _) = two(&app.store).await;
    let mut goal = read(&app, "Goal", &format!("{}-mal-1", a.id)).await;
    goal["description"]["text"] = json!("Att orka gå till affären");
    let reply = post(&app, &transaction(vec![put(&goal, None)]), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let sibling = read(&app, "Goal", &format!("{}-mal-2", a.id)).await;
    assert_eq!(
        sibling["description"]["text"],
        a.revision.contract.agreement.what_matters[1].as_str()
    );
    assert_eq!(
        read(&app, "Goal", &format!("{}-mal-1", a.id)).await["description"]["text"],
        "Att orka gå till affären"
    );
}

/// A DELETE entry removes the agreed time it names and no other; GET entries are
/// answered after the writes, as in a batch, and a failing GET fails only itself.
async fn delete_and_get_entries(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, _) = two(&app.store).await;
    let times = fhir_get(
        &app,
        &format!(
            "/fhir/Appointment?patient={}",
            a.revision.contract.patient.id
        ),
    )
    .await
    .body;
    let ids: Vec<String> = times["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    let bundle = transaction(vec![
        json!({ "request": { "method": "GET", "url": format!("CarePlan/{}", a.id) } }),
        json!({ "request": { "method": "DELETE", "url": format!("Appointment/{}", ids[0]) } }),
        json!({ "request": { "method": "GET", "url": "CarePlan/finns-inte" } }),
    ]);
    let reply = post(&app, &bundle, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let entries = reply.body["entry"].as_array().unwrap();
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    assert_eq!(
        entries[0]["response"]["etag"], "W/\"2\"",
        "the read sees the transaction's write"
    );
    assert_eq!(entries[1]["response"]["status"], "204 No Content");
    assert_eq!(entries[1]["response"]["etag"], "W/\"2\"");
    assert_eq!(entries[2]["response"]["status"], "404 Not Found");
    assert_eq!(
        entries[2]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    let gone = fhir_get(&app, &format!("/fhir/Appointment/{}", ids[0])).await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
    read(&app, "Appointment", &ids[1]).await;
}

/// A new contract and an agreed time that references it by its `urn:uuid:` fullUrl.
async fn urn_references_resolve(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, _) = two(&app.store).await;
    let profile = Profile::default_profile();
    let id = ContractId::parse("tillfalligt").unwrap();
    let draft = fixture("eget-initiativ");
    let mut resources = pkgw::fhir::to_fhir(&id, &draft, &profile);
    resources
        .care_plan
        .as_object_mut()
        .unwrap()
        .remove("identifier");
    let mut time = resources.appointments[0].clone();
    time.as_object_mut().unwrap().remove("id");
    time["supportingInformation"] = json!([{ "reference": "urn:uuid:0f7a" }]);
    let bundle = transaction(vec![
        json!({ "fullUrl": "urn:uuid:0f7a", "resource": resources.care_plan, "request": { "method": "POST", "url": "CarePlan" } }),
        json!({ "fullUrl": "urn:uuid:71e2", "resource": time, "request": { "method": "POST", "url": "Appointment" } }),
    ]);
    let reply = post(&app, &bundle, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let entries = reply.body["entry"].as_array().unwrap();
    let plan = entries[0]["resource"]["id"].as_str().unwrap();
    assert_ne!(plan, "tillfalligt");
    assert_eq!(entries[1]["response"]["status"], "201 Created");
    assert_eq!(
        entries[1]["resource"]["supportingInformation"][0]["reference"],
        format!("CarePlan/{plan}"),
        "the urn:uuid: reference resolved"
    );
    let stored = app
        .store
        .get(&ContractId::parse(plan).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.revision.contract.agreed_times.len(), 1);
    assert_eq!(versions(&app.store, &a).await, 1, "A is untouched");
}

/// `Prefer: return=` is honoured for every entry.
async fn prefer_is_honoured_per_entry(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, b) = two(&app.store).await;
    let plan = read(&app, "CarePlan", a.id.as_str()).await;
    let team = read(&app, "CareTeam", b.id.as_str()).await;
    let bundle = transaction(vec![
        put(&noted(plan.clone(), "1"), None),
        put(&noted(team.clone(), "1"), None),
    ]);
    let minimal = post(&app, &bundle, &[("prefer", "return=minimal")]).await;
    assert_eq!(minimal.status, StatusCode::OK, "{}", minimal.body);
    for entry in minimal.body["entry"].as_array().unwrap() {
        assert_eq!(entry["resource"], Value::Null, "{entry}");
        assert_eq!(entry["response"]["status"], "200 OK");
    }
    let bundle = transaction(vec![
        put(&noted(plan.clone(), "2"), None),
        put(&noted(team, "2"), None),
    ]);
    let outcome = post(&app, &bundle, &[("prefer", "return=OperationOutcome")]).await;
    for entry in outcome.body["entry"].as_array().unwrap() {
        assert_eq!(entry["resource"], Value::Null, "{entry}");
        assert_eq!(
            entry["response"]["outcome"]["resourceType"],
            "OperationOutcome"
        );
    }
    let bundle = transaction(vec![put(&noted(plan, "3"), None)]);
    let full = post(&app, &bundle, &[("prefer", "return=representation")]).await;
    assert_eq!(full.body["entry"][0]["resource"]["note"][0]["text"], "3");
}

/// A transaction that changes nothing makes no version and sends nothing.
async fn an_unchanged_transaction_makes_no_version(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, _) = two(&app.store).await;
    let plan = read(&app, "CarePlan", a.id.as_str()).await;
    let team = read(&app, "CareTeam", a.id.as_str()).await;
    let bundle = transaction(vec![put(&plan, Some("W/\"1\"")), put(&team, None)]);
    let reply = post(&app, &bundle, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["entry"][0]["response"]["etag"], "W/\"1\"");
    assert_eq!(versions(&app.store, &a).await, 1);
    assert_eq!(db.count("outbox").await, 2, "only the two creates");
}

/// One request is bounded: a Bundle of more entries than configured (100 by default) is
/// refused whole, with 413.
async fn too_many_entries_are_refused(db: &TestDb) {
    let app = spawn_app(db).await;
    let (a, _) = two(&app.store).await;
    let read = json!({ "request": { "method": "GET", "url": format!("CarePlan/{}", a.id) } });
    for kind in ["transaction", "batch"] {
        let mut bundle = transaction(vec![read.clone(); 101]);
        bundle["type"] = json!(kind);
        let reply = post(&app, &bundle, &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            reply.body
        );
        assert_eq!(reply.body["issue"][0]["expression"][0], "Bundle.entry");
        assert_eq!(reply.body["issue"][0]["code"], "too-costly");
        bundle["entry"].as_array_mut().unwrap().truncate(100);
        let reply = post(&app, &bundle, &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

// --- The property: random transactions over several contracts -------------------------

/// What an entry of a random transaction does.
#[derive(Debug, Clone, Copy)]
enum Target {
    PlanNote,
    TeamNote,
    Goal(usize),
    Time(usize),
    DeleteTime(usize),
}

/// A random transaction: (contract, target, whether the entry is broken).
fn cases() -> impl Strategy<Value = Vec<(usize, Target, bool)>> {
    let target = proptest::prop_oneof![
        proptest::strategy::Just(Target::PlanNote),
        proptest::strategy::Just(Target::TeamNote),
        (0..2usize).prop_map(Target::Goal),
        (0..2usize).prop_map(Target::Time),
        (0..2usize).prop_map(Target::DeleteTime),
    ];
    let broken = proptest::bool::weighted(0.1);
    proptest::collection::vec((0..3usize, target, broken), 1..6)
}

/// A resource without what every write changes (`meta`) or what is generated from the
/// whole contract (the narrative, `text`).
fn content(resource: &Value) -> Value {
    let mut r = resource.clone();
    if let Some(map) = r.as_object_mut() {
        map.remove("meta");
        map.remove("text");
    }
    r
}

fn by_name(resources: &ContractResources) -> Vec<(String, Value)> {
    resources
        .all()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                ),
                content(r),
            )
        })
        .collect()
}

async fn random_transactions_change_only_what_they_name_all_or_nothing(db: &TestDb) {
    let store = db.store().await;
    let profile = Arc::new(Profile::default_profile());
    let writer = Writer::new(store.clone(), profile.clone(), Arc::default());
    let mut runner = TestRunner::deterministic();
    for case in 0..24 {
        let wanted = cases().new_tree(&mut runner).unwrap().current();
        let mut records = Vec::new();
        for name in [
            "cancer-min-vardplan",
            "hjartsvikt-primarvard",
            "psykiatri-sip",
        ] {
            records.push(
                store
                    .create(fixture(name), Change::from_source("test"))
                    .await
                    .unwrap(),
            );
        }
        let before: Vec<ContractResources> = records
            .iter()
            .map(|r| pkgw::fhir::stored::resources_of(r, &profile))
            .collect();
        let mut entries = Vec::new();
        let mut named: Vec<(usize, String, Option<Value>)> = Vec::new();
        for (at, (c, target, broken)) in wanted.iter().enumerate() {
            let r = &before[*c];
            let (kind, mut resource, delete) = match target {
                Target::PlanNote => (
                    Kind::CarePlan,
                    noted(r.care_plan.clone(), &format!("{case}-{at}")),
                    false,
                ),
                Target::TeamNote => (
                    Kind::CareTeam,
                    noted(r.care_team.clone(), &format!("{case}-{at}")),
                    false,
                ),
                Target::Goal(g) => {
                    let mut goal = r.goals[g % r.goals.len()].clone();
                    goal["description"]["text"] = json!(format!("Mål {case}-{at}"));
                    (Kind::Goal, goal, false)
                }
                Target::Time(t) => {
                    let mut time = r.appointments[t % r.appointments.len()].clone();
                    time["description"] = json!(format!("Tid {case}-{at}"));
                    (Kind::Appointment, time, false)
                }
                Target::DeleteTime(t) => (
                    Kind::Appointment,
                    r.appointments[t % r.appointments.len()].clone(),
                    true,
                ),
            };
            let name = format!("{}/{}", kind.name(), resource["id"].as_str().unwrap());
            if named.iter().any(|(_, n, _)| *n == name) {
                continue; // a resource may appear in a transaction once
            }
            let mut id = resource["id"].as_str().unwrap().to_owned();
            if *broken {
                // Broken: a status R4 does not have, or an agreed time that is not there.
                if delete {
                    id = format!("{}-0000000000000000", records[*c].id);
                } else {
                    resource["status"] = json!("inte-en-status");
                }
            }
            let action = if delete {
                Action::Delete {
                    kind,
                    id,
                    if_match: None,
                }
            } else {
                Action::Update {
                    kind,
                    id,
                    resource: resource.clone(),
                    if_match: None,
                }
            };
            named.push((*c, name, (!delete).then(|| content(&resource))));
            entries.push(Entry {
                action,
                full_url: None,
                at: Some(at),
            });
        }
        let any_broken = wanted.iter().any(|(_, _, b)| *b) && {
            // Only entries that were kept count.
            entries.iter().any(|e| match &e.action {
                Action::Update { resource, .. } => resource["status"] == "inte-en-status",
                Action::Delete { id, .. } => id.ends_with("-0000000000000000"),
                Action::Create { .. } | Action::Upsert { .. } => false,
            })
        };
        let result = writer.apply(&Caller::gateway("test"), entries).await;
        let summary = result.as_ref().map(Vec::len).map_err(ToString::to_string);
        assert_eq!(
            result.is_err(),
            any_broken,
            "case {case}: {wanted:?}: {summary:?}"
        );
        for (c, record) in records.iter().enumerate() {
            let now = store.get(&record.id).await.unwrap();
            let touched = !any_broken && named.iter().any(|(n, _, _)| *n == c);
            assert_eq!(
                now.revision.version.get(),
                if touched { 2 } else { 1 },
                "case {case}: {wanted:?}: contract {c}, all or nothing"
            );
            let after = by_name(&pkgw::fhir::stored::resources_of(&now, &profile));
            for (name, old) in by_name(&before[c]) {
                let new = after.iter().find(|(n, _)| *n == name).map(|(_, r)| r);
                let sent = named
                    .iter()
                    .find(|(n, named, _)| *n == c && *named == name && touched);
                match sent {
                    None => assert_eq!(
                        new,
                        Some(&old),
                        "case {case}: {wanted:?}: {name} must not change"
                    ),
                    Some((_, _, None)) => assert_eq!(new, None, "case {case}: {name} was deleted"),
                    Some((_, _, Some(sent))) => {
                        let new = new.unwrap();
                        for key in ["note", "description"] {
                            if sent.get(key).is_some() {
                                assert_eq!(
                                    new[key], sent[key],
                                    "case {case}: {name}.{key} as sent"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

on_both_backends!(
    entries_for_two_contracts_each_change_their_own,
    a_failing_entry_leaves_every_contract_as_it_was,
    a_resource_unlike_its_url_is_refused,
    a_put_of_one_goal_leaves_its_siblings,
    delete_and_get_entries,
    urn_references_resolve,
    prefer_is_honoured_per_entry,
    an_unchanged_transaction_makes_no_version,
    too_many_entries_are_refused,
    random_transactions_change_only_what_they_name_all_or_nothing,
);
