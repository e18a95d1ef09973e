//! Reading and writing contracts: create, update with optimistic concurrency, versions,
//! history, search by person, and whole histories for export and import.

use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::audit::{self, Action, RequestTrace};
use super::group;
use super::{
    Change, History, Record, Revision, Store, StoreError, from_micros, micros, version_of,
};
use std::collections::BTreeMap;

use crate::domain::{Contract, ContractId, PersonId, ResourceVersion, Status, Version, Violations};

/// The columns of a stored version, as every query that reads one selects them.
macro_rules! revision_columns {
    () => {
        "v.contract_id, v.version, v.recorded_at, v.source, v.author, v.reason, v.document, v.foreign_fhir, v.deleted, v.transfer, v.resource_versions, v.merged_from"
    };
}

const REVISION_COLUMNS: &str = revision_columns!();

/// A contract's current version, as [`Store::head`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub version: crate::domain::Version,
    pub status: Status,
    /// The person (personnummer or samordningsnummer).
    pub patient: String,
    pub recorded_at: jiff::Timestamp,
    pub deleted: bool,
}

impl Head {
    /// Whether the contract is about `person`.
    pub fn is_about(&self, person: &crate::domain::PersonId) -> bool {
        self.patient == person.to_string()
    }
}

/// A contract's head: the columns of [`HeadColumns`], in that order.
macro_rules! select_head {
    () => {
        "SELECT c.id, c.version, c.status, c.patient, v.recorded_at, v.deleted FROM contracts c JOIN contract_versions v ON v.contract_id = c.id AND v.version = c.version"
    };
}

const HEAD_BY_ID: &str = concat!(select_head!(), " WHERE c.id = $1");
const HEADS_BY_PATIENT: &str = concat!(select_head!(), " WHERE c.patient = $1");

/// A head as stored: id, version, status, patient, recorded_at (µs), deleted (0 or 1).
type HeadColumns = (String, i64, String, String, i64, i64);

fn head_columns(row: &AnyRow) -> Result<HeadColumns, sqlx::Error> {
    Ok((
        row.try_get("id")?,
        row.try_get("version")?,
        row.try_get("status")?,
        row.try_get("patient")?,
        row.try_get("recorded_at")?,
        row.try_get("deleted")?,
    ))
}

/// The same from a row read on the calling thread ([`super::inline`]).
fn inline_head_columns(row: &rusqlite::Row<'_>) -> rusqlite::Result<HeadColumns> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn head_of(
    (id, version, status, patient, recorded_at, deleted): HeadColumns,
) -> Result<(ContractId, Head), StoreError> {
    let id = ContractId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let head = Head {
        version: version_of(version)?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status '{status}'")))?,
        patient,
        recorded_at: from_micros(recorded_at)?,
        deleted: deleted != 0,
    };
    Ok((id, head))
}

const SELECT_CURRENT: &str = concat!(
    "SELECT ",
    revision_columns!(),
    " FROM contracts c JOIN contract_versions v ON v.contract_id = c.id AND v.version = c.version"
);

/// The current version of the contract `$1`.
const CURRENT_BY_ID: &str = concat!(
    "SELECT ",
    revision_columns!(),
    " FROM contracts c JOIN contract_versions v ON v.contract_id = c.id AND v.version = c.version",
    " WHERE c.id = $1"
);

/// Version `$2` of the contract `$1`.
const VERSION_BY_ID: &str = concat!(
    "SELECT ",
    revision_columns!(),
    " FROM contract_versions v WHERE v.contract_id = $1 AND v.version = $2"
);

