//! The write path alone, without HTTP: each rule and each error, on an embedded store.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::auth::{Principal, Scopes};
use crate::domain::{Contract, PersonId, Version};
use crate::fhir::ContractResources;
use crate::fhir::stored::resources_of;
use crate::store::{Change, StoreOptions};

struct Fixture {
    writer: Writer,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn fixture(sync_sources: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::sqlite_in(dir.path()))
        .await
        .unwrap();
    let sources = Arc::new(sync_sources.iter().map(|s| (*s).to_owned()).collect());
    let writer = Writer::new(store.clone(), Arc::new(Profile::default_profile()), sources);
    Fixture {
        writer,
        store,
        _dir: dir,
    }
}

fn contract(name: &str) -> Contract {
    let (_, json) = crate::demo::FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap();
    serde_json::from_str(json).unwrap()
}

/// Two contracts of two persons, stored as version 1.
async fn two(f: &Fixture) -> (Record, Record) {
    let a = f
        .store
        .create(contract("cancer-min-vardplan"), Change::from_source("test"))
        .await
        .unwrap();
    let b = f
        .store
        .create(
            contract("hjartsvikt-primarvard"),
            Change::from_source("test"),
        )
        .await
        .unwrap();
    (a, b)
}

fn resources(f: &Fixture, record: &Record) -> ContractResources {
    resources_of(record, &f.writer.profile)
}

/// What the read cache writes out for a version ([`crate::fhir::stored::written_of`]) is
/// byte for byte what it serves as values, with or without content a sender sent that
/// the contract does not model.
fn assert_written_as_served(f: &Fixture, record: &Record) {
    let written: Vec<Vec<u8>> = crate::fhir::stored::written_of(record, &f.writer.profile)
        .iter()
        .map(crate::fhir::Json::to_vec)
        .collect();
    let served: Vec<Vec<u8>> = resources(f, record)
        .all()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();
    assert_eq!(written, served);
}

fn gateway() -> Caller {
    Caller::gateway("test")
}

fn patient(record: &Record) -> Caller {
    let principal = Principal {
        client: "portal".into(),
        subject: None,
        scopes: Scopes::parse("patient/*.cruds"),
        patient: Some(record.revision.contract.patient.id.clone()),
        units: None,
    };
    Caller::new(Arc::new(principal), "portal")
}

fn update(kind: Kind, resource: Value, if_match: Option<Version>, at: usize) -> Entry {
    Entry {
        action: Action::Update {
            kind,
            id: resource["id"].as_str().unwrap().to_owned(),
            resource,
            if_match,
        },
        full_url: None,
        at: Some(at),
    }
}

fn with_note(mut resource: Value, text: &str) -> Value {
    resource["note"] = json!([{ "text": text }]);
    resource
}

async fn versions(f: &Fixture, record: &Record) -> usize {
    f.store.history(&record.id).await.unwrap().versions.len()
}

/// The report's first transaction: A's CarePlan (with its `If-Match`) and B's CareTeam,
/// each with a note.
fn plan_of_a_and_team_of_b(f: &Fixture, a: &Record, b: &Record) -> Vec<Entry> {
    let plan = with_note(resources(f, a).care_plan, "för A");
    let team = with_note(resources(f, b).care_team, "för B");
    vec![
        update(Kind::CarePlan, plan, Some(a.revision.version), 0),
        update(Kind::CareTeam, team, None, 1),
    ]
}

#[tokio::test]
async fn each_entry_changes_the_contract_its_url_names() {
    let f = fixture(&[]).await;
    let (a, b) = two(&f).await;
    let entries = plan_of_a_and_team_of_b(&f, &a, &b);
    let done = f.writer.apply(&gateway(), entries).await.unwrap();
    assert_eq!(
        (done[0].id.as_str(), done[1].id.as_str()),
        (a.id.as_str(), b.id.as_str())
    );
    let (a2, b2) = (
        f.store.get(&a.id).await.unwrap(),
        f.store.get(&b.id).await.unwrap(),
    );
    assert_eq!(
        a2.revision.contract.care_contacts, a.revision.contract.care_contacts,
        "A's CareTeam is untouched"
    );
    assert_eq!(resources(&f, &a2).care_team["note"], Value::Null);
    assert_eq!(resources(&f, &a2).care_plan["note"][0]["text"], "för A");
    assert_eq!(resources(&f, &b2).care_team["note"][0]["text"], "för B");
    assert_eq!(b2.revision.contract, b.revision.contract);
}

