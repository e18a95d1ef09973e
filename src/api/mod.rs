//! The HTTP face of the gateway: the FHIR R4 API (`/fhir`), the native JSON contract API
//! (`/api/contracts`), health checks (`/health`, `/ready`) and `/metrics` (Prometheus).
//!
//! Handlers translate HTTP to store calls and store results to HTTP; they hold no rules
//! of their own (those are in `domain`) and write nothing except through the store.
//! [`router`] builds the app without serving it, so tests can call it; [`serve`] runs it
//! until the shutdown future resolves.

mod contracts;
mod error;
pub mod fhir;
mod health;
mod json;
mod metrics;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

pub use error::{ApiError, Issue};

use crate::fhir::Profile;
use crate::store::Store;
use crate::sync::Engine;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// The mapping profile the FHIR API writes with.
    pub profile: Arc<Profile>,
    /// The configured sync targets' names (for `/metrics`).
    pub sync_targets: Arc<Vec<String>>,
    /// The sync engine running in this process, if any.
    pub sync: Option<Arc<Engine>>,
    /// Bulk export jobs and where their files go.
    pub exports: Arc<fhir::Exports>,
}

impl AppState {
    /// State over `store` with the gateway's own mapping profile, without sync.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            profile: Arc::new(Profile::default_profile()),
            sync_targets: Arc::default(),
            sync: None,
            exports: Arc::new(fhir::Exports::new(
                std::env::temp_dir().join(format!("pkgw-exports-{}", std::process::id())),
            )),
        }
    }

    /// Bulk export files go to `dir`.
    pub fn with_export_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.exports = Arc::new(fhir::Exports::new(dir));
        self
    }

    /// Whether a change's source is a configured sync target (whose stale edits are
    /// merged rather than refused).
    pub fn is_sync_source(&self, source: &str) -> bool {
        self.sync_targets.iter().any(|t| t == source)
    }

    /// With the sync targets (and the engine, when it runs in this process).
    pub fn with_sync(mut self, targets: Vec<String>, engine: Option<Arc<Engine>>) -> Self {
        self.sync_targets = Arc::new(targets);
        self.sync = engine;
        self
    }
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The whole HTTP application.
pub fn router(state: AppState, limits: Limits) -> Router {
    Router::new()
        .merge(health::routes())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .merge(contracts::routes())
        .nest("/fhir", fhir::routes())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` resolves, then lets requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, limits))
        .with_graceful_shutdown(shutdown)
        .await
}
