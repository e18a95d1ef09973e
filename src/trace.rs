//! OpenTelemetry traces: W3C Trace Context in, through the write, out on the sync calls
//! the write causes; spans exported over OTLP/HTTP (JSON encoding) when configured.
//!
//! An EHR's request that carries a `traceparent` continues its trace here: the request is
//! a server span, the change it stores keeps the span's `traceparent` in its outbox row
//! and queue rows, and each delivery of that change to a target is a client span in the
//! same trace, whose `traceparent` goes on every request of the delivery. With tracing off
//! (the default: no `trace.otlp_endpoint`) nothing is recorded, but an incoming
//! `traceparent` is still carried through to the sync calls, as the W3C recommendation
//! asks of a participant that does not trace.
//!
//! The exporter is a few lines over the HTTP client the gateway already has, posting
//! batches of spans to `{otlp_endpoint}/v1/traces` in OTLP's JSON encoding (ids in hex,
//! 64-bit numbers as strings): the OpenTelemetry SDK with its OTLP exporter would add a
//! protobuf toolchain's worth of crates for two kinds of span. Spans carry route
//! templates, statuses, target names and contract ids, never personal data. An exporter
//! that cannot keep up drops spans (counted in the log) rather than holding requests up.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// `[trace]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSettings {
    /// The OTLP/HTTP endpoint's base (`http://collector:4318`); empty: tracing off.
    pub otlp_endpoint: String,
    /// `service.name` of the spans.
    pub service_name: String,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "pkgw".into(),
        }
    }
}

impl TraceSettings {
    /// Checks the endpoint is an http(s) URL (when given).
    pub fn validate(&self) -> Result<(), String> {
        if self.otlp_endpoint.is_empty() {
            return Ok(());
        }
        let url = reqwest::Url::parse(&self.otlp_endpoint)
            .map_err(|e| format!("trace.otlp_endpoint: not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("trace.otlp_endpoint: must be an http(s) URL with a host".into());
        }
        if self.service_name.trim().is_empty() {
            return Err("trace.service_name: must not be empty".into());
        }
        Ok(())
    }
}

/// Where a span sits in its trace: W3C Trace Context's trace-id, parent-id and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// Whether the trace's caller records it (flag `01`).
    pub sampled: bool,
}

impl SpanContext {
    /// A `traceparent` header of version `00`, or `None` when it is not one (then, as
    /// the recommendation says, the request starts a trace of its own). Ids must be
    /// lowercase hex and not all zeros.
    pub fn parse(header: &str) -> Option<SpanContext> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace)?;
        let span_id: [u8; 8] = hex(span)?;
        let [flags] = hex::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header naming this span as the parent.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    /// A span of a new trace.
    fn root() -> SpanContext {
        SpanContext {
            trace_id: fastrand::u128(1..).to_be_bytes(),
            span_id: fastrand::u64(1..).to_be_bytes(),
            sampled: true,
        }
    }

    /// A new span under this one, in the same trace.
    fn child(&self) -> SpanContext {
        SpanContext {
            span_id: fastrand::u64(1..).to_be_bytes(),
            ..*self
        }
    }
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N
        || !bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

tokio::task_local! {
    /// The span the code running now works for: the request's, or the delivery's.
    static CURRENT: SpanContext;
}

/// The span the running task works for, if any: what a change stored now, or a sync call
/// made now, carries on.
pub fn current() -> Option<SpanContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Runs `work` as part of `span` (see [`current`]).
pub async fn within<F: std::future::Future>(span: Option<SpanContext>, work: F) -> F::Output {
    match span {
        Some(span) => CURRENT.scope(span, work).await,
        None => work.await,
    }
}

/// The kind of a span, as OTLP numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server = 2,
    Client = 3,
}

/// A span being timed; [`Tracer::finish`] sends it.
#[derive(Debug)]
pub struct Span {
    pub context: SpanContext,
    parent: Option<[u8; 8]>,
    name: String,
    kind: Kind,
    start: SystemTime,
    attributes: Vec<(&'static str, Value)>,
    failed: bool,
}

impl Span {
    /// Adds an attribute (a string or an integer).
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.attributes.push((key, value.into()));
    }

    /// Marks the span as failed (OTLP status `ERROR`).
    pub fn fail(&mut self) {
        self.failed = true;
    }

    fn otlp(&self, end: SystemTime) -> Value {
        let nanos = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                .to_string()
        };
        let attributes: Vec<Value> = self
            .attributes
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::Number(n) if n.is_i64() => json!({ "intValue": n.to_string() }),
                    Value::String(s) => json!({ "stringValue": s }),
                    other => json!({ "stringValue": other.to_string() }),
                };
                json!({ "key": key, "value": value })
            })
            .collect();
        let mut span = json!({
            "traceId": to_hex(&self.context.trace_id),
            "spanId": to_hex(&self.context.span_id),
            "name": self.name,
            "kind": self.kind as u8,
            "startTimeUnixNano": nanos(self.start),
            "endTimeUnixNano": nanos(end.max(self.start)),
            "attributes": attributes,
            "status": { "code": if self.failed { 2 } else { 1 } },
        });
        if let Some(parent) = self.parent {
            span["parentSpanId"] = json!(to_hex(&parent));
        }
        span
    }
}

/// Records spans and sends them to the OTLP endpoint; [`Tracer::off`] records nothing.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tracer {
    spans: Option<mpsc::Sender<Value>>,
    dropped: Arc<AtomicU64>,
    /// The exporter task, for [`Tracer::flush`].
    exporter: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Spans waiting to be sent, at most: more are dropped.