/// One change of a contract for [`Store::commit`]: a new contract (no `base`) or the
/// version after `base`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: ContractId,
    /// The version the change is based on; `None` for a new contract.
    pub base: Option<Version>,
    /// That version as the writer read it, when it has it (a version never changes):
    /// the write then does not read and parse it again inside its transaction.
    pub based_on: Option<Box<Revision>>,
    pub contract: Contract,
    pub change: Change,
    /// FHIR content received with the contract that it does not model (see
    /// `fhir::residue`).
    pub foreign_fhir: Option<serde_json::Value>,
    /// The change deletes the contract (see [`Store::delete`]).
    pub deleted: bool,
    /// The resources the change leaves as they were, with the version each carries over
    /// (see [`Revision::unchanged`]).
    pub unchanged: BTreeMap<String, ResourceVersion>,
}

impl Pending {
    /// The deletion of `current`: revoked (a completed contract stays completed), what
    /// it kept of FHIR kept with it, and marked deleted.
    pub fn deletion(current: &Record, change: Change) -> Pending {
        let mut contract = current.revision.contract.clone();
        if contract.status.can_become(Status::Revoked) {
            contract.status = Status::Revoked;
        }
        Pending {
            id: current.id.clone(),
            base: Some(current.revision.version),
            based_on: Some(Box::new(current.revision.clone())),
            contract,
            change,
            foreign_fhir: current.revision.foreign_fhir.clone(),
            deleted: true,
            unchanged: BTreeMap::new(),
        }
    }
}

/// Writes one change inside `tx`: the head row (inserted, or moved from `base` — the
/// conditional write comes first, so it takes the row or SQLite's write lock before
/// anything is read, and two changes from one version cannot both pass), the version,
/// the identifier index, its outbox row (carrying `span` on to the sync calls) and its
/// audit row (naming `trace`).
pub(super) async fn write_pending(
    tx: &mut Transaction<'_, Any>,
    pending: Pending,
    recorded_at: jiff::Timestamp,
    trace: Option<&RequestTrace>,
    span: Option<crate::trace::SpanContext>,
) -> Result<(Record, Action), StoreError> {
    let Pending {
        id,
        base,
        based_on,
        contract,
        change,
        foreign_fhir,
        deleted,
        unchanged,
    } = pending;
    let revision = Revision {
        version: base.map_or(Version::FIRST, Version::next),
        recorded_at,
        change,
        contract,
        foreign_fhir,
        deleted,
        unchanged,
    };
    let Some(expected) = base else {
        insert_head(tx, &id, &revision).await?;
        insert_revision(tx, &id, &revision).await?;
        index_identifiers(tx, &id, &revision, None).await?;
        enqueue(tx, &id, &revision, None, span).await?;
        audit::insert(tx, Action::Create, &id, &revision, trace).await?;
        return Ok((Record { id, revision }, Action::Create));
    };
    let moved = sqlx::query(
        "UPDATE contracts SET version = $1, status = $2, patient = $3, unit_hsa_id = $4, updated_at = $5 \
         WHERE id = $6 AND version = $7",
    )
    .bind(revision.version.get() as i64)
    .bind(revision.contract.status.as_str())
    .bind(revision.contract.patient.id.to_string())
    .bind(revision.contract.responsible_unit.as_ref().map(|u| u.hsa_id.to_string()))
    .bind(micros(revision.recorded_at))
    .bind(id.as_str())
    .bind(expected.get() as i64)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(not_moved(tx, &id, expected).await);
    }
    let previous = match based_on {
        Some(read) if read.version == expected => *read,
        _ => revision_in(tx, &id, expected).await?,
    };
    if previous.deleted {
        return Err(StoreError::Deleted(id));
    }
    let action = if deleted {
        Action::Delete
    } else {
        revision
            .contract
            .validate_change(revision.version, &previous.contract, expected)?;
        revision
            .contract
            .validate_person(&previous.contract, &revision.change)?;
        Action::Update
    };
    insert_revision(tx, &id, &revision).await?;
    index_identifiers(tx, &id, &revision, Some(&previous)).await?;
    let previous = (!deleted).then_some(&previous.contract);
    enqueue(tx, &id, &revision, previous, span).await?;
    audit::insert(tx, action, &id, &revision, trace).await?;
    Ok((Record { id, revision }, action))
}

