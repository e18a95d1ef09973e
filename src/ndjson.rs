//! Bulk export and import as NDJSON, in two formats: contract histories (one contract
//! per line with its whole history, `{"id": …, "versions": [oldest … newest]}`: a
//! lossless backup) and FHIR (one resource per line, each contract's current version as
//! its CarePlan, CareTeam, Goals and Appointments: for other FHIR systems). Both
//! directions stream, so a store of millions of contracts needs memory for one contract
//! at a time.

use std::sync::Arc;

use futures_util::TryStreamExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::domain::ContractId;
use crate::fhir::residue::Residue;
use crate::fhir::stored::resources_of;
use crate::fhir::{ContractResources, Profile, from_fhir};
use crate::store::{History, Store, StoreError};
use crate::write::{Caller, WriteError, Writer};

#[derive(Debug, thiserror::Error)]
pub enum NdjsonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Writes every contract as one line; returns how many were written. `tick` is called
/// after each contract.
pub async fn export<W: AsyncWrite + Unpin>(
    store: &Store,
    out: &mut W,
    tick: &dyn Fn(),
) -> Result<u64, NdjsonError> {
    let mut stream = store.export();
    let mut written = 0;
    let mut line = Vec::with_capacity(16 * 1024);
    while let Some(history) = stream.try_next().await? {
        tick();
        line.clear();
        serde_json::to_writer(&mut line, &history)?;
        line.push(b'\n');
        out.write_all(&line).await?;
        written += 1;
    }
    out.flush().await?;
    Ok(written)
}

/// A line that could not be imported, and why.
#[derive(Debug)]
pub struct Rejected {
    /// 1-based line number in the input.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: u64,
    pub rejected: Vec<Rejected>,
}

/// Contracts stored with one commit by [`import`].
pub const IMPORT_BATCH: usize = 256;