#[tokio::test]
async fn another_persons_contract_is_not_found_and_nothing_is_written() {
    let f = fixture(&[]).await;
    let (a, b) = two(&f).await;
    let entries = plan_of_a_and_team_of_b(&f, &a, &b);
    let error = f.writer.apply(&patient(&a), entries).await.unwrap_err();
    assert!(
        matches!(&error, WriteError::NotFound(m) if m.contains(&format!("CareTeam/{}", b.id))),
        "{error:?}"
    );
    assert_eq!((versions(&f, &a).await, versions(&f, &b).await), (1, 1));
    assert_eq!(f.store.get(&a.id).await.unwrap().revision, a.revision);
}

#[tokio::test]
async fn a_put_of_one_goal_leaves_its_siblings() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let mut goal = resources(&f, &a).goals[0].clone();
    goal["description"]["text"] = json!("Att orka gå till affären");
    let done = f
        .writer
        .apply_one(&gateway(), update(Kind::Goal, goal, None, 0))
        .await
        .unwrap();
    assert_eq!(done.outcome, Outcome::Updated);
    let what = &f
        .store
        .get(&a.id)
        .await
        .unwrap()
        .revision
        .contract
        .agreement
        .what_matters;
    assert_eq!(what.len(), 2);
    assert_eq!(what[0], "Att orka gå till affären");
    assert_eq!(what[1], a.revision.contract.agreement.what_matters[1]);
}

#[tokio::test]
async fn a_write_that_changes_nothing_makes_no_version() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let team = resources(&f, &a).care_team;
    let done = f
        .writer
        .apply_one(
            &gateway(),
            update(Kind::CareTeam, team, Some(a.revision.version), 0),
        )
        .await
        .unwrap();
    assert_eq!(done.outcome, Outcome::Unchanged);
    assert_eq!(done.record.revision.version, a.revision.version);
    assert_eq!(versions(&f, &a).await, 1);
}

#[tokio::test]
async fn each_resource_has_its_own_version() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let before = resources(&f, &a);
    // An EHR edits a Goal: version 2 of the contract, of that Goal and of the CarePlan
    // (whose narrative names what matters), not of the CareTeam or the Appointments.
    let mut goal = before.goals[0].clone();
    goal["description"]["text"] = json!("Att orka gå till affären");
    let done = f
        .writer
        .apply_one(
            &gateway(),
            update(Kind::Goal, goal, Some(a.revision.version), 0),
        )
        .await
        .unwrap();
    assert_eq!(done.version().version.get(), 2);
    let after = resources(&f, &done.record);
    assert!(done.record.revision.foreign_fhir.is_none());
    assert_written_as_served(&f, &done.record);
    let version = |r: &Value| r["meta"]["versionId"].as_str().unwrap().to_owned();
    assert_eq!(version(&after.goals[0]), "2");
    assert_eq!(version(&after.goals[1]), "1");
    assert_eq!(version(&after.care_team), "1");
    assert_eq!(version(&after.appointments[0]), "1");
    assert_eq!(
        after.care_team["meta"]["lastUpdated"],
        before.care_team["meta"]["lastUpdated"]
    );
    // Another EHR's PUT of the CareTeam with the ETag it read before is not stale.
    let mut team = before.care_team.clone();
    team["note"] = json!([{ "text": "Ny kontakt efter årsskiftet" }]);
    let done = f
        .writer
        .apply_one(
            &gateway(),
            update(Kind::CareTeam, team.clone(), Some(a.revision.version), 0),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            done.version().version.get(),
            done.record.revision.version.get()
        ),
        (3, 3)
    );
    assert!(done.record.revision.foreign_fhir.is_some());
    assert_written_as_served(&f, &done.record);
    // Now the CareTeam is at 3: its version 1 is stale.
    team["note"] = json!([{ "text": "Något annat" }]);
    let error = f
        .writer
        .apply_one(
            &gateway(),
            update(Kind::CareTeam, team, Some(a.revision.version), 0),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, WriteError::Stale { named, current, .. } if named.get() == 1 && current.get() == 3),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stale_if_match_is_refused_and_a_sync_sources_is_merged() {
    let f = fixture(&["journal-b"]).await;
    let (a, _) = two(&f).await;
    let mut goal = resources(&f, &a).goals[0].clone();
    goal["description"]["text"] = json!("Att orka gå till affären");
    f.writer
        .apply_one(&gateway(), update(Kind::Goal, goal, None, 0))
        .await
        .unwrap();
    // An edit of version 1 of the CarePlan (changed since: its narrative names what
    // matters), in another part: the coordinated plan.
    let mut plan = resources(&f, &a).care_plan.clone();
    plan["supportingInfo"][0]["display"] = json!("Min vårdplan – bröstcancer, version 2");
    let stale = update(Kind::CarePlan, plan, Some(a.revision.version), 0);
    let error = f
        .writer
        .apply_one(&gateway(), stale.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(error, WriteError::Stale { named, current, .. } if named.get() == 1 && current.get() == 2),
        "{error:?}"
    );
    let done = f
        .writer
        .apply_one(&Caller::gateway("journal-b"), stale)
        .await
        .unwrap();
    assert_eq!(done.record.revision.version.get(), 3);
    let now = &done.record.revision.contract;
    assert_eq!(
        now.agreement.what_matters[0], "Att orka gå till affären",
        "the other edit stays"
    );
    assert_eq!(
        now.linked_plans[0].title, "Min vårdplan – bröstcancer, version 2",
        "the merged edit applied"
    );
}