impl Store {
    /// Stores a new contract under a fresh id, as version 1.
    pub async fn create(&self, contract: Contract, change: Change) -> Result<Record, StoreError> {
        let id = ContractId::parse(&uuid::Uuid::new_v4().to_string())
            .map_err(|e| StoreError::Corrupt(format!("generated id: {e}")))?;
        self.create_with_id(id, contract, change).await
    }

    /// Stores a new contract under `id`, as version 1; fails if the id is taken.
    pub async fn create_with_id(
        &self,
        id: ContractId,
        contract: Contract,
        change: Change,
    ) -> Result<Record, StoreError> {
        self.create_with(id, contract, change, None).await
    }

    /// [`Store::create_with_id`], keeping the FHIR content received with the contract
    /// that it does not model.
    pub async fn create_with(
        &self,
        id: ContractId,
        contract: Contract,
        change: Change,
        foreign_fhir: Option<serde_json::Value>,
    ) -> Result<Record, StoreError> {
        let pending = Pending {
            id,
            base: None,
            based_on: None,
            contract,
            change,
            foreign_fhir,
            deleted: false,
            unchanged: BTreeMap::new(),
        };
        self.commit_one(pending).await
    }

    /// Stores `contract` as the version after `expected`. Fails, changing nothing, when the
    /// contract is not at `expected` any more, or when the change breaks an invariant.
    pub async fn update(
        &self,
        id: &ContractId,
        expected: Version,
        contract: Contract,
        change: Change,
    ) -> Result<Record, StoreError> {
        self.update_with(id, expected, contract, change, None).await
    }

    /// [`Store::update`], keeping the FHIR content received with the contract that it
    /// does not model.
    pub async fn update_with(
        &self,
        id: &ContractId,
        expected: Version,
        contract: Contract,
        change: Change,
        foreign_fhir: Option<serde_json::Value>,
    ) -> Result<Record, StoreError> {
        let pending = Pending {
            id: id.clone(),
            base: Some(expected),
            based_on: None,
            contract,
            change,
            foreign_fhir,
            deleted: false,
            unchanged: BTreeMap::new(),
        };
        self.commit_one(pending).await
    }

    /// Deletes a contract the FHIR way: a new version, based on `expected`, that revokes
    /// it (a completed contract stays completed) and marks it deleted, so its resources
    /// read as gone. Nothing is erased: every earlier version stays, and the deletion goes
    /// out to the sync targets like any change.
    pub async fn delete(
        &self,
        id: &ContractId,
        expected: Version,
        change: Change,
    ) -> Result<Record, StoreError> {
        let current = self.get(id).await?;
        if current.revision.version != expected {
            return Err(StoreError::VersionConflict {
                id: id.clone(),
                expected,
                current: current.revision.version,
            });
        }
        if current.revision.deleted {
            return Err(StoreError::Deleted(id.clone()));
        }
        let pending = Pending::deletion(&current, change);
        self.commit_one(pending).await
    }

    async fn commit_one(&self, pending: Pending) -> Result<Record, StoreError> {
        let mut records = self.commit(vec![pending]).await?;
        records
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a commit of one change stored none".into()))
    }

    /// Stores every change in one database transaction: all of them, or (on the first
    /// error) none. Each is checked against the contract's invariants and, for an update,
    /// against the version it is based on, which must still be the current one
    /// ([`StoreError::VersionConflict`] otherwise). Every version gets its outbox row and
    /// its audit row in the same transaction.
    pub async fn commit(&self, changes: Vec<Pending>) -> Result<Vec<Record>, StoreError> {
        self.commit_for(changes, None).await
    }

