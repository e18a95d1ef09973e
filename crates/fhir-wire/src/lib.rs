//! FHIR on the wire: the only code in pkgw that (de)serialises `fhir-model` types.
//!
//! `fhir-model` is large (serde code for ~150 resource types), so this crate keeps every
//! (de)serialisation behind a few non-generic functions, one pair per resource pkgw maps.
//! It is compiled once; edits to the gateway do not rebuild it.
//!
//! Rules it keeps, because `fhir-model` does not:
//! - `resourceType` is checked (the model would parse an Appointment as a CarePlan);
//! - the `Resource` enum and typed `Bundle`s are never (de)serialised: Bundles travel as
//!   raw JSON and entries are dispatched on `resourceType` by the caller;
//! - parsing goes through `&serde_json::Value` only, so each resource's deserialiser is
//!   instantiated once, and callers keep the raw JSON (the model drops unknown elements).
//!
//! We speak FHIR R4 (4.0.1); the model's R4B types are wire-compatible for the resources
//! used here.

use serde_json::Value;

pub use fhir_model::r4b::{codes, resources, types};
pub use fhir_model::{BuilderError, Date, DateTime, Instant, Time, time};

/// Why a JSON value is not the FHIR resource it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// `resourceType` is missing or names another type.
    #[error("resourceType must be {expected}, got {found}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    /// The JSON does not fit the resource's structure; `path` is the FHIRPath-like
    /// location of the element (e.g. `activity[0].detail.status`).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Serialising failed (in practice: a non-finite decimal).
    #[error("cannot write JSON: {0}")]
    Write(String),
}

impl WireError {
    /// The element the error is about (`resourceType` for a wrong type).
    pub fn path(&self) -> &str {
        match self {
            Self::WrongType { .. } => "resourceType",
            Self::Invalid { path, .. } => path,
            Self::Write(_) => "",
        }
    }
}

/// The `resourceType` of a JSON resource, if it has one.
pub fn resource_type(value: &Value) -> Option<&str> {
    value.get("resourceType").and_then(Value::as_str)
}

fn check_type(value: &Value, expected: &'static str) -> Result<(), WireError> {
    match resource_type(value) {
        Some(t) if t == expected => Ok(()),
        other => Err(WireError::WrongType {
            expected,
            found: other.unwrap_or("nothing").to_owned(),
        }),
    }
}

macro_rules! wire {
    ($( $ty:ident : $parse:ident, $write:ident ; )*) => {
        $(
            #[doc = concat!("Parses a `", stringify!($ty), "` after checking its `resourceType`.")]
            ///
            /// Parsed once plainly; only a resource that fails is parsed again with its
            /// path tracked, to name the element (tracking the path of every element of
            /// every resource was a third of the parse).
            pub fn $parse(value: &Value) -> Result<resources::$ty, WireError> {
                check_type(value, stringify!($ty))?;
                if let Ok(parsed) = <resources::$ty as serde::Deserialize>::deserialize(value) {
                    return Ok(parsed);
                }
                serde_path_to_error::deserialize(value).map_err(|e| {
                    let path = e.path().to_string();
                    WireError::Invalid { path: if path == "." { String::new() } else { path }, message: e.into_inner().to_string() }
                })
            }

            #[doc = concat!("Writes a `", stringify!($ty), "` as JSON.")]
            pub fn $write(resource: &resources::$ty) -> Result<Value, WireError> {
                serde_json::to_value(resource).map_err(|e| WireError::Write(e.to_string()))
            }
        )*
    };
}

wire! {
    CarePlan: parse_care_plan, write_care_plan;
    CareTeam: parse_care_team, write_care_team;
    Appointment: parse_appointment, write_appointment;
    Goal: parse_goal, write_goal;
    CommunicationRequest: parse_communication_request, write_communication_request;
    Provenance: parse_provenance, write_provenance;
    OperationOutcome: parse_operation_outcome, write_operation_outcome;
}