#[tokio::test]
async fn a_stale_edit_of_the_same_part_conflicts_naming_it() {
    let f = fixture(&["journal-b"]).await;
    let (a, _) = two(&f).await;
    let goal = resources(&f, &a).goals[0].clone();
    let mut ours = goal.clone();
    ours["description"]["text"] = json!("Ett");
    f.writer
        .apply_one(&gateway(), update(Kind::Goal, ours, None, 0))
        .await
        .unwrap();
    let mut theirs = goal;
    theirs["description"]["text"] = json!("Två");
    let entry = update(Kind::Goal, theirs, Some(a.revision.version), 0);
    let error = f
        .writer
        .apply_one(&Caller::gateway("journal-b"), entry)
        .await
        .unwrap_err();
    let WriteError::MergeConflict(issues) = error else {
        panic!("{error:?}");
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        issues[0].diagnostics.contains("Överenskommelse"),
        "{issues:?}"
    );
    assert!(issues[0].expression.is_some(), "{issues:?}");
    assert_eq!(versions(&f, &a).await, 2);
}

#[tokio::test]
async fn a_resource_unlike_its_url_is_refused_naming_the_entry() {
    let f = fixture(&[]).await;
    let (a, b) = two(&f).await;
    let mut team = resources(&f, &a).care_team;
    team["id"] = json!(b.id.as_str());
    let entry = Entry {
        action: Action::Update {
            kind: Kind::CareTeam,
            id: a.id.to_string(),
            resource: team.clone(),
            if_match: None,
        },
        full_url: None,
        at: Some(3),
    };
    let error = f.writer.apply_one(&gateway(), entry).await.unwrap_err();
    assert!(
        matches!(&error, WriteError::BadRequest { field, .. } if field == "Bundle.entry[3].resource.id"),
        "{error:?}"
    );
    let entry = update(Kind::Goal, team, None, 1);
    let error = f.writer.apply_one(&gateway(), entry).await.unwrap_err();
    assert!(
        matches!(&error, WriteError::BadRequest { field, .. } if field == "Bundle.entry[1].resource.resourceType"),
        "{error:?}"
    );
}

#[tokio::test]
async fn one_failing_entry_leaves_every_contract_as_it_was() {
    let f = fixture(&[]).await;
    let (a, b) = two(&f).await;
    let plan = with_note(resources(&f, &a).care_plan, "för A");
    let mut team = resources(&f, &b).care_team;
    team["managingOrganization"] = Value::Null;
    team.as_object_mut().unwrap().remove("managingOrganization");
    let entries = vec![
        update(Kind::CarePlan, plan, None, 0),
        update(Kind::CareTeam, team, None, 1),
    ];
    let error = f.writer.apply(&gateway(), entries).await.unwrap_err();
    assert!(
        matches!(error, WriteError::Rules(..) | WriteError::Invalid(_)),
        "{error:?}"
    );
    assert_eq!((versions(&f, &a).await, versions(&f, &b).await), (1, 1));
}

