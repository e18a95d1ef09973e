//! FHIR R4 rest-hook Subscriptions: a portal is told when a person's contract changes,
//! through the sync queue, and only about that person; on SQLite and PostgreSQL, with a
//! real receiver on a socket.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use common::app::spawn_state;
use common::fhir::send;
use common::peer::settings;
use common::{TestDb, fixture};
use pkgw::api::{AppState, Limits};
use pkgw::store::Change;
use pkgw::sync::Engine;
use pkgw::sync::outbound::SubscriptionSettings;
use serde_json::{Value, json};

/// What the portal's endpoint received: method, path, the X-Portal-Key header, body.
type Received = Arc<Mutex<Vec<(String, String, Option<String>, Value)>>>;

/// A portal's notification endpoint; paths under `/borta` answer 410, `/flytta` redirects
/// to `/flyttad`.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let key = headers
                    .get("x-portal-key")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                log.lock()
                    .unwrap()
                    .push((method.to_string(), uri.path().to_owned(), key, body));
                if uri.path().starts_with("/borta") {
                    StatusCode::GONE.into_response()
                } else if uri.path().starts_with("/flytta") {
                    (StatusCode::FOUND, [("location", "/flyttad")]).into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

/// The operator allows the portal's endpoint (`base`, an IP literal) and its key header.
fn allowing(base: &str) -> SubscriptionSettings {
    SubscriptionSettings {
        allowed_endpoints: vec![format!("{base}/")],
        allowed_headers: vec!["X-Portal-Key".into()],
        patient_tokens: false,
    }
}

fn subscription(criteria: &str, endpoint: &str, payload: bool) -> Value {
    let mut channel =
        json!({ "type": "rest-hook", "endpoint": endpoint, "header": ["X-Portal-Key: portal-1"] });
    if payload {
        channel["payload"] = "application/fhir+json".into();
    }
    json!({ "resourceType": "Subscription", "status": "requested", "reason": "Portalen visar planen", "criteria": criteria, "channel": channel })
}

async fn a_portal_is_told_of_its_persons_changes_only(db: &TestDb) {
    let store = db.store().await;
    let (portal, received) = receiver().await;
    let state = AppState::new(store.clone()).with_subscriptions(allowing(&portal));
    let app = spawn_state(state, Limits::default()).await;
    let engine = Engine::new(store.clone(), Vec::new(), settings())
        .unwrap()
        .with_subscriptions(allowing(&portal));
    let watched = fixture("hjartsvikt-primarvard");
    let person = watched.patient.id.to_string();

    let created = send(
        &app,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&subscription(
            &format!("CarePlan?patient={person}"),
            &format!("{portal}/hook"),
            true,
        )),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "active");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        created
            .header("location")
            .unwrap()
            .ends_with(&format!("/fhir/Subscription/{id}"))
    );
    let mut websocket = subscription(&format!("CarePlan?patient={person}"), &portal, true);
    websocket["channel"]["type"] = "websocket".into();
    let refused = send(
        &app,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&websocket),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.body["issue"][0]["expression"][0],
        "Subscription.channel.type"
    );
    let bad_criteria = send(
        &app,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&subscription("Observation?code=x", &portal, true)),
    )
    .await;
    assert_eq!(
        bad_criteria.body["issue"][0]["expression"][0],
        "Subscription.criteria"
    );

    let record = store
        .create(watched, Change::from_source("api"))
        .await
        .unwrap();
    store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    {
        let got = received.lock().unwrap();
        assert_eq!(
            got.len(),
            1,
            "one notification, for the watched person only: {got:?}"
        );
        let (method, path, auth, body) = &got[0];
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("PUT", format!("/hook/CarePlan/{}", record.id).as_str())
        );
        assert_eq!(auth.as_deref(), Some("portal-1"));
        assert_eq!(body["resourceType"], "CarePlan");
        assert_eq!(body["meta"]["versionId"], "1");
    }
    let mut next = record.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att kunna gå på bio".into());
    let record = common::next_version(&store, &record, next).await;
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        received.lock().unwrap().last().unwrap().3["meta"]["versionId"],
        "2"
    );

    // Off: no more notifications.
    let deleted = send(
        &app,
        Method::DELETE,
        &format!("/fhir/Subscription/{id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(
            &app,
            Method::GET,
            &format!("/fhir/Subscription/{id}"),
            &[],
            None
        )
        .await
        .status,
        StatusCode::GONE
    );
    let mut next = record.revision.contract.clone();
    next.agreement.what_matters.push("Att kunna simma".into());
    common::next_version(&store, &record, next).await;
    engine.run_until_idle().await.unwrap();
    assert_eq!(received.lock().unwrap().len(), 2);
}