    /// [`Store::commit`] for a request (`trace`): the versions' audit rows are the
    /// request's rows as well, with its address and status, and once they are committed
    /// the trace says so ([`RequestTrace::recorded`]).
    pub async fn commit_for(
        &self,
        changes: Vec<Pending>,
        trace: Option<&RequestTrace>,
    ) -> Result<Vec<Record>, StoreError> {
        for pending in changes.iter().filter(|p| !p.deleted) {
            pending.contract.validate()?;
            if pending.base.is_none() {
                pending.id.check_new().map_err(Violations::from)?;
            }
        }
        // A merge's rows name the identity the contracts are about now; the request's
        // own row (the guard's) names the earlier one too.
        let whole = !changes.iter().any(|p| p.change.merged_from.is_some());
        let span = crate::trace::current();
        let (records, last) = match &self.group {
            Some(group) => group.commit(changes, trace, span).await?,
            None => group::alone(&mut *self.writer.acquire().await?, changes, trace, span).await?,
        };
        self.changed();
        if let (Some(trace), Some(action), true) = (trace, last, whole) {
            trace.committed(audit::status_of(action));
        }
        Ok(records)
    }

    /// The live contract whose CarePlan carries the identifier `system|value` of another
    /// system (an EHR's own), if any.
    pub async fn contract_with_identifier(
        &self,
        system: &str,
        value: &str,
    ) -> Result<Option<ContractId>, StoreError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT contract_id FROM contract_identifiers WHERE system = $1 AND value = $2",
        )
        .bind(system)
        .bind(value)
        .fetch_optional(&self.reader)
        .await?;
        id.map(|id| ContractId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// The current version of a contract.
    pub async fn get(&self, id: &ContractId) -> Result<Record, StoreError> {
        self.one_revision(CURRENT_BY_ID, id, None)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// The one version `query` selects by the contract (`$1`) and, when given, the
    /// version number (`$2`): in place on SQLite; elsewhere where a read that may lag
    /// goes, then from the primary if that has none.
    async fn one_revision(
        &self,
        query: &str,
        id: &ContractId,
        version: Option<Version>,
    ) -> Result<Option<Record>, StoreError> {
        let number = version.map(|v| v.get() as i64);
        if let Some(inline) = &self.inline {
            let id = id.as_str();
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&id];
            params.extend(number.as_ref().map(|n| n as &dyn rusqlite::ToSql));
            let row = inline.optional(query, &params, inline_revision)?;
            return row.map(record_of).transpose();
        }
        for pool in self.lagging_then_primary() {
            let mut select = sqlx::query(query).bind(id.as_str());
            if let Some(number) = number {
                select = select.bind(number);
            }
            if let Some(row) = select.fetch_optional(pool).await? {
                return record_from_row(&row).map(Some);
            }
        }
        Ok(None)
    }

    /// What the current version is, without reading the contract itself: for readers
    /// that already hold what they need of that version (the API's read cache).
    pub async fn head(&self, id: &ContractId) -> Result<Option<Head>, StoreError> {
        if let Some(inline) = &self.inline {
            let columns = inline.optional(HEAD_BY_ID, &[&id.as_str()], inline_head_columns)?;
            return Ok(columns.map(head_of).transpose()?.map(|(_, head)| head));
        }
        for pool in self.lagging_then_primary() {
            let row = sqlx::query(HEAD_BY_ID)
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?;
            if let Some(row) = row {
                return head_of(head_columns(&row)?).map(|(_, head)| Some(head));
            }
        }
        Ok(None)
    }

    /// The current version of each of a person's contracts, without reading the
    /// contracts themselves, in id order. From the replica in a [`Store::replica`]
    /// handle: a contract created in the last moments may be missing.
    pub async fn heads_by_patient(
        &self,
        patient: &PersonId,
    ) -> Result<Vec<(ContractId, Head)>, StoreError> {
        let patient = patient.to_string();
        let columns = match &self.inline {
            Some(inline) => {
                inline.all(HEADS_BY_PATIENT, &[&patient.as_str()], inline_head_columns)?
            }
            None => sqlx::query(HEADS_BY_PATIENT)
                .bind(patient)
                .fetch_all(self.reads())
                .await?
                .iter()
                .map(head_columns)
                .collect::<Result<_, _>>()?,
        };
        let mut heads = columns
            .into_iter()
            .map(head_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Sorted here, not by the database: with `ORDER BY c.id` and no statistics (a
        // fresh bulk load, autovacuum off), PostgreSQL may walk the whole primary key
        // in order instead of using the index on the person.
        heads.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(heads)
    }

    /// One version of a contract.
    pub async fn get_version(
        &self,
        id: &ContractId,
        version: Version,
    ) -> Result<Record, StoreError> {
        self.one_revision(VERSION_BY_ID, id, Some(version))
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{id} version {version}")))
    }

    /// Every version of a contract, oldest first.
    pub async fn history(&self, id: &ContractId) -> Result<History, StoreError> {
        let query = format!(
            "SELECT {REVISION_COLUMNS} FROM contract_versions v WHERE v.contract_id = $1 ORDER BY v.version"
        );
        let mut rows = Vec::new();
        for pool in self.lagging_then_primary() {
            rows = sqlx::query(&query)
                .bind(id.as_str())
                .fetch_all(pool)
                .await?;
            if !rows.is_empty() {
                break;
            }
        }
        if rows.is_empty() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let versions = rows
            .iter()
            .map(|r| record_from_row(r).map(|r| r.revision))
            .collect::<Result<_, _>>()?;
        Ok(History {
            id: id.clone(),
            versions,
        })
    }

    /// The versions of all contracts recorded at or after `since`, newest first: a page of
    /// at most `limit`, skipping the first `offset`. From the replica in a
    /// [`Store::replica`] handle.
    pub async fn versions_since(
        &self,
        since: Option<jiff::Timestamp>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REVISION_COLUMNS} FROM contract_versions v WHERE v.recorded_at >= $1 \
             ORDER BY v.recorded_at DESC, v.contract_id, v.version DESC LIMIT $2 OFFSET $3"
        ))
        .bind(since.map_or(i64::MIN, micros))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(self.reads())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The current version of every contract with this person; from the replica in a
    /// [`Store::replica`] handle.
    pub async fn find_by_patient(&self, patient: &PersonId) -> Result<Vec<Record>, StoreError> {
        // Sorted here, as in `heads_by_patient`.
        let rows = sqlx::query(&format!("{SELECT_CURRENT} WHERE c.patient = $1"))
            .bind(patient.to_string())
            .fetch_all(self.reads())
            .await?;
        let mut records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        records.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(records)
    }

    /// The current version of every contract, streamed in id order.
    pub fn current(&self) -> BoxStream<'_, Result<Record, StoreError>> {
        sqlx::query(concat!(
            "SELECT ",
            revision_columns!(),
            " FROM contracts c JOIN contract_versions v ON v.contract_id = c.id AND v.version = c.version ORDER BY c.id"
        ))
        .fetch(&self.reader)
        .map(|row| row.map_err(StoreError::from).and_then(|r| record_from_row(&r)))
        .boxed()
    }

    /// How many contracts the store holds.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contracts")
            .fetch_one(&self.reader)
            .await?;
        Ok(n as u64)
    }

    /// Every contract with all its versions, streamed in id order: memory stays bounded
    /// by one contract's history, however many contracts there are.
    pub fn export(&self) -> BoxStream<'_, Result<History, StoreError>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            revision_columns!(),
            " FROM contract_versions v ORDER BY v.contract_id, v.version"
        ))
        .fetch(&self.reader)
        .map_err(StoreError::from);
        futures_util::stream::try_unfold(
            (rows, None::<History>),
            |(mut rows, mut pending)| async move {
                while let Some(row) = rows.try_next().await? {
                    let Record { id, revision } = record_from_row(&row)?;
                    match &mut pending {
                        Some(h) if h.id == id => h.versions.push(revision),
                        _ => {
                            if let Some(done) = pending.replace(History {
                                id,
                                versions: vec![revision],
                            }) {
                                return Ok(Some((done, (rows, pending))));
                            }
                        }
                    }
                }
                Ok(pending.take().map(|done| (done, (rows, None))))
            },
        )
        .boxed()
    }

    /// Stores a whole history (as exported) for a contract the store does not have. The
    /// versions must follow each other and each must keep the invariants; the newest gets
    /// an outbox row so targets learn of it.
    pub async fn import(&self, history: History) -> Result<Record, StoreError> {
        let latest = checked_latest(&history)?;
        let mut tx = self.writer.begin().await?;
        insert_history(&mut tx, &history, latest).await?;
        tx.commit().await?;
        Ok(Record {
            id: history.id.clone(),
            revision: latest.clone(),
        })
    }

    /// Stores many histories as [`Store::import`] does, each whole or not at all, with one
    /// commit for all that are accepted (a bulk load pays one durable commit per batch,
    /// not per contract). The answer has one result per history, in order. When a history
    /// the checks passed still fails in the database (an id already stored), the batch is
    /// rolled back and its histories are stored one by one, so that one's failure takes
    /// nothing else with it.
    pub async fn import_batch(
        &self,
        histories: Vec<History>,
    ) -> Result<Vec<Result<Record, StoreError>>, StoreError> {
        let checked: Vec<Result<&Revision, StoreError>> =
            histories.iter().map(checked_latest).collect();
        let mut tx = self.writer.begin().await?;
        let mut all_stored = true;
        for (history, latest) in histories.iter().zip(&checked) {
            if let Ok(latest) = latest {
                match insert_history(&mut tx, history, latest).await {
                    Ok(()) => {}
                    Err(e @ (StoreError::Database(_) | StoreError::Corrupt(_))) => return Err(e),
                    Err(_) => {
                        all_stored = false;
                        break;
                    }
                }
            }
        }
        if !all_stored {
            tx.rollback().await?;
            let mut one_by_one = Vec::with_capacity(histories.len());
            for history in histories {
                one_by_one.push(self.import(history).await);
            }
            return Ok(one_by_one);
        }
        tx.commit().await?;
        Ok(histories
            .iter()
            .zip(checked)
            .map(|(history, latest)| {
                latest.map(|latest| Record {
                    id: history.id.clone(),
                    revision: latest.clone(),
                })
            })
            .collect())
    }
}

