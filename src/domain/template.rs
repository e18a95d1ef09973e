//! `Template`: what a unit (or the region) usually agrees with people of one diagnosis
//! group — "det jag gör för att må bra", the warning signs and where to turn, what to do
//! if it gets worse, and patientens kunskapsstöd (seed 004: knowledge support per
//! diagnosis group within PSVF) — kept so a new contract starts from it instead of a
//! blank page.
//!
//! A template pre-fills a *draft*: never what matters to the person (their own words),
//! never a discussion that has not happened, never a contact or a time. The unit and
//! the person go through the draft together and change it before anything is agreed;
//! the draft is stored only when the unit saves it, like any contract.

use serde::{Deserialize, Serialize};

use super::{
    Agreement, Commitment, Contract, Discussed, HsaId, Initiator, KnowledgeLink, Patient,
    ResponsibleUnit, Status, Violation, Violations,
};

/// A template for one diagnosis group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Template {
    /// Lower-case letters, digits and '-' (also its FHIR id).
    pub id: String,
    /// What it is called, e.g. "Hjärtsvikt i primärvården".
    pub title: String,
    /// The diagnosis group it is for, e.g. "Reumatoid artrit (RA)".
    pub diagnosis_group: String,
    /// The unit whose template it is; none for one the whole region uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<HsaId>,
    /// The commitments a contract of the group usually has.
    #[serde(default)]
    pub commitments: Vec<Commitment>,
    /// Kunskapsstöd for the diagnosis group.
    #[serde(default)]
    pub knowledge: Vec<KnowledgeLink>,
}

impl Template {
    /// Checks the template as the draft it makes would be checked, and its own fields.
    pub fn check(&self) -> Result<(), Violations> {
        let mut found = Vec::new();
        let plain = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !plain {
            found.push(Violation::TemplateId(self.id.clone()));
        }
        for (field, text) in [
            ("title", &self.title),
            ("diagnosisGroup", &self.diagnosis_group),
        ] {
            if text.trim().is_empty() {
                found.push(Violation::EmptyText {
                    field: field.into(),
                });
            }
        }
        let person = super::PersonId::parse("191212121212").ok();
        if let Some(id) = person {
            let draft = self.draft(Patient { id, name: None }, None);
            if let Err(v) = draft.validate() {
                found.extend(v.iter().cloned());
            }
        }
        Violations::check(found)
    }

    /// A draft contract with `patient`, the responsibility of `unit`, pre-filled from
    /// the template: its commitments (active) and kunskapsstöd. What matters to the
    /// person, the contacts, the times and the discussions are left for the meeting.
    pub fn draft(&self, patient: Patient, unit: Option<ResponsibleUnit>) -> Contract {
        Contract {
            status: Status::Draft,
            patient,
            initiated_by: Initiator::Staff,
            responsible_unit: unit,
            next_step: None,
            agreement: Agreement {
                what_matters: Vec::new(),
                commitments: self.commitments.clone(),
                knowledge: self.knowledge.clone(),
            },
            care_contacts: Vec::new(),
            agreed_times: Vec::new(),
            linked_plans: Vec::new(),
            discussed: Discussed::default(),
            contact_requests: Vec::new(),
            confirmed: None,
        }
    }

    /// Whether `unit` may use it: the region's templates every unit, a unit's its own.
    pub fn is_for(&self, unit: Option<&HsaId>) -> bool {
        self.unit.as_ref().is_none_or(|own| Some(own) == unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, CommitmentStatus, PersonId, Situation};

    fn template() -> Template {
        Template {
            id: "ra-psvf".into(),
            title: "Reumatoid artrit".into(),
            diagnosis_group: "Reumatoid artrit (RA)".into(),
            unit: None,
            commitments: vec![Commitment {
                id: "skov".into(),
                who: Actor::Patient,
                what: "Svullna, ömma leder i flera dagar".into(),
                when: None,
                situation: Situation::WarningSign,
                where_to_turn: Some("Ring reumatologmottagningen".into()),
                status: CommitmentStatus::Active,
                knowledge: Vec::new(),
            }],
            knowledge: vec![KnowledgeLink {
                title: "Reumatoid artrit".into(),
                url: "https://www.1177.se/sjukdomar--besvar/leder-muskler-och-skelett/reumatoid-artrit/".into(),
                diagnosis_group: Some("Reumatoid artrit (RA)".into()),
                source: Some("1177".into()),
                reviewed: None,
            }],
        }
    }

    #[test]
    fn a_draft_starts_from_the_template_and_leaves_the_persons_part_open() {
        let person = PersonId::parse("191212121212").unwrap();
        let draft = template().draft(
            Patient {
                id: person,
                name: Some("Tolvan".into()),
            },
            None,
        );
        assert_eq!(draft.status, Status::Draft);
        assert_eq!(draft.agreement.commitments, template().commitments);
        assert_eq!(draft.agreement.knowledge, template().knowledge);
        assert!(draft.agreement.what_matters.is_empty());
        assert_eq!(draft.discussed, Discussed::default());
        assert_eq!(draft.validate(), Ok(()));
    }

    #[test]
    fn a_template_keeps_the_rules_of_the_contracts_it_makes() {
        assert_eq!(template().check(), Ok(()));
        let mut bad = template();
        bad.id = "RA PSVF".into();
        bad.commitments[0].where_to_turn = None;
        bad.title = " ".into();
        let fields: Vec<String> = bad
            .check()
            .unwrap_err()
            .iter()
            .map(Violation::field)
            .collect();
        assert_eq!(
            fields,
            ["id", "title", "agreement.commitments[0].whereToTurn"]
        );
    }

    #[test]
    fn a_units_template_is_that_units_own() {
        let unit = HsaId::parse("SE2321000016-1A2B").unwrap();
        let other = HsaId::parse("SE2321000016-9Z9Z").unwrap();
        let mut t = template();
        assert!(t.is_for(Some(&unit)) && t.is_for(None));
        t.unit = Some(unit.clone());
        assert!(t.is_for(Some(&unit)));
        assert!(!t.is_for(Some(&other)) && !t.is_for(None));
    }
}