const BUFFER: usize = 4096;
/// Spans in one export request, at most.
const BATCH: usize = 512;
/// How long the exporter gathers a batch after its first span.
const GATHER: Duration = Duration::from_millis(200);

impl Tracer {
    /// Records nothing.
    pub fn off() -> Tracer {
        Tracer::default()
    }

    /// From the settings: off without an endpoint; otherwise an exporter task posting to
    /// `{otlp_endpoint}/v1/traces` (needs a Tokio runtime).
    pub fn start(settings: &TraceSettings) -> Result<Tracer, String> {
        if settings.otlp_endpoint.is_empty() {
            return Ok(Tracer::off());
        }
        settings.validate()?;
        let url = format!("{}/v1/traces", settings.otlp_endpoint.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("trace exporter: {e}"))?;
        let (sender, receiver) = mpsc::channel(BUFFER);
        let dropped = Arc::<AtomicU64>::default();
        let exporter = tokio::spawn(export(
            http,
            url,
            settings.service_name.clone(),
            receiver,
            dropped.clone(),
        ));
        Ok(Tracer {
            spans: Some(sender),
            dropped,
            exporter: Arc::new(std::sync::Mutex::new(Some(exporter))),
        })
    }

    /// At shutdown, once every other clone is gone: sends the spans still waiting (for
    /// at most five seconds).
    pub async fn flush(self) {
        let exporter = self.exporter.lock().ok().and_then(|mut e| e.take());
        drop(self.spans);
        if let Some(exporter) = exporter {
            let _ = tokio::time::timeout(Duration::from_secs(5), exporter).await;
        }
    }

    /// Whether spans are recorded.
    pub fn enabled(&self) -> bool {
        self.spans.is_some()
    }

    /// Starts a span under `parent` (a new trace without one), or `None` when tracing
    /// is off or the caller's trace is not sampled.
    pub fn start_span(
        &self,
        name: String,
        kind: Kind,
        parent: Option<SpanContext>,
    ) -> Option<Span> {
        if !self.enabled() || parent.is_some_and(|p| !p.sampled) {
            return None;
        }
        Some(Span {
            context: parent.map_or_else(SpanContext::root, |p| p.child()),
            parent: parent.map(|p| p.span_id),
            name,
            kind,
            start: SystemTime::now(),
            attributes: Vec::new(),
            failed: false,
        })
    }

    /// Ends `span` now and queues it for export.
    pub fn finish(&self, span: Span) {
        let Some(spans) = &self.spans else {
            return;
        };
        if spans.try_send(span.otlp(SystemTime::now())).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends spans in batches until every [`Tracer`] is gone.
async fn export(
    http: reqwest::Client,
    url: String,
    service: String,
    mut spans: mpsc::Receiver<Value>,
    dropped: Arc<AtomicU64>,
) {
    let resource = json!({ "attributes": [
        { "key": "service.name", "value": { "stringValue": service } },
        { "key": "service.version", "value": { "stringValue": env!("CARGO_PKG_VERSION") } },
    ]});
    while let Some(first) = spans.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + GATHER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, spans.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = json!({ "resourceSpans": [{
            "resource": resource,
            "scopeSpans": [{ "scope": { "name": "pkgw" }, "spans": batch }],
        }]});
        let sent = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let lost = dropped.swap(0, Ordering::Relaxed);
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    spans = batch.len(),
                    "the trace collector refused spans"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, spans = batch.len(), "could not send spans to the trace collector")
            }
        }
        if lost > 0 {
            tracing::warn!(
                spans = lost,
                "spans dropped: the trace collector did not keep up"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_strictly_and_written_back_the_same() {
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let context = SpanContext::parse(header).unwrap();
        assert!(context.sampled);
        assert_eq!(context.header(), header);
        let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        assert!(!SpanContext::parse(unsampled).unwrap().sampled);
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333\r-01",
        ] {
            assert_eq!(SpanContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_child_span_stays_in_its_trace_with_an_id_of_its_own() {
        let parent =
            SpanContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_ne!(SpanContext::root().trace_id, parent.trace_id);
    }

    #[test]
    fn a_span_is_written_in_otlp_json() {
        let tracer = Tracer {
            spans: Some(mpsc::channel(1).0),
            ..Tracer::default()
        };
        let parent = SpanContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let mut span = tracer
            .start_span("PUT /fhir/CarePlan/{id}".into(), Kind::Server, parent)
            .unwrap();
        span.set("http.response.status_code", 200);
        span.set("http.route", "/fhir/CarePlan/{id}");
        let otlp = span.otlp(span.start + Duration::from_millis(3));
        assert_eq!(otlp["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(otlp["parentSpanId"], "b7ad6b7169203331");
        assert_eq!(otlp["kind"], 2);
        assert_eq!(
            otlp["attributes"][0],
            json!({ "key": "http.response.status_code", "value": { "intValue": "200" } })
        );
        let start: u128 = otlp["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u128 = otlp["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert_eq!(end - start, 3_000_000);
        let unsampled =
            SpanContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
        assert!(
            tracer
                .start_span("x".into(), Kind::Server, unsampled)
                .is_none()
        );
        assert!(
            Tracer::off()
                .start_span("x".into(), Kind::Server, None)
                .is_none()
        );
    }
}
