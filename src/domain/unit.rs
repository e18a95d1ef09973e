//! The responsible unit, whose name, phone number and phone hours go on the first page.

use serde::{Deserialize, Serialize};

use super::{HsaId, PhoneHours, PhoneNumber};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponsibleUnit {
    pub hsa_id: HsaId,
    pub name: String,
    pub phone: PhoneNumber,
    #[serde(default)]
    pub phone_hours: Vec<PhoneHours>,
    /// The unit's own contact services beside its phone (webbtidbok, kallelser,
    /// videosamtal, meddelanden, e-tjänster), not tied to a named person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<super::Channel>,
}
