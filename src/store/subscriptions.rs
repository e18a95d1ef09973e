//! FHIR Subscriptions as stored: who is watched, where notifications go (in the accepted
//! resource), and whether the subscription is active.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, from_micros, micros, now};

/// A stored Subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSubscription {
    pub id: String,
    /// `active`, `off` or `error`.
    pub status: String,
    /// The person watched.
    pub patient: String,
    /// The Subscription resource as accepted.
    pub resource: serde_json::Value,
    pub created_at: jiff::Timestamp,
    /// Why it is in error, if it is.
    pub error: Option<String>,
}

const COLUMNS: &str = "id, status, patient, resource, created_at, error";

impl Store {
    /// Stores a new, active subscription.
    pub async fn create_subscription(
        &self,
        id: &str,
        patient: &str,
        resource: &serde_json::Value,
    ) -> Result<StoredSubscription, StoreError> {
        let created_at = now();
        sqlx::query(
            "INSERT INTO subscriptions (id, status, patient, resource, created_at) VALUES ($1, 'active', $2, $3, $4)",
        )
        .bind(id)
        .bind(patient)
        .bind(resource.to_string())
        .bind(micros(created_at))
        .execute(&self.writer)
        .await?;
        Ok(StoredSubscription {
            id: id.to_owned(),
            status: "active".into(),
            patient: patient.to_owned(),
            resource: resource.clone(),
            created_at,
            error: None,
        })
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<StoredSubscription>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    /// Every subscription that is not off, oldest first.
    pub async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE status <> 'off' ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    /// Sets a subscription's status (`off` when deleted, `error` with why).
    pub async fn set_subscription_status(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE subscriptions SET status = $1, error = $2 WHERE id = $3")
            .bind(status)
            .bind(error)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn subscription_from_row(row: &AnyRow) -> Result<StoredSubscription, StoreError> {
    let resource: String = row.try_get("resource")?;
    Ok(StoredSubscription {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        patient: row.try_get("patient")?,
        resource: serde_json::from_str(&resource)
            .map_err(|e| StoreError::Corrupt(format!("subscription: {e}")))?,
        created_at: from_micros(row.try_get("created_at")?)?,
        error: row.try_get("error")?,
    })
}
