//! What the person may change on their own, from a portal with a token limited to them:
//! the parts of the contract that are theirs, never care's.
//!
//! The seeds make the person an author of the agreement (*"kan initieras av både
//! vårdpersonal och av personen själv"*; *"Jag har möjlighet att påverka mina bokade
//! tider i samråd med vården"*), not an editor of care's side of it. So a person may:
//! - write what matters to them (*vad är viktigt för mig*);
//! - add, change and remove their own commitments and their network's;
//! - accept or decline an agreed time, and propose another (a proposed time they have
//!   accepted and care has not yet);
//! - ask to be contacted, with a message (a new open request), and withdraw a request
//!   still open;
//! - confirm the agreement (*"vi är överens"*);
//! - start a contract of their own: a draft, initiated by them.
//!
//! Everything else — the status, the responsible unit, the next step, care's commitments,
//! the contacts, the other plans, the knowledge links, the record of what was discussed,
//! a time's when and where — stays as care wrote it. [`person_may_change`] names the first
//! part that would change otherwise.

use super::{
    Actor, AgreedTime, AgreedTimeStatus, ContactRequest, Contract, Initiator, RequestStatus, Status,
};

/// Whether the person may store `after` in place of `before` (none: a new contract), or
/// which part of care's they would change.
pub fn person_may_change(before: Option<&Contract>, after: &Contract) -> Result<(), String> {
    let care = |c: &Contract| {
        c.agreement
            .commitments
            .iter()
            .filter(|c| matches!(c.who, Actor::Care { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    let Some(before) = before else {
        if after.status != Status::Draft || after.initiated_by != Initiator::Patient {
            return Err(
                "a contract the person starts is a draft (status draft) initiated by \
                        them (initiatedBy patient), which the responsible unit then completes"
                    .into(),
            );
        }
        // What care commits to is care's to write, when it completes the draft.
        let cares: [(&str, bool); 4] = [
            ("care's commitments", care(after).is_empty()),
            ("the care contacts", after.care_contacts.is_empty()),
            (
                "an agreed time accepted by care",
                after.agreed_times.iter().all(|t| !t.accepted_by_care),
            ),
            (
                "the record of what was discussed",
                after.discussed == Default::default(),
            ),
        ];
        return match cares.iter().find(|(_, none)| !none) {
            Some((part, _)) => Err(format!(
                "{part}: care's to write when it completes the person's draft"
            )),
            None => Ok(()),
        };
    };
    let unchanged: [(&str, bool); 10] = [
        ("the status", before.status == after.status),
        ("the person", before.patient == after.patient),
        (
            "who started the contract",
            before.initiated_by == after.initiated_by,
        ),
        (
            "the responsible unit",
            before.responsible_unit == after.responsible_unit,
        ),
        ("the next step", before.next_step == after.next_step),
        ("care's commitments", care(before) == care(after)),
        (
            "the knowledge links",
            before.agreement.knowledge == after.agreement.knowledge,
        ),
        (
            "the care contacts",
            before.care_contacts == after.care_contacts,
        ),
        (
            "the linked plans",
            before.linked_plans == after.linked_plans,
        ),
        (
            "the record of what was discussed",
            before.discussed == after.discussed,
        ),
    ];
    if let Some((part, _)) = unchanged.iter().find(|(_, same)| !same) {
        return Err(format!("{part} is care's to change, not the person's"));
    }
    agreed_times(&before.agreed_times, &after.agreed_times)?;
    contact_requests(&before.contact_requests, &after.contact_requests)
}

/// The person's requests to be contacted: they add new ones, open, and may withdraw an
/// open one; care answers them (done) and their words stay as written.
fn contact_requests(before: &[ContactRequest], after: &[ContactRequest]) -> Result<(), String> {
    for was in before {
        let Some(now) = after.iter().find(|r| r.number == was.number) else {
            return Err(format!(
                "contact request {}: a request stays in the record; withdraw it instead",
                was.number
            ));
        };
        let withdrawn = ContactRequest {
            status: RequestStatus::Withdrawn,
            ..was.clone()
        };
        let open = was.status == RequestStatus::Open;
        if now != was && !(open && *now == withdrawn) {
            return Err(format!(
                "contact request {}: the person may withdraw an open request; its words stay as \
                 written, and care answers it",
                was.number
            ));
        }
    }
    for new in after
        .iter()
        .filter(|r| before.iter().all(|b| b.number != r.number))
    {
        if new.status != RequestStatus::Open {
            return Err(format!(
                "contact request {}: a new request is open (care answers it)",
                new.number
            ));
        }
    }
    Ok(())
}

/// The person's side of the agreed times: their answer to each, and times they propose.
fn agreed_times(before: &[AgreedTime], after: &[AgreedTime]) -> Result<(), String> {
    for was in before {
        let now = after.iter().find(|t| t.id == was.id);
        // A time the person proposed, care has not answered yet: theirs to change or drop.
        if was.is_persons_proposal() && now.is_none_or(AgreedTime::is_persons_proposal) {
            continue;
        }
        let Some(now) = now else {
            return Err(format!(
                "agreed time {}: only care removes a time; the person declines it",
                was.id
            ));
        };
        let answered = AgreedTime {
            accepted_by_patient: now.accepted_by_patient,
            declined_by_patient: now.declined_by_patient,
            status: now.status,
            ..was.clone()
        };
        if *now != answered {
            return Err(format!(
                "agreed time {}: the person answers a time (accepts or declines it); its \
                 time, place and content are agreed with care",
                was.id
            ));
        }
        // Accepting a time care has accepted makes it agreed; declining one makes it
        // proposed again. A time cancelled or fulfilled is not the person's to reopen.
        let open = matches!(
            was.status,
            AgreedTimeStatus::Proposed | AgreedTimeStatus::Agreed
        );
        let allowed: &[AgreedTimeStatus] = if !open {
            &[was.status]
        } else if now.accepted_by_patient && was.accepted_by_care {
            &[AgreedTimeStatus::Proposed, AgreedTimeStatus::Agreed]
        } else {
            &[AgreedTimeStatus::Proposed]
        };
        if !allowed.contains(&now.status) || (!open && *now != *was) {
            return Err(format!(
                "agreed time {}: the person's answer cannot make it {}",
                was.id,
                status_name(now.status)
            ));
        }
    }
    for new in after.iter().filter(|t| before.iter().all(|b| b.id != t.id)) {
        if !new.is_persons_proposal() {
            return Err(format!(
                "agreed time {}: a time the person proposes is proposed, accepted by them and \
                 not yet by care",
                new.id
            ));
        }
    }
    Ok(())
}

fn status_name(status: AgreedTimeStatus) -> &'static str {
    match status {
        AgreedTimeStatus::Proposed => "proposed",
        AgreedTimeStatus::Agreed => "agreed",
        AgreedTimeStatus::Cancelled => "cancelled",
        AgreedTimeStatus::Fulfilled => "fulfilled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Commitment, Situation};

    fn contract() -> Contract {
        let (_, json) = crate::demo::FIXTURES
            .iter()
            .find(|(name, _)| *name == "hjartsvikt-primarvard")
            .unwrap();
        let contract: Contract = serde_json::from_str(json).unwrap();
        assert!(!contract.agreed_times.is_empty() && !contract.care_contacts.is_empty());
        contract
    }

    fn refused(before: &Contract, after: &Contract) -> String {
        person_may_change(Some(before), after).unwrap_err()
    }

    #[test]
    fn the_person_writes_what_matters_and_their_own_commitments() {
        let before = contract();
        let mut after = before.clone();
        after.agreement.what_matters = vec!["Att kunna gå i skogen".into()];
        after
            .agreement
            .commitments
            .retain(|c| !matches!(c.who, Actor::Patient));
        after.agreement.commitments.push(Commitment {
            id: "min-egen".into(),
            who: Actor::Patient,
            what: "Promenera en halvtimme varje dag".into(),
            when: Some("varje dag".into()),
            situation: Situation::StayingWell,
            where_to_turn: None,
            status: Default::default(),
            knowledge: Vec::new(),
        });
        assert_eq!(person_may_change(Some(&before), &after), Ok(()));
    }

    #[test]
    fn cares_parts_are_named_when_the_person_would_change_them() {
        let before = contract();
        let mut after = before.clone();
        let care = after
            .agreement
            .commitments
            .iter_mut()
            .find(|c| matches!(c.who, Actor::Care { .. }))
            .unwrap();
        care.what = "Ingenting".into();
        assert!(refused(&before, &after).contains("care's commitments"));
        let mut after = before.clone();
        after.responsible_unit = None;
        assert!(refused(&before, &after).contains("the responsible unit"));
        let mut after = before.clone();
        after.care_contacts.clear();
        assert!(refused(&before, &after).contains("the care contacts"));
        let mut after = before.clone();
        after.status = Status::Completed;
        assert!(refused(&before, &after).contains("the status"));
    }

    #[test]
    fn the_person_answers_a_time_and_proposes_another_but_does_not_move_it() {
        let mut before = contract();
        let time = &mut before.agreed_times[0];
        time.status = AgreedTimeStatus::Proposed;
        time.accepted_by_patient = false;
        time.accepted_by_care = true;
        let id = time.id.clone();

        let mut accepted = before.clone();
        accepted.agreed_times[0].accepted_by_patient = true;
        accepted.agreed_times[0].status = AgreedTimeStatus::Agreed;
        assert_eq!(person_may_change(Some(&before), &accepted), Ok(()));
        let mut declined = accepted.clone();
        declined.agreed_times[0].accepted_by_patient = false;
        assert!(refused(&accepted, &declined).contains("cannot make it agreed"));
        declined.agreed_times[0].status = AgreedTimeStatus::Proposed;
        assert_eq!(person_may_change(Some(&accepted), &declined), Ok(()));

        let mut moved = before.clone();
        moved.agreed_times[0].start += jiff::SignedDuration::from_hours(1);
        assert!(refused(&before, &moved).contains(&id));
        let mut removed = before.clone();
        removed.agreed_times.clear();
        assert!(refused(&before, &removed).contains("declines"));

        let mut proposal = before.agreed_times[0].clone();
        proposal.id = "forslag".into();
        proposal.status = AgreedTimeStatus::Proposed;
        proposal.accepted_by_patient = true;
        proposal.accepted_by_care = false;
        let mut proposed = before.clone();
        proposed.agreed_times.push(proposal.clone());
        assert_eq!(person_may_change(Some(&before), &proposed), Ok(()));
        proposal.accepted_by_care = true;
        proposal.status = AgreedTimeStatus::Agreed;
        let mut imposed = before.clone();
        imposed.agreed_times.push(proposal);
        assert!(refused(&before, &imposed).contains("forslag"));
    }

    #[test]
    fn a_contract_the_person_starts_is_their_draft() {
        let mut draft = contract();
        draft.status = Status::Draft;
        draft.initiated_by = Initiator::Patient;
        assert!(
            person_may_change(None, &draft)
                .unwrap_err()
                .contains("care's commitments")
        );
        draft
            .agreement
            .commitments
            .retain(|c| !matches!(c.who, Actor::Care { .. }));
        draft.care_contacts.clear();
        assert!(
            person_may_change(None, &draft)
                .unwrap_err()
                .contains("agreed time")
        );
        draft.agreed_times.clear();
        draft.discussed = Default::default();
        assert_eq!(person_may_change(None, &draft), Ok(()));
        draft.initiated_by = Initiator::Staff;
        assert!(
            person_may_change(None, &draft)
                .unwrap_err()
                .contains("draft")
        );
    }
}
