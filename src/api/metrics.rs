//! `/metrics`: Prometheus text exposition of the gateway's state — contracts stored and,
//! per sync target, the queue (depth, retrying, oldest wait, dead letters) read from the
//! database, and what this process delivered since it started.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::store::QueueStatus;

/// A gauge per target: name, help, and its value from the target's queue.
type Gauge = (&'static str, &'static str, fn(&QueueStatus) -> f64);

pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    let contracts = state.store.count().await?;
    metric(&mut out, "pkgw_contracts", "gauge", "Contracts stored.");
    let _ = writeln!(out, "pkgw_contracts {contracts}");
    let now = jiff::Timestamp::now();
    let mut rows = Vec::new();
    for name in state.sync_targets.iter() {
        rows.push((name, state.store.queue_status(name).await?));
    }
    let gauges: [Gauge; 5] = [
        (
            "pkgw_sync_queued",
            "Contracts waiting to be delivered to the target.",
            |s| s.queued as f64,
        ),
        (
            "pkgw_sync_retrying",
            "Of those, contracts whose delivery failed at least once.",
            |s| s.retrying as f64,
        ),
        (
            "pkgw_sync_delivered_contracts",
            "Contracts the target holds (delivered at least once).",
            |s| s.delivered as f64,
        ),
        (
            "pkgw_sync_dead_letters",
            "Changes the target refused for good, not yet replayed.",
            |s| s.dead_letters as f64,
        ),
        (
            "pkgw_sync_last_error",
            "1 while the queue holds a failed delivery; the label says what failed.",
            |s| f64::from(u8::from(s.last_error.is_some())),
        ),
    ];
    for (name, help, value) in gauges {
        metric(&mut out, name, "gauge", help);
        for (target, status) in &rows {
            let error = match (name, &status.last_error) {
                // Only the kind of failure: the target's own words may name a person.
                ("pkgw_sync_last_error", Some(e)) => format!(
                    ",error=\"{}\"",
                    label(e.split(':').next().unwrap_or_default())
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{name}{{target=\"{}\"{error}}} {}",
                label(target),
                value(status)
            );
        }
    }
    metric(
        &mut out,
        "pkgw_sync_oldest_queued_seconds",
        "gauge",
        "How long the longest-waiting contract has waited.",
    );
    for (target, status) in &rows {
        let age = status
            .oldest
            .map_or(0.0, |o| now.duration_since(o).as_secs_f64());
        let _ = writeln!(
            out,
            "pkgw_sync_oldest_queued_seconds{{target=\"{}\"}} {age:.3}",
            label(target)
        );
    }
    if let Some(engine) = &state.sync {
        let counters = engine.counters();
        for (name, help, pick) in [
            (
                "pkgw_sync_delivered_total",
                "Deliveries that succeeded, since the process started.",
                0,
            ),
            (
                "pkgw_sync_retries_total",
                "Deliveries that failed and will be retried.",
                1,
            ),
            (
                "pkgw_sync_dead_lettered_total",
                "Deliveries the target refused for good.",
                2,
            ),
        ] {
            metric(&mut out, name, "counter", help);
            for (target, c) in &counters {
                let n = [&c.delivered, &c.retried, &c.dead_lettered][pick].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{target=\"{}\"}} {n}", label(target));
            }
        }
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response())
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value, escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}
