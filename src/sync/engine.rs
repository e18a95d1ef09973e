//! The sync engine: a dispatcher that moves each new outbox row into the queues of the
//! targets that should have the change, and one worker per target that claims due
//! contracts and delivers them. It runs inside `pkgw serve` and as `pkgw sync run`;
//! several processes may run it over one PostgreSQL (see `store::sync`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::watch;

use super::client::TargetClient;
use super::deliver::deliver;
use super::notify;
use super::retry::{Backoff, Failure};
use super::settings::{SyncSettings, Target, route};
use crate::store::{Claim, Recorded, Store, StoreError};
use crate::write::{Caller, Transferred, WriteError, Writer};

/// Counters of one target since the process started.
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
}

/// A target, as a metrics label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

/// Per target: how long it took from a version's commit here to its arrival at the
/// target (seconds), as each delivery is recorded.
pub type DeliveryLatency = Family<TargetLabel, Histogram, fn() -> Histogram>;

/// One target with its HTTP client and counters.
#[derive(Debug)]
struct Lane {
    target: Target,
    client: TargetClient,
    counters: Counters,
    /// Until when nothing is sent to the target: it asked to be left alone
    /// (`Retry-After`), or it is down. So a backlog drains at the rate the target takes,
    /// and an outage does not spend every queued contract's attempts.
    held_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Deliveries in a row that found the target down (no answer, 429, 502–504): while
    /// there are any, one contract at a time finds out whether it is back.
    down_in_a_row: std::sync::atomic::AtomicU32,
    /// Told when the dispatcher queued changes, so the worker need not wait for its poll.
    queued: tokio::sync::Notify,
}

impl Lane {
    /// How long the target still asked to wait, if it did.
    fn held(&self) -> Option<std::time::Duration> {
        let until = (*self.held_until.lock().ok()?)?;
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Holds every delivery to the target for `wait` (a later hold already set stays).
    fn hold(&self, wait: std::time::Duration) {
        let until = tokio::time::Instant::now() + wait;
        let Ok(mut held) = self.held_until.lock() else {
            return;
        };
        if held.is_none_or(|h| h < until) {
            *held = Some(until);
            tracing::warn!(target_name = %self.target.name, wait_ms = wait.as_millis() as u64, "the target is down or asked to wait: nothing goes to it until then");
        }
    }
}

/// The sync engine over a store and the configured targets.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    lanes: Vec<Lane>,
    settings: SyncSettings,
    backoff: Backoff,
    /// Who claims queue rows: unique per process.
    claimer: String,
    /// Where subscription notifications may go, and how long one may take.
    subscriptions: Arc<super::outbound::SubscriptionSettings>,
    notify_timeout: std::time::Duration,
    /// The gateway's own mapping, for subscription payloads.
    profile: Arc<crate::fhir::Profile>,
    latency: DeliveryLatency,
    /// Where delivery spans go (see `crate::trace`).
    tracer: crate::trace::Tracer,
}

