//! The rules every contract version keeps, checked on every change.
//!
//! They are the rules care can keep without writing anything untrue: a fast
//! vårdkontakt may leave before the next one begins (the gap is shown, with where to
//! turn meanwhile, not refused; only a `$transfer` hands over without one), a part that
//! does not apply now may have history (ended contacts, past times), and phone hours
//! are given when the unit has them.

use std::collections::HashSet;

use jiff::Timestamp;

use super::{
    Change, ContactRole, Contract, Part, Situation, Status, Version, Violation, Violations,
};

impl Contract {
    /// Checks every invariant of a single version, as of now; returns all violations
    /// found.
    pub fn validate(&self) -> Result<(), Violations> {
        self.validate_at(Timestamp::now())
    }

    /// [`Contract::validate`] as of `now` (what "applies now" is judged by).
    pub fn validate_at(&self, now: Timestamp) -> Result<(), Violations> {
        let mut found = Vec::new();
        self.check_in_force(&mut found);
        self.check_discussed(&mut found, now);
        self.check_texts_and_ids(&mut found);
        self.check_contacts(&mut found);
        self.check_agreed_times(&mut found);
        self.check_commitments(&mut found);
        Violations::check(found)
    }

    /// Checks that `self`, stored as `version`, may follow `previous` (stored as
    /// `previous_version`): the version goes up by one and the status change is allowed,
    /// besides every rule of [`Contract::validate`].
    pub fn validate_change(
        &self,
        version: Version,
        previous: &Contract,
        previous_version: Version,
    ) -> Result<(), Violations> {
        let mut found: Vec<Violation> = match self.validate() {
            Ok(()) => Vec::new(),
            Err(v) => v.iter().cloned().collect(),
        };
        if !version.follows(previous_version) {
            found.push(Violation::VersionNotIncreasing {
                previous: previous_version,
                next: version,
            });
        }
        if !previous.status.can_become(self.status) {
            found.push(Violation::StatusTransition {
                from: previous.status,
                to: self.status,
            });
        }
        if !self.confirmation_holds(previous) {
            found.push(Violation::ConfirmationOfEarlierAgreement);
        }
        // The person's new words need a contract in force to be answered in; a draft
        // can be asked about, but agreed to only once it is in force.
        let asked = self.contact_requests.iter().any(|r| {
            previous
                .contact_requests
                .iter()
                .all(|p| p.number != r.number)
        });
        if asked && !matches!(self.status, Status::Active | Status::Draft) {
            found.push(Violation::NotInForce {
                status: self.status,
                field: "contactRequests",
            });
        }
        let confirmed = self.confirmed.is_some() && self.confirmed != previous.confirmed;
        if confirmed && self.status != Status::Active {
            found.push(Violation::NotInForce {
                status: self.status,
                field: "confirmed",
            });
        }
        Violations::check(found)
    }

    /// Whether `change` may make this the version after `previous` as far as whom the
    /// contract is about: the person stays, unless the change is the merge of the
    /// previous person's identity onto this one (`Patient/$merge`).
    pub fn validate_person(&self, previous: &Contract, change: &Change) -> Result<(), Violations> {
        let merged = change.merged_from.as_ref() == Some(&previous.patient.id);
        if previous.patient.id == self.patient.id || merged {
            return Ok(());
        }
        Err(Violation::PersonChanged {
            from: previous.patient.id.to_string(),
            to: self.patient.id.to_string(),
        }
        .into())
    }

    fn check_in_force(&self, found: &mut Vec<Violation>) {
        if self.status != Status::Active {
            return;
        }
        if self.next_step.is_none() {
            found.push(Violation::ActiveWithoutNextStep);
        }
        // Phone hours are shown when the unit has them (a line open around the clock,
        // or a unit that gives none, is not made to invent any).
        if self.responsible_unit.is_none() {
            found.push(Violation::ActiveWithoutResponsibleUnit);
        }
    }

    fn check_discussed(&self, found: &mut Vec<Violation>, now: Timestamp) {
        for part in Part::ALL {
            let d = self.discussed.get(part);
            if d.not_applicable.is_some() && !d.discussed {
                found.push(Violation::NotApplicableWithoutDiscussion(part));
            } else if d.discussed && d.date.is_none() {
                found.push(Violation::DiscussedWithoutDate(part));
            } else if !d.discussed && self.status == Status::Active {
                found.push(Violation::PartNotDiscussed(part));
            }
            if d.not_applicable.is_some() && self.applies_at(part, now) {
                found.push(Violation::NotApplicableButPresent(part));
            }
        }
    }

    /// Whether the part has content that applies at `now`: history (a contact that has
    /// ended, a time that is over) does not make a part apply.
    pub fn applies_at(&self, part: Part, now: Timestamp) -> bool {
        match part {
            Part::Agreement => {
                !self.agreement.what_matters.is_empty() || !self.agreement.commitments.is_empty()
            }
            Part::FixedCareContact => self
                .care_contacts
                .iter()
                .any(|c| c.period.end.is_none_or(|end| end > now)),
            Part::AgreedTime => self.agreed_times.iter().any(|t| t.end > now),
            Part::CoordinatedPlan => !self.linked_plans.is_empty(),
        }
    }

