//! Three-way merge of concurrent edits to one contract, part by part: a system that
//! edited the version it last saw (`base`) while the contract moved on (`ours`) gets its
//! edit (`theirs`) applied when it touched other parts than the edits it did not see;
//! when both touched the same part differently, that is a conflict for a person to
//! resolve, and nothing is merged.
//!
//! The unit of merging is a part of the contract as the seeds name them (with whether it
//! was discussed), plus the status, the next step and who the contract is with.

use std::fmt;

use super::{Contract, Part};

/// What is merged as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Status,
    Patient,
    InitiatedBy,
    NextStep,
    /// One of the four parts, with its discussion record (for the fixed care contact,
    /// also the responsible unit; for the agreement, the person's confirmation).
    Part(Part),
    /// The person's requests to be contacted.
    ContactRequests,
}

impl Section {
    /// The contract's field (a JSON path) the section is mostly about, for OperationOutcome
    /// expressions.
    pub fn field(self) -> &'static str {
        match self {
            Section::Status => "status",
            Section::Patient => "patient",
            Section::InitiatedBy => "initiatedBy",
            Section::NextStep => "nextStep",
            Section::Part(Part::Agreement) => "agreement",
            Section::Part(Part::FixedCareContact) => "careContacts",
            Section::Part(Part::AgreedTime) => "agreedTimes",
            Section::Part(Part::CoordinatedPlan) => "linkedPlans",
            Section::ContactRequests => "contactRequests",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Status => f.write_str("status"),
            Section::Patient => f.write_str("patient"),
            Section::InitiatedBy => f.write_str("initiated by"),
            Section::NextStep => f.write_str("nästa steg (next step)"),
            Section::Part(p) => write!(f, "{} ({p})", p.swedish()),
            Section::ContactRequests => f.write_str("önskemål om kontakt (contact requests)"),
        }
    }
}

/// Both sides changed these sections, differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConflict {
    pub sections: Vec<Section>,
}

impl fmt::Display for MergeConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.sections.iter().map(ToString::to_string).collect();
        write!(f, "changed on both sides: {}", names.join(", "))
    }
}

/// Which side a section comes from.
fn pick<T: PartialEq>(base: &T, ours: &T, theirs: &T) -> Option<bool> {
    if theirs == base || theirs == ours {
        Some(false) // ours
    } else if ours == base {
        Some(true) // theirs
    } else {
        None
    }
}

