//! The person's side of the conversation: asking care to get in touch, and saying *"vi
//! är överens"*.
//!
//! Seed 000 asks *"Vet du vem du ska kontakta om du har frågor?"* and *"Jag har möjlighet
//! att påverka mina bokade tider i samråd med vården"*: from a portal the person can ask
//! to be contacted, ask for a new time, or say what they want changed in the agreement —
//! each a [`ContactRequest`] with a message to their fast vårdkontakt, kept in the
//! contract so it versions, syncs and is answered like every other part. Care marks it
//! done (or withdrawn); the person's words stay as they wrote them.
//!
//! The person's confirmation that they agree ([`Confirmation`]) is of the agreement as it
//! stood: what matters, the commitments and the next step. A version that changes any of
//! those cannot carry the earlier confirmation (see [`Contract::confirmation_holds`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Contract;

/// What the person wants when they ask care to get in touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContactReason {
    /// "Kontakta mig": questions, or something has changed.
    Contact,
    /// A new time instead of (or besides) the agreed one.
    NewTime,
    /// Something in the agreement they want changed.
    ChangeAgreement,
}

impl ContactReason {
    pub const ALL: [ContactReason; 3] = [
        ContactReason::Contact,
        ContactReason::NewTime,
        ContactReason::ChangeAgreement,
    ];

    /// The code, as in the gateway's code system for it.
    pub fn code(self) -> &'static str {
        match self {
            ContactReason::Contact => "kontakt",
            ContactReason::NewTime => "ny-tid",
            ContactReason::ChangeAgreement => "andra-overenskommelsen",
        }
    }

    /// How the person's portal and the journal say it.
    pub fn swedish(self) -> &'static str {
        match self {
            ContactReason::Contact => "Vill bli kontaktad",
            ContactReason::NewTime => "Vill ha en ny tid",
            ContactReason::ChangeAgreement => "Vill ändra överenskommelsen",
        }
    }

    pub fn from_code(code: &str) -> Option<ContactReason> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RequestStatus {
    /// Asked, not yet answered.
    #[default]
    Open,
    /// Care has got in touch (or done what was asked).
    Done,
    /// Withdrawn by the person or closed by care without doing it.
    Withdrawn,
}

/// One request from the person to be contacted, with their message to the fast
/// vårdkontakt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactRequest {
    /// Its number within the contract, from 1, never reused.
    pub number: u32,
    pub reason: ContactReason,
    /// The person's own words.
    pub message: String,
    #[schema(value_type = String, format = DateTime)]
    pub asked_at: Timestamp,
    /// The agreed time it is about (its id), when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about_time: Option<String>,
    #[serde(default)]
    pub status: RequestStatus,
}

/// The person said *"vi är överens"* about the agreement as it then stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Confirmation {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

impl Contract {
    /// What the person confirms when they say they agree: what matters, the commitments
    /// and the next step.
    pub fn agreed_content_eq(&self, other: &Contract) -> bool {
        self.agreement.what_matters == other.agreement.what_matters
            && self.agreement.commitments == other.agreement.commitments
            && self.next_step == other.next_step
    }

    /// Whether two versions record the same agreement between the person and care: its
    /// content, the status, which parts were discussed and the person's confirmation. A
    /// version that changes any of it is a new journal note.
    pub fn agreed_parts_eq(&self, other: &Contract) -> bool {
        self.agreed_content_eq(other)
            && self.status == other.status
            && self.discussed == other.discussed
            && self.confirmed == other.confirmed
    }

    /// Whether this version may follow `before` as far as the person's confirmation goes:
    /// a confirmation carried over is of the agreement as it stood, so it holds only
    /// while that stays the same. A new confirmation (the person's own) always holds.
    pub fn confirmation_holds(&self, before: &Contract) -> bool {
        self.confirmed.is_none()
            || self.confirmed != before.confirmed
            || self.agreed_content_eq(before)
    }
}
