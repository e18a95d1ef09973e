//! Sync against separate FHIR server processes (sekmet-fhir) playing the EHRs and the
//! portal, on SQLite and PostgreSQL: every change reaches the targets that should have it
//! and no other, survives a target being down, is never duplicated by a retry, is never
//! echoed to its origin, and a refused change becomes a dead letter that does not hold up
//! the others and can be replayed.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::peer::{
    Fault, FaultProxy, FhirPeer, assert_holds, engine, holds, settings, settle, target, unit_of,
};
use common::{TestDb, fixture};
use pkgw::fhir::Profile;
use pkgw::fhir::stored::resources_of;
use pkgw::store::Change;
use pkgw::sync::{AuthSettings, Engine, Mode, WriteBy, targets_from_settings};
use reqwest::StatusCode;

async fn a_change_reaches_every_target_that_should_have_it_and_no_other(db: &TestDb) {
    let store = db.store().await;
    let (primary_care, hospital, portal) = (
        FhirPeer::start().await,
        FhirPeer::start().await,
        FhirPeer::start().await,
    );
    let contract = fixture("hjartsvikt-primarvard");
    let mut cosmic = target("vardcentral", &primary_care.base, &[&unit_of(&contract)]);
    cosmic.profile = "cosmic".into();
    let engine = engine(
        &store,
        &[
            cosmic,
            target("sjukhus", &hospital.base, &["SE2321000016-0000"]),
            target("portal", &portal.base, &[]),
        ],
    );
    let record = store
        .create(contract, Change::from_source("api"))
        .await
        .unwrap();
    settle(&engine, &store).await;
    assert_holds(
        &primary_care,
        &record,
        &Profile::built_in("cosmic").unwrap(),
    )
    .await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
    let (status, _) = hospital.get(&format!("CarePlan/{}", record.id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not the hospital's contract");

    // The next version: an agreed time is removed, and the targets' copies follow.
    let mut next = record.revision.contract.clone();
    let removed = next.agreed_times.remove(0);
    next.agreement
        .what_matters
        .push("Att kunna gå till affären".into());
    let record = common::next_version(&store, &record, next).await;
    settle(&engine, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
    let removed = pkgw::fhir::appointment_id(&record.id, &removed.id);
    let (status, _) = portal.get(&format!("Appointment/{removed}")).await;
    assert!(
        matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE),
        "the removed agreed time is deleted at the target: {status}"
    );
    let status = store.queue_status("portal").await.unwrap();
    assert_eq!((status.delivered, status.dead_letters), (1, 0));
    // Dispatched, a change leaves the outbox: it stays small however long the gateway runs.
    assert_eq!(db.count("outbox").await, 0);
}

/// A change committed in the process that runs the sync engine goes out at once, not at
/// the next poll: with the poll an hour apart, a new contract and then its next version
/// reach the target within seconds.
async fn a_change_made_here_goes_out_without_waiting_for_the_poll(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let mut slow = settings();
    slow.poll_interval_ms = 3_600_000;
    let engine = std::sync::Arc::new(
        Engine::new(
            store.clone(),
            targets_from_settings(&[target("portal", &portal.base, &[])]).unwrap(),
            slow,
        )
        .unwrap(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(engine.clone().run(stopped));
    let arrives = |record: pkgw::store::Record| {
        let portal = &portal;
        async move {
            let path = format!("CarePlan/{}", record.id);
            let version = record.revision.version.get().to_string();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (status, plan) = portal.get(&path).await;
                let theirs = &plan["meta"]["versionId"];
                let ours = resources_of(&record, &Profile::default_profile());
                if status == StatusCode::OK && holds(&plan, &ours.care_plan) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "version {version} did not arrive before the poll (the target has {theirs})"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let record = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    arrives(record.clone()).await;
    let mut next = record.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att kunna gå till affären".into());
    let record = common::next_version(&store, &record, next).await;
    arrives(record).await;
    stop.send(true).unwrap();
    running.await.unwrap();
}

/// One target is down while 10 000 changes (100 contracts, 100 changes each) accumulate;
/// another keeps getting them. The backlog is one row per contract (coalesced), with its
/// size and age in `pkgw sync status`'s figures and in `/metrics`. When the target is
/// back it takes 100 requests a second and says so with 429 `Retry-After`: the backlog
/// drains at that rate (the gateway holds off the whole target when asked, rather than
/// meeting the limit contract after contract), `/metrics` shows it shrinking throughout,
/// and the target ends with each contract's latest version, one copy of each.
async fn a_long_outage_of_one_target_drains_coalesced_at_the_rate_it_takes(db: &TestDb) {
    const CONTRACTS: usize = 100;
    const CHANGES: usize = 100;
    const RATE: usize = 100;
    let store = db.store().await;
    let (journal, portal) = (FhirPeer::start().await, FhirPeer::start().await);
    let proxy = FaultProxy::start(&portal.base).await;
    let down = Fault::Status {
        status: 503,
        retry_after: None,
    };
    proxy.inject("/fhir", down, usize::MAX);
    // Answers are not lost here (that is tested apart): the peer may be slow under load.
    let settings = pkgw::sync::SyncSettings {
        request_timeout_secs: 20,
        lease_secs: 60,
        ..common::peer::settings()
    };
    let targets = [
        target("journal", &journal.base, &[]),
        target("portal", &proxy.base, &[]),
    ];
    let engine = Engine::new(
        store.clone(),
        targets_from_settings(&targets).unwrap(),
        settings.clone(),
    )
    .unwrap();
    let mut latest = Vec::new();
    for (n, (_, contract)) in pkgw::demo::contracts()
        .unwrap()
        .into_iter()
        .cycle()
        .take(CONTRACTS)
        .enumerate()
    {
        let id = pkgw::domain::ContractId::parse(&format!("avbrott-{n:03}")).unwrap();
        let record = store
            .create_with_id(id, contract, Change::from_source("api"))
            .await
            .unwrap();
        latest.push(record);
    }
    for change in 1..CHANGES {
        let updates = latest.iter().map(|record| {
            let mut next = record.revision.contract.clone();
            next.agreement.what_matters = vec![format!("Steg {change}")];
            common::next_version(&store, record, next)
        });
        latest = futures_util::future::join_all(updates).await;
        if change % 25 == 0 {
            engine.run_until_idle().await.unwrap();
        }
    }
    engine.run_until_idle().await.unwrap();

    // The journal kept up; the portal's backlog is one row per contract, waiting.
    let journal_status = store.queue_status("journal").await.unwrap();
    assert_eq!(journal_status.queued, 0, "{journal_status:?}");
    for record in latest.iter().step_by(17) {
        assert_holds(&journal, record, &Profile::default_profile()).await;
    }
    let backlog = store.queue_status("portal").await.unwrap();
    assert_eq!(backlog.queued, CONTRACTS as u64, "coalesced: {backlog:?}");
    assert!(
        backlog.oldest.is_some() && backlog.last_error.is_some(),
        "{backlog:?}"
    );
    let state = pkgw::api::AppState::new(store.clone())
        .with_sync(vec!["journal".into(), "portal".into()], None);
    let app = common::app::spawn_state(state, pkgw::api::Limits::default()).await;
    let scrape = || async {
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
        let metrics = metrics.text().await.unwrap();
        let value = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}{{target=\"portal\"}} ")))
                .and_then(|v| v.parse::<f64>().ok())
        };
        (
            value("pkgw_sync_queued"),
            value("pkgw_sync_oldest_queued_seconds"),
        )
    };
    let (queued, age) = scrape().await;
    assert_eq!(queued, Some(CONTRACTS as f64));
    assert!(
        age.is_some_and(|age| age > 0.0),
        "the backlog's age: {age:?}"
    );

    // Back, at the rate it takes: drained by the engine as `pkgw serve` runs it, while
    // `/metrics` is read throughout.
    proxy.limit(RATE);
    proxy.heal();
    let before = proxy.seen.lock().unwrap().len();
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(
        std::sync::Arc::new(
            Engine::new(
                store.clone(),
                targets_from_settings(&targets).unwrap(),
                settings.clone(),
            )
            .unwrap(),
        )
        .run(stopped),
    );
    let mut seen_queued = Vec::new();
    loop {
        let (queued, _) = scrape().await;
        let queued = queued.expect("the backlog is in /metrics throughout");
        seen_queued.push(queued);
        if queued == 0.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "did not drain: {seen_queued:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    stop.send(true).unwrap();
    running.await.unwrap();
    assert!(
        seen_queued.windows(2).all(|w| w[1] <= w[0]),
        "the backlog only shrinks: {seen_queued:?}"
    );
    assert!(seen_queued.len() > 2, "seen draining: {seen_queued:?}");
    // Held off when asked: a 429 at most for each delivery under way when the target
    // first said so, once a second — not one for every contract in the backlog.
    let throttled = proxy.throttled();
    let windows = took.as_secs() as usize + 1;
    assert!(
        throttled <= 2 * settings.concurrency * windows,
        "{throttled} requests over the limit in {took:?}"
    );
    for record in &latest {
        assert_holds(&portal, record, &Profile::default_profile()).await;
    }
    // Coalesced: one version per contract went out, not its hundred steps.
    let seen = proxy.seen.lock().unwrap()[before..].to_vec();
    let plans = seen
        .iter()
        .filter(|r| r.starts_with("PUT /fhir/CarePlan/"))
        .count();
    assert!(
        plans >= CONTRACTS && plans <= CONTRACTS + throttled,
        "{plans} CarePlan writes for {CONTRACTS} contracts ({throttled} refused)"
    );
    let (_, found) = portal.get("CarePlan?_summary=count").await;
    assert_eq!(found["total"], CONTRACTS, "one copy of each");
    let dead = store.queue_status("portal").await.unwrap().dead_letters;
    assert_eq!(dead, 0);
}

/// A collector of OTLP/HTTP JSON spans, on its own port: what it has received, and a
/// wait for a span with a name.
struct Collector {
    base: String,
    spans: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
}

impl Collector {
    async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (spans, arrived) = (
            std::sync::Arc::<std::sync::Mutex<Vec<serde_json::Value>>>::default(),
            std::sync::Arc::<tokio::sync::Notify>::default(),
        );
        let (kept, told) = (spans.clone(), arrived.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    assert_eq!(headers["content-type"], "application/json");
                    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    for resource in request["resourceSpans"].as_array().unwrap() {
                        let service = &resource["resource"]["attributes"][0];
                        assert_eq!(service["key"], "service.name");
                        for scope in resource["scopeSpans"].as_array().unwrap() {
                            let spans = scope["spans"].as_array().unwrap();
                            kept.lock().unwrap().extend(spans.iter().cloned());
                        }
                    }
                    told.notify_waiters();
                    "{}"
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Collector {
            base,
            spans,
            arrived,
        }
    }

    /// The first span whose name starts with `name`, waiting for it (at most 20 s).
    async fn span(&self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let arrived = self.arrived.notified();
            let found = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name)))
                .cloned();
            if let Some(span) = found {
                return span;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                tokio::time::timeout(left, arrived).await.is_ok(),
                "no span {name}: {:?}",
                self.spans.lock().unwrap()
            );
        }
    }
}