/// The newest version of a history whose versions follow each other and each keep the
/// invariants.
fn checked_latest(history: &History) -> Result<&Revision, StoreError> {
    let mut previous: Option<&Revision> = None;
    for revision in &history.versions {
        match previous {
            None => revision.contract.validate()?,
            Some(p) => {
                revision
                    .contract
                    .validate_change(revision.version, &p.contract, p.version)?;
                revision
                    .contract
                    .validate_person(&p.contract, &revision.change)?
            }
        }
        previous = Some(revision);
    }
    Ok(previous.ok_or_else(|| {
        Violations::from(crate::domain::Violation::EmptyText {
            field: "versions".into(),
        })
    })?)
}

/// The rows of an imported history: its head, every version, the newest's outbox row and
/// the audit row.
async fn insert_history(
    tx: &mut Transaction<'_, Any>,
    history: &History,
    latest: &Revision,
) -> Result<(), StoreError> {
    insert_head(tx, &history.id, latest).await?;
    for revision in &history.versions {
        insert_revision(tx, &history.id, revision).await?;
    }
    index_identifiers(tx, &history.id, latest, None).await?;
    let before = history.versions.iter().rev().nth(1).map(|r| &r.contract);
    enqueue(tx, &history.id, latest, before, crate::trace::current()).await?;
    audit::insert(tx, Action::Import, &history.id, latest, None).await
}

