//! Sync as the `pkgw` process runs it, against a separate FHIR server (sekmet-fhir)
//! behind a fault-injecting proxy, on SQLite and PostgreSQL: the gateway killed with
//! SIGKILL in the middle of delivering, again and again, loses and duplicates nothing;
//! and the operator's commands (`pkgw sync run/status/dead-letters/replay/push`) work.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use common::peer::{Fault, FaultProxy, FhirPeer, holds};
use pkgw::domain::ContractId;
use pkgw::fhir::Profile;
use pkgw::fhir::stored::resources_of;
use pkgw::store::Change;
use reqwest::StatusCode;

fn config(dir: &std::path::Path, db: &TestDb, target: &str) -> std::path::PathBuf {
    let path = dir.join("pkgw.toml");
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:0"

[database]
url = "{url}"

[auth]
mode = "off"

[sync]
poll_interval_ms = 20
lease_secs = 3
batch_size = 3
concurrency = 2
request_timeout_secs = 2
backoff_initial_ms = 50
backoff_max_secs = 1

[[targets]]
name = "portal"
base_url = "{target}"
"#,
        url = db.url,
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn gateway(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("PKGW__DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn killed_mid_delivery_again_and_again_loses_and_duplicates_nothing(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    // A slow network, so the kills land while requests are in flight.
    proxy.inject(
        "/fhir/",
        Fault::Delay(Duration::from_millis(80)),
        usize::MAX,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), db, &proxy.base);

    let contracts: Vec<_> = pkgw::demo::contracts()
        .unwrap()
        .into_iter()
        .cycle()
        .take(8)
        .collect();
    let mut ids = Vec::new();
    for (n, (_, contract)) in contracts.into_iter().enumerate() {
        let id = ContractId::parse(&format!("krasch-{n:02}")).unwrap();
        store
            .create_with_id(id.clone(), contract, Change::from_source("api"))
            .await
            .unwrap();
        ids.push(id);
    }
    for round in 0..6 {
        let mut child = gateway(&config);
        // Changes keep arriving while the gateway comes and goes.
        let id = &ids[round % ids.len()];
        let current = store.get(id).await.unwrap();
        let mut next = current.revision.contract.clone();
        next.agreement.what_matters.push(format!("Ändring {round}"));
        store
            .update(
                id,
                current.revision.version,
                next,
                Change::from_source("api"),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150 + fastrand::u64(0..500))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if round == 0 {
            let status = store.queue_status("portal").await.unwrap();
            assert!(
                status.delivered < ids.len() as u64,
                "the first kill came in the middle of delivering: {status:?}"
            );
        }
    }
    let mut child = gateway(&config);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = store.queue_status("portal").await.unwrap();
        if status.queued == 0
            && status.delivered == ids.len() as u64
            && db.count_where("outbox", "dispatched_at IS NULL").await == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let profile = Profile::default_profile();
    for id in &ids {
        let record = store.get(id).await.unwrap();
        let ours = resources_of(&record, &profile);
        let (status, theirs) = portal.get(&format!("CarePlan/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}");
        assert!(
            holds(&theirs, &ours.care_plan),
            "{id}: the latest version is there"
        );
        let (_, found) = portal.get(&format!("CarePlan?_id={id}")).await;
        assert_eq!(found["total"], 1, "{id}: one copy");
    }
    let dead = store.dead_letters(None).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

/// Runs `pkgw sync …` (off the test's runtime, which serves the proxy meanwhile).
async fn sync(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pkgw"));
    command
        .arg("sync")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PKGW__DATABASE__URL");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn the_operator_runs_inspects_and_replays_from_the_command_line(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), db, &proxy.base);
    let refused = store
        .create(
            pkgw::demo::contracts().unwrap().remove(0).1,
            Change::from_source("api"),
        )
        .await
        .unwrap();
    store
        .create(
            pkgw::demo::contracts().unwrap().remove(1).1,
            Change::from_source("api"),
        )
        .await
        .unwrap();
    proxy.inject(
        refused.id.as_str(),
        Fault::Refuse {
            diagnostics: "not today",
        },
        usize::MAX,
    );

    let (ok, table, err) = sync(&config, &["run", "--once"]).await;
    assert!(ok, "{err}");
    assert!(table.lines().any(|l| l.starts_with("portal")), "{table}");
    let (ok, letters, _) = sync(&config, &["dead-letters", "--json"]).await;
    assert!(ok);
    let letters: Vec<serde_json::Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["contract"], refused.id.as_str());
    assert_eq!(letters[0]["status"], 400);
    assert!(letters[0]["error"].as_str().unwrap().contains("not today"));
    let (_, status, _) = sync(&config, &["status", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        (
            status[0]["target"].as_str(),
            status[0]["delivered"].as_u64(),
            status[0]["deadLetters"].as_u64()
        ),
        (Some("portal"), Some(1), Some(1))
    );

    proxy.heal();
    let (ok, _, said) = sync(&config, &["replay", "--target", "portal"]).await;
    assert!(ok && said.contains("queued 1"), "{said}");
    assert!(sync(&config, &["run", "--once"]).await.0);
    let after = store.queue_status("portal").await.unwrap();
    assert_eq!(
        (after.delivered, after.dead_letters, after.queued),
        (2, 0, 0)
    );

    let before = proxy.seen.lock().unwrap().len();
    let (ok, _, said) = sync(&config, &["push", "--target", "portal", "--all"]).await;
    assert!(ok && said.contains("queued 2"), "{said}");
    assert!(sync(&config, &["run", "--once"]).await.0);
    assert!(proxy.seen.lock().unwrap().len() > before, "pushed again");

    let (ok, report, said) = sync(&config, &["verify", "--target", "portal"]).await;
    assert!(ok, "{said}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        (report["checked"].as_u64(), report["ok"].as_u64()),
        (Some(2), Some(2)),
        "{report}"
    );
    assert!(said.contains("2 contracts checked, 2 ok"), "{said}");

    let (ok, _, said) = sync(&config, &["replay", "--target", "ingen"]).await;
    assert!(!ok);
    assert!(said.contains("ingen") && said.contains("portal"), "{said}");
}

on_both_backends!(
    killed_mid_delivery_again_and_again_loses_and_duplicates_nothing,
    the_operator_runs_inspects_and_replays_from_the_command_line,
);
