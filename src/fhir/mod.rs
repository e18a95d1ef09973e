//! Domain ⇄ FHIR R4: how a contract becomes CarePlan, CareTeam, Appointment and Goal
//! resources and back, with the codes and URLs of a mapping [`Profile`].
//!
//! This module owns the translation; it must not do I/O or change contracts.
//! All typed FHIR (de)serialisation happens in the `fhir-wire` crate.

pub mod profile;

pub use profile::{Code, Profile, ProfileError};
