//! The disk fills under SQLite: the test makes a small filesystem of its own (a 4 MiB
//! tmpfs), fills most of it, and writes contracts until there is no room. Writes are then
//! refused with 507 and a clear error (an OperationOutcome on the FHIR API) and nothing
//! half-written; reads go on; the database passes `PRAGMA integrity_check`; and once space
//! is freed, writes work again.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixture;
use pkgw::api::{AppState, Limits};
use pkgw::domain::ContractId;
use pkgw::store::{Store, StoreOptions};
use reqwest::StatusCode;
use serde_json::Value;

/// A small filesystem mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("pkgw-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a small tmpfs needs root (CAP_SYS_ADMIN), as on CI"
        );
        SmallDisk { dir }
    }

    /// Takes all but `leave` bytes of the free space with a file.
    fn fill(&self, leave: u64) -> PathBuf {
        let free = free_bytes(&self.dir);
        let filler = self.dir.join("filler");
        std::fs::write(&filler, vec![0u8; free.saturating_sub(leave) as usize]).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_loses_nothing() {
    let disk = SmallDisk::mount(4);
    let options = StoreOptions::sqlite_in(&disk.dir);
    let store = Store::open(&options).await.unwrap();
    let app = common::app::spawn_state(AppState::new(store.clone()), Limits::default()).await;
    let post = |name: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/contracts"))
                .json(&serde_json::to_value(fixture(name)).unwrap())
                .send()
                .await
                .unwrap()
        }
    };
    let first: Value = post("hjartsvikt-primarvard").await.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    let filler = disk.fill(256 * 1024);

    // Writes until there is no room.
    let mut refused = None;
    for _ in 0..2000 {
        let response = post("ung-diabetes").await;
        match response.status() {
            StatusCode::CREATED => {}
            status => {
                refused = Some((status, response.json::<Value>().await.unwrap()));
                break;
            }
        }
    }
    let (status, body) = refused.expect("the disk filled up");
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no room left"),
        "{body}"
    );

    // A FHIR update is refused the same way, with an OperationOutcome, and changes
    // nothing.
    let contract = ContractId::parse(&id).unwrap();
    let plan_url = app.url(&format!("/fhir/CarePlan/{id}"));
    let mut refused = None;
    for attempt in 0..20 {
        let before = store.history(&contract).await.unwrap().versions.len();
        let read = app.client.get(&plan_url).send().await.unwrap();
        assert_eq!(read.status(), StatusCode::OK, "reads go on");
        let etag = read.headers()["etag"].to_str().unwrap().to_owned();
        let mut plan: Value = read.json().await.unwrap();
        for activity in plan["activity"].as_array_mut().unwrap() {
            if activity["detail"]["code"]["coding"][0]["code"] == "nasta-steg" {
                activity["detail"]["description"] =
                    format!("Ringa vårdcentralen ({attempt})").into();
            }
        }
        let response = app
            .client
            .put(&plan_url)
            .header("content-type", "application/fhir+json")
            .header("If-Match", &etag)
            .json(&plan)
            .send()
            .await
            .unwrap();
        eprintln!(
            "ATTEMPT {attempt} {} before {before} after {} free {}",
            response.status(),
            store.history(&contract).await.unwrap().versions.len(),
            free_bytes(&disk.dir)
        );
        if response.status() == StatusCode::OK {
            // It fitted in what the refused create left: fill that, and try again.
            while post("eget-initiativ").await.status() == StatusCode::CREATED {}
            continue;
        }
        refused = Some((
            response.status(),
            response.json::<Value>().await.unwrap(),
            before,
        ));
        break;
    }
    let (status, outcome, before) = refused.expect("a FHIR update refused on the full disk");
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "no-store", "{outcome}");
    assert_eq!(
        store.history(&contract).await.unwrap().versions.len(),
        before,
        "nothing half-written"
    );
    let read = app
        .client
        .get(app.url(&format!("/api/contracts/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK, "reads go on");

    // Space freed: writes work again, and the database is whole.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(post("eget-initiativ").await.status(), StatusCode::CREATED);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&options.url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    pool.close().await;
    drop(app);
    store.close().await;
}
