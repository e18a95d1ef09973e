//! The FHIR R4 REST API at `/fhir`: CapabilityStatement; read, vread, instance and
//! type history and search (GET and `POST _search`) of the resources each contract maps
//! to; create, update, conditional create and update, and delete, each of which changes
//! the contract; transaction and batch Bundles; `$coordinated-plan` for portals; and
//! a read-only `Patient` per person with a contract (and `$everything`); `$validate` (a
//! write checked, nothing stored); bulk `$export` (NDJSON); rest-hook `Subscription`s; and the "7 frågor" `Questionnaire`s,
//! their `QuestionnaireResponse`s and the `$samsyn` report.
//! Every error is an OperationOutcome.
//!
//! Resources are derived from stored contract versions (see [`locate`]); their
//! `meta.versionId` is the contract's version. Writes are in [`write`].

mod appointment_response;
mod audit_event;
mod batch;
mod capability;
mod confirm;
mod coordinated_plan;
mod date_param;
mod error;
mod export;
mod locate;
mod operation_definition;
mod patch;
mod patient;
mod patient_merge;
mod plan_definition;
mod questionnaire;
mod questionnaire_response;
mod read;
mod read_cache;
mod respond;
mod samsyn;
mod search;
mod shape;
mod subscription;
mod transaction;
mod transfer;
mod validate;
mod write;

use axum::http::Method;

pub use audit_event::audit_event;
pub use capability::capability_statement;
pub use date_param::PREFIXES as DATE_PREFIXES;
pub use error::FhirError;
pub use export::Exports;
pub use read_cache::ReadCache;
pub use search::{INCLUDES, PATIENT as PATIENT_SPELLINGS, REVINCLUDES};

use super::guard::Whom;
use super::route::{Needs, Routes};
use crate::auth::Letter;