#[tokio::test]
async fn a_delete_entry_removes_one_agreed_time() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let times = resources(&f, &a).appointments;
    assert_eq!(times.len(), 2);
    let id = times[1]["id"].as_str().unwrap().to_owned();
    let entry = Entry::alone(Action::Delete {
        kind: Kind::Appointment,
        id: id.clone(),
        if_match: None,
    });
    let done = f.writer.apply_one(&gateway(), entry.clone()).await.unwrap();
    assert_eq!(done.outcome, Outcome::Deleted);
    let left = resources(&f, &done.record).appointments;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], times[0]["id"]);
    let again = f.writer.apply_one(&gateway(), entry).await.unwrap_err();
    assert!(matches!(again, WriteError::NotFound(_)), "{again:?}");
}

#[tokio::test]
async fn urn_references_resolve_and_new_resources_join_their_plan() {
    let f = fixture(&[]).await;
    let source = contract("psykiatri-sip");
    let temporary = ContractId::parse("tillfalligt").unwrap();
    let mut r = crate::fhir::to_fhir(&temporary, &source, &f.writer.profile);
    // Without a business identifier, the gateway names the new contract.
    r.care_plan.as_object_mut().unwrap().remove("identifier");
    let mut entries = vec![Entry {
        action: Action::Create {
            kind: Kind::CarePlan,
            resource: r.care_plan.clone(),
            if_none_exist: None,
        },
        full_url: Some("urn:uuid:plan".into()),
        at: Some(0),
    }];
    let mut team = r.care_team.clone();
    team.as_object_mut().unwrap().remove("id");
    entries.push(Entry {
        action: Action::Create {
            kind: Kind::CareTeam,
            resource: team,
            if_none_exist: None,
        },
        full_url: Some("urn:uuid:team".into()),
        at: Some(1),
    });
    entries[0].action = match entries[0].action.clone() {
        Action::Create {
            kind,
            mut resource,
            if_none_exist,
        } => {
            resource["careTeam"] = json!([{ "reference": "urn:uuid:team" }]);
            Action::Create {
                kind,
                resource,
                if_none_exist,
            }
        }
        other => other,
    };
    for (n, goal) in r.goals.iter().enumerate() {
        entries.push(Entry {
            action: Action::Create {
                kind: Kind::Goal,
                resource: goal.clone(),
                if_none_exist: None,
            },
            full_url: Some(format!("urn:uuid:goal-{n}")),
            at: Some(2 + n),
        });
    }
    for (n, time) in r.appointments.iter().enumerate() {
        let mut time = time.clone();
        time["supportingInformation"] = json!([{ "reference": "urn:uuid:plan" }]);
        entries.push(Entry {
            action: Action::Create {
                kind: Kind::Appointment,
                resource: time,
                if_none_exist: None,
            },
            full_url: Some(format!("urn:uuid:time-{n}")),
            at: Some(10 + n),
        });
    }
    let done = f.writer.apply(&gateway(), entries).await.unwrap();
    let id = done[0].record.id.clone();
    assert_ne!(id, temporary);
    assert!(
        done.iter()
            .all(|d| d.outcome == Outcome::Created && d.record.id == id)
    );
    assert_eq!(
        done[1].id,
        id.to_string(),
        "the CareTeam has the contract's id"
    );
    assert_eq!(f.store.get(&id).await.unwrap().revision.contract, source);
}

