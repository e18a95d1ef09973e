//! The FHIR R4 REST API at `/fhir`: CapabilityStatement, read, vread, history and search
//! of the resources each contract maps to, update of a CarePlan, and `$coordinated-plan`
//! for portals. Every error is an OperationOutcome.
//!
//! Resources are derived from stored contract versions (see [`locate`]); their
//! `meta.versionId` is the contract's version.

mod capability;
mod coordinated_plan;
mod date_param;
mod error;
mod locate;
mod read;
mod respond;
mod search;
mod transaction;
mod update;

use axum::Router;
use axum::routing::get;

pub use capability::capability_statement;
pub use error::FhirError;

use super::AppState;

/// The routes under `/fhir`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", axum::routing::post(transaction::transaction))
        .route("/metadata", get(capability::metadata))
        .route(
            "/CarePlan/$coordinated-plan",
            get(coordinated_plan::coordinated_plan),
        )
        .route("/{kind}", get(search::search))
        .route("/{kind}/{id}", get(read::read).put(update::update))
        .route("/{kind}/{id}/_history", get(read::history))
        .route("/{kind}/{id}/_history/{vid}", get(read::vread))
        .fallback(|| async { FhirError::NotFound("no such FHIR endpoint".into()) })
        .method_not_allowed_fallback(|| async { FhirError::MethodNotAllowed })
}
