//! The Patientkontrakt itself: the contract aggregate, its four parts, the identifiers it
//! speaks of, and the invariants every version must keep.
//!
//! This module owns the meaning of a contract. It is pure: no HTTP, SQL, FHIR or clock.
//! Everything that arrives from outside is parsed into these types once (a [`Personnummer`]
//! you hold is valid), and [`Contract::validate`] is the single place where the rules of
//! the agreement are checked. The store persists what this module accepts; the API and the
//! FHIR mapping translate to and from it.
//!
//! The four parts follow SKR's concept (see `shared/seeds/`):
//! - [`Agreement`] (*Överenskommelse*): what matters to the person, who does what, warning
//!   signs and where to turn;
//! - [`CareContact`] (*Fast vårdkontakt*, *fast läkarkontakt*) and how to reach them;
//! - [`AgreedTime`] (*Överenskommen tid*): times booked together with the person;
//! - [`LinkedPlan`] (*Sammanhållen plan*): the person's other plans and who coordinates them.
//!
//! Each stored version is a [`Record`]: the contract with its number, time and [`Change`]
//! (where it came from, why); what a sender gave in FHIR that the contract does not model
//! travels with it as opaque JSON.

mod agreed_time;
mod agreement;
#[cfg(test)]
pub(crate) mod arbitrary;
mod care_contact;
mod contact_request;
mod contract;
mod discussed;
mod hsa_id;
mod invariants;
mod linked_plan;
mod luhn;
mod merge;
mod own_parts;
mod period;
mod person_id;
mod personnummer;
mod phone;
mod record;
mod reservnummer;
mod samordningsnummer;
pub mod samsyn;
mod status;
mod template;
mod transfer;
mod unit;
mod version;
mod violation;

pub use agreed_time::{AgreedTime, AgreedTimeStatus, MeetingMode};
pub use agreement::{
    Actor, Agreement, Commitment, CommitmentStatus, KnowledgeLink, NextStep, Situation,
};
pub use care_contact::{CareContact, Channel, ContactRole};
pub use contact_request::{Confirmation, ContactReason, ContactRequest, RequestStatus};
pub use contract::{Contract, ContractId, Initiator, Patient};
pub use discussed::{Discussed, Discussion, Part};
pub use hsa_id::HsaId;
pub use linked_plan::{Coordinator, LinkedPlan, PlanKind};
pub use merge::{MergeConflict, Section, merge};
pub use own_parts::person_may_change;
pub use period::Period;
pub use person_id::PersonId;
pub use personnummer::Personnummer;
pub use phone::{PhoneHours, PhoneNumber, Weekday};
pub use record::{Change, History, Record, ResourceVersion, Revision};
pub use reservnummer::{Pattern, Reservnummer, ReservnummerScheme, check_schemes};
pub use samordningsnummer::Samordningsnummer;
pub use status::Status;
pub use template::Template;
pub use transfer::{NewContact, Transfer, TransferNote, UnitRef};
pub use unit::ResponsibleUnit;
pub use version::Version;
pub use violation::{IdentifierError, Violation, Violations};

/// Gives identifier types their text form for serde: `TryFrom<String>` through `parse`
/// (so what deserializes is valid) and `From<T> for String` through `Display`.
macro_rules! text_form {
    ($($t:ty),* $(,)?) => {$(
        impl TryFrom<String> for $t {
            type Error = IdentifierError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$t> for String {
            fn from(value: $t) -> Self {
                value.to_string()
            }
        }
    )*};
}

text_form!(
    Personnummer,
    Reservnummer,
    Samordningsnummer,
    HsaId,
    PhoneNumber,
    ContractId,
    PersonId
);
