//! `/metrics`: the gateway's state in the OpenMetrics text format (Prometheus reads it),
//! written by `prometheus-client`: requests by route template and status, with their
//! latencies, counted as they are answered; contracts stored and, per sync target, the
//! queue (depth, retrying, oldest wait, dead letters) read from the database at most once
//! per `server.metrics_database_ms` however often it is scraped (see [`DatabaseFigures`]),
//! and the database pools' connections in use; what this process delivered since
//! it started, with the time from each version's commit to its delivery. Labels hold route
//! templates, statuses, target names and kinds of failure — never a path, an id or a
//! target's own words, which may name a person.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{ApiError, AppState};
use crate::store::QueueStatus;

/// One kind of request: its method, route template and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// A route template, for latencies.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

/// A database connection pool, and whether its connections are in use or idle.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolName {
    pool: String,
}

/// A target's failing queue, by the kind of failure only.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    target: String,
    error: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// What the process counts as it answers: kept in the state, shared by every request.
#[derive(Debug)]
pub struct RequestMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 1 ms to about 16 s, doubling.
        let latency: Latency =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 15)));
        let mut registry = Registry::default();
        registry.register(
            "pkgw_http_requests",
            "Requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "pkgw_http_request_duration_seconds",
            "How long requests took to answer, by method and route template",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
        }
    }
}

impl RequestMetrics {
    /// Counts one answered request.
    pub fn observe(&self, method: &Method, route: &str, status: StatusCode, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_owned(),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

/// The figures `/metrics` reads from the database (contracts, outbox, each target's
/// queue), read at most once per interval however often it is scraped. `/metrics` takes
/// no token, and each reading counts rows — a million contracts, and as many delivered
/// per target — so without this a burst of scrapes would make the database count them
/// for each. Scrapes within the interval share the last reading; one arriving while a
/// reading is under way waits for it instead of starting another.
#[derive(Debug)]
pub struct DatabaseFigures {
    every: Duration,
    /// When the last reading ended, and what it read (`None`: the database did not answer).
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Option<Arc<Reading>>)>>,
}

impl DatabaseFigures {
    /// Read at most once per `every`; zero reads at every scrape.
    pub fn every(every: Duration) -> Self {
        Self {
            every,
            last: tokio::sync::Mutex::default(),
        }
    }

    /// The last reading, or a new one when it is older than the interval; `None` while the
    /// database does not answer.
    async fn reading(&self, state: &AppState) -> Option<Arc<Reading>> {
        let mut last = self.last.lock().await;
        if let Some((at, reading)) = last.as_ref()
            && at.elapsed() < self.every
        {
            return reading.clone();
        }
        let reading = match Reading::of(state).await {
            Ok(reading) => Some(Arc::new(reading)),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the database did not answer");
                None
            }
        };
        *last = Some((tokio::time::Instant::now(), reading.clone()));
        reading
    }
}

impl Default for DatabaseFigures {
    fn default() -> Self {
        Self::every(Duration::from_secs(1))
    }
}

/// What one reading of the database found.
#[derive(Debug)]
struct Reading {
    contracts: u64,
    outbox: u64,
    queues: Vec<(String, QueueStatus)>,
}

impl Reading {
    async fn of(state: &AppState) -> Result<Self, crate::store::StoreError> {
        let contracts = state.store.count().await?;
        let outbox = state.store.outbox_len().await?;
        let mut queues = Vec::with_capacity(state.sync_targets.len());
        for name in state.sync_targets.iter() {
            queues.push((name.clone(), state.store.queue_status(name).await?));
        }
        Ok(Self {
            contracts,
            outbox,
            queues,
        })
    }
}

/// A gauge per target: name, help, and its value from the target's queue.
type QueueGauge = (&'static str, &'static str, fn(&QueueStatus) -> i64);

pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut scrape = Registry::default();
    // What the database holds is read at most once per interval; while the database is
    // away the rest is still shown (that is when an operator needs it most), with
    // `pkgw_db_up 0`.
    let reading = state.database_figures.reading(&state).await;
    if let Some(reading) = &reading {
        database_gauges(reading, &mut scrape);
    }
    let up = Gauge::<i64>::default();
    up.set(i64::from(reading.is_some()));
    scrape.register(
        "pkgw_db_up",
        "1 when the database answered the last reading of the gauges read from it (at most server.metrics_database_ms old), 0 when it did not (then those gauges are left out)",
        up,
    );
    let connections = Family::<PoolLabels, Gauge>::default();
    let most = Family::<PoolName, Gauge>::default();
    for pool in state.store.pool_use() {
        for (kind, n) in [
            ("in_use", pool.open.saturating_sub(pool.idle)),
            ("idle", pool.idle),
        ] {
            connections
                .get_or_create(&PoolLabels {
                    pool: pool.pool.to_owned(),
                    state: kind.to_owned(),
                })
                .set(i64::from(n));
        }
        most.get_or_create(&PoolName {
            pool: pool.pool.to_owned(),
        })
        .set(i64::from(pool.max));
    }
    scrape.register(
        "pkgw_db_connections",
        "Database connections open, by pool (writer, reader) and whether in use or idle",
        connections,
    );
    scrape.register(
        "pkgw_db_max_connections",
        "The most connections each database pool opens",
        most,
    );
    if let Some((commits, writes)) = state.store.group_commits() {
        for (name, help, n) in [
            (
                "pkgw_db_commits",
                "Commits of contract writes on SQLite since the gateway started",
                commits,
            ),
            (
                "pkgw_db_committed_writes",
                "Contract writes those commits stored (more than the commits: concurrent writes share them)",
                writes,
            ),
        ] {
            let counter = Counter::<u64>::default();
            counter.inc_by(n);
            scrape.register(name, help, counter);
        }
    }
    if let Some(engine) = &state.sync {
        register_engine(engine, &mut scrape);
    }
    let mut out = String::new();
    encode_registry(&mut out, &scrape)
        .and_then(|()| encode_registry(&mut out, &state.request_metrics.registry))
        .and_then(|()| encode_eof(&mut out))
        .map_err(|_| ApiError::Internal)?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// The gauges read from the database: contracts stored and each sync target's queue.
fn database_gauges(reading: &Reading, scrape: &mut Registry) {
    let contracts = Gauge::<i64>::default();
    contracts.set(i64::try_from(reading.contracts).unwrap_or(i64::MAX));
    let outbox = Gauge::<i64>::default();
    outbox.set(i64::try_from(reading.outbox).unwrap_or(i64::MAX));
    let now = jiff::Timestamp::now();
    let rows = &reading.queues;
    let gauges: [QueueGauge; 4] = [
        (
            "pkgw_sync_queued",
            "Contracts waiting to be delivered to the target",
            |s| s.queued as i64,
        ),
        (
            "pkgw_sync_retrying",
            "Of those, contracts whose delivery failed at least once",
            |s| s.retrying as i64,
        ),
        (
            "pkgw_sync_delivered_contracts",
            "Contracts the target holds (delivered at least once)",
            |s| s.delivered as i64,
        ),
        (
            "pkgw_sync_dead_letters",
            "Changes the target refused for good, not yet replayed",
            |s| s.dead_letters as i64,
        ),
    ];
    for (name, help, value) in gauges {
        let family = Family::<TargetLabels, Gauge>::default();
        for (target, status) in rows {
            family
                .get_or_create(&TargetLabels {
                    target: target.clone(),
                })
                .set(value(status));
        }
        scrape.register(name, help, family);
    }
    let errors = Family::<ErrorLabels, Gauge>::default();
    let oldest = Family::<TargetLabels, Gauge<f64, AtomicU64>>::default();
    for (target, status) in rows {
        // Only the kind of failure: the target's own words may name a person.
        let error = status
            .last_error
            .as_deref()
            .map(|e| e.split(':').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        errors
            .get_or_create(&ErrorLabels {
                target: target.clone(),
                error,
            })
            .set(i64::from(status.last_error.is_some()));
        let age = status
            .oldest
            .map_or(0.0, |o| now.duration_since(o).as_secs_f64());
        oldest
            .get_or_create(&TargetLabels {
                target: target.clone(),
            })
            .set(age);
    }
    scrape.register(
        "pkgw_sync_last_error",
        "1 while the queue holds a failed delivery; the label says what failed",
        errors,
    );
    scrape.register(
        "pkgw_sync_oldest_queued_seconds",
        "How long the longest-waiting contract has waited",
        oldest,
    );
    scrape.register("pkgw_contracts", "Contracts stored", contracts);
    scrape.register(
        "pkgw_sync_outbox",
        "Changes stored and not yet dispatched to the targets' queues",
        outbox,
    );
}

/// What this process's sync engine counted since it started.
fn register_engine(engine: &crate::sync::Engine, scrape: &mut Registry) {
    scrape.register(
        "pkgw_sync_delivery_latency_seconds",
        "From a version's commit here to its delivery to the target, per target",
        engine.delivery_latency(),
    );
    let counters = engine.counters();
    for (name, help, pick) in [
        (
            "pkgw_sync_delivered",
            "Deliveries that succeeded, since the process started",
            0,
        ),
        (
            "pkgw_sync_retries",
            "Deliveries that failed and will be retried",
            1,
        ),
        (
            "pkgw_sync_dead_lettered",
            "Deliveries the target refused for good",
            2,
        ),
    ] {
        let family = Family::<TargetLabels, Counter>::default();
        for (target, c) in &counters {
            let n = [&c.delivered, &c.retried, &c.dead_lettered][pick].load(Ordering::Relaxed);
            family
                .get_or_create(&TargetLabels {
                    target: (*target).to_owned(),
                })
                .inc_by(n);
        }
        scrape.register(name, help, family);
    }
}
