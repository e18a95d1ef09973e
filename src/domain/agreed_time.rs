//! *Överenskommen tid*: the next contact, booked together with the person.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AgreedTimeStatus {
    /// Suggested by one side, not yet agreed.
    Proposed,
    /// Accepted by both the person and care.
    Agreed,
    Cancelled,
    Fulfilled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum MeetingMode {
    InPerson,
    Phone,
    Video,
    HomeVisit,
}

/// A time for a contact between the person and care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgreedTime {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// When it ends; a booked time has both ends (as FHIR's Appointment requires).
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    /// What the contact is for ("Uppföljning av blodtryck").
    pub what: String,
    /// With whom, e.g. the fast vårdkontakt's name or a role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
    pub mode: MeetingMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub status: AgreedTimeStatus,
    #[serde(default)]
    pub accepted_by_patient: bool,
    #[serde(default)]
    pub accepted_by_care: bool,
    /// The person said no to this time (from the portal: an `AppointmentResponse`);
    /// care then proposes another, or takes the one the person proposed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declined_by_patient: bool,
}

impl AgreedTime {
    /// Agreed, and both sides have accepted it.
    pub fn is_agreed(&self) -> bool {
        self.status == AgreedTimeStatus::Agreed && self.accepted_by_patient && self.accepted_by_care
    }

    /// A time the person proposed (from the portal) that care has not answered yet.
    pub fn is_persons_proposal(&self) -> bool {
        self.status == AgreedTimeStatus::Proposed
            && self.accepted_by_patient
            && !self.accepted_by_care
            && !self.declined_by_patient
    }
}