async fn a_subscriber_that_refuses_puts_the_subscription_in_error(db: &TestDb) {
    let store = db.store().await;
    let (portal, received) = receiver().await;
    let state = AppState::new(store.clone()).with_subscriptions(allowing(&portal));
    let app = spawn_state(state, Limits::default()).await;
    let engine = Engine::new(store.clone(), Vec::new(), settings())
        .unwrap()
        .with_subscriptions(allowing(&portal));
    let contract = fixture("cancer-min-vardplan");
    let person = contract.patient.id.to_string();
    // Without a payload: an empty POST says "look again".
    let ping = send(
        &app,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&subscription(
            &format!("Appointment?patient={person}"),
            &format!("{portal}/ping"),
            false,
        )),
    )
    .await;
    assert_eq!(ping.status, StatusCode::CREATED);
    let gone = send(
        &app,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&subscription(
            &format!("CarePlan?patient={person}"),
            &format!("{portal}/borta"),
            true,
        )),
    )
    .await;
    let gone_id = gone.body["id"].as_str().unwrap().to_owned();
    store
        .create(contract, Change::from_source("api"))
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let got = received.lock().unwrap().clone();
    assert!(
        got.iter()
            .any(|(m, p, _, b)| m == "POST" && p == "/ping" && b.is_null()),
        "{got:?}"
    );
    let status = send(
        &app,
        Method::GET,
        &format!("/fhir/Subscription/{gone_id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(status.body["status"], "error", "{}", status.body);
    // The subscriber learns that delivery failed, not what the endpoint answered.
    let error = status.body["error"].as_str().unwrap();
    assert!(
        error.contains("could not be delivered") && !error.contains("410"),
        "{error}"
    );
    let listed = send(&app, Method::GET, "/fhir/Subscription", &[], None).await;
    assert_eq!(listed.body["total"], 2);
}

/// The gateway calls out only where the operator allows: nothing when nothing is
/// allowed; not a host name that resolves to a private address; no caller-chosen
/// credentials or Host header; no redirect followed. The receiver must get nothing it
/// was not meant to.
async fn notifications_go_only_where_the_operator_allows(db: &TestDb) {
    let store = db.store().await;
    let (portal, received) = receiver().await;
    let person = fixture("psykiatri-sip").patient.id.to_string();
    let criteria = format!("CarePlan?patient={person}");

    // Nothing allowed (the default): refused, naming the endpoint.
    let closed = spawn_state(AppState::new(store.clone()), Limits::default()).await;
    let refused = send(
        &closed,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&subscription(&criteria, &format!("{portal}/hook"), true)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["issue"][0]["expression"][0],
        "Subscription.channel.endpoint"
    );
    assert!(!refused.body.to_string().contains("could not connect"));

    // A host name the operator lists, but it resolves to loopback; the IP literal is
    // listed too, for the redirect below.
    let port = portal.rsplit(':').next().unwrap();
    let mut open = allowing(&portal);
    open.allowed_endpoints
        .push(format!("http://localhost:{port}/"));
    let app = spawn_state(
        AppState::new(store.clone()).with_subscriptions(open.clone()),
        Limits::default(),
    )
    .await;
    let engine = Engine::new(store.clone(), Vec::new(), settings())
        .unwrap()
        .with_subscriptions(open);
    for (header, at) in [
        ("Authorization: Bearer stolen", 0),
        ("Host: admin.internal", 0),
        ("X-Internal-Admin: true", 0),
    ] {
        let mut body = subscription(&criteria, &format!("{portal}/hook"), true);
        body["channel"]["header"] = json!([header]);
        let reply = send(&app, Method::POST, "/fhir/Subscription", &[], Some(&body)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{header}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["issue"][0]["expression"][0],
            format!("Subscription.channel.header[{at}]")
        );
    }
    let by_name = send(
        &app,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&subscription(
            &criteria,
            &format!("http://localhost:{port}/namn"),
            true,
        )),
    )
    .await;
    assert_eq!(by_name.status, StatusCode::CREATED, "{}", by_name.body);
    let redirected = send(
        &app,
        Method::POST,
        "/fhir/Subscription",
        &[],
        Some(&subscription(&criteria, &format!("{portal}/flytta"), false)),
    )
    .await;
    assert_eq!(
        redirected.status,
        StatusCode::CREATED,
        "{}",
        redirected.body
    );

    store
        .create(fixture("psykiatri-sip"), Change::from_source("api"))
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let got: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p, _, _)| p.clone())
        .collect();
    assert_eq!(
        got,
        ["/flytta"],
        "nothing by name, the redirect not followed"
    );
    for created in [by_name, redirected] {
        let id = created.body["id"].as_str().unwrap();
        let status = send(
            &app,
            Method::GET,
            &format!("/fhir/Subscription/{id}"),
            &[],
            None,
        )
        .await;
        assert_eq!(status.body["status"], "error", "{}", status.body);
        let error = status.body["error"].as_str().unwrap();
        assert!(
            !error.contains("302") && !error.contains("127.0.0.1"),
            "{error}"
        );
    }
}

on_both_backends!(
    a_portal_is_told_of_its_persons_changes_only,
    a_subscriber_that_refuses_puts_the_subscription_in_error,
    notifications_go_only_where_the_operator_allows,
);
