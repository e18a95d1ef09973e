//! The FHIR R4 REST API at `/fhir`: CapabilityStatement; read, vread, instance and
//! type history and search (GET and `POST _search`) of the resources each contract maps
//! to; create, update, conditional create and update, and delete, each of which changes
//! the contract; transaction and batch Bundles; `$coordinated-plan` for portals; and
//! bulk `$export` (NDJSON); rest-hook `Subscription`s; and the "7 frågor" `Questionnaire`s,
//! their `QuestionnaireResponse`s and the `$samsyn` report.
//! Every error is an OperationOutcome.
//!
//! Resources are derived from stored contract versions (see [`locate`]); their
//! `meta.versionId` is the contract's version. Writes are in [`write`].

mod audit_event;
mod batch;
mod capability;
mod coordinated_plan;
mod date_param;
mod error;
mod export;
mod locate;
mod questionnaire;
mod questionnaire_response;
mod read;
mod read_cache;
mod respond;
mod samsyn;
mod search;
mod subscription;
mod transaction;
mod transfer;
mod write;

use axum::Router;
use axum::routing::get;

pub use audit_event::audit_event;
pub use capability::capability_statement;
pub use error::FhirError;
pub use export::Exports;
pub use read_cache::ReadCache;

use super::AppState;

/// The routes under `/fhir`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", axum::routing::post(transaction::transaction))
        .route("/metadata", get(capability::metadata))
        .route("/$export", get(export::kick_off))
        .route("/$samsyn", get(samsyn::samsyn))
        .route("/AuditEvent", get(audit_event::search))
        .route("/AuditEvent/{id}", get(audit_event::read))
        .route("/Questionnaire", get(questionnaire::search))
        .route("/Questionnaire/{id}", get(questionnaire::read))
        .route(
            "/QuestionnaireResponse",
            get(questionnaire_response::search).post(questionnaire_response::create),
        )
        .route(
            "/QuestionnaireResponse/{id}",
            get(questionnaire_response::read),
        )
        .route(
            "/Subscription",
            get(subscription::search).post(subscription::create),
        )
        .route(
            "/Subscription/{id}",
            get(subscription::read).delete(subscription::delete),
        )
        .route(
            "/$export-status/{job}",
            get(export::status).delete(export::cancel),
        )
        .route("/$export-file/{job}/{file}", get(export::file))
        .route(
            "/CarePlan/$coordinated-plan",
            get(coordinated_plan::coordinated_plan),
        )
        .route(
            "/CarePlan/{id}/$transfer",
            axum::routing::post(transfer::transfer),
        )
        .route(
            "/CarePlan/{id}/$transfer/{scheduled}",
            get(transfer::scheduled).delete(transfer::cancel),
        )
        .route(
            "/{kind}",
            get(search::search)
                .post(write::create)
                .put(write::conditional_update),
        )
        .route(
            "/{kind}/{id}",
            get(read::read).put(write::update).delete(write::delete),
        )
        .route("/{kind}/_history", get(read::type_history))
        .route("/{kind}/_search", axum::routing::post(search::search_post))
        .route("/{kind}/{id}/_history", get(read::history))
        .route("/{kind}/{id}/_history/{vid}", get(read::vread))
        .fallback(|| async { FhirError::NotFound("no such FHIR endpoint".into()) })
        .method_not_allowed_fallback(|| async { FhirError::MethodNotAllowed })
}
