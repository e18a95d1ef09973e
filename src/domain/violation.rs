//! The ways input can fail to be a valid contract: identifiers that do not parse, and
//! broken invariants. Each violation names the field (as a JSON path in the contract's
//! own format) and says why, so an API can answer with both.

use std::fmt;

use super::{Part, Status, Version};

/// Why a text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("must be 12 digits (YYYYMMDDNNNC), got {0} characters")]
    WrongLength(usize),
    #[error("the 10-digit form leaves the century open; give all 12 digits (YYYYMMDDNNNC)")]
    TenDigitForm,
    #[error("must be digits, with an optional '-' or '+' before the last four")]
    NotDigits,
    #[error("the check digit does not match (Luhn)")]
    BadCheckDigit,
    #[error("the birth date in it is not a real date")]
    ImpossibleDate,
    #[error("is a samordningsnummer (birth day + 60), not a personnummer")]
    IsSamordningsnummer,
    #[error("is a personnummer, not a samordningsnummer (birth day + 60)")]
    IsPersonnummer,
    #[error(
        "is not an HSA-id: expected a country code, a 10 or 12 digit organisation number, '-' and letters or digits, at most 31 characters (e.g. SE2321000016-15CQ)"
    )]
    HsaIdShape,
    #[error("is not a phone number: expected 6 to 20 digits, optionally with '+', spaces or '-'")]
    PhoneShape,
    #[error("is not a time of day: expected HH:MM")]
    TimeShape,
    #[error("phone hours must close after they open")]
    HoursClosedBeforeOpen,
    #[error("is not a contract id: 1–64 letters, digits, '-' or '.'")]
    ContractIdShape,
    #[error("is not a version: expected a positive whole number")]
    VersionShape,
    #[error(
        "a reservnummer is written system|value, the system an absolute URI (urn:oid:…, https://…)"
    )]
    ReservnummerSystem,
    #[error("is not a reservnummer: 1–40 letters, digits or '-'")]
    ReservnummerShape,
    #[error("is not a reservnummer of {region} ({system}): it must match {pattern}")]
    ReservnummerPattern {
        region: String,
        system: String,
        pattern: String,
    },
    #[error(
        "'{0}' is not a reservnummer system of this region; the configured ones are in [[reservnummer]]"
    )]
    ReservnummerUnknown(String),
}

/// A broken rule of the contract. Every variant names its field through [`Violation::field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("an active contract must say the person's next step")]
    ActiveWithoutNextStep,
    #[error("an active contract must name the responsible unit")]
    ActiveWithoutResponsibleUnit,
    #[error("an active contract must record that each part was discussed with the person")]
    PartNotDiscussed(Part),
    #[error("a part marked as discussed needs the date it was discussed")]
    DiscussedWithoutDate(Part),
    #[error("a part can only be found not to apply after it was discussed")]
    NotApplicableWithoutDiscussion(Part),
    #[error("the part is marked as not applicable but has content")]
    NotApplicableButPresent(Part),
    #[error("two primary fast vårdkontakter overlap in time (with careContacts[{other}])")]
    OverlappingPrimaryContacts { index: usize, other: usize },
    #[error("the period must end after it starts")]
    PeriodEndsBeforeStart { field: String },
    #[error("an agreed time must be accepted by both the person and care")]
    AgreedTimeNotAccepted { index: usize },
    #[error("the person cannot both accept and decline a time")]
    AcceptedAndDeclined { index: usize },
    #[error("a warning sign must say where the person turns")]
    WarningSignWithoutWhereToTurn { index: usize },
    #[error("must not be empty")]
    EmptyText { field: String },
    #[error("the id '{id}' is used twice in this list")]
    DuplicateId { field: String, id: String },
    #[error("a new version must follow the previous one ({previous}), got {next}")]
    VersionNotIncreasing { previous: Version, next: Version },
    #[error("a {from} contract cannot become {to}")]
    StatusTransition { from: Status, to: Status },
    #[error("only an active contract can be transferred (this one is {0})")]
    TransferNotActive(Status),
    #[error("the receiving unit must differ from the unit responsible now")]
    TransferToSameUnit,
    #[error("the contract has no responsible unit to transfer from")]
    TransferWithoutUnit,
    #[error("the handover cannot be before the current fast vårdkontakt's period starts")]
    HandoverBeforeCurrentContact,
    #[error("no commitment '{0}' to move")]
    UnknownCommitment(String),
    #[error(
        "a transfer names the new fast vårdkontakt, unless the contract records that the part does not apply (discussed.fixedCareContact.notApplicable)"
    )]
    TransferWithoutContact,
    #[error(
        "a new contract's id is at most 42 characters, so the ids of its resources fit R4's 64 (this one has {0})"
    )]
    ContractIdTooLong(usize),
    #[error("a next step has a deadline (due) or a fixed day (on), not both")]
    NextStepDueAndOn,
    #[error("must be a web address (https://…) the person can open")]
    NotAWebAddress { field: String },
    #[error(
        "a contract's person does not change ({from} → {to}); when a person gets a real number, their reservnummer is merged onto it (Patient/$merge)"
    )]
    PersonChanged { from: String, to: String },
    #[error("{0}")]
    PersonIdentifier(IdentifierError),
    #[error("'{0}' is not a template id: 1–64 lower-case letters, digits or '-'")]
    TemplateId(String),
    #[error("the request is about an agreed time the contract does not have")]
    RequestAboutUnknownTime { index: usize },
    #[error(
        "the person confirmed the agreement as it stood before this change (what matters, the commitments, the next step): a version that changes it cannot keep their confirmation — leave it out, and the person confirms again"
    )]
    ConfirmationOfEarlierAgreement,
    #[error(
        "the contract is not in force (it is {status}): the person asks about a contract that is active or a draft, and confirms one that is active"
    )]
    NotInForce { status: Status, field: &'static str },
}