/// The routes under `/fhir`, each with what its caller needs: a scope letter on the
/// resource type (the path's `{kind}`, or the type an operation works on).
pub(super) fn routes() -> Routes {
    use Letter::{Create, Delete, Read, Search, Update};
    use Method as M;
    let kind = Needs::kind;
    let on = Needs::on;
    // Bulk export spans every person and type: only a wildcard `system/` grant will do.
    let export = on("*", Read, "operation").only(Whom::Systems);
    Routes::new()
        .route(M::POST, "/", Needs::Entries, transaction::transaction)
        .route(M::GET, "/metadata", Needs::Open, capability::metadata)
        .route(M::GET, "/$export", export, export::kick_off)
        .route(M::GET, "/$export-status/{job}", export, export::status)
        .route(M::DELETE, "/$export-status/{job}", export, export::cancel)
        .route(M::GET, "/$export-file/{job}/{file}", export, export::file)
        .route(
            M::GET,
            "/$samsyn",
            on("QuestionnaireResponse", Search, "operation").only(Whom::NoPatients),
            samsyn::samsyn,
        )
        .route(
            M::POST,
            "/AppointmentResponse",
            on("AppointmentResponse", Create, "create"),
            appointment_response::create,
        )
        .route(
            M::GET,
            "/AppointmentResponse/{id}",
            on("AppointmentResponse", Read, "read"),
            appointment_response::read,
        )
        .route(
            M::GET,
            "/AppointmentResponse/{id}/_history/{vid}",
            on("AppointmentResponse", Read, "vread"),
            appointment_response::vread,
        )
        .route(
            M::GET,
            "/AuditEvent",
            on("AuditEvent", Search, "search-type"),
            audit_event::search,
        )
        .route(
            M::GET,
            "/AuditEvent/{id}",
            on("AuditEvent", Read, "read"),
            audit_event::read,
        )
        .route(
            M::GET,
            "/OperationDefinition",
            Needs::Open,
            operation_definition::search,
        )
        .route(
            M::GET,
            "/OperationDefinition/{id}",
            Needs::Open,
            operation_definition::read,
        )
        .route(
            M::GET,
            "/Patient",
            on("Patient", Search, "search-type"),
            patient::search,
        )
        .route(
            M::POST,
            "/Patient/_search",
            on("Patient", Search, "search-type"),
            patient::search_post,
        )
        .route(
            M::GET,
            "/Patient/{id}",
            on("Patient", Read, "read"),
            patient::read,
        )
        .route(
            M::POST,
            "/Patient/$merge",
            on("CarePlan", Update, "operation").only(Whom::Systems),
            patient_merge::merge,
        )
        .route(
            M::GET,
            "/Patient/{id}/$everything",
            on("Patient", Read, "operation"),
            patient::everything,
        )
        .route(
            M::GET,
            "/PlanDefinition",
            on("PlanDefinition", Search, "search-type"),
            plan_definition::search,
        )
        .route(
            M::GET,
            "/PlanDefinition/{id}",
            on("PlanDefinition", Read, "read"),
            plan_definition::read,
        )
        .route(
            M::GET,
            "/PlanDefinition/{id}/$apply",
            on("PlanDefinition", Read, "operation"),
            plan_definition::apply_get,
        )
        .route(
            M::POST,
            "/PlanDefinition/{id}/$apply",
            on("PlanDefinition", Read, "operation"),
            plan_definition::apply_post,
        )
        .route(
            M::GET,
            "/Questionnaire",
            on("Questionnaire", Search, "search-type"),
            questionnaire::search,
        )
        .route(
            M::GET,
            "/Questionnaire/{id}",
            on("Questionnaire", Read, "read"),
            questionnaire::read,
        )
        .route(
            M::GET,
            "/QuestionnaireResponse",
            on("QuestionnaireResponse", Search, "search-type"),
            questionnaire_response::search,
        )
        .route(
            M::POST,
            "/QuestionnaireResponse",
            on("QuestionnaireResponse", Create, "create"),
            questionnaire_response::create,
        )
        .route(
            M::GET,
            "/QuestionnaireResponse/{id}",
            on("QuestionnaireResponse", Read, "read"),
            questionnaire_response::read,
        )
        .route(
            M::GET,
            "/Subscription",
            on("Subscription", Search, "search-type"),
            subscription::search,
        )
        .route(
            M::POST,
            "/Subscription",
            on("Subscription", Create, "create"),
            subscription::create,
        )
        .route(
            M::GET,
            "/Subscription/{id}",
            on("Subscription", Read, "read"),
            subscription::read,
        )
        .route(
            M::DELETE,
            "/Subscription/{id}",
            on("Subscription", Delete, "delete"),
            subscription::delete,
        )
        .route(
            M::GET,
            "/CarePlan/$coordinated-plan",
            on("CarePlan", Read, "operation"),
            coordinated_plan::coordinated_plan,
        )
        .route(
            M::POST,
            "/CarePlan/$coordinated-plan",
            on("CarePlan", Read, "operation"),
            coordinated_plan::coordinated_plan_post,
        )
        .route(
            M::POST,
            "/CarePlan/{id}/$confirm",
            on("CarePlan", Update, "operation"),
            confirm::confirm,
        )
        .route(
            M::POST,
            "/CarePlan/{id}/$transfer",
            on("CarePlan", Update, "operation"),
            transfer::transfer,
        )
        .route(
            M::GET,
            "/CarePlan/{id}/$transfer/{scheduled}",
            on("CarePlan", Read, "operation"),
            transfer::scheduled,
        )
        .route(
            M::DELETE,
            "/CarePlan/{id}/$transfer/{scheduled}",
            on("CarePlan", Update, "operation"),
            transfer::cancel,
        )
        .route(
            M::POST,
            "/{kind}/$validate",
            kind(Create, "operation"),
            validate::on_type,
        )
        .route(
            M::POST,
            "/{kind}/{id}/$validate",
            kind(Update, "operation"),
            validate::on_instance,
        )
        .route(
            M::GET,
            "/{kind}",
            kind(Search, "search-type"),
            search::search,
        )
        .route(M::POST, "/{kind}", kind(Create, "create"), write::create)
        .route(
            M::PUT,
            "/{kind}",
            kind(Update, "update"),
            write::conditional_update,
        )
        .route(
            M::DELETE,
            "/{kind}",
            kind(Delete, "delete"),
            write::conditional_delete,
        )
        .route(M::GET, "/{kind}/{id}", kind(Read, "read"), read::read)
        .route(
            M::PUT,
            "/{kind}/{id}",
            kind(Update, "update"),
            write::update,
        )
        .route(
            M::PATCH,
            "/{kind}/{id}",
            kind(Update, "patch"),
            patch::patch,
        )
        .route(
            M::DELETE,
            "/{kind}/{id}",
            kind(Delete, "delete"),
            write::delete,
        )
        .route(
            M::GET,
            "/{kind}/_history",
            kind(Search, "history-type"),
            read::type_history,
        )
        .route(
            M::POST,
            "/{kind}/_search",
            kind(Search, "search-type"),
            search::search_post,
        )
        .route(
            M::GET,
            "/{kind}/{id}/_history",
            kind(Read, "history-instance"),
            read::history,
        )
        .route(
            M::GET,
            "/{kind}/{id}/_history/{vid}",
            kind(Read, "vread"),
            read::vread,
        )
        .finish(|router| {
            router
                .fallback(|| async { FhirError::NotFound("no such FHIR endpoint".into()) })
                .method_not_allowed_fallback(|| async { FhirError::MethodNotAllowed })
        })
}
