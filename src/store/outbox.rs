//! The transactional outbox: one row per stored version, written in the same transaction
//! as the version. The sync worker reads it; nothing here delivers anything.

use sqlx::Row;

use super::{Store, StoreError, from_micros, version_of};
use crate::domain::{ContractId, Version};

/// One change waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub seq: i64,
    pub contract_id: ContractId,
    pub version: Version,
    /// The system the change came from; it is not sent back there.
    pub origin: String,
    pub created_at: jiff::Timestamp,
}

impl Store {
    /// How many changes wait in the outbox to be dispatched to the targets' queues.
    pub async fn outbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.reader)
            .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Outbox rows after `after_seq`, oldest first, at most `limit`.
    pub async fn outbox_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, contract_id, version, origin, created_at FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("contract_id")?;
                let version: i64 = row.try_get("version")?;
                Ok(OutboxRow {
                    seq: row.try_get("seq")?,
                    contract_id: ContractId::parse(&id)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    version: version_of(version)?,
                    origin: row.try_get("origin")?,
                    created_at: from_micros(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }
}
