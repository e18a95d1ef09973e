//! *Sammanhållen plan*: the person's other plans in care (SIP, Min vårdplan, …) and who
//! coordinates each, so the person has one overview.

use serde::{Deserialize, Serialize};

use super::{HsaId, PhoneNumber};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PlanKind {
    /// Samordnad individuell plan (psychiatry, elderly care, municipal care).
    Sip,
    /// Min vårdplan (cancer care).
    MinVardplan,
    /// A personcentrerat och sammanhållet vårdförlopp (PSVF), e.g. for RA.
    Vardforlopp,
    Other,
}

/// Who coordinates a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Coordinator {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsa_id: Option<HsaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkedPlan {
    pub id: String,
    pub kind: PlanKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<Coordinator>,
    /// Where the plan lives (a FHIR reference or URL), if it is reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}
