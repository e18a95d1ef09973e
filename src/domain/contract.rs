//! The `Contract` aggregate: one person's Patientkontrakt, all four parts together.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::violation::IdentifierError;
use super::{
    AgreedTime, Agreement, CareContact, Confirmation, ContactRequest, Discussed, LinkedPlan,
    NextStep, PersonId, ResponsibleUnit, Status,
};

/// A contract's identity; also its FHIR resource id, so it keeps FHIR's id rules.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct ContractId(String);

impl ContractId {
    /// 1–64 characters of `A–Z a–z 0–9 - .`, as FHIR allows for ids.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let ok = (1..=64).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(IdentifierError::ContractIdShape)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The longest id a new contract may get: its resources' ids add up to 22
    /// characters (`-v` and a version for a Provenance), and R4 ids are at most 64.
    pub const MAX_NEW: usize = 42;

    /// Whether a new contract may have this id (see [`ContractId::MAX_NEW`]).
    pub fn check_new(&self) -> Result<(), super::Violation> {
        match self.0.len() {
            n if n > Self::MAX_NEW => Err(super::Violation::ContractIdTooLong(n)),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who took the initiative to the contract: either staff or the person can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Initiator {
    Staff,
    Patient,
}

/// The person the contract is with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patient {
    pub id: PersonId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One person's Patientkontrakt: a documented agreement with care in four parts.
///
/// The identity and version number live beside it (the store keeps them), so the same
/// content can be compared across versions and systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contract {
    pub status: Status,
    pub patient: Patient,
    pub initiated_by: Initiator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_unit: Option<ResponsibleUnit>,
    /// What happens next for the person; an active contract always has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<NextStep>,
    /// Överenskommelse.
    #[serde(default)]
    pub agreement: Agreement,
    /// Fast vårdkontakt and fast läkarkontakt, past and present.
    #[serde(default)]
    pub care_contacts: Vec<CareContact>,
    /// Överenskommen tid.
    #[serde(default)]
    pub agreed_times: Vec<AgreedTime>,
    /// Sammanhållen plan: the person's other plans.
    #[serde(default)]
    pub linked_plans: Vec<LinkedPlan>,
    /// That each part was discussed with the person.
    #[serde(default)]
    pub discussed: Discussed,
    /// The person's requests to be contacted, with their messages to the fast
    /// vårdkontakt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_requests: Vec<ContactRequest>,
    /// The person's *"vi är överens"*: they agree to the agreement as it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<Confirmation>,
}

impl Contract {
    /// The earliest agreed time at or after `now`: the person's next agreed time.
    pub fn next_agreed_time(&self, now: jiff::Timestamp) -> Option<&AgreedTime> {
        self.agreed_times
            .iter()
            .filter(|t| t.is_agreed() && t.start >= now)
            .min_by_key(|t| t.start)
    }
}