impl Engine {
    pub fn new(
        store: Store,
        targets: Vec<Target>,
        settings: SyncSettings,
    ) -> Result<Engine, String> {
        let timeout = std::time::Duration::from_secs(settings.request_timeout_secs);
        let lanes = targets
            .into_iter()
            .map(|target| {
                Ok(Lane {
                    client: TargetClient::new(&target, timeout)?,
                    target,
                    counters: Counters::default(),
                    held_until: std::sync::Mutex::default(),
                    down_in_a_row: std::sync::atomic::AtomicU32::new(0),
                    queued: tokio::sync::Notify::new(),
                })
            })
            .collect::<Result<_, String>>()?;
        let backoff = Backoff {
            initial: std::time::Duration::from_millis(settings.backoff_initial_ms),
            max: std::time::Duration::from_secs(settings.backoff_max_secs),
        };
        Ok(Engine {
            store,
            lanes,
            settings,
            backoff,
            claimer: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            subscriptions: Arc::default(),
            notify_timeout: timeout,
            profile: Arc::new(crate::fhir::Profile::default_profile()),
            // 10 ms to about 45 min, quadrupling: a target down for hours is +Inf.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 4.0, 10))
            }),
            tracer: crate::trace::Tracer::off(),
        })
    }

    /// Each delivery a client span in the trace of the change it delivers.
    pub fn with_tracer(mut self, tracer: crate::trace::Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// Subscription notifications go only where these settings allow (by default:
    /// nowhere).
    pub fn with_subscriptions(mut self, settings: super::outbound::SubscriptionSettings) -> Self {
        self.subscriptions = Arc::new(settings);
        self
    }

    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.lanes.iter().map(|l| &l.target)
    }

    /// The counters of each target, by name.
    pub fn counters(&self) -> BTreeMap<&str, &Counters> {
        self.lanes
            .iter()
            .map(|l| (l.target.name.as_str(), &l.counters))
            .collect()
    }

    /// Delivery latency per target, shared: what `/metrics` shows.
    pub fn delivery_latency(&self) -> DeliveryLatency {
        self.latency.clone()
    }

    /// Compares what the target named holds with what it should hold (`None`: no such
    /// target); with `repair`, queues what is missing, stale or differing again.
    pub async fn verify(
        &self,
        target: &str,
        repair: bool,
        tick: &dyn Fn(),
    ) -> Option<Result<super::verify::Report, super::verify::VerifyError>> {
        let lane = self.lanes.iter().find(|l| l.target.name == target)?;
        let report = super::verify::verify(&self.store, &lane.target, &lane.client, tick).await;
        Some(match (report, repair) {
            (Ok(report), true) => self
                .store
                .queue_contracts(target, &report.to_repair(), true)
                .await
                .map(|()| report)
                .map_err(Into::into),
            (other, _) => other,
        })
    }

    /// Pulls the changes of the target named (`None`: no such target) since `since`, or
    /// since the last pull.
    pub async fn pull(
        &self,
        target: &str,
        since: Option<jiff::Timestamp>,
    ) -> Option<Result<super::pull::PullReport, super::verify::VerifyError>> {
        let lane = self.lanes.iter().find(|l| l.target.name == target)?;
        Some(super::pull::pull(&self.store, &lane.target, &lane.client, since).await)
    }

    /// Moves every new outbox row into the queues of the targets that should have it;
    /// returns how many rows.
    pub async fn dispatch(&self) -> Result<usize, StoreError> {
        let targets: Vec<Target> = self.targets().cloned().collect();
        let subscriptions: Vec<(String, String)> = self
            .store
            .subscriptions()
            .await?
            .into_iter()
            .filter(|s| s.status == "active")
            .map(|s| (s.patient, notify::queue_target(&s.id)))
            .collect();
        let mut total = 0;
        loop {
            let n = self
                .store
                .dispatch_outbox(self.settings.batch_size, |change| {
                    let mut routing = route(&targets, change);
                    routing.deliver_to.extend(
                        subscriptions
                            .iter()
                            .filter(|(patient, _)| change.patient.as_ref() == Some(patient))
                            .map(|(_, target)| target.clone()),
                    );
                    routing
                })
                .await?;
            total += n;
            if n < self.settings.batch_size as usize {
                return Ok(total);
            }
        }
    }

    /// Delivers one batch of what is due for the target at `lane`; returns how many
    /// contracts were tried (none while the target asked to wait).
    async fn deliver_due(&self, lane: &Lane) -> Result<usize, StoreError> {
        if lane.held().is_some() {
            return Ok(0);
        }
        // While the target is down, one contract at a time finds out whether it is back.
        let batch = if lane.down_in_a_row.load(Ordering::Relaxed) > 0 {
            1
        } else {
            self.settings.batch_size
        };
        // Taken before the claim, so the lease is never thought longer than it is.
        let lease_until = tokio::time::Instant::now() + self.settings.lease();
        let claims = self
            .store
            .claim_due(
                &lane.target.name,
                &self.claimer,
                self.settings.lease(),
                batch,
            )
            .await?;
        let tried = claims.len();
        futures_util::stream::iter(claims)
            .for_each_concurrent(self.settings.concurrency.max(1), |claim| async move {
                if let Err(e) = self.deliver_one(lane, &claim, lease_until).await {
                    tracing::error!(target_name = %lane.target.name, contract = %claim.contract_id, error = %e, "could not record a delivery");
                }
            })
            .await;
        Ok(tried)
    }

    async fn deliver_one(
        &self,
        lane: &Lane,
        claim: &Claim,
        lease_until: tokio::time::Instant,
    ) -> Result<(), StoreError> {
        let name = lane.target.name.as_str();
        let contract = &claim.contract_id;
        // The target asked to wait while this batch was under way: the rest waits too.
        if let Some(wait) = lane.held() {
            return self.store.postpone(claim, after_now(wait)).await;
        }
        // The delivery continues the trace of the request that made the change: its span
        // (when tracing) or that request's own `traceparent` goes on every call.
        let parent = claim
            .traceparent
            .as_deref()
            .and_then(crate::trace::SpanContext::parse);
        let span = self.tracer.start_span(
            format!("sync deliver {name}"),
            crate::trace::Kind::Client,
            parent,
        );
        let delivered = crate::trace::within(
            span.as_ref().map(|s| s.context).or(parent),
            deliver(
                &self.store,
                &lane.target,
                &lane.client,
                contract,
                lease_until,
            ),
        )
        .await;
        if let Some(mut span) = span {
            span.set("pkgw.sync.target", name);
            span.set("pkgw.contract", contract.as_str());
            match &delivered {
                Ok(done) => span.set("pkgw.contract.version", done.version.get() as i64),
                // The kind of failure only: the target's message may quote content.
                Err(Failure::Transient { .. }) => {
                    span.set("error.type", "transient");
                    span.fail();
                }
                Err(Failure::Permanent { status, .. }) => {
                    span.set("error.type", "refused");
                    span.set("http.response.status_code", status.map_or(0, i64::from));
                    span.fail();
                }
            }
            self.tracer.finish(span);
        }
        // The target answered (a delivery, or a refusal of this change): it is up.
        if !matches!(delivered, Err(Failure::Transient { .. })) {
            lane.down_in_a_row.store(0, Ordering::Relaxed);
        }
        match delivered {
            Ok(done) => {
                let version = done.version;
                if lost(
                    self.store.delivered(claim, version, &done.remote).await?,
                    claim,
                ) {
                    return Ok(());
                }
                lane.counters.delivered.fetch_add(1, Ordering::Relaxed);
                let took = jiff::Timestamp::now().duration_since(done.committed_at);
                self.latency
                    .get_or_create(&TargetLabel {
                        target: name.to_owned(),
                    })
                    .observe(took.as_secs_f64().max(0.0));
                tracing::info!(target_name = name, %contract, %version, "delivered");
            }
            Err(Failure::Transient { error, after, down }) => {
                if down {
                    let in_a_row = lane.down_in_a_row.fetch_add(1, Ordering::Relaxed);
                    lane.hold(down_hold(&self.backoff, in_a_row, after));
                } else if let Some(wait) = after {
                    lane.hold(wait.min(MAX_HOLD));
                }
                let waited = jiff::Timestamp::now().duration_since(claim.queued_at);
                let give_up = self.settings.give_up_after_secs;
                if give_up > 0 && waited.as_secs() >= give_up as i64 {
                    let error = format!("gave up after {give_up} s: {error}");
                    let recorded = self
                        .store
                        .dead_letter(claim, claim.version, None, &error, None)
                        .await?;
                    if lost(recorded, claim) {
                        return Ok(());
                    }
                    lane.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(target_name = name, %contract, "gave up: dead letter");
                    return Ok(());
                }
                let delay = self.backoff.delay(claim.attempts, after);
                let next = after_now(delay);
                if lost(self.store.retry_later(claim, next, &error).await?, claim) {
                    return Ok(());
                }
                lane.counters.retried.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target_name = name, %contract, attempts = claim.attempts + 1, retry_in_ms = delay.as_millis() as u64, "delivery failed; will retry");
            }
            Err(Failure::Permanent {
                status,
                error,
                outcome,
            }) => {
                let recorded = self
                    .store
                    .dead_letter(claim, claim.version, status, &error, outcome.as_ref())
                    .await?;
                if lost(recorded, claim) {
                    return Ok(());
                }
                lane.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::error!(target_name = name, %contract, status = status.unwrap_or_default(), "refused by the target: dead letter");
            }
        }
        Ok(())
    }

    /// Applies the scheduled transfers whose handover has come; returns how many were
    /// handled. A transfer that can no longer be done (the contract moved on in a way
    /// that makes it impossible) is marked failed with why; one that lost a race to
    /// another change is tried again at the next tick.
    pub async fn apply_due_transfers(&self) -> Result<usize, StoreError> {
        let due = self.store.claim_due_transfers().await?;
        for s in &due {
            let history = self.store.history(&s.contract_id).await?;
            let done = history.versions.iter().find(|v| {
                v.change
                    .transfer
                    .as_ref()
                    .is_some_and(|n| n.at == s.transfer.at && n.to.hsa_id == s.transfer.to.hsa_id)
            });
            if let Some(done) = done {
                // Applied by a process that died before it could record so.
                self.store
                    .finish_transfer(&s.id, &["applying"], "applied", Some(done.version), None)
                    .await?;
                continue;
            }
            // The write path does it as it does every transfer, as the gateway itself on
            // behalf of whoever scheduled it, at its instant.
            let writer = Writer::new(self.store.clone(), self.profile.clone(), Arc::default());
            let caller = Caller::gateway(s.source.clone());
            let at = s.transfer.at.max(jiff::Timestamp::now());
            let done = writer
                .transfer(&caller, &s.contract_id, None, &s.transfer, at)
                .await;
            match done {
                Ok(Transferred::Done(record)) => {
                    self.store
                        .finish_transfer(
                            &s.id,
                            &["applying"],
                            "applied",
                            Some(record.revision.version),
                            None,
                        )
                        .await?;
                    tracing::info!(contract = %s.contract_id, version = %record.revision.version, "scheduled transfer applied");
                }
                // Lost a race to another change: tried again at the next tick.
                Ok(Transferred::Scheduled(_)) | Err(WriteError::Stale { .. }) => {
                    self.store
                        .finish_transfer(&s.id, &["applying"], "pending", None, None)
                        .await?;
                }
                Err(WriteError::Store(e)) => return Err(e),
                Err(why) => {
                    let why = match why {
                        WriteError::Rules(v, _) => v
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                        other => other.to_string(),
                    };
                    self.store
                        .finish_transfer(&s.id, &["applying"], "failed", None, Some(&why))
                        .await?;
                    tracing::warn!(contract = %s.contract_id, "a scheduled transfer could not be done");
                }
            }
        }
        Ok(due.len())
    }

    /// Sends one batch of due subscription notifications; returns how many were tried.
    async fn notify_due(&self) -> Result<usize, StoreError> {
        let claims = self
            .store
            .claim_due_notifications(
                &self.claimer,
                self.settings.lease(),
                self.settings.batch_size,
            )
            .await?;
        let tried = claims.len();
        for claim in claims {
            let outbound = notify::Outbound {
                allowed: &self.subscriptions,
                timeout: self.notify_timeout,
            };
            match notify::notify(&self.store, &outbound, &self.profile, &claim).await {
                Ok(version) => {
                    let version = version.unwrap_or(claim.version);
                    let recorded = self
                        .store
                        .delivered(&claim, version, &Default::default())
                        .await?;
                    lost(recorded, &claim);
                }
                Err(Failure::Transient { error, after, .. }) => {
                    let delay = self.backoff.delay(claim.attempts, after);
                    let next = after_now(delay);
                    if lost(self.store.retry_later(&claim, next, &error).await?, &claim) {
                        continue;
                    }
                    tracing::warn!(subscription = %claim.target, "notification failed; will retry");
                }
                Err(Failure::Permanent {
                    status,
                    error,
                    outcome,
                }) => {
                    let recorded = self
                        .store
                        .dead_letter(&claim, claim.version, status, &error, outcome.as_ref())
                        .await?;
                    if lost(recorded, &claim) {
                        continue;
                    }
                    // The subscriber learns that delivery failed, not what its endpoint
                    // answered: the detail is in the dead letter, for the operator.
                    let id = claim.target.trim_start_matches("subscription:");
                    self.store
                        .set_subscription_status(id, "error", Some(notify::FAILED))
                        .await?;
                    tracing::error!(subscription = %claim.target, status = status.unwrap_or_default(), "the subscriber refused: subscription in error");
                }
            }
        }
        Ok(tried)
    }

    /// Dispatches and delivers until nothing is due any more (retries waiting for later
    /// stay queued): `pkgw sync run --once`, and tests.
    pub async fn run_until_idle(&self) -> Result<(), StoreError> {
        loop {
            self.apply_due_transfers().await?;
            self.dispatch().await?;
            let mut tried = self.notify_due().await?;
            for lane in &self.lanes {
                tried += self.deliver_due(lane).await?;
            }
            if tried == 0 {
                return Ok(());
            }
        }
    }

    /// Runs until `stop` turns true: one dispatcher and one worker per target. A batch
    /// being delivered is finished before stopping.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        let dispatcher = {
            let (engine, mut stop) = (self.clone(), stop.clone());
            tokio::spawn(async move {
                while !*stop.borrow() {
                    if let Err(e) = engine.apply_due_transfers().await {
                        tracing::error!(error = %e, "applying scheduled transfers failed");
                    }
                    match engine.dispatch().await {
                        Ok(0) => {}
                        Ok(_) => engine.lanes.iter().for_each(|l| l.queued.notify_one()),
                        Err(e) => tracing::error!(error = %e, "sync dispatch failed"),
                    }
                    // Until the next poll, or a change this process committed.
                    tokio::select! {
                        () = engine.pause(&mut stop) => {}
                        () = engine.store.committed() => {}
                    }
                }
            })
        };
        tasks.push(dispatcher);
        let notifier = {
            let (engine, mut stop) = (self.clone(), stop.clone());
            tokio::spawn(async move {
                while !*stop.borrow() {
                    match engine.notify_due().await {
                        Ok(0) => engine.pause(&mut stop).await,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "subscription notifier failed");
                            engine.pause(&mut stop).await;
                        }
                    }
                }
            })
        };
        tasks.push(notifier);
        for at in 0..self.lanes.len() {
            let (engine, mut stop) = (self.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let lane = &engine.lanes[at];
                while !*stop.borrow() {
                    match engine.deliver_due(lane).await {
                        // Until the next poll, or changes the dispatcher queued.
                        Ok(0) => tokio::select! {
                            () = engine.pause(&mut stop) => {}
                            () = lane.queued.notified() => {}
                        },
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(target_name = %lane.target.name, error = %e, "sync worker failed");
                            engine.pause(&mut stop).await;
                        }
                    }
                }
            }));
        }
        for at in 0..self.lanes.len() {
            let Some(every) = self.lanes[at].target.pull_interval else {
                continue;
            };
            let (engine, mut stop) = (self.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let name = engine.lanes[at].target.name.clone();
                while !*stop.borrow() {
                    match engine.pull(&name, None).await {
                        Some(Ok(report)) if !report.merged.is_empty() || !report.conflicts.is_empty() => {
                            tracing::info!(target_name = %name, merged = report.merged.len(), conflicts = report.conflicts.len(), "pulled changes");
                        }
                        Some(Err(e)) => tracing::warn!(target_name = %name, error = %e, "pull failed"),
                        _ => {}
                    }
                    tokio::select! {
                        () = tokio::time::sleep(every) => {}
                        _ = stop.changed() => {}
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Waits one poll interval, or until told to stop.
    async fn pause(&self, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            () = tokio::time::sleep(self.settings.poll_interval()) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The longest a target's `Retry-After` holds all deliveries to it (as
/// [`Backoff::delay`] caps it for one contract).
const MAX_HOLD: std::time::Duration = std::time::Duration::from_secs(3600);

/// While a target is down, the longest between two tries of one contract.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// How long to hold off a target found down `in_a_row` times: backing off, but trying
/// again at least every [`PROBE_EVERY`] — a try costs the target one request, a long hold
/// costs the backlog time once it is back — unless the target asked for longer
/// (`Retry-After`).
fn down_hold(
    backoff: &Backoff,
    in_a_row: u32,
    asked: Option<std::time::Duration>,
) -> std::time::Duration {
    let probe = backoff.delay(in_a_row, None).min(PROBE_EVERY);
    probe.max(asked.unwrap_or_default()).min(MAX_HOLD)
}

/// Whether a delivery's outcome went unrecorded because its claim had passed to another
/// worker (the contract is then delivered once more); said in the log.
fn lost(recorded: Recorded, claim: &Claim) -> bool {
    let lost = recorded == Recorded::Lost;
    if lost {
        tracing::warn!(target_name = %claim.target, contract = %claim.contract_id, "the lease ran out and another worker took the contract meanwhile: delivering it once more");
    }
    lost
}

/// The instant `delay` from now.
fn after_now(delay: std::time::Duration) -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    now.checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_target_down_for_long_is_still_tried_every_few_seconds() {
        let backoff = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(300),
        };
        for in_a_row in [0, 5, 20, 1000] {
            let hold = down_hold(&backoff, in_a_row, None);
            assert!(hold <= PROBE_EVERY, "{in_a_row}: {hold:?}");
        }
        // What the target asked for holds, up to the hour.
        let asked = Some(Duration::from_secs(120));
        assert_eq!(down_hold(&backoff, 3, asked), Duration::from_secs(120));
        let asked = Some(Duration::from_secs(86_400));
        assert_eq!(down_hold(&backoff, 3, asked), MAX_HOLD);
    }
}
