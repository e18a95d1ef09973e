//! The audit trail: who did what to which contract, when and from where. Rows are only
//! ever inserted; nothing updates or deletes them.

use sqlx::{Any, Row, Transaction};

use super::{Revision, Store, StoreError, from_micros, micros};
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
    pub at: jiff::Timestamp,
    pub actor: String,
    pub action: String,
    pub contract_id: Option<String>,
    pub version: Option<i64>,
    pub outcome: String,
    pub origin: String,
}

/// Records a successful write, inside the write's own transaction.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    action: Action,
    id: &ContractId,
    revision: &Revision,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, contract_id, version, outcome, origin) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(micros(revision.recorded_at))
    .bind(revision.change.author.as_deref().unwrap_or("anonymous"))
    .bind(action.as_str())
    .bind(id.as_str())
    .bind(revision.version.get() as i64)
    .bind("success")
    .bind(revision.change.source.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The audit rows about one contract, oldest first.
    pub async fn audit_for(&self, id: &ContractId) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, contract_id, version, outcome, origin FROM audit WHERE contract_id = $1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRow {
                    at: from_micros(row.try_get("at")?)?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    contract_id: row.try_get("contract_id")?,
                    version: row.try_get("version")?,
                    outcome: row.try_get("outcome")?,
                    origin: row.try_get("origin")?,
                })
            })
            .collect()
    }
}
