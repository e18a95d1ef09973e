//! The store's promises, on SQLite and on PostgreSQL alike: versions, optimistic
//! concurrency, invariants enforced with nothing half-written, the outbox written in the
//! same transaction as each change, and export/import.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestDb, fixture};
use futures_util::TryStreamExt;
use pkgw::domain::{ContractId, PersonId, Status, Version, Violation};
use pkgw::store::{AccessRecord, AuditQuery, Change, History, Store, StoreError};

fn api() -> Change {
    Change {
        source: "api".into(),
        author: Some("test-client".into()),
        reason: None,
        transfer: None,
        merged_from: None,
    }
}

/// What a store holds, to compare before and after a refused write.
async fn snapshot(db: &TestDb) -> (i64, i64, i64, i64) {
    (
        db.count("contracts").await,
        db.count("contract_versions").await,
        db.count("outbox").await,
        db.count("audit").await,
    )
}

async fn a_stored_contract(store: &Store) -> ContractId {
    store
        .create(fixture("hjartsvikt-primarvard"), api())
        .await
        .expect("create")
        .id
}

async fn stored_contracts(store: &Store, n: usize) -> Vec<ContractId> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(a_stored_contract(store).await);
    }
    ids
}

async fn create_reads_back_as_version_one(db: &TestDb) {
    let store = db.store().await;
    let contract = fixture("cancer-min-vardplan");
    let created = store.create(contract.clone(), api()).await.unwrap();
    assert_eq!(created.revision.version, Version::FIRST);
    let read = store.get(&created.id).await.unwrap();
    assert_eq!(read, created);
    assert_eq!(read.revision.contract, contract);
    let outbox = store.outbox_after(0, 10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        (
            outbox[0].contract_id.clone(),
            outbox[0].version,
            outbox[0].origin.as_str()
        ),
        (created.id.clone(), Version::FIRST, "api")
    );
    let audit = store.audit_for(&created.id).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str()),
        ("create", "test-client")
    );
}