/// Imports every line; each contract is stored whole or not at all. Lines that fail
/// (bad JSON, a broken invariant, an id already in the store) are reported and skipped.
/// Contracts are stored [`IMPORT_BATCH`] at a time, one commit each batch
/// ([`Store::import_batch`]). `tick` is called after each line.
pub async fn import<R: AsyncBufRead + Unpin>(
    store: &Store,
    input: R,
    tick: &dyn Fn(),
) -> Result<ImportReport, NdjsonError> {
    let mut lines = input.lines();
    let mut report = ImportReport::default();
    let mut batch: Vec<(u64, History)> = Vec::with_capacity(IMPORT_BATCH);
    let mut number = 0;
    while let Some(line) = lines.next_line().await? {
        number += 1;
        tick();
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<History>(&line) {
            Ok(history) => batch.push((number, history)),
            Err(e) => report.rejected.push(Rejected {
                line: number,
                reason: format!("not a contract history: {e}"),
            }),
        }
        if batch.len() == IMPORT_BATCH {
            store_batch(store, std::mem::take(&mut batch), &mut report).await?;
        }
    }
    store_batch(store, batch, &mut report).await?;
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

async fn store_batch(
    store: &Store,
    batch: Vec<(u64, History)>,
    report: &mut ImportReport,
) -> Result<(), NdjsonError> {
    if batch.is_empty() {
        return Ok(());
    }
    let (numbers, histories): (Vec<u64>, Vec<History>) = batch.into_iter().unzip();
    for (line, outcome) in numbers
        .into_iter()
        .zip(store.import_batch(histories).await?)
    {
        match outcome {
            Ok(_) => report.imported += 1,
            Err(e @ (StoreError::Database(_) | StoreError::Corrupt(_))) => return Err(e.into()),
            Err(e) => report.rejected.push(Rejected {
                line,
                reason: e.to_string(),
            }),
        }
    }
    Ok(())
}

/// Writes the current version of every contract as FHIR NDJSON, mapped with `profile`:
/// each contract's CarePlan, then its CareTeam, Goals and Appointments, one resource per
/// line (the FHIR bulk data format). Deleted contracts are left out. `tick` is called
/// after each contract. Returns how many contracts were written.
pub async fn export_fhir<W: AsyncWrite + Unpin>(
    store: &Store,
    profile: &Profile,
    out: &mut W,
    tick: &dyn Fn(),
) -> Result<u64, NdjsonError> {
    let mut stream = store.current();
    let mut written = 0;
    let mut line = Vec::with_capacity(16 * 1024);
    while let Some(record) = stream.try_next().await? {
        tick();
        if record.revision.deleted {
            continue;
        }
        for resource in resources_of(&record, profile).all() {
            line.clear();
            serde_json::to_writer(&mut line, resource)?;
            line.push(b'\n');
            out.write_all(&line).await?;
        }
        written += 1;
    }
    out.flush().await?;
    Ok(written)
}

/// A contract being read from FHIR NDJSON: where its CarePlan was, its id, its resources.
struct Pending {
    line: u64,
    id: Result<ContractId, String>,
    resources: ContractResources,
}

/// Imports FHIR NDJSON as `export_fhir` writes it: a CarePlan starts a contract (its id
/// is the contract identifier, or the CarePlan's id), and the CareTeam, Goals and
/// Appointments after it belong to it. Each contract is stored whole (as version 1, from
/// `import`) or reported by the line of its CarePlan and skipped. `tick` is called after
/// each line.
pub async fn import_fhir<R: AsyncBufRead + Unpin>(
    store: &Store,
    profile: &Profile,
    input: R,
    tick: &dyn Fn(),
) -> Result<ImportReport, NdjsonError> {
    let writer = Writer::new(store.clone(), Arc::new(profile.clone()), Arc::default());
    let mut lines = input.lines();
    let mut report = ImportReport::default();
    let mut pending: Option<Pending> = None;
    let mut number = 0;
    while let Some(line) = lines.next_line().await? {
        number += 1;
        tick();
        if line.trim().is_empty() {
            continue;
        }
        let resource: serde_json::Value = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                report.rejected.push(Rejected {
                    line: number,
                    reason: format!("not JSON: {e}"),
                });
                continue;
            }
        };
        let kind = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match (kind.as_str(), pending.as_mut()) {
            ("CarePlan", _) => {
                if let Some(done) = pending.take() {
                    store_pending(&writer, profile, done, &mut report).await?;
                }
                let id = resource["identifier"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|i| i["system"] == profile.identifiers.contract.as_str())
                    .and_then(|i| i["value"].as_str())
                    .or_else(|| resource["id"].as_str())
                    .ok_or_else(|| {
                        "the CarePlan has neither the contract identifier nor an id".to_owned()
                    })
                    .and_then(|id| ContractId::parse(id).map_err(|e| e.to_string()));
                pending = Some(Pending {
                    line: number,
                    id,
                    resources: ContractResources::with_plan(resource),
                });
            }
            ("CareTeam", Some(p)) => p.resources.care_team = resource,
            ("Goal", Some(p)) => p.resources.goals.push(resource),
            ("Appointment", Some(p)) => p.resources.appointments.push(resource),
            ("CareTeam" | "Goal" | "Appointment", None) => report.rejected.push(Rejected {
                line: number,
                reason: format!(
                    "a {kind} before any CarePlan: each contract starts with its CarePlan"
                ),
            }),
            _ => report.rejected.push(Rejected {
                line: number,
                reason: format!(
                    "{} is not part of a contract",
                    if kind.is_empty() {
                        "a resource without resourceType"
                    } else {
                        &kind
                    }
                ),
            }),
        }
    }
    if let Some(done) = pending.take() {
        store_pending(&writer, profile, done, &mut report).await?;
    }
    Ok(report)
}

async fn store_pending(
    writer: &Writer,
    profile: &Profile,
    pending: Pending,
    report: &mut ImportReport,
) -> Result<(), NdjsonError> {
    let reject = |reason: String| Rejected {
        line: pending.line,
        reason,
    };
    let id = match pending.id {
        Ok(id) => id,
        Err(reason) => {
            report.rejected.push(reject(reason));
            return Ok(());
        }
    };
    let contract = match from_fhir(&pending.resources, profile) {
        Ok(contract) => contract,
        Err(e) => {
            report
                .rejected
                .push(reject(format!("{}: {}", e.expression, e.message)));
            return Ok(());
        }
    };
    let foreign = Residue::stored(&pending.resources, profile);
    // Through the write path, as the gateway itself: the same rules as every write.
    match writer
        .create(&Caller::gateway("import"), &id, contract, foreign)
        .await
    {
        Ok(_) => report.imported += 1,
        Err(WriteError::Store(e @ (StoreError::Database(_) | StoreError::Corrupt(_)))) => {
            return Err(e.into());
        }
        Err(WriteError::Rules(v, _)) => report.rejected.push(reject(v.to_string())),
        Err(e) => report.rejected.push(reject(e.to_string())),
    }
    Ok(())
}
