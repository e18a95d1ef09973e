//! What the sync engine keeps: which outbox rows have been dispatched, each target's
//! queue (one row per contract: the newest version to deliver), what each target holds,
//! and the dead letters. The engine itself (`crate::sync`) decides and delivers; here is
//! only the bookkeeping, each step one transaction.
//!
//! Several gateway processes may share one PostgreSQL: an outbox row is dispatched by
//! exactly one of them (a conditional update claims it), and a queue row is delivered by
//! one at a time (a lease, `claimed_until`, taken with `FOR UPDATE SKIP LOCKED`), so each
//! change is delivered once and, per contract, in order.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Store, StoreError, from_micros, micros, now, version_of};
use crate::domain::{ContractId, Version};

/// An outbox row as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub contract_id: ContractId,
    pub version: Version,
    /// The system the change came from.
    pub origin: String,
    /// HSA-ids of the responsible unit in this version and in the one before.
    pub units: Vec<String>,
    /// The person the contract is with.
    pub patient: Option<String>,
    /// The W3C `traceparent` of the request that made the change, if it had one.
    pub traceparent: Option<String>,
}

/// Where a dispatched change goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// Targets whose queues get the change.
    pub deliver_to: Vec<String>,
    /// The target the change came from, if any: it holds the change already, so what
    /// was known of its copy's versions is forgotten (the next write there goes without
    /// `If-Match`) and nothing is sent back.
    pub authored_by: Option<String>,
}

/// A claimed queue row: deliver the contract to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub target: String,
    pub contract_id: ContractId,
    /// The newest version queued (delivery sends the contract as it is then).
    pub version: Version,
    /// Failed attempts so far.
    pub attempts: u32,
    pub queued_at: jiff::Timestamp,
    /// Who claimed it: what the delivery records counts only while the row is still
    /// theirs.
    pub claimer: String,
    /// The W3C `traceparent` of the request that made the newest version queued, if it
    /// had one (see `crate::trace`).
    pub traceparent: Option<String>,
}

/// What became of a delivery's outcome when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The claim was still the deliverer's: the outcome is recorded.
    Done,
    /// The lease had run out and another worker took the row (or delivered it
    /// already): this delivery may have written an older copy over a newer one, so
    /// nothing of it is recorded and the contract is delivered once more.
    Lost,
}

/// What a target holds of one contract: each resource (`Type/id`) and its version
/// there (the ETag it answered with), when known.
pub type Remote = BTreeMap<String, Option<String>>;

/// A change a target refused for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub seq: i64,
    pub target: String,
    pub contract_id: ContractId,
    pub version: Version,
    pub failed_at: jiff::Timestamp,
    /// The target's HTTP status, if it answered.
    pub status: Option<u16>,
    pub error: String,
    /// The target's OperationOutcome, if it sent one.
    pub outcome: Option<serde_json::Value>,
}

/// One target's queue at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Contracts waiting to be delivered.
    pub queued: u64,
    /// Of those, how many have failed at least once.
    pub retrying: u64,
    /// When the longest-waiting one was queued.
    pub oldest: Option<jiff::Timestamp>,
    /// Contracts the target holds (delivered at least once).
    pub delivered: u64,
    /// Dead letters not replayed.
    pub dead_letters: u64,
    /// The most recent error of a contract still queued.
    pub last_error: Option<String>,
}