async fn updates_make_new_versions_and_keep_the_old(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    let mut changed = store.get(&id).await.unwrap().revision.contract;
    changed.next_step.as_mut().unwrap().description =
        "Ring Anna och berätta hur vikten har varit".into();
    let v2 = store
        .update(&id, Version::FIRST, changed.clone(), api())
        .await
        .unwrap();
    assert_eq!(v2.revision.version.get(), 2);
    assert_eq!(store.get(&id).await.unwrap().revision.contract, changed);
    assert_eq!(
        store
            .get_version(&id, Version::FIRST)
            .await
            .unwrap()
            .revision
            .contract,
        fixture("hjartsvikt-primarvard")
    );
    let history = store.history(&id).await.unwrap();
    let versions: Vec<u64> = history.versions.iter().map(|r| r.version.get()).collect();
    assert_eq!(versions, [1, 2]);
    assert!(matches!(
        store.get_version(&id, Version::FIRST.next().next()).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_stale_update_fails_and_changes_nothing(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    let contract = store.get(&id).await.unwrap().revision.contract;
    store
        .update(&id, Version::FIRST, contract.clone(), api())
        .await
        .unwrap();
    let before = snapshot(db).await;
    let mut stale = contract.clone();
    stale
        .agreement
        .what_matters
        .push("Att hinna läsa klart boken".into());
    let err = store
        .update(&id, Version::FIRST, stale, api())
        .await
        .unwrap_err();
    match err {
        StoreError::VersionConflict {
            expected, current, ..
        } => assert_eq!((expected.get(), current.get()), (1, 2)),
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(snapshot(db).await, before);
    assert_eq!(store.get(&id).await.unwrap().revision.contract, contract);
}

/// The head (version, person, when, deleted) follows every write, without the contract.
async fn the_head_is_the_current_version(db: &TestDb) {
    let store = db.store().await;
    let unknown = ContractId::parse("no-such-contract").unwrap();
    assert_eq!(store.head(&unknown).await.unwrap(), None);
    let id = a_stored_contract(&store).await;
    let first = store.get(&id).await.unwrap();
    let head = store.head(&id).await.unwrap().unwrap();
    assert_eq!(head.version, Version::FIRST);
    assert_eq!(head.patient, first.revision.contract.patient.id.to_string());
    assert_eq!(head.recorded_at, first.revision.recorded_at);
    assert!(!head.deleted);
    let second = store
        .update(&id, Version::FIRST, first.revision.contract.clone(), api())
        .await
        .unwrap();
    let head = store.head(&id).await.unwrap().unwrap();
    assert_eq!(
        (head.version, head.recorded_at),
        (second.revision.version, second.revision.recorded_at)
    );
    store
        .delete(&id, second.revision.version, api())
        .await
        .unwrap();
    let head = store.head(&id).await.unwrap().unwrap();
    assert!(head.deleted);
    assert_eq!(head.version.get(), 3);
    let deleted = store.get_version(&id, head.version).await.unwrap();
    assert_eq!(head.status, deleted.revision.contract.status);
    let deleted_status = head.status;

    let person = first.revision.contract.patient.id.clone();
    let mut other = first.revision.contract.clone();
    other.status = Status::OnHold;
    let second_contract = store.create(other, api()).await.unwrap();
    let heads = store.heads_by_patient(&person).await.unwrap();
    let mut expected = vec![
        (id.clone(), 3, deleted_status, true),
        (second_contract.id.clone(), 1, Status::OnHold, false),
    ];
    expected.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let got: Vec<_> = heads
        .iter()
        .map(|(id, h)| (id.clone(), h.version.get(), h.status, h.deleted))
        .collect();
    assert_eq!(got, expected);
    let nobody = PersonId::parse("191212121212").unwrap();
    assert!(store.heads_by_patient(&nobody).await.unwrap().is_empty());
}

async fn unknown_contracts_are_not_found(db: &TestDb) {
    let store = db.store().await;
    let id = ContractId::parse("no-such-contract").unwrap();
    assert!(matches!(store.get(&id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.history(&id).await,
        Err(StoreError::NotFound(_))
    ));
    let err = store
        .update(&id, Version::FIRST, fixture("ung-diabetes"), api())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(snapshot(db).await, (0, 0, 0, 0));
}

async fn broken_invariants_are_refused_whole(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    let before = snapshot(db).await;

    let mut no_next_step = fixture("psykiatri-sip");
    no_next_step.next_step = None;
    let err = store.create(no_next_step.clone(), api()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(v) if v.contains(&Violation::ActiveWithoutNextStep)),
        "{err:?}"
    );
    let err = store
        .update(&id, Version::FIRST, no_next_step, api())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(v) if v.contains(&Violation::ActiveWithoutNextStep)),
        "{err:?}"
    );

    let mut two_primaries = fixture("hjartsvikt-primarvard");
    let mut second = two_primaries.care_contacts[0].clone();
    second.id = "fvk-2".into();
    two_primaries.care_contacts.push(second);
    let err = store
        .update(&id, Version::FIRST, two_primaries, api())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(v) if v.contains(&Violation::OverlappingPrimaryContacts { index: 2, other: 0 })),
        "{err:?}"
    );

    let mut reopened = fixture("hjartsvikt-primarvard");
    reopened.status = Status::Revoked;
    let revoked = store
        .update(&id, Version::FIRST, reopened.clone(), api())
        .await
        .unwrap();
    reopened.status = Status::Active;
    let err = store
        .update(&id, revoked.revision.version, reopened, api())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(v) if v.contains(&Violation::StatusTransition { from: Status::Revoked, to: Status::Active })),
        "{err:?}"
    );

    let after = snapshot(db).await;
    assert_eq!(
        (after.0, after.1, after.2),
        (before.0, before.1 + 1, before.2 + 1),
        "only the revocation was stored"
    );
}

async fn of_concurrent_updates_from_one_version_exactly_one_wins(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    let base = store.get(&id).await.unwrap().revision.contract;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, id, mut contract) = (store.clone(), id.clone(), base.clone());
            contract
                .agreement
                .what_matters
                .push(format!("Önskemål {i}"));
            tokio::spawn(async move { store.update(&id, Version::FIRST, contract, api()).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::VersionConflict { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.history(&id).await.unwrap().versions.len(), 2);
    assert_eq!(db.count("outbox").await, 2);
}

async fn no_change_without_its_outbox_row(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    db.break_inserts_into("outbox").await;
    let before = snapshot(db).await;
    let err = store
        .create(fixture("ung-diabetes"), api())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    let err = store
        .update(&id, Version::FIRST, fixture("hjartsvikt-primarvard"), api())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert_eq!(
        snapshot(db).await,
        before,
        "the failed outbox insert took the change with it"
    );
    assert_eq!(
        store.get(&id).await.unwrap().revision.version,
        Version::FIRST
    );
}

async fn no_outbox_row_without_its_change(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    // The audit row is written after the outbox row; when it fails, the outbox row must go too.
    db.break_inserts_into("audit").await;
    let before = snapshot(db).await;
    assert!(store.create(fixture("ung-diabetes"), api()).await.is_err());
    assert!(
        store
            .update(&id, Version::FIRST, fixture("hjartsvikt-primarvard"), api())
            .await
            .is_err()
    );
    assert_eq!(snapshot(db).await, before);
    // And every stored version has exactly one outbox row, every outbox row a version.
    let pool = db.pool().await;
    let unmatched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM contract_versions v FULL OUTER JOIN outbox o ON o.contract_id = v.contract_id AND o.version = v.version \
         WHERE o.seq IS NULL OR v.contract_id IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unmatched, 0);
}

