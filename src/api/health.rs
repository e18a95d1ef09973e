//! `/health` (the process is up) and `/ready` (and its database answers).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde_json::{Value, json};

use super::route::{Needs, Routes};
use super::{ApiError, AppState};

/// Open to every caller: they tell nothing about anyone's data.
pub(super) fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/health", Needs::Open, health)
        .route(Method::GET, "/ready", Needs::Open, ready)
        .route(
            Method::GET,
            "/metrics",
            Needs::Open,
            super::metrics::metrics,
        )
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ready", "database": "ok" })))
}
