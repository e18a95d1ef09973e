//! A care transition: the contract moves to the next unit with nothing lost. The source
//! texts name transitions between care forms and units as the weak link for patient
//! safety; here a transfer is one step that
//! - makes the receiving unit responsible;
//! - ends the sending unit's contacts (fast vårdkontakt and fast läkarkontakt) at the
//!   handover, exactly when the new ones begin — no gap, no overlap; a new fast
//!   vårdkontakt is needed unless the part does not apply (then none is named);
//! - reassigns the sending unit's commitments that move, and closes its others
//!   explicitly (never drops them); commitments carried by another unit or
//!   organisation (the municipality's hemtjänst, say) stay as they are;
//! - keeps the next step and the agreed times (or takes the receiving unit's next step);
//! - keeps the linked plans.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    Actor, CareContact, Channel, CommitmentStatus, ContactRole, Contract, HsaId, NextStep, Period,
    ResponsibleUnit, Status, Violation, Violations,
};

/// A new fixed contact at the receiving unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewContact {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsa_id: Option<HsaId>,
    #[serde(default)]
    pub channels: Vec<Channel>,
}

/// What a transfer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transfer {
    /// The receiving unit, with its phone and phone hours for the first page.
    pub to: ResponsibleUnit,
    /// The new fast vårdkontakt; none only when the contract records that the part
    /// does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<NewContact>,
    /// The new fast läkarkontakt, when that changes too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physician: Option<NewContact>,
    /// The handover instant.
    pub at: Timestamp,
    /// The kind of transition, e.g. `hospital-to-primary-care`.
    pub kind: String,
    /// Why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Ids of the sending unit's commitments that move to the receiving unit; its other
    /// commitments are closed.
    #[serde(default)]
    pub moving: Vec<String>,
    /// The receiving unit's next step, replacing the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<NextStep>,
}

/// What the history keeps of a transfer: from which unit to which, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferNote {
    pub from: UnitRef,
    pub to: UnitRef,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub kind: String,
}

/// A unit by HSA-id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnitRef {
    pub hsa_id: HsaId,
    pub name: String,
}

impl UnitRef {
    pub fn of(unit: &ResponsibleUnit) -> Self {
        Self {
            hsa_id: unit.hsa_id.clone(),
            name: unit.name.clone(),
        }
    }
}

impl Contract {
    /// The contract after the transfer; refused whole, with why, when it cannot be done.
    pub fn transfer(&self, t: &Transfer) -> Result<Contract, Violations> {
        let mut refused = Vec::new();
        if self.status != Status::Active {
            refused.push(Violation::TransferNotActive(self.status));
        }
        let from = match &self.responsible_unit {
            None => {
                refused.push(Violation::TransferWithoutUnit);
                None
            }
            Some(u) if u.hsa_id == t.to.hsa_id => {
                refused.push(Violation::TransferToSameUnit);
                None
            }
            Some(u) => Some(u.hsa_id.clone()),
        };
        if t.contact.is_none() && self.discussed.fixed_care_contact.not_applicable.is_none() {
            refused.push(Violation::TransferWithoutContact);
        }
        let starts_later = self
            .care_contacts
            .iter()
            .any(|c| c.role == ContactRole::FastVardkontakt && c.primary && c.period.start > t.at);
        if starts_later {
            refused.push(Violation::HandoverBeforeCurrentContact);
        }
        for id in &t.moving {
            if !self.agreement.commitments.iter().any(|c| &c.id == id) {
                refused.push(Violation::UnknownCommitment(id.clone()));
            }
        }
        Violations::check(refused)?;
        let from = from.ok_or_else(|| Violations::from(Violation::TransferWithoutUnit))?;

        let mut next = self.clone();
        next.responsible_unit = Some(t.to.clone());
        // The sending unit's contacts end at the handover (those of another unit stay).
        for c in &mut next.care_contacts {
            let sending = c.unit.as_ref().is_none_or(|u| *u == from);
            if sending && c.period.contains(t.at) {
                c.period.end = Some(t.at);
            }
        }
        let mut add = |role: ContactRole, new: &NewContact, primary: bool| {
            let id = unique_id(&next, &format!("{}-{}", role_key(role), t.at.as_second()));
            next.care_contacts.push(CareContact {
                id,
                role,
                primary,
                name: new.name.clone(),
                title: new.title.clone(),
                hsa_id: new.hsa_id.clone(),
                unit: Some(t.to.hsa_id.clone()),
                period: Period::from(t.at),
                channels: new.channels.clone(),
            });
        };
        if let Some(contact) = &t.contact {
            add(ContactRole::FastVardkontakt, contact, true);
        }
        if let Some(physician) = &t.physician {
            add(ContactRole::FastLakarkontakt, physician, false);
        }
        for c in &mut next.agreement.commitments {
            let Actor::Care {
                unit, organization, ..
            } = &mut c.who
            else {
                continue;
            };
            // Care commitments that name neither a unit nor an organisation are the
            // responsible unit's; another unit's or an organisation's stay.
            let sending = match (unit.as_ref(), organization) {
                (Some(u), _) => *u == from,
                (None, Some(_)) => false,
                (None, None) => true,
            };
            if !sending || c.status != CommitmentStatus::Active {
                continue;
            }
            if t.moving.contains(&c.id) {
                *unit = Some(t.to.hsa_id.clone());
            } else {
                c.status = CommitmentStatus::Cancelled;
            }
        }
        if let Some(step) = &t.next_step {
            next.next_step = Some(step.clone());
        }
        next.validate()?;
        Ok(next)
    }
}