    fn check_texts_and_ids(&self, found: &mut Vec<Violation>) {
        let mut text = |field: String, value: &str| {
            if value.trim().is_empty() {
                found.push(Violation::EmptyText { field });
            }
        };
        for (i, s) in self.agreement.what_matters.iter().enumerate() {
            text(format!("agreement.whatMatters[{i}]"), s);
        }
        for (i, c) in self.agreement.commitments.iter().enumerate() {
            text(format!("agreement.commitments[{i}].what"), &c.what);
        }
        let both_days = self
            .next_step
            .as_ref()
            .is_some_and(|step| step.due.is_some() && step.on.is_some());
        if let Some(step) = &self.next_step {
            text("nextStep.description".into(), &step.description);
        }
        if let Some(unit) = &self.responsible_unit {
            text("responsibleUnit.name".into(), &unit.name);
        }
        for (i, c) in self.care_contacts.iter().enumerate() {
            text(format!("careContacts[{i}].name"), &c.name);
        }
        for (i, t) in self.agreed_times.iter().enumerate() {
            text(format!("agreedTimes[{i}].what"), &t.what);
        }
        for (i, p) in self.linked_plans.iter().enumerate() {
            text(format!("linkedPlans[{i}].title"), &p.title);
        }
        for (i, r) in self.contact_requests.iter().enumerate() {
            text(format!("contactRequests[{i}].message"), &r.message);
        }
        unique_ids(
            found,
            "agreement.commitments",
            self.agreement.commitments.iter().map(|c| c.id.as_str()),
        );
        unique_ids(
            found,
            "careContacts",
            self.care_contacts.iter().map(|c| c.id.as_str()),
        );
        unique_ids(
            found,
            "agreedTimes",
            self.agreed_times.iter().map(|c| c.id.as_str()),
        );
        unique_ids(
            found,
            "linkedPlans",
            self.linked_plans.iter().map(|c| c.id.as_str()),
        );
        if both_days {
            found.push(Violation::NextStepDueAndOn);
        }
        let numbers = self
            .contact_requests
            .iter()
            .map(|r| r.number.to_string())
            .collect::<Vec<_>>();
        unique_ids(found, "contactRequests", numbers.iter().map(String::as_str));
        for (index, r) in self.contact_requests.iter().enumerate() {
            let known = |id: &String| self.agreed_times.iter().any(|t| &t.id == id);
            if r.about_time.as_ref().is_some_and(|id| !known(id)) {
                found.push(Violation::RequestAboutUnknownTime { index });
            }
        }
        // Kunskapsstöd: a title and an address the person can open.
        let links = self
            .agreement
            .knowledge
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("agreement.knowledge[{i}]"), k))
            .chain(
                self.agreement
                    .commitments
                    .iter()
                    .enumerate()
                    .flat_map(|(c, x)| {
                        x.knowledge.iter().enumerate().map(move |(i, k)| {
                            (format!("agreement.commitments[{c}].knowledge[{i}]"), k)
                        })
                    }),
            );
        for (at, link) in links {
            if link.title.trim().is_empty() {
                found.push(Violation::EmptyText {
                    field: format!("{at}.title"),
                });
            }
            let web = link.url.starts_with("https://") || link.url.starts_with("http://");
            if !web || link.url.chars().any(char::is_whitespace) {
                found.push(Violation::NotAWebAddress {
                    field: format!("{at}.url"),
                });
            }
        }
    }

    fn check_contacts(&self, found: &mut Vec<Violation>) {
        for (i, c) in self.care_contacts.iter().enumerate() {
            if !c.period.is_well_formed() {
                found.push(Violation::PeriodEndsBeforeStart {
                    field: format!("careContacts[{i}].period"),
                });
            }
        }
        let primaries: Vec<(usize, _)> = self
            .care_contacts
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.primary && c.role == ContactRole::FastVardkontakt && c.period.is_well_formed()
            })
            .collect();
        for (n, (i, a)) in primaries.iter().enumerate() {
            if let Some((j, _)) = primaries[..n]
                .iter()
                .find(|(_, b)| a.period.overlaps(&b.period))
            {
                found.push(Violation::OverlappingPrimaryContacts {
                    index: *i,
                    other: *j,
                });
            }
        }
    }

    fn check_agreed_times(&self, found: &mut Vec<Violation>) {
        for (i, t) in self.agreed_times.iter().enumerate() {
            if t.end <= t.start {
                found.push(Violation::PeriodEndsBeforeStart {
                    field: format!("agreedTimes[{i}].end"),
                });
            }
            if t.status == super::AgreedTimeStatus::Agreed && !t.is_agreed() {
                found.push(Violation::AgreedTimeNotAccepted { index: i });
            }
            if t.accepted_by_patient && t.declined_by_patient {
                found.push(Violation::AcceptedAndDeclined { index: i });
            }
        }
    }

    fn check_commitments(&self, found: &mut Vec<Violation>) {
        for (i, c) in self.agreement.commitments.iter().enumerate() {
            let turn = c
                .where_to_turn
                .as_deref()
                .map(str::trim)
                .unwrap_or_default();
            if c.situation == Situation::WarningSign && turn.is_empty() {
                found.push(Violation::WarningSignWithoutWhereToTurn { index: i });
            }
        }
    }
}

fn unique_ids<'a>(found: &mut Vec<Violation>, list: &str, ids: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for (i, id) in ids.enumerate() {
        if id.trim().is_empty() {
            found.push(Violation::EmptyText {
                field: format!("{list}[{i}].id"),
            });
        } else if !seen.insert(id) {
            found.push(Violation::DuplicateId {
                field: format!("{list}[{i}].id"),
                id: id.to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
