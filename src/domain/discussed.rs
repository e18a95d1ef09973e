//! The record that each of the four parts was discussed with the person. Not every part
//! has to apply, but the documentation must show that each one was talked through.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The four parts of a Patientkontrakt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Part {
    /// Överenskommelse.
    Agreement,
    /// Fast vårdkontakt (and fast läkarkontakt).
    FixedCareContact,
    /// Överenskommen tid.
    AgreedTime,
    /// Sammanhållen plan.
    CoordinatedPlan,
}

impl Part {
    pub const ALL: [Part; 4] = [
        Self::Agreement,
        Self::FixedCareContact,
        Self::AgreedTime,
        Self::CoordinatedPlan,
    ];

    /// The part's key in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Self::Agreement => "agreement",
            Self::FixedCareContact => "fixedCareContact",
            Self::AgreedTime => "agreedTime",
            Self::CoordinatedPlan => "coordinatedPlan",
        }
    }

    /// The part's Swedish name, as the seeds say it.
    pub fn swedish(self) -> &'static str {
        match self {
            Self::Agreement => "Överenskommelse",
            Self::FixedCareContact => "Fast vårdkontakt",
            Self::AgreedTime => "Överenskommen tid",
            Self::CoordinatedPlan => "Sammanhållen plan",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Whether one part was discussed, when, and if it was found not to apply, why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discussion {
    pub discussed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub date: Option<Date>,
    /// Why the part does not apply to this person (e.g. "Behöver ingen fast vårdkontakt nu").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
}

/// The discussion record for each of the four parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discussed {
    #[serde(default)]
    pub agreement: Discussion,
    #[serde(default)]
    pub fixed_care_contact: Discussion,
    #[serde(default)]
    pub agreed_time: Discussion,
    #[serde(default)]
    pub coordinated_plan: Discussion,
}

impl Discussed {
    pub fn get(&self, part: Part) -> &Discussion {
        match part {
            Part::Agreement => &self.agreement,
            Part::FixedCareContact => &self.fixed_care_contact,
            Part::AgreedTime => &self.agreed_time,
            Part::CoordinatedPlan => &self.coordinated_plan,
        }
    }

    pub fn get_mut(&mut self, part: Part) -> &mut Discussion {
        match part {
            Part::Agreement => &mut self.agreement,
            Part::FixedCareContact => &mut self.fixed_care_contact,
            Part::AgreedTime => &mut self.agreed_time,
            Part::CoordinatedPlan => &mut self.coordinated_plan,
        }
    }
}
