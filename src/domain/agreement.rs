//! *Överenskommelse*: what matters to the person, and who does what — the person, their
//! network, care — to stay well, if they get worse, and on warning signs; plus the next step.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::HsaId;

/// The agreement part: what matters to the person and the commitments made around it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Agreement {
    /// "Vad är viktigt för dig?" in the person's own words.
    #[serde(default)]
    pub what_matters: Vec<String>,
    #[serde(default)]
    pub commitments: Vec<Commitment>,
    /// Patientens kunskapsstöd for the person's diagnosis group (seed 004).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knowledge: Vec<KnowledgeLink>,
}

/// Patientens kunskapsstöd (seed 004): a link to knowledge support for the person's
/// diagnosis group — 1177's self-care texts for RA within a personcentrerat och
/// sammanhållet vårdförlopp (PSVF), say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KnowledgeLink {
    pub title: String,
    /// Where to read it: an http(s) address.
    pub url: String,
    /// The diagnosis group it is written for, e.g. "RA".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis_group: Option<String>,
    /// Who publishes it, e.g. "1177" or "PSVF".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When its content was last reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub reviewed: Option<Date>,
}

/// Who does something: the person, someone in their network, or care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Actor {
    /// The person themselves.
    Patient,
    /// Family, friends or others close to the person.
    #[serde(rename_all = "camelCase")]
    Network {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relation: Option<String>,
    },
    /// A role in care or omsorg, e.g. "Distriktssköterska", optionally a named person,
    /// and who carries it: a unit (by HSA-id), or an organisation without one (the
    /// municipality's hemtjänst or boendestöd, a private provider); neither means the
    /// responsible unit.
    #[serde(rename_all = "camelCase")]
    Care {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<HsaId>,
        /// The organisation carrying it when it is not a unit with an HSA-id, e.g.
        /// "Danderyds kommun, hemtjänsten".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        organization: Option<String>,
    },
}

/// The situation a commitment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Situation {
    /// What is done to feel well ("för att må bra").
    StayingWell,
    /// What is done if the person gets worse ("om jag blir sämre").
    GettingWorse,
    /// A sign to watch to know when to seek care, and where to turn.
    WarningSign,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum CommitmentStatus {
    #[default]
    Active,
    Completed,
    /// Ended on purpose (e.g. at a transfer); kept in the record, never dropped silently.
    Cancelled,
}

/// One promise in the agreement: who does what, when, and for which situation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Commitment {
    /// Stable within the contract, so versions and systems can refer to it.
    pub id: String,
    pub who: Actor,
    pub what: String,
    /// When or how often, in words ("varje morgon", "vid behov").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    pub situation: Situation,
    /// Where the person turns; required for warning signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub where_to_turn: Option<String>,
    #[serde(default)]
    pub status: CommitmentStatus,
    /// Kunskapsstöd for this self-care step or warning sign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knowledge: Vec<KnowledgeLink>,
}

/// The person's next step: what happens next, and by when — a deadline (`due`: "senast
/// 8 december") or the fixed day it happens (`on`: "den 3 december"), not both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextStep {
    pub description: String,
    /// The last day to do it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub due: Option<Date>,
    /// The day it happens, when that is fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub on: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<Actor>,
}
