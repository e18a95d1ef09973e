//! The audit trail: who did what with whose data, when and from where. A write's row is
//! inserted in the write's own transaction, and when the write is a request's it is that
//! request's row too (its address and status: one commit per update, see
//! [`RequestTrace`]); every other access to personal data (reads, searches, refused
//! attempts) gets its rows from the API's guard, one per person whose data was in the
//! answer. Rows are only ever inserted; nothing updates or deletes them.

use std::sync::atomic::{AtomicU16, Ordering};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Backend, Revision, Store, StoreError, from_micros, micros, now};
use crate::domain::ContractId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Create,
    Update,
    Delete,
    Import,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Import => "import",
        }
    }
}

/// One audit row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Its place in the trail (increasing).
    pub seq: i64,
    pub at: jiff::Timestamp,
    /// Who: the token's subject, or the client.
    pub actor: String,
    /// `create`, `update`, `delete`, `import` (stored writes), or an access: `read`,
    /// `vread`, `search-type`, `history-instance`, `operation`, ….
    pub action: String,
    pub contract_id: Option<String>,
    pub version: Option<i64>,
    /// `success`, or `failure`.
    pub outcome: String,
    /// The system the change came from (writes), or `request`.
    pub origin: String,
    /// The calling client.
    pub client: Option<String>,
    /// The HTTP status answered (accesses).
    pub status: Option<i64>,
    /// The resources given, `Type/id`, space-separated.
    pub resources: Option<String>,
    /// The person whose data it was.
    pub patient: Option<String>,
    /// The caller's address.
    pub remote: Option<String>,
}

/// One access to record (see [`Store::record_accesses`] and [`AuditLog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    pub client: String,
    pub subject: Option<String>,
    pub interaction: String,
    pub status: u16,
    pub resources: Vec<String>,
    /// The persons whose data was in the answer.
    pub patients: Vec<String>,
    pub remote: Option<String>,
}

/// Which rows to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub patient: Option<String>,
    pub contract_id: Option<String>,
    pub since: Option<jiff::Timestamp>,
    /// Only rows after this `seq` (for paging).
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

const COLUMNS: &str = "seq, at, actor, action, contract_id, version, outcome, origin, client, status, resources, patient, remote";

/// The request a write is made for, so the write's audit row is the request's row as
/// well: who (the token's subject) and from where, and — set once the write's
/// transaction has committed — the status its row gives (201 for a contract created,
/// 204 deleted, 200 updated). The API's guard then writes no row of its own for the
/// request unless it answered another status: one commit per update, not two.
#[derive(Debug, Default)]
pub struct RequestTrace {
    pub subject: Option<String>,
    pub remote: Option<String>,
    recorded: AtomicU16,
}

impl RequestTrace {
    pub fn new(subject: Option<String>, remote: Option<String>) -> RequestTrace {
        RequestTrace {
            subject,
            remote,
            recorded: AtomicU16::new(0),
        }
    }

    /// The status the committed rows give, once a write for the request has committed.
    pub fn recorded(&self) -> Option<u16> {
        match self.recorded.load(Ordering::Acquire) {
            0 => None,
            status => Some(status),
        }
    }

    pub(crate) fn committed(&self, status: u16) {
        self.recorded.store(status, Ordering::Release);
    }
}

/// The status a request's write answers with, as its audit row gives it.
pub(crate) fn status_of(action: Action) -> u16 {
    match action {
        Action::Create => 201,
        Action::Delete => 204,
        Action::Update | Action::Import => 200,
    }
}