#[tokio::test]
async fn a_new_resource_no_plan_references_is_refused() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let goal = resources(&f, &a).goals[0].clone();
    let entry = Entry {
        action: Action::Create {
            kind: Kind::Goal,
            resource: goal,
            if_none_exist: None,
        },
        full_url: Some("urn:uuid:x".into()),
        at: Some(0),
    };
    let error = f.writer.apply_one(&gateway(), entry).await.unwrap_err();
    assert!(
        matches!(&error, WriteError::BadRequest { field, .. } if field == "Bundle.entry[0].fullUrl"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_conditional_create_that_finds_its_contract_does_nothing() {
    let f = fixture(&[]).await;
    let plan = crate::fhir::to_fhir(
        &ContractId::parse("x").unwrap(),
        &contract("ung-diabetes"),
        &f.writer.profile,
    );
    let entry = || Entry {
        action: Action::Create {
            kind: Kind::CarePlan,
            resource: plan.care_plan.clone(),
            if_none_exist: Some(
                "identifier=https://pkgw.example/fhir/sid/patientkontrakt|alva-1".into(),
            ),
        },
        full_url: None,
        at: None,
    };
    let caller = gateway();
    // The CarePlan alone has no CareTeam, so no responsible unit (nor the author and care
    // contributor that come from it) and no Goals: a draft without them.
    let mut draft = entry();
    if let Action::Create { resource, .. } = &mut draft.action {
        resource["status"] = json!("draft");
        resource["identifier"][0]["value"] = json!("alva-1");
        resource["contributor"].as_array_mut().unwrap().truncate(1);
        for element in ["goal", "author"] {
            resource.as_object_mut().unwrap().remove(element);
        }
    }
    let first = f.writer.apply_one(&caller, draft.clone()).await.unwrap();
    assert_eq!(
        (first.outcome.clone(), first.id.as_str()),
        (Outcome::Created, "alva-1")
    );
    let second = f.writer.apply_one(&caller, draft).await.unwrap();
    assert_eq!(second.outcome, Outcome::Existing);
    assert_eq!(versions(&f, &first.record).await, 1);
}

#[tokio::test]
async fn writes_to_a_deleted_contract_are_gone_and_deletes_are_idempotent() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let delete = Entry::alone(Action::Delete {
        kind: Kind::CarePlan,
        id: a.id.to_string(),
        if_match: Some(a.revision.version),
    });
    let done = f.writer.apply_one(&gateway(), delete).await.unwrap();
    assert_eq!(done.outcome, Outcome::Deleted);
    assert!(done.record.revision.deleted);
    let again = Entry::alone(Action::Delete {
        kind: Kind::CarePlan,
        id: a.id.to_string(),
        if_match: None,
    });
    let done = f.writer.apply_one(&gateway(), again).await.unwrap();
    assert_eq!(done.outcome, Outcome::AlreadyDeleted);
    let team = resources(&f, &a).care_team;
    let error = f
        .writer
        .apply_one(&gateway(), update(Kind::CareTeam, team, None, 0))
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Gone(_)), "{error:?}");
}

#[tokio::test]
async fn a_broken_rule_is_refused_with_the_contract_it_would_make() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let mut plan = resources(&f, &a).care_plan;
    // Active without a next step: drop every activity.
    plan.as_object_mut().unwrap().remove("activity");
    let error = f
        .writer
        .apply_one(&gateway(), update(Kind::CarePlan, plan, None, 0))
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Rules(..)), "{error:?}");
    assert_eq!(versions(&f, &a).await, 1);
}

#[tokio::test]
async fn the_native_save_checks_its_precondition_and_the_callers_person() {
    let f = fixture(&[]).await;
    let (a, b) = two(&f).await;
    let mut changed = a.revision.contract.clone();
    changed.agreement.what_matters.push("Att kunna resa".into());
    let stale = Version::parse("W/\"7\"").unwrap();
    let error = f
        .writer
        .save(&gateway(), &a.id, Some(stale), changed.clone())
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Stale { .. }), "{error:?}");
    let error = f
        .writer
        .save(
            &patient(&b),
            &a.id,
            Some(a.revision.version),
            changed.clone(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::NotFound(_)), "{error:?}");
    let (record, outcome) = f
        .writer
        .save(
            &patient(&a),
            &a.id,
            Some(a.revision.version),
            changed.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        (outcome, record.revision.version.get()),
        (Outcome::Updated, 2)
    );
    let (_, outcome) = f
        .writer
        .save(&patient(&a), &a.id, Some(record.revision.version), changed)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Unchanged);
    let _: PersonId = b.revision.contract.patient.id;
}