fn role_key(role: ContactRole) -> &'static str {
    match role {
        ContactRole::FastVardkontakt => "fvk",
        ContactRole::FastLakarkontakt => "flk",
    }
}

/// `base`, or `base-2`, `base-3`, … if taken among the contract's contacts.
fn unique_id(contract: &Contract, base: &str) -> String {
    let taken = |id: &str| contract.care_contacts.iter().any(|c| c.id == id);
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Commitment, PhoneNumber, Situation};

    fn contract() -> Contract {
        crate::demo::contracts()
            .unwrap()
            .into_iter()
            .find(|(n, _)| *n == "hjartsvikt-primarvard")
            .unwrap()
            .1
    }

    fn to_hospital(at: &str) -> Transfer {
        Transfer {
            to: ResponsibleUnit {
                hsa_id: HsaId::parse("SE2321000016-KARD").unwrap(),
                name: "Kardiologiska kliniken, Danderyds sjukhus".into(),
                phone: PhoneNumber::parse("08-123 550 00").unwrap(),
                channels: Vec::new(),
                phone_hours: contract().responsible_unit.unwrap().phone_hours,
            },
            contact: Some(NewContact {
                name: "Eva Lind".into(),
                title: Some("Sjuksköterska".into()),
                hsa_id: None,
                channels: Vec::new(),
            }),
            physician: None,
            at: at.parse().unwrap(),
            kind: "primary-care-to-hospital".into(),
            reason: Some("Inlagd för hjärtsvikt".into()),
            moving: Vec::new(),
            next_step: None,
        }
    }

    #[test]
    fn a_transfer_hands_over_without_gap_and_closes_what_does_not_move() {
        let before = contract();
        let at = "2027-01-10T08:00:00Z";
        let after = before.transfer(&to_hospital(at)).unwrap();
        assert_eq!(
            after.responsible_unit.as_ref().unwrap().hsa_id.as_str(),
            "SE2321000016-KARD"
        );
        let primaries: Vec<&CareContact> = after
            .care_contacts
            .iter()
            .filter(|c| c.primary && c.role == ContactRole::FastVardkontakt)
            .collect();
        assert_eq!(primaries.len(), 2);
        assert_eq!(primaries[0].period.end, Some(at.parse().unwrap()));
        assert_eq!(primaries[1].period.start, at.parse().unwrap());
        // Nothing dropped: every commitment is still there, moved or explicitly closed.
        assert_eq!(
            after.agreement.commitments.len(),
            before.agreement.commitments.len()
        );
        let sending = before.responsible_unit.as_ref().unwrap().hsa_id.clone();
        let of_sending = |who: &Actor| matches!(who, Actor::Care { unit, .. } if unit.as_ref().is_none_or(|u| *u == sending));
        assert!(
            before
                .agreement
                .commitments
                .iter()
                .any(|c| of_sending(&c.who))
        );
        for (b, a) in before
            .agreement
            .commitments
            .iter()
            .zip(&after.agreement.commitments)
        {
            if of_sending(&b.who) && b.status == CommitmentStatus::Active {
                assert_eq!(a.status, CommitmentStatus::Cancelled, "{}", a.id);
            } else {
                assert_eq!(a, b);
            }
        }
        assert_eq!(after.next_step, before.next_step);
        assert_eq!(after.agreed_times, before.agreed_times);
        assert_eq!(after.linked_plans, before.linked_plans);
    }

    #[test]
    fn moving_commitments_follow_the_contract() {
        let before = contract();
        let sending = before.responsible_unit.as_ref().unwrap().hsa_id.clone();
        let care: Vec<String> = before
            .agreement
            .commitments
            .iter()
            .filter(|c| {
                matches!(&c.who, Actor::Care { unit, .. } if unit.as_ref().is_none_or(|u| *u == sending))
                    && c.status == CommitmentStatus::Active
            })
            .map(|c| c.id.clone())
            .collect();
        assert!(!care.is_empty());
        let mut t = to_hospital("2027-01-10T08:00:00Z");
        t.moving = care.clone();
        let after = before.transfer(&t).unwrap();
        for c in after
            .agreement
            .commitments
            .iter()
            .filter(|c| care.contains(&c.id))
        {
            assert_eq!(c.status, CommitmentStatus::Active);
            let Actor::Care { unit, .. } = &c.who else {
                panic!()
            };
            assert_eq!(unit.as_ref().unwrap().as_str(), "SE2321000016-KARD");
        }
        assert!(
            after
                .agreement
                .commitments
                .iter()
                .all(|c| c.situation != Situation::WarningSign || c.where_to_turn.is_some())
        );
    }

    #[test]
    fn a_transfer_that_cannot_be_done_is_refused_with_why() {
        let before = contract();
        let mut same = to_hospital("2027-01-10T08:00:00Z");
        same.to.hsa_id = before.responsible_unit.as_ref().unwrap().hsa_id.clone();
        let why = before.transfer(&same).unwrap_err();
        assert!(
            why.iter()
                .any(|v| matches!(v, Violation::TransferToSameUnit))
        );
        let early = to_hospital("2000-01-01T00:00:00Z");
        let why = before.transfer(&early).unwrap_err();
        assert!(
            why.iter()
                .any(|v| matches!(v, Violation::HandoverBeforeCurrentContact))
        );
        let mut unknown = to_hospital("2027-01-10T08:00:00Z");
        unknown.moving = vec!["finns-inte".into()];
        assert!(
            before
                .transfer(&unknown)
                .unwrap_err()
                .iter()
                .any(|v| matches!(v, Violation::UnknownCommitment(_)))
        );
        let mut ended = before.clone();
        ended.status = Status::Completed;
        assert!(
            ended
                .transfer(&to_hospital("2027-01-10T08:00:00Z"))
                .unwrap_err()
                .iter()
                .any(|v| matches!(v, Violation::TransferNotActive(_)))
        );
    }

    /// A step of a random walk through care.
    #[derive(Debug, Clone)]
    enum Step {
        /// To one of four units, this many hours after the last handover, moving the
        /// sending unit's commitments or not, with a new next step or not.
        Transfer {
            unit: usize,
            hours: i64,
            move_all: bool,
            new_step: bool,
        },
        /// Something else changes in between: what matters grows.
        Update(String),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0..4_usize, 1..2000_i64, any::<bool>(), any::<bool>()).prop_map(
                |(unit, hours, move_all, new_step)| Step::Transfer {
                    unit,
                    hours,
                    move_all,
                    new_step
                }
            ),
            "[a-zåäö]{3,20}".prop_map(Step::Update),
        ]
    }

    /// The rules after every step: one responsible unit, a continuous fast vårdkontakt
    /// timeline ending in a current one, the next step present, nothing dropped.
    fn assert_kept(initial: &Contract, c: &Contract, last_unit: &str) {
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        assert_eq!(
            c.responsible_unit.as_ref().unwrap().hsa_id.as_str(),
            last_unit
        );
        let mut primaries: Vec<&CareContact> = c
            .care_contacts
            .iter()
            .filter(|x| x.primary && x.role == ContactRole::FastVardkontakt)
            .collect();
        primaries.sort_by_key(|x| x.period.start);
        for pair in primaries.windows(2) {
            assert_eq!(pair[0].period.end, Some(pair[1].period.start));
        }
        assert!(primaries.last().is_some_and(|p| p.period.end.is_none()));
        assert!(c.next_step.is_some());
        for commitment in &initial.agreement.commitments {
            assert!(
                c.agreement
                    .commitments
                    .iter()
                    .any(|x| x.id == commitment.id),
                "{} dropped",
                commitment.id
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_walk_through_care_keeps_the_rules(steps in proptest::collection::vec(step(), 1..12)) {
            let units = ["SE2321000016-KARD", "SE2321000016-1A2B", "SE2120000010-H7", "SE2321000016-ORTO"];
            let initial = contract();
            let mut c = initial.clone();
            let mut at: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
            let mut unit = c.responsible_unit.as_ref().unwrap().hsa_id.to_string();
            for step in steps {
                match step {
                    Step::Transfer { unit: to, hours, move_all, new_step } => {
                        at = at.checked_add(jiff::SignedDuration::from_hours(hours)).unwrap();
                        let mut t = to_hospital(&at.to_string());
                        t.to.hsa_id = HsaId::parse(units[to]).unwrap();
                        if move_all {
                            t.moving = c.agreement.commitments.iter().map(|x| x.id.clone()).collect();
                        }
                        if new_step {
                            t.next_step = Some(NextStep { description: "Ring mottagningen".into(), due: None, on: None, who: None });
                        }
                        match c.transfer(&t) {
                            Ok(next) => {
                                unit = units[to].to_owned();
                                c = next;
                            }
                            // The only refusal such a walk meets: to the unit it is at.
                            Err(why) => proptest::prop_assert!(
                                units[to] == unit && why.iter().all(|v| matches!(v, Violation::TransferToSameUnit)),
                                "{why:?}"
                            ),
                        }
                    }
                    Step::Update(text) => c.agreement.what_matters.push(text),
                }
                assert_kept(&initial, &c, &unit);
            }
        }
    }

    /// From the hospital home: the ward's fast läkarkontakt ends at the handover though
    /// no new physician is named; a physician at another unit stays.
    #[test]
    fn the_sending_units_contacts_end_at_the_handover() {
        let mut before = contract();
        let mut physician = before.care_contacts[0].clone();
        physician.id = "flk-avdelningen".into();
        physician.role = ContactRole::FastLakarkontakt;
        physician.primary = false;
        physician.unit = None;
        let mut elsewhere = physician.clone();
        elsewhere.id = "flk-reumatologen".into();
        elsewhere.unit = Some(HsaId::parse("SE2321000016-REUM").unwrap());
        before.care_contacts.extend([physician, elsewhere]);
        let at: Timestamp = "2027-01-10T08:00:00Z".parse().unwrap();
        let after = before.transfer(&to_hospital(&at.to_string())).unwrap();
        let contact = |id: &str| after.care_contacts.iter().find(|c| c.id == id).unwrap();
        assert_eq!(contact("flk-avdelningen").period.end, Some(at));
        assert_eq!(contact("flk-reumatologen").period.end, None);
    }

    /// From children's to adult diabetes care with no fast vårdkontakt (the part does
    /// not apply): the contract moves without one. Otherwise a new one is needed.
    #[test]
    fn a_contract_without_a_fast_vardkontakt_can_move() {
        let mut before = contract();
        for c in &mut before.care_contacts {
            c.period.end = Some("2026-06-01T00:00:00Z".parse().unwrap());
        }
        before.discussed.fixed_care_contact.not_applicable =
            Some("Behöver ingen fast vårdkontakt just nu".into());
        before.validate().unwrap();
        let mut t = to_hospital("2027-01-10T08:00:00Z");
        t.contact = None;
        let after = before.transfer(&t).unwrap();
        assert_eq!(after.care_contacts, before.care_contacts);
        let mut needs = contract();
        needs.discussed.fixed_care_contact.not_applicable = None;
        let why = needs.transfer(&t).unwrap_err();
        assert!(
            why.iter()
                .any(|v| matches!(v, Violation::TransferWithoutContact)),
            "{why:?}"
        );
    }

    /// The municipality's hemtjänst and another unit's commitment are not the sending
    /// unit's: a transfer leaves them as they are.
    #[test]
    fn other_organisations_commitments_stay() {
        let mut before = contract();
        let template = before.agreement.commitments[0].clone();
        let carried = |id: &str, unit: Option<&str>, organization: Option<&str>| Commitment {
            id: id.into(),
            who: Actor::Care {
                role: "Hemtjänst".into(),
                name: None,
                unit: unit.map(|u| HsaId::parse(u).unwrap()),
                organization: organization.map(str::to_owned),
            },
            status: CommitmentStatus::Active,
            knowledge: Vec::new(),
            ..template.clone()
        };
        before.agreement.commitments.extend([
            carried("kommunen", None, Some("Danderyds kommun, hemtjänsten")),
            carried("reumatologen", Some("SE2321000016-REUM"), None),
            carried("vardcentralen", None, None),
        ]);
        let after = before
            .transfer(&to_hospital("2027-01-10T08:00:00Z"))
            .unwrap();
        let status = |id: &str| {
            after
                .agreement
                .commitments
                .iter()
                .find(|c| c.id == id)
                .unwrap()
                .status
        };
        assert_eq!(status("kommunen"), CommitmentStatus::Active);
        assert_eq!(status("reumatologen"), CommitmentStatus::Active);
        assert_eq!(status("vardcentralen"), CommitmentStatus::Cancelled);
    }
}
