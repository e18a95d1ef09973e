//! Transfers scheduled for a future handover: kept until their instant, then applied by
//! the sync engine (`crate::sync::Engine`), or cancelled before.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, micros, now, version_of};
use crate::domain::{ContractId, Transfer, Version};

/// A scheduled transfer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledTransfer {
    pub id: String,
    pub contract_id: ContractId,
    pub transfer: Transfer,
    pub source: String,
    /// `pending`, `applying`, `applied`, `cancelled` or `failed`.
    pub status: String,
    pub applied_version: Option<Version>,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, contract_id, transfer, source, status, applied_version, error";

impl Store {
    /// Schedules a transfer; `Ok(false)` when the contract already has one pending.
    pub async fn schedule_transfer(
        &self,
        id: &str,
        contract: &ContractId,
        transfer: &Transfer,
        source: &str,
    ) -> Result<bool, StoreError> {
        let at = micros(now());
        let json =
            serde_json::to_string(transfer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO scheduled_transfers (id, contract_id, transfer, source, at, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(contract.as_str())
        .bind(json)
        .bind(source)
        .bind(micros(transfer.at))
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn scheduled_transfer(
        &self,
        id: &str,
    ) -> Result<Option<ScheduledTransfer>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_transfers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(scheduled_from_row).transpose()
    }

    /// Claims the pending transfers due by now (and any left `applying` by a process that
    /// died over a minute ago), marking them `applying`.
    pub async fn claim_due_transfers(&self) -> Result<Vec<ScheduledTransfer>, StoreError> {
        let at = micros(now());
        let stale = at - 60_000_000;
        let rows = sqlx::query(&format!(
            "UPDATE scheduled_transfers SET status = 'applying', updated_at = $1 \
             WHERE (status = 'pending' AND at <= $1) OR (status = 'applying' AND updated_at < $2) \
             RETURNING {COLUMNS}"
        ))
        .bind(at)
        .bind(stale)
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(scheduled_from_row).collect()
    }

    /// Records how a claimed or pending transfer ended (`applied` with the version, or
    /// `cancelled`, `failed` with why, or `pending` again to retry). Returns whether it
    /// was in one of the states `from`.
    pub async fn finish_transfer(
        &self,
        id: &str,
        from: &[&str],
        status: &str,
        version: Option<Version>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let states = from
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let done = sqlx::query(&format!(
            "UPDATE scheduled_transfers SET status = $1, applied_version = $2, error = $3, updated_at = $4 \
             WHERE id = $5 AND status IN ({states})"
        ))
        .bind(status)
        .bind(version.map(|v| v.get() as i64))
        .bind(error)
        .bind(micros(now()))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn scheduled_from_row(row: &AnyRow) -> Result<ScheduledTransfer, StoreError> {
    let id: String = row.try_get("contract_id")?;
    let transfer: String = row.try_get("transfer")?;
    Ok(ScheduledTransfer {
        id: row.try_get("id")?,
        contract_id: ContractId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        transfer: serde_json::from_str(&transfer)
            .map_err(|e| StoreError::Corrupt(format!("scheduled transfer: {e}")))?,
        source: row.try_get("source")?,
        status: row.try_get("status")?,
        applied_version: row
            .try_get::<Option<i64>, _>("applied_version")?
            .map(version_of)
            .transpose()?,
        error: row.try_get("error")?,
    })
}