#[tokio::test]
async fn what_the_contract_cannot_keep_is_refused_and_the_rest_kept_exactly() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let plan = resources(&f, &a).care_plan;
    // Kept: an EHR's own identifier, the profile it claims, its own tag.
    let mut theirs = plan.clone();
    theirs["identifier"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "system": "urn:oid:1.2.752.29.4.3", "value": "cosmic-4711" }));
    theirs["meta"]["profile"] = json!(["http://example.org/fhir/StructureDefinition/vardplan"]);
    theirs["meta"]["tag"] = json!([{ "system": "http://example.org/tags", "code": "granskad" }]);
    let done = f
        .writer
        .apply_one(&gateway(), update(Kind::CarePlan, theirs, None, 0))
        .await
        .unwrap();
    let served = resources(&f, &done.record).care_plan;
    assert!(
        served["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["value"] == "cosmic-4711")
    );
    assert_eq!(
        served["meta"]["profile"][0],
        "http://example.org/fhir/StructureDefinition/vardplan"
    );
    let tags: Vec<&str> = served["meta"]["tag"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["code"].as_str())
        .collect();
    assert_eq!(tags, ["test", "granskad"]);
    // Refused: a code the contract would replace, an element inside a mapped one.
    let mut order = served.clone();
    order["intent"] = json!("order");
    let error = f
        .writer
        .apply_one(&gateway(), update(Kind::CarePlan, order, None, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, WriteError::Invalid(i) if i[0].expression.as_deref() == Some("CarePlan.intent")),
        "{error:?}"
    );
    let mut team = resources(&f, &done.record).care_team;
    team["participant"][0]["onBehalfOf"] = json!({ "display": "Någon annan" });
    team["name"] = json!("Mitt team");
    let error = f
        .writer
        .apply_one(&gateway(), update(Kind::CareTeam, team, None, 0))
        .await
        .unwrap_err();
    let WriteError::Invalid(issues) = error else {
        panic!("{error:?}");
    };
    let named: Vec<&str> = issues
        .iter()
        .filter_map(|i| i.expression.as_deref())
        .collect();
    assert_eq!(
        named,
        ["CareTeam.participant[0].onBehalfOf", "CareTeam.name"]
    );
    assert_eq!(versions(&f, &a).await, 2);
}

#[tokio::test]
async fn a_condition_and_an_identifier_that_disagree_are_refused() {
    let f = fixture(&[]).await;
    let plan = crate::fhir::to_fhir(
        &ContractId::parse("x").unwrap(),
        &contract("ung-diabetes"),
        &f.writer.profile,
    );
    let entry = Entry::alone(Action::Create {
        kind: Kind::CarePlan,
        resource: plan.care_plan,
        if_none_exist: Some(
            "identifier=https://pkgw.example/fhir/sid/patientkontrakt|alva-1".into(),
        ),
    });
    let error = f.writer.apply_one(&gateway(), entry).await.unwrap_err();
    assert!(
        matches!(&error, WriteError::BadRequest { field, .. } if field == "CarePlan.identifier"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_caller_limited_to_other_units_is_forbidden() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let principal = Principal {
        client: "ehr".into(),
        subject: None,
        scopes: Scopes::parse("system/*.cruds"),
        patient: None,
        units: Some(vec![
            crate::domain::HsaId::parse("SE2321000016-1A2B").unwrap(),
        ]),
    };
    let caller = Caller::new(Arc::new(principal), "ehr");
    let team = with_note(resources(&f, &a).care_team, "x");
    let error = f
        .writer
        .apply_one(&caller, update(Kind::CareTeam, team, None, 0))
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Forbidden(_)), "{error:?}");
    assert_eq!(versions(&f, &a).await, 1);
}

#[tokio::test]
async fn a_taken_id_is_a_conflict_and_a_goal_cannot_be_deleted_alone() {
    let f = fixture(&[]).await;
    let (a, _) = two(&f).await;
    let mut plan = resources(&f, &a).care_plan;
    plan.as_object_mut().unwrap().remove("meta");
    let entry = Entry::alone(Action::Create {
        kind: Kind::CarePlan,
        resource: plan,
        if_none_exist: None,
    });
    let error = f.writer.apply_one(&gateway(), entry).await.unwrap_err();
    assert!(
        matches!(&error, WriteError::Conflict(m) if m.contains("already exists")),
        "{error:?}"
    );
    let entry = Entry::alone(Action::Delete {
        kind: Kind::Goal,
        id: format!("{}-mal-1", a.id),
        if_match: None,
    });
    let error = f.writer.apply_one(&gateway(), entry).await.unwrap_err();
    assert!(matches!(error, WriteError::NotSupported(_)), "{error:?}");
    assert_eq!(versions(&f, &a).await, 1);
}