/// Inserts the contract's head row, pointing at `revision`.
async fn insert_head(
    tx: &mut Transaction<'_, Any>,
    id: &ContractId,
    revision: &Revision,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO contracts (id, version, status, patient, unit_hsa_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.as_str())
    .bind(revision.version.get() as i64)
    .bind(revision.contract.status.as_str())
    .bind(revision.contract.patient.id.to_string())
    .bind(revision.contract.responsible_unit.as_ref().map(|u| u.hsa_id.to_string()))
    .bind(micros(revision.recorded_at))
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(id.clone()));
    }
    Ok(())
}

async fn insert_revision(
    tx: &mut Transaction<'_, Any>,
    id: &ContractId,
    revision: &Revision,
) -> Result<(), StoreError> {
    let document = serde_json::to_string(&revision.contract)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO contract_versions (contract_id, version, recorded_at, source, author, reason, document, foreign_fhir, deleted, transfer, resource_versions, merged_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id.as_str())
    .bind(revision.version.get() as i64)
    .bind(micros(revision.recorded_at))
    .bind(revision.change.source.as_str())
    .bind(revision.change.author.as_deref())
    .bind(revision.change.reason.as_deref())
    .bind(document)
    .bind(revision.foreign_fhir.as_ref().map(serde_json::Value::to_string))
    .bind(i64::from(revision.deleted))
    .bind(
        revision
            .change
            .transfer
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    )
    .bind(
        (!revision.unchanged.is_empty())
            .then(|| serde_json::to_string(&revision.unchanged))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    )
    .bind(revision.change.merged_from.as_ref().map(PersonId::to_string))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes the identifier index say what this version's CarePlan carries: its identifiers
/// of other systems name this contract (none, once it is deleted). One another live
/// contract holds is [`StoreError::IdentifierTaken`].
async fn index_identifiers(
    tx: &mut Transaction<'_, Any>,
    id: &ContractId,
    revision: &Revision,
    previous: Option<&Revision>,
) -> Result<(), StoreError> {
    let held = |r: &Revision| {
        if r.deleted {
            Vec::new()
        } else {
            crate::fhir::residue::plan_identifiers(r.foreign_fhir.as_ref())
        }
    };
    let identifiers = held(revision);
    // The index holds what the version before held: nothing to remove when it held none.
    let none_before = match previous {
        Some(previous) => held(previous).is_empty(),
        None => revision.version == Version::FIRST,
    };
    if identifiers.is_empty() && none_before {
        return Ok(());
    }
    sqlx::query("DELETE FROM contract_identifiers WHERE contract_id = $1")
        .bind(id.as_str())
        .execute(&mut **tx)
        .await?;
    for (system, value) in identifiers {
        let inserted = sqlx::query(
            "INSERT INTO contract_identifiers (system, value, contract_id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&system)
        .bind(&value)
        .bind(id.as_str())
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT contract_id FROM contract_identifiers WHERE system = $1 AND value = $2",
            )
            .bind(&system)
            .bind(&value)
            .fetch_optional(&mut **tx)
            .await?;
            // The same identifier twice in one CarePlan is this contract's already.
            if owner.as_deref() != Some(id.as_str()) {
                return Err(StoreError::IdentifierTaken { system, value });
            }
        }
    }
    Ok(())
}

