//! The native contract API over real sockets, on SQLite and PostgreSQL: status codes,
//! errors that name the field, ETags and If-Match, and that refused writes leave the
//! store as it was.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::{TestApp, spawn_app, spawn_app_with, spawn_state};
use common::{TestDb, fixture};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/contracts"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn put(app: &TestApp, id: &str, if_match: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = app
        .client
        .put(app.url(&format!("/api/contracts/{id}")))
        .json(body);
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    req.send().await.unwrap()
}

fn contract_json(name: &str) -> Value {
    serde_json::to_value(fixture(name)).unwrap()
}

/// The single issue of an error response, as (field, message).
async fn issue(response: reqwest::Response) -> (String, String) {
    let body: Value = response.json().await.unwrap();
    let issue = &body["error"]["issues"][0];
    (
        issue["field"].as_str().unwrap_or_default().to_owned(),
        issue["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn created(app: &TestApp, name: &str) -> String {
    let response = post(app, &contract_json(name)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn create_and_read_back(db: &TestDb) {
    let app = spawn_app(db).await;
    let response = post(&app, &contract_json("hjartsvikt-primarvard")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/contracts/{}", body["id"].as_str().unwrap())
    );
    assert_eq!(body["version"], 1);
    assert_eq!(body["contract"], contract_json("hjartsvikt-primarvard"));

    let read = app.client.get(app.url(&location)).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["etag"], "W/\"1\"");
    assert!(read.headers().contains_key("last-modified"));
    assert_eq!(read.json::<Value>().await.unwrap(), body);
}

async fn an_invalid_personnummer_is_refused_naming_the_field(db: &TestDb) {
    let app = spawn_app(db).await;
    let mut body = contract_json("ung-diabetes");
    body["patient"]["id"] = json!("20080615-9837");
    let response = post(&app, &body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (field, message) = issue(response).await;
    assert_eq!(field, "patient.id");
    assert!(message.contains("check digit"), "{message}");
    assert_eq!(db.count("contracts").await, 0);
}

async fn an_active_contract_without_next_step_is_refused(db: &TestDb) {
    let app = spawn_app(db).await;
    let mut body = contract_json("psykiatri-sip");
    body.as_object_mut().unwrap().remove("nextStep");
    let response = post(&app, &body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (field, message) = issue(response).await;
    assert_eq!(field, "nextStep");
    assert!(message.contains("next step"), "{message}");
    assert_eq!(
        (db.count("contracts").await, db.count("outbox").await),
        (0, 0)
    );
}

async fn overlapping_primary_contacts_are_refused_and_nothing_changes(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = created(&app, "hjartsvikt-primarvard").await;
    let mut body = contract_json("hjartsvikt-primarvard");
    let mut second = body["careContacts"][0].clone();
    second["id"] = json!("fvk-ny");
    second["period"] = json!({ "start": "2026-10-01T00:00:00Z" });
    body["careContacts"].as_array_mut().unwrap().push(second);
    let response = put(&app, &id, Some("W/\"1\""), &body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (field, message) = issue(response).await;
    assert_eq!(field, "careContacts[2].period");
    assert!(message.contains("overlap"), "{message}");
    let read: Value = app
        .client
        .get(app.url(&format!("/api/contracts/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["version"], 1);
    assert_eq!(db.count("contract_versions").await, 1);
}

async fn updates_need_the_current_version(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = created(&app, "eget-initiativ").await;
    let mut body = contract_json("eget-initiativ");
    body["agreement"]["whatMatters"]
        .as_array_mut()
        .unwrap()
        .push(json!("Att få tid hos samma läkare"));

    let response = put(&app, &id, None, &body).await;
    assert_eq!(response.status(), StatusCode::PRECONDITION_REQUIRED);
    let response = put(&app, &id, Some("yesterday"), &body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(issue(response).await.0, "If-Match");

    let response = put(&app, &id, Some("W/\"1\""), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "W/\"2\"");

    let mut stale = contract_json("eget-initiativ");
    stale["status"] = json!("revoked");
    let response = put(&app, &id, Some("W/\"1\""), &stale).await;
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 2"),
        "{error}"
    );
    let read: Value = app
        .client
        .get(app.url(&format!("/api/contracts/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (read["version"].clone(), read["contract"].clone()),
        (json!(2), body)
    );
}

async fn malformed_requests_get_clear_errors(db: &TestDb) {
    let app = spawn_app_with(
        db,
        pkgw::api::Limits {
            body_bytes: 64 * 1024,
            ..Default::default()
        },
    )
    .await;
    let url = app.url("/api/contracts");
    let not_json = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"status\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let text = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut typo = contract_json("ung-diabetes");
    typo["nxtStep"] = json!({ "description": "x" });
    let response = post(&app, &typo).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(issue(response).await.1.contains("nxtStep"));
    let bad_id = app
        .client
        .get(app.url("/api/contracts/not%20an%20id"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    let missing = app
        .client
        .get(app.url("/api/contracts/does-not-exist"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let wrong_method = app
        .client
        .delete(app.url("/api/contracts"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(db.count("contracts").await, 0);
}

async fn history_versions_and_search(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = created(&app, "cancer-min-vardplan").await;
    created(&app, "ung-diabetes").await;
    let mut body = contract_json("cancer-min-vardplan");
    body["nextStep"]["description"] = json!("Fjärde behandlingen");
    assert_eq!(
        put(&app, &id, Some("W/\"1\""), &body).await.status(),
        StatusCode::OK
    );

    let history: Value = app
        .client
        .get(app.url(&format!("/api/contracts/{id}/history")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let versions: Vec<i64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    let v1 = app
        .client
        .get(app.url(&format!("/api/contracts/{id}/versions/1")))
        .send()
        .await
        .unwrap();
    assert_eq!(v1.headers()["etag"], "W/\"1\"");
    assert_eq!(
        v1.json::<Value>().await.unwrap()["contract"],
        contract_json("cancer-min-vardplan")
    );
    let v3 = app
        .client
        .get(app.url(&format!("/api/contracts/{id}/versions/3")))
        .send()
        .await
        .unwrap();
    assert_eq!(v3.status(), StatusCode::NOT_FOUND);

    let found: Value = app
        .client
        .get(app.url("/api/contracts?patient=19520823-9813"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = found["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    let none = app
        .client
        .get(app.url("/api/contracts"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::BAD_REQUEST);
    assert_eq!(issue(none).await.0, "patient");
}

async fn health_and_readiness(db: &TestDb) {
    let app = spawn_app(db).await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready: Value = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    app.store.close().await;
    let not_ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// `/api/openapi.json` is OpenAPI 3.1 that an independent validator accepts, names every
/// route of the native API, and describes what the API really answers: real answers
/// validate against its schemas.
async fn the_openapi_document_describes_the_api(db: &TestDb) {
    let app = spawn_app(db).await;
    let spec: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for declared in pkgw::api::declared() {
        let documented = ["/api/contracts", "/contracts/", "/api/templates"]
            .iter()
            .any(|p| declared.path.starts_with(p));
        if documented {
            let method = declared.method.as_str().to_lowercase();
            assert!(
                spec["paths"][&declared.path][&method].is_object(),
                "{} {} is not in the OpenAPI document",
                declared.method,
                declared.path
            );
        }
    }
    let id = created(&app, "hjartsvikt-primarvard").await;
    let person = contract_json("hjartsvikt-primarvard")["patient"]["id"].clone();
    let answer = |path: String| {
        let (client, url) = (app.client.clone(), app.url(&path));
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut invalid = contract_json("hjartsvikt-primarvard");
    invalid["patient"]["id"] = "19400312-0000".into();
    let refused: Value = post(&app, &invalid).await.json().await.unwrap();
    let answers = [
        ("Record", answer(format!("/api/contracts/{id}")).await),
        (
            "History",
            answer(format!("/api/contracts/{id}/history")).await,
        ),
        (
            "SearchResult",
            answer(format!(
                "/api/contracts?patient={}",
                person.as_str().unwrap()
            ))
            .await,
        ),
        ("ErrorBody", refused),
    ];
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: &Value| {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, value.to_string()).unwrap();
        file
    };
    let spec_file = write("openapi", &spec);
    let pairs: Vec<String> = answers
        .iter()
        .map(|(schema, value)| format!("{schema}={}", write(schema, value).display()))
        .collect();
    let output = std::process::Command::new(common::test_openapi_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/check_openapi.py"
        ))
        .arg(&spec_file)
        .args(&pairs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(seen["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(seen["answers"].as_array().unwrap().len(), 4);
}

/// `/metrics` counts each request by method, route template and status as it is
/// answered, with its latency, in the OpenMetrics format — by template, never a path.
async fn metrics_count_requests_by_route_template_and_status(db: &TestDb) {
    let app = spawn_app(db).await;
    let id = created(&app, "hjartsvikt-primarvard").await;
    for path in [
        format!("/api/contracts/{id}"),
        format!("/api/contracts/{id}"),
        "/api/contracts/finns-inte".to_owned(),
    ] {
        app.client.get(app.url(&path)).send().await.unwrap();
    }
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let route = r#"method="GET",route="/api/contracts/{id}""#;
    for line in [
        format!(r#"pkgw_http_requests_total{{{route},status="200"}} 2"#),
        format!(r#"pkgw_http_requests_total{{{route},status="404"}} 1"#),
        r#"pkgw_http_requests_total{method="POST",route="/api/contracts",status="201"} 1"#
            .to_owned(),
        format!("pkgw_http_request_duration_seconds_count{{{route}}} 3"),
        "pkgw_contracts 1".to_owned(),
        // No sync runs here: the change waits in the outbox.
        "pkgw_sync_outbox 1".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(
        text.lines().any(
            |l| l.starts_with("pkgw_http_request_duration_seconds_bucket{")
                && l.contains(r#"le="+Inf""#)
        ),
        "{text}"
    );
    assert!(
        !text.contains(&id) && !text.contains("finns-inte"),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("# EOF"));
    // Each help text is one sentence (the encoder ends it with a full stop).
    assert!(
        text.lines()
            .all(|l| !l.starts_with("# HELP") || !l.ends_with("..")),
        "{text}"
    );
}

/// `/metrics` takes no token, and what it reads from the database counts rows (a million
/// contracts): it reads them at most once per `server.metrics_database_ms`, however often
/// it is scraped, and scrapes within the interval share the last reading; the requests it
/// counts as they are answered are not held back. With 0, every scrape reads.
async fn metrics_read_the_database_at_most_once_per_interval(db: &TestDb) {
    let store = db.store().await;
    let scrape = |app: &TestApp| {
        let url = app.url("/metrics");
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let contracts = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("pkgw_contracts "))
            .map(str::to_owned)
    };
    // An interval longer than the test: the second scrape shares the first's reading.
    let held = spawn_state(
        pkgw::api::AppState::new(store.clone())
            .with_metrics_database_interval(std::time::Duration::from_secs(3600)),
        pkgw::api::Limits::default(),
    )
    .await;
    assert_eq!(contracts(&scrape(&held).await).as_deref(), Some("0"));
    created(&held, "hjartsvikt-primarvard").await;
    let after = scrape(&held).await;
    assert_eq!(contracts(&after).as_deref(), Some("0"), "{after}");
    assert!(after.lines().any(|l| l == "pkgw_db_up 1"), "{after}");
    assert!(
        after.lines().any(|l| l
            == r#"pkgw_http_requests_total{method="POST",route="/api/contracts",status="201"} 1"#),
        "{after}"
    );
    // Read at every scrape.
    let live = spawn_state(
        pkgw::api::AppState::new(store).with_metrics_database_interval(std::time::Duration::ZERO),
        pkgw::api::Limits::default(),
    )
    .await;
    assert_eq!(contracts(&scrape(&live).await).as_deref(), Some("1"));
    created(&live, "hjartsvikt-primarvard").await;
    assert_eq!(contracts(&scrape(&live).await).as_deref(), Some("2"));
}

on_both_backends!(
    metrics_count_requests_by_route_template_and_status,
    metrics_read_the_database_at_most_once_per_interval,
    the_openapi_document_describes_the_api,
    create_and_read_back,
    an_invalid_personnummer_is_refused_naming_the_field,
    an_active_contract_without_next_step_is_refused,
    overlapping_primary_contacts_are_refused_and_nothing_changes,
    updates_need_the_current_version,
    malformed_requests_get_clear_errors,
    history_versions_and_search,
    health_and_readiness,
);