async fn finds_contracts_by_person(db: &TestDb) {
    let store = db.store().await;
    for name in ["hjartsvikt-primarvard", "ung-diabetes", "eget-initiativ"] {
        store.create(fixture(name), api()).await.unwrap();
    }
    let gunnar = PersonId::parse("194003129865").unwrap();
    let found = store.find_by_patient(&gunnar).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].revision.contract.patient.id, gunnar);
    let amir = PersonId::parse("198507789827").unwrap();
    assert_eq!(store.find_by_patient(&amir).await.unwrap().len(), 1);
    assert!(
        store
            .find_by_patient(&PersonId::parse("191212121212").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn export_then_import_gives_the_same_contracts_and_histories(db: &TestDb) {
    let store = db.store().await;
    for (name, contract) in pkgw::demo::contracts().unwrap() {
        let record = store.create(contract.clone(), api()).await.unwrap();
        if name == "eget-initiativ" {
            let mut next = contract;
            next.agreement
                .what_matters
                .push("Att slippa vänta i telefonkö".into());
            let v2 = store
                .update(&record.id, Version::FIRST, next.clone(), api())
                .await
                .unwrap();
            store
                .update(
                    &record.id,
                    v2.revision.version,
                    next,
                    Change::from_source("import-test"),
                )
                .await
                .unwrap();
        }
    }
    let exported: Vec<History> = store.export().try_collect().await.unwrap();
    let fixtures = pkgw::demo::FIXTURES.len();
    assert_eq!(exported.len(), fixtures);
    // One contract has two more versions.
    assert_eq!(
        exported.iter().map(|h| h.versions.len()).sum::<usize>(),
        fixtures + 2
    );

    let target_db = TestDb::sqlite();
    let target = target_db.store().await;
    for history in exported.clone() {
        target.import(history).await.unwrap();
    }
    let again: Vec<History> = target.export().try_collect().await.unwrap();
    assert_eq!(again, exported);
    assert_eq!(target.count().await.unwrap(), fixtures as u64);
    assert_eq!(
        target_db.count("outbox").await,
        fixtures as i64,
        "one outbox row per imported contract"
    );
}

async fn import_refuses_taken_ids_and_broken_histories(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    let history = store.history(&id).await.unwrap();
    assert!(matches!(
        store.import(history.clone()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let mut gap = history.clone();
    gap.id = ContractId::parse("gap").unwrap();
    let mut v3 = gap.versions[0].clone();
    v3.version = Version::FIRST.next().next();
    gap.versions.push(v3);
    let err = store.import(gap).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(v) if v.iter().any(|v| matches!(v, Violation::VersionNotIncreasing { .. }))),
        "{err:?}"
    );
    assert_eq!(store.count().await.unwrap(), 1);
}

async fn a_batch_imports_each_contract_whole_or_not_at_all(db: &TestDb) {
    let store = db.store().await;
    let taken = a_stored_contract(&store).await;
    let stored = store.history(&taken).await.unwrap();
    let named = |id: &str| {
        let mut h = stored.clone();
        h.id = ContractId::parse(id).unwrap();
        h
    };
    let mut broken = named("trasig");
    let mut gap = broken.versions[0].clone();
    gap.version = Version::FIRST.next().next();
    broken.versions.push(gap);
    let batch = vec![
        named("forsta"),
        broken,
        stored.clone(),
        named("andra"),
        named("forsta"),
    ];
    let outcomes = store.import_batch(batch).await.unwrap();
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            Ok(_) => "stored",
            Err(StoreError::Invalid(_)) => "invalid",
            Err(StoreError::AlreadyExists(_)) => "taken",
            Err(_) => "other",
        })
        .collect();
    assert_eq!(kinds, ["stored", "invalid", "taken", "stored", "taken"]);
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(
        db.count("outbox").await,
        3,
        "one outbox row per stored contract"
    );

    let clean = store
        .import_batch(vec![named("tredje"), named("fjarde")])
        .await
        .unwrap();
    assert!(clean.iter().all(Result::is_ok), "{clean:?}");
    assert_eq!(
        store
            .history(&ContractId::parse("fjarde").unwrap())
            .await
            .unwrap()
            .versions,
        stored.versions
    );
    assert_eq!(store.count().await.unwrap(), 5);
}

async fn accesses_are_recorded_a_row_per_person_given(db: &TestDb) {
    let store = db.store().await;
    let access = |n: usize, patients: &[&str], status: u16| AccessRecord {
        client: format!("portal-{n}"),
        subject: n.is_multiple_of(2).then(|| format!("user-{n}")),
        interaction: "read".into(),
        status,
        resources: vec![format!("CarePlan/k{n}"), format!("CareTeam/k{n}")],
        patients: patients.iter().map(|p| (*p).to_owned()).collect(),
        remote: Some("127.0.0.1".into()),
    };
    // More rows than one INSERT statement carries.
    let mut accesses: Vec<AccessRecord> = (0..600)
        .map(|n| access(n, &["194003129865"], 200))
        .collect();
    accesses.push(access(600, &["194003129865", "200806159836"], 200));
    accesses.push(access(601, &[], 403));
    store.record_accesses(&accesses).await.unwrap();

    let rows = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(rows.len(), 600 + 2 + 1);
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    let first = &rows[0];
    assert_eq!(
        (
            first.actor.as_str(),
            first.client.as_deref(),
            first.action.as_str()
        ),
        ("user-0", Some("portal-0"), "read")
    );
    assert_eq!(first.resources.as_deref(), Some("CarePlan/k0 CareTeam/k0"));
    assert_eq!(
        (first.status, first.outcome.as_str(), first.origin.as_str()),
        (Some(200), "success", "request")
    );
    assert_eq!(first.remote.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        rows[1].actor, "portal-1",
        "no subject: the client is the actor"
    );
    let both: Vec<Option<&str>> = rows[600..602]
        .iter()
        .map(|r| r.patient.as_deref())
        .collect();
    assert_eq!(both, [Some("194003129865"), Some("200806159836")]);
    let refused = &rows[602];
    assert_eq!(
        (
            refused.patient.as_deref(),
            refused.outcome.as_str(),
            refused.status
        ),
        (None, "failure", Some(403))
    );
}

async fn foreign_fhir_content_is_kept_with_its_version(db: &TestDb) {
    let store = db.store().await;
    let id = a_stored_contract(&store).await;
    let foreign = serde_json::json!({ "care_plan": { "note": [{ "text": "från EHR" }] } });
    let contract = store.get(&id).await.unwrap().revision.contract;
    store
        .update_with(&id, Version::FIRST, contract, api(), Some(foreign.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.get(&id).await.unwrap().revision.foreign_fhir,
        Some(foreign.clone())
    );
    assert_eq!(
        store
            .get_version(&id, Version::FIRST)
            .await
            .unwrap()
            .revision
            .foreign_fhir,
        None
    );
    let exported: Vec<History> = store.export().try_collect().await.unwrap();
    let target_db = TestDb::sqlite();
    let target = target_db.store().await;
    target.import(exported[0].clone()).await.unwrap();
    assert_eq!(
        target.get(&id).await.unwrap().revision.foreign_fhir,
        Some(foreign)
    );
}

/// The identifier index names a contract while its current version holds the
/// identifier: from the version that adds it, not after the version that drops it (then
/// another contract may take it), and versions in between without any leave it so.
async fn an_identifier_names_its_contract_while_its_current_version_holds_it(db: &TestDb) {
    let store = db.store().await;
    let (system, value) = ("urn:oid:1.2.752.29.4.71", "EHR-4711");
    let with = serde_json::json!({ "care_plan": { "identifier": [{ "system": system, "value": value }] } });
    let without = serde_json::json!({ "care_plan": { "note": [{ "text": "från EHR" }] } });
    let first = a_stored_contract(&store).await;
    let second = a_stored_contract(&store).await;
    let contract = store.get(&first).await.unwrap().revision.contract;
    let mut version = Version::FIRST;
    let write = async |id: &ContractId, base: Version, foreign: &serde_json::Value| {
        store
            .update_with(id, base, contract.clone(), api(), Some(foreign.clone()))
            .await
            .unwrap()
            .revision
            .version
    };
    let owner = async || store.contract_with_identifier(system, value).await.unwrap();

    version = write(&first, version, &without).await;
    assert_eq!(owner().await, None);
    version = write(&first, version, &with).await;
    assert_eq!(owner().await, Some(first.clone()));
    version = write(&first, version, &with).await;
    assert_eq!(owner().await, Some(first.clone()));
    version = write(&first, version, &without).await;
    assert_eq!(owner().await, None);
    write(&second, Version::FIRST, &with).await;
    assert_eq!(owner().await, Some(second.clone()));
    write(&first, version, &without).await;
    assert_eq!(owner().await, Some(second));
}

/// The sync bookkeeping of two workers on one contract: what a worker whose claim
/// passed to another records is nothing but "deliver once more", and the worker holding
/// the row then keeps it; what the target is known to hold never goes back to an older
/// version.
async fn a_lost_claim_records_nothing_and_asks_for_another_delivery(db: &TestDb) {
    use pkgw::store::{Recorded, Remote};
    use std::time::Duration;
    let store = db.store().await;
    let record = store
        .create(fixture("hjartsvikt-primarvard"), api())
        .await
        .unwrap();
    let id = record.id.clone();
    let v1 = record.revision.version;
    store
        .queue_contracts("portal", std::slice::from_ref(&id), false)
        .await
        .unwrap();
    let mut slow = store
        .claim_due("portal", "a", Duration::ZERO, 10)
        .await
        .unwrap();
    let slow = slow.pop().unwrap();
    let held = store
        .claim_due("portal", "b", Duration::from_secs(60), 10)
        .await
        .unwrap()
        .pop()
        .expect("the lease ran out: another worker takes the row");
    let newer = Remote::from([("CarePlan/x".to_owned(), Some("W/\"2\"".to_owned()))]);
    let older = Remote::from([("CarePlan/x".to_owned(), Some("W/\"1\"".to_owned()))]);
    let v2 = Version::try_from(v1.get() + 1).unwrap();
    store.holds("portal", &id, v2, &newer).await.unwrap();

    // The slow worker, finishing while the other holds the row, records nothing.
    assert_eq!(
        store.delivered(&slow, v1, &older).await.unwrap(),
        Recorded::Lost
    );
    assert_eq!(
        store.remote("portal", &id).await.unwrap(),
        Some((v2, newer.clone()))
    );
    // The worker holding the row finishes; the row stays for one more delivery.
    assert_eq!(
        store.delivered(&held, v1, &older).await.unwrap(),
        Recorded::Done
    );
    assert_eq!(store.queue_status("portal").await.unwrap().queued, 1);
    assert_eq!(
        store.remote("portal", &id).await.unwrap(),
        Some((v2, newer)),
        "never back to an older version"
    );
    let again = store
        .claim_due("portal", "c", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "due at once");
    assert_eq!(
        store
            .retry_later(&slow, jiff::Timestamp::now(), "late")
            .await
            .unwrap(),
        Recorded::Lost,
        "a lost claim does not release another's"
    );
    assert_eq!(
        store
            .delivered(&again[0], v1, &Remote::new())
            .await
            .unwrap(),
        Recorded::Done
    );
    // Checked once more by "c" (the "a" retry asked again), then gone.
    let last = store
        .claim_due("portal", "d", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        store.delivered(&last[0], v1, &Remote::new()).await.unwrap(),
        Recorded::Done
    );
    assert_eq!(store.queue_status("portal").await.unwrap().queued, 0);
}

/// On SQLite concurrent writes share commits (one writer, one fsync for many), yet each
/// is answered as if alone: the one refused among them rolls back alone, the rest are
/// stored whole, each with its outbox and audit rows.
#[tokio::test]
async fn concurrent_writes_on_sqlite_share_commits_and_are_answered_each_alone() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let ids = stored_contracts(&store, 16).await;
    let (commits, writes) = store.group_commits().unwrap();
    let before = snapshot(&db).await;
    let base = store.get(&ids[0]).await.unwrap().revision.contract;
    let update = |id: &ContractId, version: Version, what: &str| {
        let (store, id, mut contract) = (store.clone(), id.clone(), base.clone());
        contract.agreement.what_matters.push(what.to_owned());
        tokio::spawn(async move { store.update(&id, version, contract, api()).await })
    };
    // One stale write among them: its contract is not at version 5.
    let stale = update(&ids[3], Version::try_from(5).unwrap(), "Gammalt");
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| update(id, Version::FIRST, "Nytt"))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().revision.version.get(), 2);
    }
    assert!(matches!(
        stale.await.unwrap(),
        Err(StoreError::VersionConflict { .. })
    ));
    let (contracts, versions, outbox, audit) = before;
    assert_eq!(
        snapshot(&db).await,
        (contracts, versions + 16, outbox + 16, audit + 16),
        "each write stored whole, the stale one not at all"
    );
    for id in &ids {
        let current = store.get(id).await.unwrap().revision;
        assert_eq!(current.version.get(), 2);
        assert!(
            current
                .contract
                .agreement
                .what_matters
                .contains(&"Nytt".to_owned())
        );
    }
    let (commits_after, writes_after) = store.group_commits().unwrap();
    assert_eq!(writes_after - writes, 16);
    assert!(
        commits_after - commits < 16,
        "16 concurrent writes took {} commits",
        commits_after - commits
    );
}