/// Records a successful write, inside the write's own transaction; with the request it
/// was made for (`trace`), its subject, address and status.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    action: Action,
    id: &ContractId,
    revision: &Revision,
    trace: Option<&RequestTrace>,
) -> Result<(), StoreError> {
    let change = &revision.change;
    let subject = change
        .author
        .as_deref()
        .or(trace.and_then(|t| t.subject.as_deref()));
    sqlx::query(
        "INSERT INTO audit (at, actor, action, contract_id, version, outcome, origin, client, subject, interaction, resources, patient, status, remote) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(micros(revision.recorded_at))
    .bind(subject.unwrap_or(change.source.as_str()))
    .bind(action.as_str())
    .bind(id.as_str())
    .bind(revision.version.get() as i64)
    .bind("success")
    .bind(change.source.as_str())
    .bind(change.source.as_str())
    .bind(subject)
    .bind(action.as_str())
    .bind(format!("CarePlan/{id}"))
    .bind(revision.contract.patient.id.to_string())
    .bind(trace.map(|_| i64::from(status_of(action))))
    .bind(trace.and_then(|t| t.remote.as_deref()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records accesses in one transaction (one commit for them all): a row per person
    /// whose data was given, one row without a person when none was.
    ///
    /// Rows that one `INSERT` holds (the usual batch) are written by that statement
    /// alone, without `BEGIN` and `COMMIT` around it: one statement is atomic by
    /// itself, so this saves two round trips to the database (on SQLite two hand-offs to
    /// its connection's thread) and, on SQLite, the statement journal that a statement
    /// inside a transaction keeps of every page it changes.
    pub async fn record_accesses(&self, accesses: &[AccessRecord]) -> Result<(), StoreError> {
        let rows = access_rows(accesses);
        let at = micros(now());
        match rows.len() {
            0 => Ok(()),
            1..=ROWS_PER_STATEMENT => insert_rows(&self.writer, self.backend, at, &rows).await,
            _ => {
                let mut tx = self.writer.begin().await?;
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    insert_rows(&mut *tx, self.backend, at, chunk).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// The audit rows about one contract, oldest first.
    pub async fn audit_for(&self, id: &ContractId) -> Result<Vec<AuditRow>, StoreError> {
        self.audit(&AuditQuery {
            contract_id: Some(id.as_str().to_owned()),
            ..AuditQuery::default()
        })
        .await
    }

    /// The rows the query selects, oldest first.
    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if q.patient.is_some() {
            sql.push_str(&format!(" AND patient = ${}", next()));
        }
        if q.contract_id.is_some() {
            sql.push_str(&format!(" AND contract_id = ${}", next()));
        }
        if q.since.is_some() {
            sql.push_str(&format!(" AND at >= ${}", next()));
        }
        if q.after.is_some() {
            sql.push_str(&format!(" AND seq > ${}", next()));
        }
        sql.push_str(" ORDER BY seq");
        if q.limit.is_some() {
            sql.push_str(&format!(" LIMIT ${}", next()));
        }
        let mut query = sqlx::query(&sql);
        if let Some(p) = &q.patient {
            query = query.bind(p.clone());
        }
        if let Some(c) = &q.contract_id {
            query = query.bind(c.clone());
        }
        if let Some(t) = q.since {
            query = query.bind(micros(t));
        }
        if let Some(a) = q.after {
            query = query.bind(a);
        }
        if let Some(l) = q.limit {
            query = query.bind(l);
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(row_from).collect()
    }

    /// One row by its `seq`.
    pub async fn audit_row(&self, seq: i64) -> Result<Option<AuditRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM audit WHERE seq = $1"))
            .bind(seq)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(row_from).transpose()
    }
}

/// Rows written by one `INSERT` ([`PER_ROW`] parameters each, well under SQLite's
/// limit of 32 766).
const ROWS_PER_STATEMENT: usize = 256;

/// The parameters of one audit row in [`insert_rows`].
const PER_ROW: usize = 11;

/// One row of an access: the access, the person it names (if any) and its resources
/// as one string.
type AccessRow<'a> = (&'a AccessRecord, Option<&'a str>, String);

/// The rows of the accesses: one per person given (one without a person when none
/// was).
fn access_rows(accesses: &[AccessRecord]) -> Vec<AccessRow<'_>> {
    accesses
        .iter()
        .flat_map(|access| {
            let resources = access.resources.join(" ");
            let patients: Vec<Option<&str>> = if access.patients.is_empty() {
                vec![None]
            } else {
                access.patients.iter().map(|p| Some(p.as_str())).collect()
            };
            patients
                .into_iter()
                .map(move |patient| (access, patient, resources.clone()))
        })
        .collect()
}

/// `rows` (at most [`ROWS_PER_STATEMENT`]) in one multi-row `INSERT` on `db`, each at
/// `at`.
///
/// On SQLite the parameters are anonymous (`?`): sqlx binds each numbered one (`$n`)
/// by asking SQLite for its name, which SQLite finds by walking the list of every name
/// in the statement, so binding a statement of a few thousand numbered parameters took
/// millions of steps (3 % of the gateway's CPU in reads by id at 32 connections). The
/// anonymous ones are bound in order, each at once.
async fn insert_rows<'c>(
    db: impl sqlx::Executor<'c, Database = Any>,
    backend: Backend,
    at: i64,
    rows: &[AccessRow<'_>],
) -> Result<(), StoreError> {
    use std::fmt::Write as _;
    let mut sql = String::from(
        "INSERT INTO audit (at, actor, action, outcome, origin, client, subject, interaction, status, resources, patient, remote) VALUES ",
    );
    for n in 0..rows.len() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 1..=PER_ROW {
            if column > 1 {
                sql.push_str(", ");
            }
            if column == 5 {
                sql.push_str("'request', ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", n * PER_ROW + column);
                }
            }
        }
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for (access, patient, resources) in rows {
        let outcome = if access.status < 400 {
            "success"
        } else {
            "failure"
        };
        query = query
            .bind(at)
            .bind(access.subject.as_deref().unwrap_or(access.client.as_str()))
            .bind(access.interaction.as_str())
            .bind(outcome)
            .bind(access.client.as_str())
            .bind(access.subject.as_deref())
            .bind(access.interaction.as_str())
            .bind(i64::from(access.status))
            .bind(resources.as_str())
            .bind(*patient)
            .bind(access.remote.as_deref());
    }
    query.execute(db).await?;
    Ok(())
}

fn row_from(row: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        at: from_micros(row.try_get("at")?)?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        contract_id: row.try_get("contract_id")?,
        version: row.try_get("version")?,
        outcome: row.try_get("outcome")?,
        origin: row.try_get("origin")?,
        client: row.try_get("client")?,
        status: row.try_get("status")?,
        resources: row.try_get("resources")?,
        patient: row.try_get("patient")?,
        remote: row.try_get("remote")?,
    })
}

/// The audit rows of requests, written with group commit: each request waits until its
/// rows are committed (nothing is answered without its trace), and every request that
/// arrives while one commit is under way shares the next one, so a busy gateway pays
/// one commit for many requests instead of one each.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: tokio::sync::mpsc::Sender<Pending>,
}

type Pending = (
    AccessRecord,
    tokio::sync::oneshot::Sender<Result<(), String>>,
);

/// Most accesses written in one commit.
const MOST_PER_COMMIT: usize = 512;

impl AuditLog {
    /// Starts the writer on `store` (on the current tokio runtime).
    pub fn start(store: Store) -> AuditLog {
        let (queue, mut incoming) = tokio::sync::mpsc::channel::<Pending>(8192);
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut batch = vec![first];
                while batch.len() < MOST_PER_COMMIT {
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let records: Vec<AccessRecord> = batch.iter().map(|(r, _)| r.clone()).collect();
                let result = store
                    .record_accesses(&records)
                    .await
                    .map_err(|e| e.to_string());
                for (_, done) in batch {
                    let _ = done.send(result.clone());
                }
            }
        });
        AuditLog { queue }
    }

    /// Writes the rows of one access; returns once they are committed.
    pub async fn record(&self, access: AccessRecord) -> Result<(), String> {
        let (done, committed) = tokio::sync::oneshot::channel();
        self.queue
            .send((access, done))
            .await
            .map_err(|_| "the audit writer has stopped".to_owned())?;
        committed
            .await
            .map_err(|_| "the audit writer has stopped".to_owned())?
    }
}
