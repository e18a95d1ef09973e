//! The `pkgw` binary as people run it: help for every command, settings from the
//! environment, export/import round trips, and `serve --demo` over a real socket.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use common::{TestDb, fixture};
use pkgw::domain::Version;
use pkgw::store::Change;
use sqlx::Connection as _;

fn pkgw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args(args)
        .env_remove("PKGW__DATABASE__URL")
        .output()
        .expect("run pkgw")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_command_has_help() {
    for command in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["import", "--help"],
        &["export", "--help"],
        &["sync", "--help"],
        &["sync", "run", "--help"],
        &["sync", "status", "--help"],
        &["sync", "dead-letters", "--help"],
        &["sync", "replay", "--help"],
        &["sync", "push", "--help"],
        &["sync", "verify", "--help"],
        &["sync", "conflicts", "--help"],
        &["sync", "pull", "--help"],
        &["transfer", "--help"],
        &["print", "--help"],
        &["generate", "--help"],
        &["samsyn", "--help"],
        &["token", "--help"],
        &["audit", "--help"],
    ] {
        let out = pkgw(command);
        assert!(out.status.success(), "{command:?}");
        assert!(
            text(&out.stdout).contains("Usage: pkgw"),
            "{command:?}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn settings_from_the_environment_are_validated_and_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args(["serve"])
        .env("PKGW__SERVER__BIND", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("server.bind"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let out = pkgw(&["migrate", "--data-dir", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(data.join("pkgw.db").exists());
}

async fn export_then_import_through_the_cli(source: &TestDb) {
    let store = source.store().await;
    for (name, contract) in pkgw::demo::contracts().unwrap() {
        let record = store
            .create(contract.clone(), Change::from_source("cli-test"))
            .await
            .unwrap();
        if name == "psykiatri-sip" {
            store
                .update(
                    &record.id,
                    Version::FIRST,
                    contract,
                    Change::from_source("cli-test"),
                )
                .await
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contracts.ndjson");
    let out = pkgw(&[
        "export",
        "--database-url",
        &source.url,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), pkgw::demo::FIXTURES.len());

    let target = if source.is_postgres() {
        TestDb::postgres().await.unwrap()
    } else {
        TestDb::sqlite()
    };
    let out = pkgw(&[
        "import",
        file.to_str().unwrap(),
        "--database-url",
        &target.url,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "imported {} contracts",
            pkgw::demo::FIXTURES.len()
        )),
        "{}",
        text(&out.stderr)
    );
    let out = pkgw(&["export", "--database-url", &target.url]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), exported);
    // One version each, and one contract with a second.
    assert_eq!(
        target.count("contract_versions").await,
        pkgw::demo::FIXTURES.len() as i64 + 1
    );
}

async fn import_reports_bad_lines_and_keeps_the_good(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.ndjson");
    let good = serde_json::json!({
        "id": "kontrakt-1",
        "versions": [{ "version": 1, "recordedAt": "2026-11-01T10:00:00Z", "change": { "source": "old-ehr" }, "contract": fixture("ung-diabetes") }]
    });
    let mut invalid = good.clone();
    invalid["id"] = "kontrakt-2".into();
    invalid["versions"][0]["contract"]["patient"]["id"] = "200806159837".into();
    std::fs::write(&file, format!("{good}\nnot json\n{invalid}\n")).unwrap();
    let out = pkgw(&["import", file.to_str().unwrap(), "--database-url", &db.url]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("line 3") && err.contains("imported 1 contracts"),
        "{err}"
    );
    assert_eq!(db.count("contracts").await, 1);
}

async fn fhir_ndjson_export_and_import_carry_the_contracts(source: &TestDb) {
    let store = source.store().await;
    let mut ids = Vec::new();
    let mut resources = 0;
    for (_, contract) in pkgw::demo::contracts().unwrap() {
        let record = store
            .create(contract, Change::from_source("cli-test"))
            .await
            .unwrap();
        resources +=
            pkgw::fhir::stored::resources_of(&record, &pkgw::fhir::Profile::default_profile())
                .all()
                .count();
        ids.push(record.id);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fhir.ndjson");
    let out = pkgw(&[
        "export",
        "--format",
        "fhir",
        "--database-url",
        &source.url,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), resources, "one resource per line");
    let first: serde_json::Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    assert_eq!(first["resourceType"], "CarePlan");

    let target = source.another().await;
    let out = pkgw(&[
        "import",
        "--format",
        "fhir",
        file.to_str().unwrap(),
        "--database-url",
        &target.url,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "imported {} contracts",
            pkgw::demo::FIXTURES.len()
        )),
        "{}",
        text(&out.stderr)
    );
    let copy = target.store().await;
    for id in &ids {
        assert_eq!(
            copy.get(id).await.unwrap().revision.contract,
            store.get(id).await.unwrap().revision.contract,
            "{id} is the same contract"
        );
    }

    // A resource that is not part of a contract is reported by its line.
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"resourceType\": \"Observation\"}\n").unwrap();
    let out = pkgw(&[
        "import",
        "--format",
        "fhir",
        bad.to_str().unwrap(),
        "--database-url",
        &target.url,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("line 1: Observation is not part of a contract"),
        "{}",
        text(&out.stderr)
    );
    target.cleanup().await;
}

async fn a_transfer_from_the_command_line(db: &TestDb) {
    let store = db.store().await;
    let record = store
        .create(
            fixture("hjartsvikt-primarvard"),
            Change::from_source("cli-test"),
        )
        .await
        .unwrap();
    let args = |if_match: &str| {
        vec![
            "transfer".to_owned(),
            record.id.to_string(),
            "--unit".into(),
            "SE2321000016-KARD".into(),
            "--unit-name".into(),
            "Kardiologiska kliniken".into(),
            "--unit-phone".into(),
            "08-123 550 00".into(),
            "--unit-hours".into(),
            "mon-fri 08:00-16:00".into(),
            "--contact".into(),
            "Eva Lind".into(),
            "--contact-phone".into(),
            "08-123 550 10".into(),
            "--at".into(),
            "2026-10-01T08:00:00Z".into(),
            "--kind".into(),
            "primary-care-to-hospital".into(),
            "--reason".into(),
            "Inlagd".into(),
            "--if-match".into(),
            if_match.into(),
            "--database-url".into(),
            db.url.clone(),
        ]
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pkgw(&args)
    };
    let out = run(args("1"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("as version 2"),
        "{}",
        text(&out.stderr)
    );
    let after = store.get(&record.id).await.unwrap();
    assert_eq!(
        after
            .revision
            .contract
            .responsible_unit
            .unwrap()
            .hsa_id
            .as_str(),
        "SE2321000016-KARD"
    );
    assert_eq!(
        after.revision.change.transfer.unwrap().kind,
        "primary-care-to-hospital"
    );
    let stale = run(args("1"));
    assert!(!stale.status.success());
    assert!(
        text(&stale.stderr).contains("version 2"),
        "{}",
        text(&stale.stderr)
    );
    // A handover ahead is scheduled, not applied now.
    let mut ahead = args("2");
    let at = ahead.iter().position(|a| a == "--at").unwrap() + 1;
    ahead[at] = "2099-01-01T00:00:00Z".into();
    let unit = ahead.iter().position(|a| a == "--unit").unwrap() + 1;
    ahead[unit] = "SE2321000016-1A2B".into();
    let scheduled = run(ahead);
    assert!(scheduled.status.success(), "{}", text(&scheduled.stderr));
    assert!(
        text(&scheduled.stderr).contains("scheduled"),
        "{}",
        text(&scheduled.stderr)
    );
    assert_eq!(
        store.get(&record.id).await.unwrap().revision.version.get(),
        2
    );
}

async fn generated_contracts_load_with_import(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.ndjson");
    let run = |path: &std::path::Path| {
        pkgw(&[
            "generate",
            "--contracts",
            "600",
            "--seed",
            "11",
            "--out",
            path.to_str().unwrap(),
        ])
    };
    let out = run(&file);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = dir.path().join("again.ndjson");
    assert!(run(&again).status.success());
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&again).unwrap(),
        "the same seed gives the same contracts"
    );
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 600);
    let checkpoints = async || {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar::<_, i64>("SELECT checkpoints_req FROM pg_stat_bgwriter")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    let before = if db.is_postgres() {
        checkpoints().await
    } else {
        0
    };
    let out = pkgw(&["import", file.to_str().unwrap(), "--database-url", &db.url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    if db.is_postgres() {
        // What the import wrote is written out before the gateway takes traffic (the
        // checkpointer counts it as it finishes, just after the import is told).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while checkpoints().await <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint after import"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        db.count("contracts").await,
        600,
        "every generated contract is valid, over several batches"
    );
    // The planner's statistics are there after a bulk load.
    let analyzed = if db.is_postgres() {
        db.count_where(
            "pg_class",
            "oid = 'contracts'::regclass AND reltuples >= 600",
        )
        .await
    } else {
        db.count_where("sqlite_stat1", "tbl = 'contracts'").await
    };
    assert!(analyzed > 0, "no statistics after import");
    let fhir = pkgw(&["generate", "--contracts", "3", "--format", "fhir"]);
    assert!(fhir.status.success());
    let first: serde_json::Value =
        serde_json::from_slice(fhir.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["resourceType"], "CarePlan");
}

/// `pkgw audit` shows the trail: here the imports, each under its person, as text and as
/// FHIR AuditEvents; `pkgw token` mints a token the gateway's verifier takes.
async fn the_audit_trail_and_tokens_from_the_command_line(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.ndjson");
    let out = pkgw(&[
        "generate",
        "--contracts",
        "3",
        "--seed",
        "5",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = pkgw(&["import", file.to_str().unwrap(), "--database-url", &db.url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first: serde_json::Value = serde_json::from_slice(
        std::fs::read(&file)
            .unwrap()
            .split(|b| *b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    let person = first["versions"][0]["contract"]["patient"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let all = pkgw(&["audit", "--database-url", &db.url, "--format", "fhir"]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    let events: Vec<serde_json::Value> = text(&all.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e["resourceType"] == "AuditEvent" && e["action"] == "C")
    );
    let one = pkgw(&["audit", "--database-url", &db.url, "--patient", &person]);
    assert!(one.status.success());
    let lines: Vec<String> = text(&one.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("import") && lines[0].contains(&person),
        "{lines:?}"
    );
    let bad = pkgw(&["audit", "--database-url", &db.url, "--patient", "123"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--patient"),
        "{}",
        text(&bad.stderr)
    );

    // A development token, checked by the same verifier the server uses.
    let minted = Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args([
            "token",
            "--scope",
            "patient/*.rs",
            "--patient",
            &person,
            "--client",
            "1177",
        ])
        .env("PKGW__AUTH__HS256_SECRET", "cli-test-secret")
        .output()
        .unwrap();
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let settings = pkgw::auth::AuthSettings::hs256("pkgw-dev", "pkgw", 0, "cli-test-secret");
    let verifier = pkgw::auth::Verifier::from_settings(&settings)
        .await
        .unwrap();
    let principal = verifier.verify(text(&minted.stdout).trim()).await.unwrap();
    assert_eq!(principal.client, "1177");
    assert_eq!(
        principal.compartment().map(ToString::to_string),
        Some(person)
    );
    let no_secret = Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args(["token", "--scope", "system/*.rs"])
        .env_remove("PKGW__AUTH__HS256_SECRET")
        .output()
        .unwrap();
    assert!(!no_secret.status.success());
    assert!(
        text(&no_secret.stderr).contains("hs256_secret"),
        "{}",
        text(&no_secret.stderr)
    );
}

on_both_backends!(
    the_audit_trail_and_tokens_from_the_command_line,
    generated_contracts_load_with_import,
    a_transfer_from_the_command_line,
    fhir_ndjson_export_and_import_carry_the_contracts,
    export_then_import_through_the_cli,
    import_reports_bad_lines_and_keeps_the_good
);

/// The README's first command, on a port of its own: demo data, the printed examples
/// work, and SIGTERM stops it cleanly.
#[tokio::test]
async fn serve_demo_prints_working_examples_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args([
            "serve",
            "--demo",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .env_remove("PKGW__DATABASE__URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("Stop with"))
            .collect()
    })
    .await
    .unwrap();
    let printed = lines.join("\n");
    let loaded = format!("Loaded {} demo contracts", pkgw::demo::FIXTURES.len());
    assert!(printed.contains(&loaded), "{printed}");
    let search = lines
        .iter()
        .find(|l| l.contains("?patient="))
        .expect("a search example");
    let url = search.split('\'').nth(1).unwrap();
    let token = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("a {name} is printed: {printed}"))
            .to_owned()
    };
    let client = reqwest::Client::new();
    let get = |url: String, token: Option<String>| {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    let found: serde_json::Value = get(url.to_owned(), Some(token("TOKEN")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        found["contracts"][0]["contract"]["patient"]["name"],
        "Gunnar Lindqvist"
    );
    // Without a token: 401 and a challenge.
    let refused = get(url.to_owned(), None).await;
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(refused.headers().contains_key("www-authenticate"));
    // The patient's token sees its own person, and no one else.
    let base = url.split("/api/").next().unwrap();
    let own: serde_json::Value = get(url.to_owned(), Some(token("PATIENT_TOKEN")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["contracts"].as_array().unwrap().len(), 1);
    let other: serde_json::Value = get(
        format!("{base}/fhir/CarePlan?patient=195208239813"),
        Some(token("PATIENT_TOKEN")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(other["total"], 0, "{other}");
    assert!(
        other
            .get("entry")
            .is_none_or(|e| e.as_array().unwrap().is_empty())
    );
    let system: serde_json::Value = get(
        format!("{base}/fhir/CarePlan?patient=195208239813"),
        Some(token("TOKEN")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(system["total"], 1, "{system}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn validate_reports_problems_as_an_operation_outcome() {
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/fhir/hjartsvikt-primarvard.json"
    );
    let out = pkgw(&["validate", golden]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["issue"][0]["severity"], "information");
    let out = pkgw(&["validate", "--profile", "cosmic", golden]);
    assert!(
        !out.status.success(),
        "default codes are unknown to the cosmic profile"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
    let activities = bundle["entry"][0]["resource"]["activity"]
        .as_array_mut()
        .unwrap();
    activities.remove(0); // the next step
    let file = dir.path().join("no-next-step.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    let out = pkgw(&["validate", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["issue"][0]["code"], "invariant");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Patientkontrakt.nextStep"
    );

    let plan = bundle["entry"][0]["resource"].clone();
    let mut bad_plan = plan.clone();
    bad_plan["status"] = "aktiv".into();
    let ndjson = dir.path().join("plans.ndjson");
    std::fs::write(&ndjson, format!("{plan}\n{bad_plan}\n")).unwrap();
    let out = pkgw(&["validate", ndjson.to_str().unwrap()]);
    assert!(!out.status.success());
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["issue"].as_array().unwrap().len(), 1);
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .starts_with("line 2:"),
        "{outcome}"
    );
    assert_eq!(outcome["issue"][0]["expression"][0], "CarePlan.status");
}
