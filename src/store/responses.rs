//! "7 frågor" answers as stored: each accepted `QuestionnaireResponse` with who answered,
//! the unit it is about, the contract it is based on and when it was authored. Answers
//! are never changed or deleted.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, from_micros, micros, now};

/// A stored QuestionnaireResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub id: String,
    /// `patient` or `care`.
    pub respondent: String,
    /// The person who answered (patient's questionnaire).
    pub patient: Option<String>,
    /// The unit's HSA-id: the unit the answers are about, or (care) that answered.
    pub unit: String,
    /// The contract id of `basedOn`.
    pub care_plan: Option<String>,
    pub authored: jiff::Timestamp,
    /// The resource as stored.
    pub resource: serde_json::Value,
    pub created_at: jiff::Timestamp,
}

/// Which responses to read; every field given must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseQuery {
    pub respondent: Option<String>,
    pub patient: Option<String>,
    pub unit: Option<String>,
    pub care_plan: Option<String>,
    /// Only those authored before this instant.
    pub authored_before: Option<jiff::Timestamp>,
}

impl StoredResponse {
    /// A response as it will be stored: a new id, and the id, `meta` and `authored`
    /// (when the resource left it out) filled into the resource.
    pub fn accepted(
        respondent: &str,
        patient: Option<String>,
        unit: String,
        care_plan: Option<String>,
        authored: Option<jiff::Timestamp>,
        mut resource: serde_json::Value,
    ) -> StoredResponse {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now();
        let authored = authored.unwrap_or(now);
        resource["id"] = serde_json::json!(id);
        if resource.get("authored").is_none() {
            resource["authored"] = serde_json::json!(authored.to_string());
        }
        resource["meta"] = serde_json::json!({ "versionId": "1", "lastUpdated": now.to_string() });
        StoredResponse {
            id,
            respondent: respondent.to_owned(),
            patient,
            unit,
            care_plan,
            authored,
            resource,
            created_at: now,
        }
    }
}

const COLUMNS: &str = "id, respondent, patient, unit, care_plan, authored, resource, created_at";

impl Store {
    /// Stores an accepted response (see [`StoredResponse::accepted`]).
    pub async fn create_response(
        &self,
        response: StoredResponse,
    ) -> Result<StoredResponse, StoreError> {
        sqlx::query(&format!(
            "INSERT INTO questionnaire_responses ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&response.id)
        .bind(&response.respondent)
        .bind(&response.patient)
        .bind(&response.unit)
        .bind(&response.care_plan)
        .bind(micros(response.authored))
        .bind(response.resource.to_string())
        .bind(micros(response.created_at))
        .execute(&self.writer)
        .await?;
        Ok(response)
    }

    pub async fn response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM questionnaire_responses WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(response_from_row).transpose()
    }

    /// The responses the query selects, oldest authored first.
    pub async fn responses(&self, q: &ResponseQuery) -> Result<Vec<StoredResponse>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM questionnaire_responses WHERE 1 = 1");
        let text_filters = [
            ("respondent", &q.respondent),
            ("patient", &q.patient),
            ("unit", &q.unit),
            ("care_plan", &q.care_plan),
        ];
        let mut n = 0;
        for (column, value) in &text_filters {
            if value.is_some() {
                n += 1;
                sql.push_str(&format!(" AND {column} = ${n}"));
            }
        }
        if q.authored_before.is_some() {
            sql.push_str(&format!(" AND authored < ${}", n + 1));
        }
        sql.push_str(" ORDER BY authored, id");
        let mut query = sqlx::query(&sql);
        for (_, value) in text_filters {
            if let Some(v) = value {
                query = query.bind(v.clone());
            }
        }
        if let Some(before) = q.authored_before {
            query = query.bind(micros(before));
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(response_from_row).collect()
    }
}

fn response_from_row(row: &AnyRow) -> Result<StoredResponse, StoreError> {
    let resource: String = row.try_get("resource")?;
    Ok(StoredResponse {
        id: row.try_get("id")?,
        respondent: row.try_get("respondent")?,
        patient: row.try_get("patient")?,
        unit: row.try_get("unit")?,
        care_plan: row.try_get("care_plan")?,
        authored: from_micros(row.try_get("authored")?)?,
        resource: serde_json::from_str(&resource)
            .map_err(|e| StoreError::Corrupt(format!("questionnaire response: {e}")))?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}