/// An EHR's request carries a W3C `traceparent`; with traces sent to an OTLP collector,
/// the request is a server span under the EHR's span, the delivery of the change it made
/// a client span under the request's, and every sync call of that delivery carries the
/// delivery span's `traceparent`. With tracing off, the EHR's own `traceparent` still
/// reaches the sync calls, as it came.
async fn an_ehrs_trace_runs_through_the_write_to_the_sync_calls_it_causes(db: &TestDb) {
    const EHR_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const EHR_SPAN: &str = "b7ad6b7169203331";
    let store = db.store().await;
    let collector = Collector::start().await;
    let tracer = pkgw::trace::Tracer::start(&pkgw::trace::TraceSettings {
        otlp_endpoint: collector.base.clone(),
        service_name: "pkgw-test".into(),
    })
    .unwrap();
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let engine = engine(&store, &[target("portal", &proxy.base, &[])]).with_tracer(tracer.clone());
    let state = pkgw::api::AppState::new(store.clone()).with_tracer(tracer);
    let app = common::app::spawn_state(state, pkgw::api::Limits::default()).await;
    let created = app
        .client
        .post(app.url("/api/contracts"))
        .header("traceparent", format!("00-{EHR_TRACE}-{EHR_SPAN}-01"))
        .json(&fixture("ung-diabetes"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    settle(&engine, &store).await;

    let request = collector.span("POST /api/contracts").await;
    assert_eq!(request["traceId"], EHR_TRACE);
    assert_eq!(request["parentSpanId"], EHR_SPAN, "under the EHR's span");
    assert_eq!(request["kind"], 2, "server");
    let request_span = request["spanId"].as_str().unwrap();
    assert_ne!(request_span, EHR_SPAN);
    let status = request["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "http.response.status_code")
        .unwrap();
    assert_eq!(status["value"]["intValue"], "201");

    let delivery = collector.span("sync deliver portal").await;
    assert_eq!(delivery["traceId"], EHR_TRACE, "the same trace");
    assert_eq!(delivery["parentSpanId"], request_span, "under the request");
    assert_eq!(delivery["kind"], 3, "client");
    assert_eq!(delivery["status"]["code"], 1);
    let delivery_span = delivery["spanId"].as_str().unwrap();
    let sent = proxy.traceparents.lock().unwrap().clone();
    assert!(!sent.is_empty());
    let expected = format!("00-{EHR_TRACE}-{delivery_span}-01");
    assert!(
        sent.iter().all(|t| t.as_deref() == Some(expected.as_str())),
        "every sync call carries the delivery's span: {sent:?}"
    );

    // Tracing off: nothing recorded, the EHR's traceparent carried on as it came.
    let before = proxy.traceparents.lock().unwrap().len();
    let untraced = common::app::spawn_state(
        pkgw::api::AppState::new(store.clone()),
        pkgw::api::Limits::default(),
    )
    .await;
    let ehr = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let created = untraced
        .client
        .post(untraced.url("/api/contracts"))
        .header("traceparent", ehr)
        .json(&fixture("cancer-min-vardplan"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let quiet = common::peer::engine(&store, &[target("portal", &proxy.base, &[])]);
    settle(&quiet, &store).await;
    let sent = proxy.traceparents.lock().unwrap()[before..].to_vec();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|t| t.as_deref() == Some(ehr)), "{sent:?}");
    let spans = collector.spans.lock().unwrap();
    assert!(
        !spans
            .iter()
            .any(|s| s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"),
        "nothing recorded with tracing off"
    );
}

/// A target that is down is not sent every queued contract again and again: after the
/// first failures the engine holds off the whole target, then tries one contract at a
/// time, backing off, until one gets through — so over the outage it makes fewer
/// requests than there are contracts waiting, and when the target is back the backlog
/// goes at once, not after each contract's own backoff.
async fn a_target_that_is_down_is_probed_not_hammered(db: &TestDb) {
    const CONTRACTS: usize = 40;
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let down = Fault::Status {
        status: 503,
        retry_after: None,
    };
    proxy.inject("/fhir", down, usize::MAX);
    let engine = engine(&store, &[target("portal", &proxy.base, &[])]);
    let contracts = pkgw::demo::contracts().unwrap();
    let mut records = Vec::new();
    for (_, contract) in contracts.into_iter().cycle().take(CONTRACTS) {
        records.push(
            store
                .create(contract, Change::from_source("api"))
                .await
                .unwrap(),
        );
    }
    // Two seconds of outage, the engine running as often as it likes.
    let outage = Instant::now() + Duration::from_secs(2);
    while Instant::now() < outage {
        engine.run_until_idle().await.unwrap();
        tokio::task::yield_now().await;
    }
    let tried = proxy.seen.lock().unwrap().len();
    assert!(
        (1..CONTRACTS).contains(&tried),
        "{tried} requests to a target that is down, for {CONTRACTS} contracts"
    );
    assert_eq!(
        store.queue_status("portal").await.unwrap().queued,
        CONTRACTS as u64
    );

    proxy.heal();
    settle(&engine, &store).await;
    for record in records.iter().step_by(7) {
        assert_holds(&portal, record, &Profile::default_profile()).await;
    }
}

async fn a_target_that_was_down_gets_the_latest_version_when_back(db: &TestDb) {
    let store = db.store().await;
    let mut portal = FhirPeer::start().await;
    let engine = engine(&store, &[target("portal", &portal.base, &[])]);
    portal.stop();
    let record = store
        .create(fixture("cancer-min-vardplan"), Change::from_source("api"))
        .await
        .unwrap();
    let mut latest = record.clone();
    for n in 0..3 {
        let mut next = latest.revision.contract.clone();
        next.agreement.what_matters.push(format!("Mål {n}"));
        latest = common::next_version(&store, &latest, next).await;
        engine.run_until_idle().await.unwrap();
    }
    let status = store.queue_status("portal").await.unwrap();
    assert_eq!(status.queued, 1, "four versions, one queued delivery");
    assert!(
        status.retrying == 1 && status.last_error.is_some(),
        "{status:?}"
    );

    portal.resume().await;
    settle(&engine, &store).await;
    assert_holds(&portal, &latest, &Profile::default_profile()).await;
    assert_eq!(
        portal.versions(&format!("CarePlan/{}", record.id)).await,
        1,
        "superseded versions were not sent one by one"
    );
}

async fn a_lost_answer_is_retried_without_a_duplicate(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let record = store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();
    // The target applies the CarePlan, but its answer never arrives in time.
    proxy.inject(
        &format!("PUT /fhir/CarePlan/{}", record.id),
        Fault::LoseAnswer {
            hold: Duration::from_secs(2),
        },
        1,
    );
    let engine = engine(&store, &[target("portal", &proxy.base, &[])]);
    settle(&engine, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
    let (_, found) = portal.get(&format!("CarePlan?_id={}", record.id)).await;
    assert_eq!(found["total"], 1, "one CarePlan, not two");
    let puts = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("PUT") && r.contains("/CarePlan/"))
        .count();
    assert_eq!(puts, 2, "written, answer lost, written again");
}

/// A first delivery whose answer was lost left a copy at the target without the gateway
/// knowing its version; someone edits that copy before the retry. The retry reads the
/// copy first, sees it is not the gateway's, and does not overwrite it unseen.
async fn a_retry_reads_a_copy_it_has_no_version_of_before_writing(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let record = store
        .create(fixture("ung-diabetes"), Change::from_source("api"))
        .await
        .unwrap();
    let plan = format!("CarePlan/{}", record.id);
    proxy.inject(
        &format!("PUT /fhir/{plan}"),
        Fault::LoseAnswer {
            hold: Duration::from_secs(2),
        },
        1,
    );
    let mut later = settings();
    later.backoff_initial_ms = 1000; // the retry comes after the edit below
    let engine = Engine::new(
        store.clone(),
        targets_from_settings(&[target("portal", &proxy.base, &[])]).unwrap(),
        later,
    )
    .unwrap();
    engine.run_until_idle().await.unwrap();
    assert_eq!(store.queue_status("portal").await.unwrap().retrying, 1);
    let (_, mut theirs) = portal.get(&plan).await;
    theirs["title"] = "Ändrad i journalen".into();
    assert!(portal.put(&plan, &theirs).await.is_success());

    settle(&engine, &store).await;
    let letters = store.dead_letters(Some("portal")).await.unwrap();
    assert_eq!(letters.len(), 1, "a conflict, for a person to resolve");
    assert_eq!(letters[0].status, Some(412));
    let (_, still) = portal.get(&plan).await;
    assert_eq!(
        still["title"], "Ändrad i journalen",
        "not overwritten unseen"
    );
}

async fn a_refused_change_is_a_dead_letter_that_holds_up_nothing(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let refused = store
        .create(fixture("psykiatri-sip"), Change::from_source("api"))
        .await
        .unwrap();
    let fine = store
        .create(fixture("eget-initiativ"), Change::from_source("api"))
        .await
        .unwrap();
    proxy.inject(
        refused.id.as_str(),
        Fault::Refuse {
            diagnostics: "CareTeam.participant: unknown role",
        },
        usize::MAX,
    );
    let engine = engine(&store, &[target("portal", &proxy.base, &[])]);
    settle(&engine, &store).await;
    assert_holds(&portal, &fine, &Profile::default_profile()).await;
    let letters = store.dead_letters(Some("portal")).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].contract_id, refused.id);
    assert_eq!(letters[0].status, Some(400));
    assert!(
        letters[0].error.contains("unknown role"),
        "{}",
        letters[0].error
    );
    assert_eq!(
        letters[0].outcome.as_ref().unwrap()["resourceType"],
        "OperationOutcome"
    );

    // The operator sees it at /metrics.
    let engine = std::sync::Arc::new(engine);
    let state = pkgw::api::AppState::new(store.clone())
        .with_sync(vec!["portal".into()], Some(engine.clone()));
    let app = common::app::spawn_state(state, pkgw::api::Limits::default()).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "pkgw_contracts 2",
        "pkgw_sync_outbox 0",
        "pkgw_sync_queued{target=\"portal\"} 0",
        "pkgw_sync_dead_letters{target=\"portal\"} 1",
        "pkgw_sync_delivered_contracts{target=\"portal\"} 1",
        "pkgw_sync_delivered_total{target=\"portal\"} 1",
        "pkgw_sync_dead_lettered_total{target=\"portal\"} 1",
        "pkgw_sync_delivery_latency_seconds_count{target=\"portal\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    // The database pools, by use.
    for pool in ["writer", "reader"] {
        for gauge in [
            format!("pkgw_db_max_connections{{pool=\"{pool}\"}} "),
            format!("pkgw_db_connections{{pool=\"{pool}\",state=\"idle\"}} "),
            format!("pkgw_db_connections{{pool=\"{pool}\",state=\"in_use\"}} "),
        ] {
            assert!(
                metrics.lines().any(|l| l.starts_with(&gauge)),
                "{gauge} in\n{metrics}"
            );
        }
    }
    assert!(
        !metrics.contains("unknown role"),
        "the target's words stay out of metrics"
    );

    // Fixed at the target: the replayed change goes through.
    proxy.heal();
    assert_eq!(store.replay(Some("portal"), None).await.unwrap(), 1);
    settle(&engine, &store).await;
    assert_holds(&portal, &refused, &Profile::default_profile()).await;
    assert!(store.dead_letters(None).await.unwrap().is_empty());
}

async fn retry_after_is_honoured(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let record = store
        .create(fixture("eget-initiativ"), Change::from_source("api"))
        .await
        .unwrap();
    proxy.inject(
        "/fhir/",
        Fault::Status {
            status: 429,
            retry_after: Some(2),
        },
        1,
    );
    let engine = engine(&store, &[target("portal", &proxy.base, &[])]);
    let started = Instant::now();
    engine.run_until_idle().await.unwrap();
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        store.queue_status("portal").await.unwrap().retrying,
        1,
        "not due before the target's time"
    );
    settle(&engine, &store).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_holds(&portal, &record, &Profile::default_profile()).await;

    // Server errors are retried too, and the change gets through.
    let mut next = record.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att kunna baka bröd".into());
    let record = common::next_version(&store, &record, next).await;
    for status in [500, 503] {
        proxy.inject(
            "/fhir/",
            Fault::Status {
                status,
                retry_after: None,
            },
            1,
        );
    }
    settle(&engine, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
    assert!(store.dead_letters(None).await.unwrap().is_empty());
}

async fn a_change_is_never_sent_back_to_its_origin(db: &TestDb) {
    let store = db.store().await;
    let (ehr, portal) = (FhirPeer::start().await, FhirPeer::start().await);
    let ehr_proxy = FaultProxy::start(&ehr.base).await;
    let engine = engine(
        &store,
        &[
            target("journal", &ehr_proxy.base, &[]),
            target("portal", &portal.base, &[]),
        ],
    );
    let record = store
        .create(
            fixture("utskriven-fran-sjukhus"),
            Change::from_source("journal"),
        )
        .await
        .unwrap();
    settle(&engine, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
    assert!(
        ehr_proxy.seen.lock().unwrap().is_empty(),
        "nothing went back to the journal"
    );

    // A change made here goes to the journal too.
    let mut next = record.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att kunna cykla igen".into());
    let record = common::next_version(&store, &record, next).await;
    settle(&engine, &store).await;
    assert_holds(&ehr, &record, &Profile::default_profile()).await;
}

async fn a_copy_changed_at_the_target_is_not_overwritten_unseen(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let engine = engine(&store, &[target("portal", &portal.base, &[])]);
    let record = store
        .create(fixture("eget-initiativ"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&engine, &store).await;
    // Someone edits the target's copy directly.
    let path = format!("CarePlan/{}", record.id);
    let (_, mut theirs) = portal.get(&path).await;
    theirs["title"] = "Ändrad i journalen".into();
    assert!(portal.put(&path, &theirs).await.is_success());
    let mut next = record.revision.contract.clone();
    next.agreement.what_matters.push("Att sova bättre".into());
    let record = common::next_version(&store, &record, next).await;
    settle(&engine, &store).await;
    let letters = store.dead_letters(Some("portal")).await.unwrap();
    assert_eq!(letters.len(), 1, "a conflict, for a person to resolve");
    assert_eq!(letters[0].status, Some(412));
    let (_, still) = portal.get(&path).await;
    assert_eq!(
        still["title"], "Ändrad i journalen",
        "not overwritten unseen"
    );
    // Replaying is the decision that the gateway's copy wins.
    store.replay(None, None).await.unwrap();
    settle(&engine, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
}

async fn two_replicas_deliver_each_change_once(db: &TestDb) {
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let (store_a, store_b) = (db.store().await, db.store().await);
    let mut ids = Vec::new();
    for (n, (_, contract)) in pkgw::demo::contracts()
        .unwrap()
        .into_iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let id = pkgw::domain::ContractId::parse(&format!("replik-{n:02}")).unwrap();
        store_a
            .create_with_id(id.clone(), contract, Change::from_source("api"))
            .await
            .unwrap();
        ids.push(id);
    }
    let mut narrow = settings();
    narrow.batch_size = 2;
    narrow.concurrency = 1;
    let targets = || targets_from_settings(&[target("portal", &proxy.base, &[])]).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let replicas: Vec<_> = [store_a.clone(), store_b.clone()]
        .into_iter()
        .map(|store| {
            let engine =
                std::sync::Arc::new(Engine::new(store, targets(), narrow.clone()).unwrap());
            tokio::spawn(engine.run(stopped.clone()))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = store_a.queue_status("portal").await.unwrap();
        if status.delivered == ids.len() as u64 && status.queued == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    for r in replicas {
        r.await.unwrap();
    }
    let seen = proxy.seen.lock().unwrap().clone();
    for id in &ids {
        let puts = seen
            .iter()
            .filter(|r| *r == &format!("PUT /fhir/CarePlan/{id}"))
            .count();
        assert_eq!(
            puts, 1,
            "{id} delivered once, not by both replicas: {seen:?}"
        );
    }
}

/// A delivery so slow that its lease runs out: another worker takes the contract and
/// delivers the newer version, and only then does the slow delivery's write of the older
/// one reach the target. It names the version it replaces (`If-Match`), so the target
/// refuses it, and the gateway sees its own newer copy there: not a conflict. The slow
/// delivery, finding its claim taken, records nothing and has the contract delivered
/// once more. The target ends with the newest version, the gateway knows its version
/// there, and there is no dead letter.
async fn an_overtaken_delivery_is_not_a_conflict(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let targets = || targets_from_settings(&[target("portal", &proxy.base, &[])]).unwrap();
    let mut at_once = settings();
    at_once.lease_secs = 0; // a lease that has run out as soon as it is taken
    at_once.request_timeout_secs = 60; // and a worker that waits for its answer
    let slow = Engine::new(store.clone(), targets(), at_once).unwrap();
    let other = Engine::new(store.clone(), targets(), settings()).unwrap();

    let v1 = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&other, &store).await;
    let mut next = v1.revision.contract.clone();
    next.next_step.as_mut().unwrap().description = "Att orka läsa en bok".into();
    let older = common::next_version(&store, &v1, next).await;
    let gate = common::peer::Gate::default();
    let plan = format!("CarePlan/{}", v1.id);
    proxy.inject(&format!("PUT /fhir/{plan}"), Fault::Hold(gate.clone()), 1);
    let mut slow_run = tokio::spawn(async move { slow.run_until_idle().await });
    tokio::select! {
        () = gate.arrived() => {}
        done = &mut slow_run => panic!(
            "the slow delivery ended before writing the CarePlan: {done:?}, {:?}",
            store.queue_status("portal").await.unwrap()
        ),
    }

    let mut next = older.revision.contract.clone();
    next.next_step.as_mut().unwrap().description = "Att gå på teater".into();
    let newest = common::next_version(&store, &older, next).await;
    other.run_until_idle().await.unwrap();
    assert_holds(&portal, &newest, &Profile::default_profile()).await;
    gate.open();
    slow_run.await.unwrap().unwrap();
    settle(&other, &store).await;

    assert!(
        store.dead_letters(None).await.unwrap().is_empty(),
        "an overtaken delivery is not a conflict"
    );
    assert_holds(&portal, &newest, &Profile::default_profile()).await;
    let (known, _) = store.remote("portal", &v1.id).await.unwrap().unwrap();
    assert_eq!(
        known, newest.revision.version,
        "what the gateway knows the target holds"
    );
    // The gateway still knows the target's versions: a change made there now is not
    // overwritten unseen.
    let (_, mut theirs) = portal.get(&plan).await;
    theirs["title"] = "Ändrad i journalen".into();
    assert!(portal.put(&plan, &theirs).await.is_success());
    let mut next = newest.revision.contract.clone();
    next.next_step.as_mut().unwrap().description = "Att kunna gå till affären".into();
    common::next_version(&store, &newest, next).await;
    settle(&other, &store).await;
    assert_eq!(store.dead_letters(None).await.unwrap().len(), 1);
}

/// A write that does not name the version it replaces (the first to a target) is not
/// fenced by the target: a worker whose lease has run out does not send it, and the
/// contract waits for a worker with a lease.
async fn a_write_without_if_match_is_not_sent_after_the_lease(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let targets = || targets_from_settings(&[target("portal", &proxy.base, &[])]).unwrap();
    let mut at_once = settings();
    at_once.lease_secs = 0;
    let slow = Engine::new(store.clone(), targets(), at_once).unwrap();
    let record = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    slow.run_until_idle().await.unwrap();
    let status = store.queue_status("portal").await.unwrap();
    assert_eq!((status.queued, status.retrying), (1, 1), "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("lease"),
        "{status:?}"
    );
    assert!(
        proxy
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|r| !r.starts_with("PUT")),
        "nothing written"
    );
    let other = Engine::new(store.clone(), targets(), settings()).unwrap();
    settle(&other, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
}

async fn transaction_mode_sends_each_change_as_one_bundle(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    let mut bundled = target("portal", &proxy.base, &[]);
    bundled.mode = Mode::Transaction;
    let engine = engine(&store, &[bundled]);
    let record = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&engine, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
    let mut next = record.revision.contract.clone();
    let removed = next.agreed_times.remove(0);
    let record = common::next_version(&store, &record, next).await;
    settle(&engine, &store).await;
    assert_holds(&portal, &record, &Profile::default_profile()).await;
    let removed = pkgw::fhir::appointment_id(&record.id, &removed.id);
    let (status, _) = portal.get(&format!("Appointment/{removed}")).await;
    assert!(
        matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE),
        "{status}"
    );
    let seen = proxy.seen.lock().unwrap().clone();
    let writes: Vec<&String> = seen.iter().filter(|r| !r.starts_with("GET")).collect();
    assert_eq!(
        writes,
        ["POST /fhir", "POST /fhir"],
        "one transaction per version"
    );
    // Before the first, the copies it has no version of were read (none there yet);
    // after it, their versions are known.
    let first = seen.iter().position(|r| r == "POST /fhir").unwrap();
    assert!(
        seen[first + 1..].iter().all(|r| r == "POST /fhir"),
        "{seen:?}"
    );
}

async fn oauth2_tokens_are_fetched_once_and_sent(db: &TestDb) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let proxy = FaultProxy::start(&portal.base).await;
    // The authorization server: client credentials in, a token out.
    let issued = std::sync::Arc::new(AtomicUsize::new(0));
    let token_app = {
        let issued = issued.clone();
        axum::Router::new().route(
            "/token",
            axum::routing::post(move |body: String| {
                let issued = issued.clone();
                async move {
                    assert!(body.contains("grant_type=client_credentials"), "{body}");
                    assert!(body.contains("client_secret=hemligt"), "{body}");
                    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                    axum::Json(serde_json::json!({ "access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600 }))
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, token_app).await.unwrap() });

    let mut secured = target("portal", &proxy.base, &[]);
    secured.auth = AuthSettings::Oauth2 {
        token_url,
        client_id: "pkgw".into(),
        client_secret: pkgw::config::Secret::new("hemligt"),
        scope: Some("system/*.write".into()),
    };
    let engine = engine(&store, &[secured]);
    for name in ["eget-initiativ", "ung-diabetes"] {
        store
            .create(fixture(name), Change::from_source("api"))
            .await
            .unwrap();
    }
    settle(&engine, &store).await;
    let sent = proxy.authorizations.lock().unwrap().clone();
    assert!(sent.len() > 2);
    assert!(
        sent.iter().all(|a| a.as_deref() == Some("Bearer tok-1")),
        "{sent:?}"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 1, "the token is cached");
}

async fn verify_finds_what_differs_and_repair_fixes_it(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let engine = engine(&store, &[target("portal", &portal.base, &[])]);
    let mut records = Vec::new();
    for name in ["eget-initiativ", "ung-diabetes", "cancer-min-vardplan"] {
        records.push(
            store
                .create(fixture(name), Change::from_source("api"))
                .await
                .unwrap(),
        );
    }
    settle(&engine, &store).await;
    let clean = engine
        .verify("portal", false, &|| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!((clean.checked, clean.ok), (3, 3), "{clean:?}");

    let (tampered, lost, changed) = (&records[0], &records[1], &records[2]);
    let path = format!("CarePlan/{}", tampered.id);
    let (_, mut copy) = portal.get(&path).await;
    copy["title"] = "Ändrad av någon".into();
    assert!(portal.put(&path, &copy).await.is_success());
    assert!(
        portal
            .delete(&format!("CareTeam/{}", lost.id))
            .await
            .is_success()
    );
    let mut stranger = copy.clone();
    stranger["id"] = "okand".into();
    stranger["identifier"][0]["value"] = "okand".into();
    assert!(portal.put("CarePlan/okand", &stranger).await.is_success());
    let mut next = changed.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att orka arbeta halvtid".into());
    common::next_version(&store, changed, next).await;
    engine.dispatch().await.unwrap();

    let report = engine
        .verify("portal", true, &|| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.checked, 3);
    assert_eq!(report.differing, [tampered.id.to_string()]);
    assert_eq!(report.missing, [lost.id.to_string()]);
    assert_eq!(report.stale, [changed.id.to_string()]);
    assert_eq!(report.extra, ["okand"]);
    assert!(
        report.summary().contains("1 missing"),
        "{}",
        report.summary()
    );

    settle(&engine, &store).await;
    let repaired = engine
        .verify("portal", false, &|| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repaired.ok, 3, "{repaired:?}");
    assert!(
        repaired.missing.is_empty() && repaired.differing.is_empty() && repaired.stale.is_empty()
    );
    assert_eq!(
        repaired.extra,
        ["okand"],
        "not deleted: it may be someone else's"
    );
}

/// The journal edits its copy; the gateway's own change, meanwhile, is refused there
/// (412: the copy was changed there) and becomes a dead letter. The pull merges the
/// journal's edit with the gateway's change, and the journal gets the merged version:
/// nothing the gateway accepted stays missing there.
async fn a_merge_the_target_lacks_reaches_it_after_its_own_edit_was_pulled(db: &TestDb) {
    let store = db.store().await;
    let journal = FhirPeer::start().await;
    let engine = engine(&store, &[target("journal", &journal.base, &[])]);
    let record = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&engine, &store).await;
    let team = format!("CareTeam/{}", record.id);
    let (_, mut theirs) = journal.get(&team).await;
    theirs["participant"].as_array_mut().unwrap().truncate(1);
    assert!(journal.put(&team, &theirs).await.is_success());
    let mut next = record.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att kunna resa till Gotland".into());
    common::next_version(&store, &record, next).await;
    settle(&engine, &store).await;
    assert_eq!(
        store.dead_letters(None).await.unwrap().len(),
        1,
        "refused there"
    );

    let pulled = engine.pull("journal", None).await.unwrap().unwrap();
    assert_eq!(pulled.merged.len(), 1, "{pulled:?}");
    let merged = store.get(&record.id).await.unwrap();
    assert_eq!(merged.revision.contract.care_contacts.len(), 1);
    settle(&engine, &store).await;
    assert_holds(&journal, &merged, &Profile::default_profile()).await;
}

async fn pulled_changes_are_merged_and_the_loop_settles(db: &TestDb) {
    let store = db.store().await;
    let journal = FhirPeer::start().await;
    let engine = engine(&store, &[target("journal", &journal.base, &[])]);
    let record = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&engine, &store).await;
    let id = record.id.to_string();

    // In the journal, a care contact is removed; here, meanwhile, the agreement grows.
    let (_, mut team) = journal.get(&format!("CareTeam/{id}")).await;
    team["participant"].as_array_mut().unwrap().truncate(1);
    assert!(
        journal
            .put(&format!("CareTeam/{id}"), &team)
            .await
            .is_success()
    );
    let mut next = record.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att kunna resa till Gotland".into());
    common::next_version(&store, &record, next).await;

    let pulled = engine.pull("journal", None).await.unwrap().unwrap();
    assert_eq!(pulled.merged, std::slice::from_ref(&id), "{pulled:?}");
    let merged = store.get(&record.id).await.unwrap();
    assert_eq!(merged.revision.version.get(), 3);
    assert_eq!(merged.revision.change.source, "journal");
    assert_eq!(
        merged.revision.contract.care_contacts.len(),
        1,
        "the journal's edit"
    );
    assert!(
        merged
            .revision
            .contract
            .agreement
            .what_matters
            .contains(&"Att kunna resa till Gotland".to_owned()),
        "the gateway's edit"
    );
    // The journal lacks the gateway's edit: it gets the merged version.
    settle(&engine, &store).await;
    assert_holds(&journal, &merged, &Profile::default_profile()).await;
    // Its copy is now the gateway's own delivery: pulling again changes nothing.
    let again = engine.pull("journal", None).await.unwrap().unwrap();
    assert!(
        again.merged.is_empty() && again.conflicts.is_empty(),
        "{again:?}"
    );
    assert_eq!(
        store.get(&record.id).await.unwrap().revision.version.get(),
        3
    );

    // Both change the same goal: a conflict, nothing applied.
    let goal = format!("Goal/{id}-mal-1");
    let (_, mut theirs) = journal.get(&goal).await;
    theirs["description"]["text"] = "Att orka gå till kyrkan".into();
    assert!(journal.put(&goal, &theirs).await.is_success());
    let mut ours = merged.revision.contract.clone();
    ours.agreement.what_matters[0] = "Att orka gå till affären".into();
    store
        .update(
            &record.id,
            merged.revision.version,
            ours,
            Change::from_source("api"),
        )
        .await
        .unwrap();
    let conflicted = engine.pull("journal", None).await.unwrap().unwrap();
    assert_eq!(
        conflicted.conflicts,
        std::slice::from_ref(&id),
        "{conflicted:?}"
    );
    assert_eq!(
        store.get(&record.id).await.unwrap().revision.version.get(),
        4
    );
    let conflicts = store.conflicts().await.unwrap();
    assert_eq!(
        (conflicts[0].source.as_str(), conflicts[0].parts.clone()),
        ("journal", vec!["agreement".to_owned()])
    );
}

async fn two_gateways_through_a_shared_target_settle_without_echo(db: &TestDb) {
    let other = db.another().await;
    let (store_a, store_b) = (db.store().await, other.store().await);
    let shared = FhirPeer::start().await;
    let proxy = FaultProxy::start(&shared.base).await;
    let a = engine(&store_a, &[target("delad", &proxy.base, &[])]);
    let b = engine(&store_b, &[target("delad", &proxy.base, &[])]);
    let record = store_a
        .create(fixture("psykiatri-sip"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&a, &store_a).await;

    // B learns of the contract from the shared target, and does not send it back.
    let adopted = b.pull("delad", None).await.unwrap().unwrap();
    assert_eq!(adopted.merged, [record.id.to_string()], "{adopted:?}");
    let writes = |p: &FaultProxy| {
        p.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !r.starts_with("GET"))
            .count()
    };
    let before = writes(&proxy);
    settle(&b, &store_b).await;
    assert_eq!(writes(&proxy), before, "no echo to where it came from");

    // A change in B reaches A through the shared target, and A does not send it back.
    let in_b = store_b.get(&record.id).await.unwrap();
    let mut next = in_b.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att få sova ostört".into());
    store_b
        .update(
            &record.id,
            in_b.revision.version,
            next.clone(),
            Change::from_source("api"),
        )
        .await
        .unwrap();
    settle(&b, &store_b).await;
    let pulled = a.pull("delad", None).await.unwrap().unwrap();
    assert_eq!(pulled.merged, [record.id.to_string()], "{pulled:?}");
    let before = writes(&proxy);
    settle(&a, &store_a).await;
    assert_eq!(writes(&proxy), before, "no echo");

    // Settled: more rounds change nothing anywhere.
    for _ in 0..2 {
        for (engine, store) in [(&a, &store_a), (&b, &store_b)] {
            let report = engine.pull("delad", None).await.unwrap().unwrap();
            assert!(
                report.merged.is_empty() && report.conflicts.is_empty(),
                "{report:?}"
            );
            settle(engine, store).await;
        }
    }
    let (in_a, in_b) = (
        store_a.get(&record.id).await.unwrap(),
        store_b.get(&record.id).await.unwrap(),
    );
    assert_eq!(in_a.revision.contract, next);
    assert_eq!(in_b.revision.contract, next);
    assert_eq!(
        (in_a.revision.version.get(), in_b.revision.version.get()),
        (2, 2)
    );
    other.cleanup().await;
}

async fn conditional_update_by_identifier_writes_each_resource_once(db: &TestDb) {
    let store = db.store().await;
    let ehr = FhirPeer::start().await;
    let proxy = FaultProxy::start(&ehr.base).await;
    let mut by_identifier = target("journal", &proxy.base, &[]);
    by_identifier.write = WriteBy::Identifier;
    // This EHR cannot search CareTeams by identifier: it takes the rest.
    by_identifier.resources = vec!["Goal".into(), "CarePlan".into(), "Appointment".into()];
    let engine = engine(&store, &[by_identifier]);
    let record = store
        .create(fixture("hjartsvikt-primarvard"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&engine, &store).await;
    // Delivered again (a replay, a re-push): updates, never a second copy.
    store
        .queue_contracts("journal", std::slice::from_ref(&record.id), false)
        .await
        .unwrap();
    settle(&engine, &store).await;
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.starts_with(
            "PUT /fhir/CarePlan?identifier=https://pkgw.example/fhir/sid/patientkontrakt%7C"
        )),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.starts_with("PUT /fhir/Appointment?identifier=")
                && r.contains("&supporting-info=CarePlan/")),
        "{seen:?}"
    );
    let (_, plans) = ehr
        .get(&format!(
            "CarePlan?identifier=https://pkgw.example/fhir/sid/patientkontrakt|{}",
            record.id
        ))
        .await;
    assert_eq!(plans["total"], 1);
    let (_, times) = ehr
        .get(&format!(
            "Appointment?supporting-info=CarePlan/{}",
            record.id
        ))
        .await;
    assert_eq!(times["total"], record.revision.contract.agreed_times.len());
    let ours = resources_of(&record, &Profile::default_profile());
    let (_, plan) = ehr.get(&format!("CarePlan/{}", record.id)).await;
    assert!(holds(&plan, &ours.care_plan));
}

async fn a_write_that_was_never_recorded_is_not_a_conflict(db: &TestDb) {
    let store = db.store().await;
    let portal = FhirPeer::start().await;
    let engine = engine(&store, &[target("portal", &portal.base, &[])]);
    let v1 = store
        .create(fixture("eget-initiativ"), Change::from_source("api"))
        .await
        .unwrap();
    settle(&engine, &store).await;
    // Version 2 reaches the target, but the process dies before recording it: its copy
    // is the gateway's own, at a version the gateway does not know.
    let mut next = v1.revision.contract.clone();
    next.agreement
        .what_matters
        .push("Att orka läsa en bok".into());
    let v2 = common::next_version(&store, &v1, next).await;
    let plan = resources_of(&v2, &Profile::default_profile()).care_plan;
    assert!(
        portal
            .put(&format!("CarePlan/{}", v2.id), &plan)
            .await
            .is_success()
    );
    let mut next = v2.revision.contract.clone();
    next.agreement.what_matters.push("Att gå på teater".into());
    let v3 = common::next_version(&store, &v2, next).await;
    settle(&engine, &store).await;
    assert!(
        store.dead_letters(None).await.unwrap().is_empty(),
        "not a conflict"
    );
    assert_holds(&portal, &v3, &Profile::default_profile()).await;
}

on_both_backends!(
    a_write_that_was_never_recorded_is_not_a_conflict,
    a_change_made_here_goes_out_without_waiting_for_the_poll,
    conditional_update_by_identifier_writes_each_resource_once,
    two_gateways_through_a_shared_target_settle_without_echo,
    pulled_changes_are_merged_and_the_loop_settles,
    a_merge_the_target_lacks_reaches_it_after_its_own_edit_was_pulled,
    verify_finds_what_differs_and_repair_fixes_it,
    transaction_mode_sends_each_change_as_one_bundle,
    oauth2_tokens_are_fetched_once_and_sent,
    two_replicas_deliver_each_change_once,
    an_overtaken_delivery_is_not_a_conflict,
    a_write_without_if_match_is_not_sent_after_the_lease,
    a_change_reaches_every_target_that_should_have_it_and_no_other,
    a_target_that_was_down_gets_the_latest_version_when_back,
    a_long_outage_of_one_target_drains_coalesced_at_the_rate_it_takes,
    a_target_that_is_down_is_probed_not_hammered,
    an_ehrs_trace_runs_through_the_write_to_the_sync_calls_it_causes,
    a_lost_answer_is_retried_without_a_duplicate,
    a_retry_reads_a_copy_it_has_no_version_of_before_writing,
    a_refused_change_is_a_dead_letter_that_holds_up_nothing,
    retry_after_is_honoured,
    a_change_is_never_sent_back_to_its_origin,
    a_copy_changed_at_the_target_is_not_overwritten_unseen,
);
