//! Group commit of contract writes on SQLite.
//!
//! SQLite has one writer: with each write in a transaction of its own, concurrent
//! writers queue for the one connection and each pays a whole commit (its fsync
//! included), so 32 writers write little more than one. Here the writes that arrive
//! while a commit is under way wait for the next one, which takes them all: one
//! transaction, each write under a savepoint of its own (a refused write — a stale
//! version, a broken rule — rolls back alone and is answered with its error), one
//! commit, and then every write is answered. PostgreSQL does the same by itself for
//! transactions that commit together, so there each write keeps its own transaction.
//!
//! What is answered is what was done: a write is answered after the commit that holds
//! it, and if anything fails beyond one write's own refusal (a savepoint, the commit),
//! nothing of the group was stored and each write is then tried again alone, so each
//! gets the answer its own transaction gives. A write whose caller has gone (the
//! request timed out) before its group begins is not made.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::audit::{Action, RequestTrace};
use super::contracts::write_pending;
use super::{Pending, Record, StoreError, now};
use crate::trace::SpanContext;

/// The records a commit wrote, and what the last change did (for the request's audit
/// status).
pub(super) type Written = (Vec<Record>, Option<Action>);

/// One caller's changes, stored together or not at all.
#[derive(Debug)]
pub(super) struct Job {
    changes: Vec<Pending>,
    /// Who asked, as the audit rows name them.
    trace: Option<RequestTrace>,
    /// The request's span, which the outbox rows carry on to the sync calls.
    span: Option<SpanContext>,
    done: oneshot::Sender<Result<Written, StoreError>>,
}

/// The most writes one commit takes.
const MOST_PER_COMMIT: usize = 128;

/// Where writes go to be committed in groups.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
    counts: Arc<Counts>,
}

/// Commits made and the writes they stored, since the store was opened.
#[derive(Debug, Default)]
struct Counts {
    commits: AtomicU64,
    writes: AtomicU64,
}

impl Counts {
    fn committed(&self, writes: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes
            .fetch_add(u64::try_from(writes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl GroupCommit {
    /// Starts the task that commits the writes given to it on `writer`'s connection.
    pub(super) fn start(writer: AnyPool) -> GroupCommit {
        let (jobs, mut waiting) = mpsc::unbounded_channel::<Job>();
        let counts = Arc::new(Counts::default());
        let counting = counts.clone();
        tokio::spawn(async move {
            let mut group = Vec::new();
            while waiting.recv_many(&mut group, MOST_PER_COMMIT).await > 0 {
                group.retain(|job| !job.done.is_closed());
                commit_group(&writer, std::mem::take(&mut group), &counting).await;
            }
        });
        GroupCommit { jobs, counts }
    }

    /// The commits made so far and the writes they stored (more writes than commits:
    /// writes shared commits).
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.counts.commits.load(Ordering::Relaxed),
            self.counts.writes.load(Ordering::Relaxed),
        )
    }

    /// Stores `changes` in the next group's commit, answered once it is done.
    pub(super) async fn commit(
        &self,
        changes: Vec<Pending>,
        trace: Option<&RequestTrace>,
        span: Option<SpanContext>,
    ) -> Result<Written, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            changes,
            trace: trace.map(|t| RequestTrace::new(t.subject.clone(), t.remote.clone())),
            span,
            done,
        };
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }
}

/// The committing task has stopped (the store is closed).
fn gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// Commits `group` (together when there are several), answering each write.
async fn commit_group(writer: &AnyPool, group: Vec<Job>, counts: &Counts) {
    if group.is_empty() {
        return;
    }
    let mut conn = match writer.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            for job in group {
                let _ = job.done.send(Err(StoreError::Database(again(&e))));
            }
            return;
        }
    };
    if group.len() > 1 {
        match together(&mut conn, &group).await {
            Ok(answers) => {
                counts.committed(answers.iter().filter(|a| a.is_ok()).count());
                for (job, answer) in group.into_iter().zip(answers) {
                    let _ = job.done.send(answer);
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = group.len(), "a group commit failed: each write is tried alone")
            }
        }
    }
    for job in group {
        let answer = alone(&mut conn, job.changes, job.trace.as_ref(), job.span).await;
        if answer.is_ok() {
            counts.committed(1);
        }
        let _ = job.done.send(answer);
    }
}

/// The group in one transaction, each job under a savepoint: each job's answer, or
/// (when the transaction itself fails) an error, with nothing stored.
async fn together(
    conn: &mut AnyConnection,
    group: &[Job],
) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
    let mut tx = conn.begin().await?;
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        let mut savepoint = tx.begin().await?;
        let written = write_all(
            &mut savepoint,
            job.changes.clone(),
            job.trace.as_ref(),
            job.span,
        )
        .await;
        match written {
            Ok(written) => {
                savepoint.commit().await?;
                answers.push(Ok(written));
            }
            Err(refused) => {
                savepoint.rollback().await?;
                answers.push(Err(refused));
            }
        }
    }
    tx.commit().await?;
    Ok(answers)
}

/// `changes` in a transaction of their own on `conn`.
pub(super) async fn alone(
    conn: &mut AnyConnection,
    changes: Vec<Pending>,
    trace: Option<&RequestTrace>,
    span: Option<SpanContext>,
) -> Result<Written, StoreError> {
    let mut tx = conn.begin().await?;
    let written = write_all(&mut tx, changes, trace, span).await?;
    tx.commit().await?;
    Ok(written)
}

/// Writes `changes` in `tx`, all recorded at the same instant.
async fn write_all(
    tx: &mut Transaction<'_, Any>,
    changes: Vec<Pending>,
    trace: Option<&RequestTrace>,
    span: Option<SpanContext>,
) -> Result<Written, StoreError> {
    let recorded_at = now();
    let mut records = Vec::with_capacity(changes.len());
    let mut last = None;
    for pending in changes {
        let (record, action) = write_pending(tx, pending, recorded_at, trace, span).await?;
        records.push(record);
        last = Some(action);
    }
    Ok((records, last))
}

/// The same failure to reach the database, for each write of a group.
fn again(e: &sqlx::Error) -> sqlx::Error {
    match e {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Io(std::io::Error::other(other.to_string())),
    }
}