impl Violation {
    /// The path of the offending field, in the contract's JSON form.
    pub fn field(&self) -> String {
        match self {
            Self::ActiveWithoutNextStep => "nextStep".into(),
            Self::ActiveWithoutResponsibleUnit => "responsibleUnit".into(),
            Self::PartNotDiscussed(p) => format!("discussed.{}.discussed", p.key()),
            Self::DiscussedWithoutDate(p) => format!("discussed.{}.date", p.key()),
            Self::NotApplicableWithoutDiscussion(p) | Self::NotApplicableButPresent(p) => {
                format!("discussed.{}.notApplicable", p.key())
            }
            Self::OverlappingPrimaryContacts { index, .. } => {
                format!("careContacts[{index}].period")
            }
            Self::PeriodEndsBeforeStart { field }
            | Self::EmptyText { field }
            | Self::DuplicateId { field, .. } => field.clone(),
            Self::AgreedTimeNotAccepted { index } => format!("agreedTimes[{index}].status"),
            Self::AcceptedAndDeclined { index } => {
                format!("agreedTimes[{index}].declinedByPatient")
            }
            Self::WarningSignWithoutWhereToTurn { index } => {
                format!("agreement.commitments[{index}].whereToTurn")
            }
            Self::VersionNotIncreasing { .. } => "version".into(),
            Self::StatusTransition { .. } | Self::TransferNotActive(_) => "status".into(),
            Self::TransferToSameUnit | Self::TransferWithoutUnit => "responsibleUnit".into(),
            Self::HandoverBeforeCurrentContact => "careContacts".into(),
            Self::UnknownCommitment(_) => "agreement.commitments".into(),
            Self::TransferWithoutContact => "contact".into(),
            Self::ContractIdTooLong(_) => "id".into(),
            Self::NextStepDueAndOn => "nextStep.on".into(),
            Self::NotAWebAddress { field } => field.clone(),
            Self::PersonChanged { .. } | Self::PersonIdentifier(_) => "patient.id".into(),
            Self::TemplateId(_) => "id".into(),
            Self::RequestAboutUnknownTime { index } => {
                format!("contactRequests[{index}].aboutTime")
            }
            Self::ConfirmationOfEarlierAgreement => "confirmed".into(),
            Self::NotInForce { field, .. } => (*field).into(),
        }
    }
}

/// One or more violations found in one contract; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// `Ok` when `found` is empty, else the violations.
    pub fn check(found: Vec<Violation>) -> Result<(), Self> {
        if found.is_empty() {
            Ok(())
        } else {
            Err(Self(found))
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    pub fn contains(&self, v: &Violation) -> bool {
        self.0.contains(v)
    }
}

impl From<Violation> for Violations {
    fn from(v: Violation) -> Self {
        Self(vec![v])
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {v}", v.field())?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}