impl Store {
    /// Dispatches up to `limit` outbox rows, oldest first, into the queues of the targets
    /// `route` names; returns how many rows were dispatched. Each row is dispatched
    /// exactly once, however many processes dispatch at once, and leaves the outbox as
    /// it is (in the same transaction): the outbox holds only what is still to dispatch,
    /// so it stays small however long the gateway runs.
    pub async fn dispatch_outbox(
        &self,
        limit: u32,
        route: impl Fn(&Dispatch) -> Routing,
    ) -> Result<usize, StoreError> {
        let mut tx = self.writer.begin().await?;
        let rows = sqlx::query(
            "SELECT seq, contract_id, version, origin, units, patient, traceparent FROM outbox \
             WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let at = micros(now());
        let mut dispatched = 0;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let claimed = sqlx::query("DELETE FROM outbox WHERE seq = $1")
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            if claimed.rows_affected() == 0 {
                continue; // another process dispatched it
            }
            dispatched += 1;
            let dispatch = dispatch_from_row(row)?;
            let routing = route(&dispatch);
            for target in &routing.deliver_to {
                let trace = dispatch.traceparent.as_deref();
                queue(
                    &mut tx,
                    target,
                    &dispatch.contract_id,
                    dispatch.version,
                    trace,
                    at,
                )
                .await?;
            }
            if let Some(target) = &routing.authored_by {
                forget_remote_versions_before(
                    &mut tx,
                    target,
                    &dispatch.contract_id,
                    Some(dispatch.version),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(dispatched)
    }

    /// Queues the current version of every contract (or those changed since `since`)
    /// for `target`: a full or incremental re-push. Returns how many were queued.
    pub async fn queue_all(
        &self,
        target: &str,
        since: Option<jiff::Timestamp>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let at = micros(now());
        let done = sqlx::query(
            "INSERT INTO sync_queue (target, contract_id, version, queued_at, next_attempt_at) \
             SELECT $1, id, version, $2, $2 FROM contracts WHERE updated_at >= $3 \
             ON CONFLICT (target, contract_id) DO UPDATE SET \
             version = CASE WHEN excluded.version > sync_queue.version THEN excluded.version ELSE sync_queue.version END, \
             next_attempt_at = excluded.next_attempt_at",
        )
        .bind(target)
        .bind(at)
        .bind(since.map_or(i64::MIN, micros))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Queues the current version of these contracts for `target`, due now; with
    /// `overwrite`, without `If-Match` (the gateway's copy wins over the target's).
    pub async fn queue_contracts(
        &self,
        target: &str,
        contracts: &[ContractId],
        overwrite: bool,
    ) -> Result<(), StoreError> {
        let at = micros(now());
        let mut tx = self.writer.begin().await?;
        for contract in contracts {
            let version: Option<i64> =
                sqlx::query_scalar("SELECT version FROM contracts WHERE id = $1")
                    .bind(contract.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(version) = version else { continue };
            queue(&mut tx, target, contract, version_of(version)?, None, at).await?;
            if overwrite {
                forget_remote_versions(&mut tx, target, contract).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` due queue rows of `target` for `lease`, as `claimer`: no other
    /// claimer gets them until the lease runs out or the delivery is recorded.
    pub async fn claim_due(
        &self,
        target: &str,
        claimer: &str,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Claim>, StoreError> {
        self.claim(Some(target), claimer, lease, limit).await
    }

    /// [`Store::claim_due`] for the notifications of every subscription (queue targets
    /// `subscription:{id}`).
    pub async fn claim_due_notifications(
        &self,
        claimer: &str,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Claim>, StoreError> {
        self.claim(None, claimer, lease, limit).await
    }

    async fn claim(
        &self,
        target: Option<&str>,
        claimer: &str,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<Claim>, StoreError> {
        let at = now();
        let until = micros(at).saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let which = match target {
            Some(_) => "target = $5",
            None => "target LIKE 'subscription:%'",
        };
        let sql = format!(
            "UPDATE sync_queue SET claimed_until = $1, claimed_by = $2, recheck = 0 \
             WHERE claimed_until <= $3 AND (target, contract_id) IN ( \
               SELECT target, contract_id FROM sync_queue \
               WHERE {which} AND next_attempt_at <= $3 AND claimed_until <= $3 \
               ORDER BY next_attempt_at, contract_id LIMIT $4{lock}) \
             RETURNING target, contract_id, version, attempts, queued_at, traceparent"
        );
        let mut query = sqlx::query(&sql)
            .bind(until)
            .bind(claimer)
            .bind(micros(at))
            .bind(i64::from(limit));
        if let Some(target) = target {
            query = query.bind(target);
        }
        let rows = query.fetch_all(&self.writer).await?;
        rows.iter()
            .map(|row| {
                Ok(Claim {
                    target: row.try_get("target")?,
                    contract_id: contract_id(row)?,
                    version: version_of(row.try_get("version")?)?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                    queued_at: from_micros(row.try_get("queued_at")?)?,
                    claimer: claimer.to_owned(),
                    traceparent: row.try_get("traceparent")?,
                })
            })
            .collect()
    }

    /// What `target` holds of a contract, as last recorded.
    pub async fn remote(
        &self,
        target: &str,
        contract: &ContractId,
    ) -> Result<Option<(Version, Remote)>, StoreError> {
        let row = sqlx::query(
            "SELECT delivered_version, remote FROM sync_state WHERE target = $1 AND contract_id = $2",
        )
        .bind(target)
        .bind(contract.as_str())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            let remote: String = row.try_get("remote")?;
            Ok((
                version_of(row.try_get("delivered_version")?)?,
                serde_json::from_str(&remote)
                    .map_err(|e| StoreError::Corrupt(format!("sync state of {contract}: {e}")))?,
            ))
        })
        .transpose()
    }

    /// Records that `target` now holds `version` of the contract as `remote`; the queue
    /// row goes unless a newer version was queued meanwhile (then it is due at once).
    /// A claim lost meanwhile records nothing (see [`Recorded::Lost`]).
    pub async fn delivered(
        &self,
        claim: &Claim,
        version: Version,
        remote: &Remote,
    ) -> Result<Recorded, StoreError> {
        let at = micros(now());
        let mut tx = self.writer.begin().await?;
        if !still_claimed(&mut tx, claim).await? {
            return lost(tx, claim, at).await;
        }
        set_state(
            &mut tx,
            &claim.target,
            &claim.contract_id,
            version,
            remote,
            at,
        )
        .await?;
        release(&mut tx, claim, version, at).await?;
        tx.commit().await?;
        Ok(Recorded::Done)
    }

    /// Records that `target` holds `version` of the contract as `remote` (its copy was
    /// read and found to match that version).
    pub async fn holds(
        &self,
        target: &str,
        contract: &ContractId,
        version: Version,
        remote: &Remote,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        set_state(&mut tx, target, contract, version, remote, micros(now())).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to when `target`'s changes have been pulled.
    pub async fn pulled_until(&self, target: &str) -> Result<Option<jiff::Timestamp>, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT pulled_until FROM sync_pull WHERE target = $1")
                .bind(target)
                .fetch_optional(&self.reader)
                .await?;
        at.map(from_micros).transpose()
    }

    /// Records that `target`'s changes have been pulled up to `until`.
    pub async fn set_pulled_until(
        &self,
        target: &str,
        until: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_pull (target, pulled_until) VALUES ($1, $2) \
             ON CONFLICT (target) DO UPDATE SET pulled_until = excluded.pulled_until",
        )
        .bind(target)
        .bind(micros(until))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Hands a claim back untried, due at `until`, its attempts and last error as they
    /// were: the target is held off (it asked everyone to wait, or is down), so the
    /// contract is not sent. A claim lost meanwhile needs nothing: nothing was sent.
    pub async fn postpone(&self, claim: &Claim, until: jiff::Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sync_queue SET next_attempt_at = $1, claimed_until = 0, claimed_by = NULL \
             WHERE target = $2 AND contract_id = $3 AND claimed_by = $4",
        )
        .bind(micros(until))
        .bind(&claim.target)
        .bind(claim.contract_id.as_str())
        .bind(&claim.claimer)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records a failed attempt that will be tried again at `next_attempt`. A claim lost
    /// meanwhile records nothing (see [`Recorded::Lost`]).
    pub async fn retry_later(
        &self,
        claim: &Claim,
        next_attempt: jiff::Timestamp,
        error: &str,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE sync_queue SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, \
             claimed_until = 0, claimed_by = NULL WHERE target = $3 AND contract_id = $4 AND claimed_by = $5",
        )
        .bind(micros(next_attempt))
        .bind(error)
        .bind(&claim.target)
        .bind(claim.contract_id.as_str())
        .bind(&claim.claimer)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return lost(tx, claim, micros(now())).await;
        }
        tx.commit().await?;
        Ok(Recorded::Done)
    }

    /// Moves a change the target refused for good to the dead letters; a newer version
    /// queued meanwhile stays queued. A claim lost meanwhile records nothing (see
    /// [`Recorded::Lost`]): the next delivery meets the same refusal if it still holds.
    pub async fn dead_letter(
        &self,
        claim: &Claim,
        version: Version,
        status: Option<u16>,
        error: &str,
        outcome: Option<&serde_json::Value>,
    ) -> Result<Recorded, StoreError> {
        let at = micros(now());
        let mut tx = self.writer.begin().await?;
        if !still_claimed(&mut tx, claim).await? {
            return lost(tx, claim, at).await;
        }
        sqlx::query(
            "INSERT INTO dead_letters (target, contract_id, version, failed_at, status, error, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&claim.target)
        .bind(claim.contract_id.as_str())
        .bind(version.get() as i64)
        .bind(at)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(outcome.map(serde_json::Value::to_string))
        .execute(&mut *tx)
        .await?;
        release(&mut tx, claim, version, at).await?;
        tx.commit().await?;
        Ok(Recorded::Done)
    }

    /// Dead letters not yet replayed, oldest first (of one target, or all).
    pub async fn dead_letters(&self, target: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, target, contract_id, version, failed_at, status, error, outcome FROM dead_letters \
             WHERE replayed_at IS NULL AND ($1 = '' OR target = $1) ORDER BY seq",
        )
        .bind(target.unwrap_or_default())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let outcome: Option<String> = row.try_get("outcome")?;
                Ok(DeadLetter {
                    seq: row.try_get("seq")?,
                    target: row.try_get("target")?,
                    contract_id: contract_id(row)?,
                    version: version_of(row.try_get("version")?)?,
                    failed_at: from_micros(row.try_get("failed_at")?)?,
                    status: row
                        .try_get::<Option<i64>, _>("status")?
                        .and_then(|s| u16::try_from(s).ok()),
                    error: row.try_get("error")?,
                    outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
                })
            })
            .collect()
    }

    /// Queues the dead letters again (of one target, or only the one numbered `seq`);
    /// returns how many. Each contract is delivered as it is now, without `If-Match`:
    /// replaying is a person's decision that the gateway's copy wins.
    pub async fn replay(&self, target: Option<&str>, seq: Option<i64>) -> Result<u64, StoreError> {
        let at = micros(now());
        let mut tx = self.writer.begin().await?;
        let rows = sqlx::query(
            "SELECT seq, target, contract_id, version FROM dead_letters WHERE replayed_at IS NULL \
             AND ($1 = '' OR target = $1) AND ($2 < 0 OR seq = $2) ORDER BY seq",
        )
        .bind(target.unwrap_or_default())
        .bind(seq.unwrap_or(-1))
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let target: String = row.try_get("target")?;
            let contract = contract_id(row)?;
            queue(
                &mut tx,
                &target,
                &contract,
                version_of(row.try_get("version")?)?,
                None,
                at,
            )
            .await?;
            // Replaying is a person's decision that the gateway's copy wins.
            forget_remote_versions(&mut tx, &target, &contract).await?;
            sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE seq = $2")
                .bind(at)
                .bind(row.try_get::<i64, _>("seq")?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// One target's queue at a glance.
    pub async fn queue_status(&self, target: &str) -> Result<QueueStatus, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS queued, COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) AS retrying, \
             MIN(queued_at) AS oldest FROM sync_queue WHERE target = $1",
        )
        .bind(target)
        .fetch_one(&self.reader)
        .await?;
        let count = |sql: &str| {
            let sql = sql.to_owned();
            async move {
                sqlx::query_scalar::<_, i64>(&sql)
                    .bind(target)
                    .fetch_one(&self.reader)
                    .await
            }
        };
        let delivered = count("SELECT COUNT(*) FROM sync_state WHERE target = $1").await?;
        let dead =
            count("SELECT COUNT(*) FROM dead_letters WHERE target = $1 AND replayed_at IS NULL")
                .await?;
        let last_error: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM sync_queue WHERE target = $1 AND last_error IS NOT NULL \
             ORDER BY next_attempt_at DESC LIMIT 1",
        )
        .bind(target)
        .fetch_optional(&self.reader)
        .await?
        .flatten();
        Ok(QueueStatus {
            queued: row.try_get::<i64, _>("queued")? as u64,
            retrying: row.try_get::<i64, _>("retrying")? as u64,
            oldest: row
                .try_get::<Option<i64>, _>("oldest")?
                .map(from_micros)
                .transpose()?,
            delivered: delivered as u64,
            dead_letters: dead as u64,
            last_error,
        })
    }
}

/// An edit refused because it conflicted with changes its sender had not seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub seq: i64,
    pub contract_id: ContractId,
    pub source: String,
    pub seen_version: Version,
    pub current_version: Version,
    /// The parts changed on both sides (`agreement`, `careContacts`, …).
    pub parts: Vec<String>,
    /// What was sent.
    pub received: serde_json::Value,
    pub at: jiff::Timestamp,
}

impl Store {
    /// Keeps a refused conflicting edit for a person to resolve.
    pub async fn record_conflict(
        &self,
        contract: &ContractId,
        source: &str,
        seen: Version,
        current: Version,
        parts: &[&str],
        received: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_conflicts (contract_id, source, seen_version, current_version, parts, received, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(contract.as_str())
        .bind(source)
        .bind(seen.get() as i64)
        .bind(current.get() as i64)
        .bind(parts.join(","))
        .bind(received.to_string())
        .bind(micros(now()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The conflicts recorded, oldest first.
    pub async fn conflicts(&self) -> Result<Vec<Conflict>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, contract_id, source, seen_version, current_version, parts, received, at \
             FROM sync_conflicts ORDER BY seq",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let parts: String = row.try_get("parts")?;
                let received: String = row.try_get("received")?;
                Ok(Conflict {
                    seq: row.try_get("seq")?,
                    contract_id: contract_id(row)?,
                    source: row.try_get("source")?,
                    seen_version: version_of(row.try_get("seen_version")?)?,
                    current_version: version_of(row.try_get("current_version")?)?,
                    parts: parts.split(',').map(str::to_owned).collect(),
                    received: serde_json::from_str(&received)
                        .map_err(|e| StoreError::Corrupt(format!("conflict record: {e}")))?,
                    at: from_micros(row.try_get("at")?)?,
                })
            })
            .collect()
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Records what the target holds; never goes back to an older version: a pull may have
/// recorded the target's own newer one while a delivery of an older one was on its way.
async fn set_state(
    tx: &mut Tx<'_>,
    target: &str,
    contract: &ContractId,
    version: Version,
    remote: &Remote,
    at: i64,
) -> Result<(), StoreError> {
    let remote = serde_json::to_string(remote).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO sync_state (target, contract_id, delivered_version, delivered_at, remote) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target, contract_id) DO UPDATE SET \
         delivered_version = excluded.delivered_version, delivered_at = excluded.delivered_at, remote = excluded.remote \
         WHERE sync_state.delivered_version <= excluded.delivered_version",
    )
    .bind(target)
    .bind(contract.as_str())
    .bind(version.get() as i64)
    .bind(at)
    .bind(remote)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues `version` of a contract for a target; a version already queued that is newer
/// stays, and the row is due now.
async fn queue(
    tx: &mut Tx<'_>,
    target: &str,
    contract: &ContractId,
    version: Version,
    traceparent: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sync_queue (target, contract_id, version, queued_at, next_attempt_at, traceparent) \
         VALUES ($1, $2, $3, $4, $4, $5) \
         ON CONFLICT (target, contract_id) DO UPDATE SET \
         traceparent = CASE WHEN excluded.version > sync_queue.version THEN excluded.traceparent ELSE sync_queue.traceparent END, \
         version = CASE WHEN excluded.version > sync_queue.version THEN excluded.version ELSE sync_queue.version END",
    )
    .bind(target)
    .bind(contract.as_str())
    .bind(version.get() as i64)
    .bind(at)
    .bind(traceparent)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether the claim's row is still its claimer's (then, on PostgreSQL, locked until the
/// transaction ends, so no other worker takes it meanwhile). A lease that ran out with no
/// other worker taking the row is still the claimer's: nobody else delivered.
async fn still_claimed(tx: &mut Tx<'_>, claim: &Claim) -> Result<bool, StoreError> {
    let held = sqlx::query(
        "UPDATE sync_queue SET claimed_by = claimed_by \
         WHERE target = $1 AND contract_id = $2 AND claimed_by = $3",
    )
    .bind(&claim.target)
    .bind(claim.contract_id.as_str())
    .bind(&claim.claimer)
    .execute(&mut **tx)
    .await?;
    Ok(held.rows_affected() == 1)
}

/// A delivery whose claim passed to another worker: its writes may have reached the
/// target after that worker's newer ones, so the contract is queued once more, as it is
/// now, and marked so the worker holding the row keeps it when it finishes.
async fn lost(mut tx: Tx<'_>, claim: &Claim, at: i64) -> Result<Recorded, StoreError> {
    sqlx::query(
        "INSERT INTO sync_queue (target, contract_id, version, queued_at, next_attempt_at, recheck) \
         SELECT $1, id, version, $3, $3, 1 FROM contracts WHERE id = $2 \
         ON CONFLICT (target, contract_id) DO UPDATE SET recheck = 1, \
         version = CASE WHEN excluded.version > sync_queue.version THEN excluded.version ELSE sync_queue.version END",
    )
    .bind(&claim.target)
    .bind(claim.contract_id.as_str())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Recorded::Lost)
}

/// Ends a claim: the queue row goes if `version` covers it and no stale delivery asked
/// for it to be checked again; otherwise it stays, due at once, with its attempts reset.
async fn release(
    tx: &mut Tx<'_>,
    claim: &Claim,
    version: Version,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM sync_queue WHERE target = $1 AND contract_id = $2 AND version <= $3 AND recheck = 0",
    )
        .bind(&claim.target)
        .bind(claim.contract_id.as_str())
        .bind(version.get() as i64)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE sync_queue SET claimed_until = 0, claimed_by = NULL, attempts = 0, last_error = NULL, \
         next_attempt_at = $1 WHERE target = $2 AND contract_id = $3",
    )
    .bind(at)
    .bind(&claim.target)
    .bind(claim.contract_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The target changed the contract itself: the versions its copy had are not its
/// versions any more.
async fn forget_remote_versions(
    tx: &mut Tx<'_>,
    target: &str,
    contract: &ContractId,
) -> Result<(), StoreError> {
    forget_remote_versions_before(tx, target, contract, None).await
}

/// [`forget_remote_versions`], unless what is known of the target's copy was recorded
/// for `version` or later: a pull that merged the target's change records the versions
/// its copy has then, and those stay known (the next write there goes with `If-Match`,
/// so an edit made there after the pull is not overwritten unseen).
async fn forget_remote_versions_before(
    tx: &mut Tx<'_>,
    target: &str,
    contract: &ContractId,
    version: Option<Version>,
) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT delivered_version, remote FROM sync_state WHERE target = $1 AND contract_id = $2",
    )
    .bind(target)
    .bind(contract.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(());
    };
    let known: i64 = row.try_get("delivered_version")?;
    if version.is_some_and(|v| known >= v.get() as i64) {
        return Ok(());
    }
    let remote: String = row.try_get("remote")?;
    let mut remote: Remote = serde_json::from_str(&remote)
        .map_err(|e| StoreError::Corrupt(format!("sync state of {contract}: {e}")))?;
    remote.values_mut().for_each(|etag| *etag = None);
    sqlx::query("UPDATE sync_state SET remote = $1 WHERE target = $2 AND contract_id = $3")
        .bind(serde_json::to_string(&remote).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(target)
        .bind(contract.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn contract_id(row: &AnyRow) -> Result<ContractId, StoreError> {
    let id: String = row.try_get("contract_id")?;
    ContractId::parse(&id).map_err(|e| StoreError::Corrupt(format!("contract id {id}: {e}")))
}

fn dispatch_from_row(row: &AnyRow) -> Result<Dispatch, StoreError> {
    let units: Option<String> = row.try_get("units")?;
    let patient: Option<String> = row.try_get("patient")?;
    Ok(Dispatch {
        patient,
        traceparent: row.try_get("traceparent")?,
        contract_id: contract_id(row)?,
        version: version_of(row.try_get("version")?)?,
        origin: row.try_get("origin")?,
        units: units
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}