/// Merges `theirs` (an edit of `base`) into `ours` (what `base` became meanwhile).
pub fn merge(
    base: &Contract,
    ours: &Contract,
    theirs: &Contract,
) -> Result<Contract, MergeConflict> {
    let mut merged = ours.clone();
    let mut conflicts = Vec::new();
    // Applies one section: `$get` reads it (as a tuple of references), `$set` copies it
    // from theirs into the merged contract.
    macro_rules! section {
        ($section:expr, |$c:ident| $get:expr, |$m:ident, $t:ident| $set:block) => {{
            let (b, o, t) = (
                {
                    let $c = base;
                    $get
                },
                {
                    let $c = ours;
                    $get
                },
                {
                    let $c = theirs;
                    $get
                },
            );
            match pick(&b, &o, &t) {
                Some(false) => {}
                Some(true) => {
                    let ($m, $t) = (&mut merged, theirs);
                    $set
                }
                None => conflicts.push($section),
            }
        }};
    }
    section!(Section::Status, |c| &c.status, |m, t| {
        m.status = t.status
    });
    section!(Section::Patient, |c| &c.patient, |m, t| {
        m.patient = t.patient.clone()
    });
    section!(Section::InitiatedBy, |c| &c.initiated_by, |m, t| {
        m.initiated_by = t.initiated_by
    });
    section!(Section::NextStep, |c| &c.next_step, |m, t| {
        m.next_step = t.next_step.clone()
    });
    section!(
        Section::Part(Part::Agreement),
        |c| (&c.agreement, &c.discussed.agreement, &c.confirmed),
        |m, t| {
            m.agreement = t.agreement.clone();
            m.discussed.agreement = t.discussed.agreement.clone();
            m.confirmed = t.confirmed;
        }
    );
    section!(
        Section::Part(Part::FixedCareContact),
        |c| (
            &c.responsible_unit,
            &c.care_contacts,
            &c.discussed.fixed_care_contact
        ),
        |m, t| {
            m.responsible_unit = t.responsible_unit.clone();
            m.care_contacts = t.care_contacts.clone();
            m.discussed.fixed_care_contact = t.discussed.fixed_care_contact.clone();
        }
    );
    section!(
        Section::Part(Part::AgreedTime),
        |c| (&c.agreed_times, &c.discussed.agreed_time),
        |m, t| {
            m.agreed_times = t.agreed_times.clone();
            m.discussed.agreed_time = t.discussed.agreed_time.clone();
        }
    );
    section!(
        Section::Part(Part::CoordinatedPlan),
        |c| (&c.linked_plans, &c.discussed.coordinated_plan),
        |m, t| {
            m.linked_plans = t.linked_plans.clone();
            m.discussed.coordinated_plan = t.discussed.coordinated_plan.clone();
        }
    );
    section!(Section::ContactRequests, |c| &c.contact_requests, |m, t| {
        m.contact_requests = t.contact_requests.clone()
    });
    if conflicts.is_empty() {
        Ok(merged)
    } else {
        Err(MergeConflict {
            sections: conflicts,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::arbitrary::contract;

    /// Every section, in the order a conflict names them.
    const SECTIONS: [Section; 9] = [
        Section::Status,
        Section::Patient,
        Section::InitiatedBy,
        Section::NextStep,
        Section::Part(Part::Agreement),
        Section::Part(Part::FixedCareContact),
        Section::Part(Part::AgreedTime),
        Section::Part(Part::CoordinatedPlan),
        Section::ContactRequests,
    ];

    /// Copies one section of `from` into `to`.
    fn copy(section: Section, from: &Contract, to: &mut Contract) {
        match section {
            Section::Status => to.status = from.status,
            Section::Patient => to.patient = from.patient.clone(),
            Section::InitiatedBy => to.initiated_by = from.initiated_by,
            Section::NextStep => to.next_step = from.next_step.clone(),
            Section::Part(Part::Agreement) => {
                to.agreement = from.agreement.clone();
                to.discussed.agreement = from.discussed.agreement.clone();
                to.confirmed = from.confirmed;
            }
            Section::ContactRequests => to.contact_requests = from.contact_requests.clone(),
            Section::Part(Part::FixedCareContact) => {
                to.responsible_unit = from.responsible_unit.clone();
                to.care_contacts = from.care_contacts.clone();
                to.discussed.fixed_care_contact = from.discussed.fixed_care_contact.clone();
            }
            Section::Part(Part::AgreedTime) => {
                to.agreed_times = from.agreed_times.clone();
                to.discussed.agreed_time = from.discussed.agreed_time.clone();
            }
            Section::Part(Part::CoordinatedPlan) => {
                to.linked_plans = from.linked_plans.clone();
                to.discussed.coordinated_plan = from.discussed.coordinated_plan.clone();
            }
        }
    }

    /// Whether `a` and `b` hold the same section.
    fn same(section: Section, a: &Contract, b: &Contract) -> bool {
        let mut with_b = a.clone();
        copy(section, b, &mut with_b);
        with_b == *a
    }

    fn sample() -> Contract {
        crate::demo::contracts().unwrap().remove(0).1
    }

    #[test]
    fn edits_to_different_parts_both_apply() {
        let base = sample();
        let mut ours = base.clone();
        ours.agreement
            .what_matters
            .push("Att orka gå i trappor".into());
        let mut theirs = base.clone();
        theirs.agreed_times.clear();
        theirs.next_step = None;
        let merged = merge(&base, &ours, &theirs).unwrap();
        assert_eq!(merged.agreement, ours.agreement);
        assert!(merged.agreed_times.is_empty());
        assert_eq!(merged.next_step, None);
    }

    #[test]
    fn edits_to_the_same_part_conflict_naming_it() {
        let base = sample();
        let mut ours = base.clone();
        ours.agreement
            .what_matters
            .push("Att orka gå i trappor".into());
        let mut theirs = base.clone();
        theirs.agreement.what_matters.push("Att sova bättre".into());
        theirs.status = crate::domain::Status::OnHold;
        let conflict = merge(&base, &ours, &theirs).unwrap_err();
        assert_eq!(conflict.sections, [Section::Part(Part::Agreement)]);
        assert!(
            conflict.to_string().contains("Överenskommelse"),
            "{conflict}"
        );
        // The same edit on both sides is no conflict.
        assert_eq!(merge(&base, &ours, &ours).unwrap(), ours);
    }

    proptest! {
        #[test]
        fn merging_with_an_unchanged_side_takes_the_other(base in contract(), other in contract()) {
            prop_assert_eq!(merge(&base, &base, &other).unwrap(), other.clone());
            prop_assert_eq!(merge(&base, &other, &base).unwrap(), other);
        }

        /// Ours and theirs are edits of base, each taking some sections from another
        /// contract: the merge conflicts exactly on the sections both changed
        /// differently, and otherwise takes each section from the side that changed it.
        #[test]
        fn merges_exactly_as_the_sections_say(
            base in contract(),
            donors in (contract(), contract()),
            masks in (any::<[bool; 9]>(), any::<[bool; 9]>()),
        ) {
            let (mut ours, mut theirs) = (base.clone(), base.clone());
            for (i, section) in SECTIONS.into_iter().enumerate() {
                if masks.0[i] {
                    copy(section, &donors.0, &mut ours);
                }
                if masks.1[i] {
                    copy(section, &donors.1, &mut theirs);
                }
            }
            let expected: Vec<Section> = SECTIONS
                .into_iter()
                .filter(|s| !same(*s, &ours, &base) && !same(*s, &theirs, &base) && !same(*s, &ours, &theirs))
                .collect();
            match merge(&base, &ours, &theirs) {
                Ok(merged) => {
                    prop_assert!(expected.is_empty(), "{expected:?}");
                    for section in SECTIONS {
                        let changed = if same(section, &theirs, &base) { &ours } else { &theirs };
                        prop_assert!(same(section, &merged, changed), "{section}");
                    }
                }
                Err(conflict) => prop_assert_eq!(conflict.sections, expected),
            }
        }
    }
}
