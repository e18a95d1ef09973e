//! No personal data in the logs: the real `pkgw serve`, logging at `trace`, goes through a
//! whole scenario — contracts created, read, searched by personnummer, updated, refused
//! (422 quoting the bad value), transferred, answered in 7 frågor, audited — and then its
//! log is searched for every personnummer, name and free text of the contracts involved.
//! The log must say what happened (one line per request) without any of them.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use pkgw::auth::{TokenClaims, mint};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "log-test-secret";

/// Every string in the contract fixture that is personal or free text: the
/// personnummer, names, and any text with a space in it (what matters, commitments,
/// notes), but not codes, dates or the units' own names and numbers.
fn personal_strings(fixture: &Value) -> Vec<String> {
    fn walk(v: &Value, key: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k != "responsibleUnit" {
                        walk(v, k, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            Value::String(s) => {
                let personal_key = matches!(key, "id" | "name") && s.len() >= 5;
                let free_text =
                    s.contains(' ') && s.len() >= 8 && s.parse::<jiff::Timestamp>().is_err();
                if personal_key || free_text {
                    out.push(s.clone());
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(fixture, "", &mut out);
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn a_whole_scenario_logs_no_personal_data() {
    whole_scenario("text").await;
}

/// The same with `log.format = "json"`: every line one JSON object, a request's line
/// with its method, route template, status and time as fields of their own.
#[tokio::test]
async fn json_logs_are_one_object_per_line_and_as_clean() {
    whole_scenario("json").await;
}

async fn whole_scenario(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pkgw.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkgw"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("PKGW__DATABASE__URL")
        .env("PKGW__LOG__LEVEL", "trace")
        .env("PKGW__LOG__FORMAT", format)
        .env("PKGW__AUTH__HS256_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("pkgw is listening on ").map(str::to_owned))
            .unwrap()
    })
    .await
    .unwrap();
    let now = jiff::Timestamp::now().as_second();
    let token = mint(
        SECRET,
        &TokenClaims {
            iss: "pkgw-dev".into(),
            aud: "pkgw".into(),
            sub: "log-test".into(),
            client_id: "log-test".into(),
            scope: "system/*.cruds".into(),
            iat: now,
            nbf: now,
            exp: now + 600,
            patient: None,
            units: None,
        },
    )
    .unwrap();
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method,
                path: String,
                body: Option<Value>,
                headers: Vec<(&'static str, String)>| {
        let mut r = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        async move {
            let response = r.send().await.unwrap();
            let status = response.status();
            let etag = response
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            (status, etag, text)
        }
    };

    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for name in ["hjartsvikt-primarvard", "psykiatri-sip"] {
        let text = std::fs::read_to_string(format!(
            "{}/fixtures/contracts/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let fixture: Value = serde_json::from_str(&text).unwrap();
        secrets.extend(personal_strings(&fixture));
        let (status, _, body) = send(
            reqwest::Method::POST,
            "/api/contracts".into(),
            Some(fixture),
            vec![],
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let record: Value = serde_json::from_str(&body).unwrap();
        ids.push(record["id"].as_str().unwrap().to_owned());
    }
    assert!(secrets.iter().any(|s| s == "194003129865"), "{secrets:?}");
    assert!(secrets.len() > 20, "{secrets:?}");
    let (gunnar, jonas) = ("194003129865", "197811049928");

    // Reads, searches by personnummer (in the URL), the coordinated plan.
    for path in [
        format!("/api/contracts/{}", ids[0]),
        format!("/api/contracts?patient={gunnar}"),
        format!("/fhir/CarePlan?patient={jonas}&_include=CarePlan:care-team"),
        format!("/fhir/CarePlan/$coordinated-plan?patient={gunnar}"),
        format!("/contracts/{}/print", ids[1]),
        format!("/fhir/CarePlan/{}/_history", ids[0]),
        "/fhir/CarePlan/finns-inte".to_owned(),
        "/fhir/Patient?name=Gunnar".to_owned(),
    ] {
        send(reqwest::Method::GET, path, None, vec![]).await;
    }
    // An update through FHIR.
    let (_, etag, plan) = send(
        reqwest::Method::GET,
        format!("/fhir/CarePlan/{}", ids[0]),
        None,
        vec![],
    )
    .await;
    let mut plan: Value = serde_json::from_str(&plan).unwrap();
    plan["description"] = json!("Gunnar vill orka gå till kolonilotten varje dag");
    secrets.push("Gunnar vill orka gå till kolonilotten varje dag".into());
    let (status, _, body) = send(
        reqwest::Method::PUT,
        format!("/fhir/CarePlan/{}", ids[0]),
        Some(plan.clone()),
        vec![("if-match", etag.unwrap())],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Refused: a bad personnummer, which the answer quotes back (the log must not).
    let mut bad = plan.clone();
    bad["subject"]["identifier"]["value"] = json!("194003129866");
    secrets.push("194003129866".into());
    let (status, _, _) = send(
        reqwest::Method::PUT,
        format!("/fhir/CarePlan/{}", ids[0]),
        Some(bad),
        vec![],
    )
    .await;
    assert!(status.is_client_error());
    // 7 frågor, and the audit trail by person.
    let answers = json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://pkgw.example/fhir/Questionnaire/sju-fragor-patient",
        "status": "completed",
        "basedOn": [{ "reference": format!("CarePlan/{}", ids[1]) }],
        "item": (1..=7).map(|i| json!({ "linkId": i.to_string(), "answer": [{ "valueCoding": { "system": "https://pkgw.example/fhir/CodeSystem/sju-fragor-svar", "code": "delvis" } }] })).collect::<Vec<_>>(),
    });
    let (status, _, body) = send(
        reqwest::Method::POST,
        "/fhir/QuestionnaireResponse".into(),
        Some(answers),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    send(
        reqwest::Method::GET,
        format!("/fhir/AuditEvent?patient={jonas}"),
        None,
        vec![],
    )
    .await;
    // A token that is refused.
    let refused = client
        .get(format!("{base}/fhir/CarePlan?patient={gunnar}"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();

    // The log says what happened...
    if format == "json" {
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
        assert!(requests.len() >= 15, "one line per request:\n{text}");
        for r in &requests {
            assert!(
                r["method"].is_string()
                    && r["route"].is_string()
                    && r["status"].is_u64()
                    && r["ms"].is_u64()
                    && r["level"] == "INFO"
                    && r["timestamp"].is_string(),
                "{r}"
            );
        }
        assert!(
            requests
                .iter()
                .any(|r| r["status"] == 422 || r["status"] == 400),
            "{text}"
        );
        assert!(
            requests
                .iter()
                .any(|r| r["route"] == "/fhir/{kind}/{id}" && r["method"] == "PUT"),
            "the route template, not the path: {text}"
        );
    } else {
        let requests = text
            .lines()
            .filter(|l| l.contains("request") && l.contains("route="))
            .count();
        assert!(requests >= 15, "one line per request:\n{text}");
        assert!(
            text.contains("status=422") || text.contains("status=400"),
            "{text}"
        );
    }
    // ...and nothing personal.
    let leaks: Vec<&String> = secrets
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .collect();
    assert!(leaks.is_empty(), "personal data in the log: {leaks:?}");
}