/// Writes the outbox row that tells the sync worker about this version, with the
/// responsible units of this version and of `previous` (so the unit that stops being
/// responsible learns of it too).
async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    id: &ContractId,
    revision: &Revision,
    previous: Option<&Contract>,
    span: Option<crate::trace::SpanContext>,
) -> Result<(), StoreError> {
    let mut units: Vec<String> = [Some(&revision.contract), previous]
        .into_iter()
        .flatten()
        .filter_map(|c| c.responsible_unit.as_ref().map(|u| u.hsa_id.to_string()))
        .collect();
    units.dedup();
    sqlx::query(
        "INSERT INTO outbox (contract_id, version, origin, created_at, units, patient, traceparent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.as_str())
    .bind(revision.version.get() as i64)
    .bind(revision.change.source.as_str())
    .bind(micros(revision.recorded_at))
    .bind(units.join(" "))
    .bind(revision.contract.patient.id.to_string())
    // The request's trace, carried on to the sync calls.
    .bind(span.map(|span| span.header()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Why a conditional write to `id` at `expected` moved no row: no such contract, or it
/// is at another version.
async fn not_moved(
    tx: &mut Transaction<'_, Any>,
    id: &ContractId,
    expected: Version,
) -> StoreError {
    let current: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT version FROM contracts WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await;
    match current {
        Err(e) => e.into(),
        Ok(None) => StoreError::NotFound(id.to_string()),
        Ok(Some(v)) => match version_of(v) {
            Ok(current) => StoreError::VersionConflict {
                id: id.clone(),
                expected,
                current,
            },
            Err(e) => e,
        },
    }
}

async fn revision_in(
    tx: &mut Transaction<'_, Any>,
    id: &ContractId,
    version: Version,
) -> Result<Revision, StoreError> {
    let row = sqlx::query(VERSION_BY_ID)
        .bind(id.as_str())
        .bind(version.get() as i64)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("contract {id} has no version {version}")))?;
    record_from_row(&row).map(|r| r.revision)
}

fn record_from_row(row: &AnyRow) -> Result<Record, StoreError> {
    record_of(StoredRevision {
        id: row.try_get("contract_id")?,
        version: row.try_get("version")?,
        recorded_at: row.try_get("recorded_at")?,
        source: row.try_get("source")?,
        author: row.try_get("author")?,
        reason: row.try_get("reason")?,
        document: row.try_get("document")?,
        foreign_fhir: row.try_get("foreign_fhir")?,
        deleted: row.try_get("deleted")?,
        transfer: row.try_get("transfer")?,
        resource_versions: row.try_get("resource_versions")?,
        merged_from: row.try_get("merged_from")?,
    })
}

/// The same from a row read on the calling thread ([`super::inline`]), its columns in
/// the order of [`REVISION_COLUMNS`].
fn inline_revision(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRevision> {
    Ok(StoredRevision {
        id: row.get(0)?,
        version: row.get(1)?,
        recorded_at: row.get(2)?,
        source: row.get(3)?,
        author: row.get(4)?,
        reason: row.get(5)?,
        document: row.get(6)?,
        foreign_fhir: row.get(7)?,
        deleted: row.get(8)?,
        transfer: row.get(9)?,
        resource_versions: row.get(10)?,
        merged_from: row.get(11)?,
    })
}

/// A version's columns as stored ([`REVISION_COLUMNS`]).
struct StoredRevision {
    id: String,
    version: i64,
    recorded_at: i64,
    source: String,
    author: Option<String>,
    reason: Option<String>,
    document: String,
    foreign_fhir: Option<String>,
    deleted: i64,
    transfer: Option<String>,
    resource_versions: Option<String>,
    merged_from: Option<String>,
}

fn record_of(row: StoredRevision) -> Result<Record, StoreError> {
    let id = row.id;
    let contract: Contract = serde_json::from_str(&row.document)
        .map_err(|e| StoreError::Corrupt(format!("contract {id}: {e}")))?;
    Ok(Record {
        id: ContractId::parse(&id)
            .map_err(|e| StoreError::Corrupt(format!("contract id {id}: {e}")))?,
        revision: Revision {
            version: version_of(row.version)?,
            recorded_at: from_micros(row.recorded_at)?,
            change: Change {
                source: row.source,
                author: row.author,
                reason: row.reason,
                transfer: row
                    .transfer
                    .map(|t| serde_json::from_str(&t))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("contract {id}: transfer: {e}")))?,
                merged_from: row
                    .merged_from
                    .map(|p| PersonId::parse(&p))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("contract {id}: merged_from: {e}")))?,
            },
            contract,
            foreign_fhir: row
                .foreign_fhir
                .map(|f| serde_json::from_str(&f))
                .transpose()
                .map_err(|e| {
                    StoreError::Corrupt(format!("contract {id}: foreign FHIR content: {e}"))
                })?,
            deleted: row.deleted != 0,
            unchanged: row
                .resource_versions
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("contract {id}: resource versions: {e}")))?
                .unwrap_or_default(),
        },
    })
}