/// Nothing to record records nothing, and is no error.
async fn no_accesses_record_no_rows(db: &TestDb) {
    let store = db.store().await;
    store.record_accesses(&[]).await.unwrap();
    assert_eq!(db.count("audit").await, 0);
}

on_both_backends!(
    a_lost_claim_records_nothing_and_asks_for_another_delivery,
    the_head_is_the_current_version,
    create_reads_back_as_version_one,
    updates_make_new_versions_and_keep_the_old,
    a_stale_update_fails_and_changes_nothing,
    unknown_contracts_are_not_found,
    broken_invariants_are_refused_whole,
    of_concurrent_updates_from_one_version_exactly_one_wins,
    no_change_without_its_outbox_row,
    no_outbox_row_without_its_change,
    finds_contracts_by_person,
    export_then_import_gives_the_same_contracts_and_histories,
    import_refuses_taken_ids_and_broken_histories,
    a_batch_imports_each_contract_whole_or_not_at_all,
    accesses_are_recorded_a_row_per_person_given,
    no_accesses_record_no_rows,
    foreign_fhir_content_is_kept_with_its_version,
    an_identifier_names_its_contract_while_its_current_version_holds_it,
);

/// On SQLite, a lookup by key is compiled once, not again for each key it is given.
/// The statistics `pkgw import` gathers (`ANALYZE`) would otherwise make it so: with
/// SQLite's STAT4 samples every new value bound to an indexed column invalidates the
/// statement's plan, and each lookup was parsed and planned anew (about a sixth of the
/// CPU of a read by id, docs/scaling.md). The bundled SQLite is built without STAT4
/// (`.cargo/config.toml`).
#[tokio::test]
async fn sqlite_lookups_after_analyze_reuse_their_compiled_statements() {
    use std::str::FromStr as _;
    let db = TestDb::sqlite();
    let store = db.store().await;
    let ids = stored_contracts(&store, 40).await;
    store.analyze().await.unwrap();
    let path = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
        .unwrap()
        .get_filename()
        .to_owned();
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut head = conn
        .prepare(
            "SELECT c.version, c.patient FROM contracts c JOIN contract_versions v \
             ON v.contract_id = c.id AND v.version = c.version WHERE c.id = ?1",
        )
        .unwrap();
    let mut of_person = conn
        .prepare("SELECT id FROM contracts WHERE patient = ?1")
        .unwrap();
    for id in &ids {
        let record = store.get(id).await.unwrap();
        let (version, patient): (i64, String) = head
            .query_row([id.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        assert_eq!(u64::try_from(version), Ok(record.revision.version.get()));
        let found: Vec<String> = of_person
            .query_map([patient.as_str()], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(found.iter().any(|f| f == id.as_str()), "{found:?}");
    }
    let planned_again =
        |stmt: &rusqlite::Statement<'_>| stmt.get_status(rusqlite::StatementStatus::RePrepare);
    assert_eq!(
        planned_again(&head),
        0,
        "the head lookup was compiled again"
    );
    assert_eq!(
        planned_again(&of_person),
        0,
        "the lookup by person was compiled again"
    );
}
