//! *Fast vårdkontakt* (coordination responsibility) and *fast läkarkontakt* (medical
//! responsibility), each valid for a period, and the ways to reach them.

use serde::{Deserialize, Serialize};

use super::{HsaId, Period, PhoneHours, PhoneNumber};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContactRole {
    /// Fast vårdkontakt: coordinates, gives continuity.
    FastVardkontakt,
    /// Fast läkarkontakt: the physician with medical responsibility.
    FastLakarkontakt,
}

/// A way to reach a contact, as listed in the seeds: phone (with hours), message,
/// video, web booking, the unit's e-services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Channel {
    Phone {
        number: PhoneNumber,
        #[serde(default)]
        hours: Vec<PhoneHours>,
    },
    /// Secure messaging, e.g. "1177 Vårdguidens e-tjänster".
    Message {
        via: String,
    },
    Video {
        via: String,
    },
    #[serde(rename_all = "camelCase")]
    WebBooking {
        url: String,
    },
    /// How the person gets their kallelser (notices of booked times), e.g. "1177
    /// Vårdguidens e-tjänster" or "brev".
    Kallelse {
        via: String,
    },
    #[serde(rename_all = "camelCase")]
    EService {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
}

/// A named fixed contact, valid for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CareContact {
    pub id: String,
    pub role: ContactRole,
    /// The one fast vårdkontakt who holds coordination responsibility right now.
    #[serde(default)]
    pub primary: bool,
    pub name: String,
    /// Professional title, e.g. "Distriktssköterska".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsa_id: Option<HsaId>,
    /// The unit the contact works at, if not the responsible unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<HsaId>,
    pub period: Period,
    #[serde(default)]
    pub channels: Vec<Channel>,
}
