use jiff::Timestamp;
use proptest::prelude::*;

use crate::domain::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn hours() -> PhoneHours {
    PhoneHours::new(
        Weekday::WORKDAYS.to_vec(),
        jiff::civil::time(8, 0, 0, 0),
        jiff::civil::time(10, 0, 0, 0),
    )
    .unwrap()
}

fn discussed() -> Discussion {
    Discussion {
        discussed: true,
        date: Some(jiff::civil::date(2026, 11, 2)),
        not_applicable: None,
    }
}

fn contact(id: &str, start: &str, end: Option<&str>) -> CareContact {
    CareContact {
        id: id.into(),
        role: ContactRole::FastVardkontakt,
        primary: true,
        name: "Karin Lund".into(),
        title: Some("Distriktssköterska".into()),
        hsa_id: None,
        unit: None,
        period: Period {
            start: ts(start),
            end: end.map(ts),
        },
        channels: vec![Channel::Phone {
            number: PhoneNumber::parse("010-241 00 00").unwrap(),
            hours: vec![hours()],
        }],
    }
}

/// A valid active contract to break one rule at a time.
fn active() -> Contract {
    Contract {
        status: Status::Active,
        patient: Patient {
            id: PersonId::parse("191212121212").unwrap(),
            name: Some("Tolvan Tolvansson".into()),
        },
        initiated_by: Initiator::Staff,
        responsible_unit: Some(ResponsibleUnit {
            hsa_id: HsaId::parse("SE2321000016-15CQ").unwrap(),
            name: "Vårdcentralen Centrum".into(),
            phone: PhoneNumber::parse("010-241 00 00").unwrap(),
            channels: Vec::new(),
            phone_hours: vec![hours()],
        }),
        next_step: Some(NextStep {
            description: "Blodprov på vårdcentralen".into(),
            due: None,
            on: None,
            who: Some(Actor::Patient),
        }),
        agreement: Agreement {
            what_matters: vec!["Att kunna gå till sommarstugan".into()],
            commitments: vec![Commitment {
                id: "c1".into(),
                who: Actor::Patient,
                what: "Väga mig varje morgon".into(),
                when: Some("varje morgon".into()),
                situation: Situation::WarningSign,
                where_to_turn: Some("Ring vårdcentralen".into()),
                status: CommitmentStatus::Active,
                knowledge: Vec::new(),
            }],
            knowledge: Vec::new(),
        },
        care_contacts: vec![contact("k1", "2026-01-01T00:00:00Z", None)],
        agreed_times: vec![AgreedTime {
            id: "t1".into(),
            start: ts("2026-12-01T08:00:00Z"),
            end: ts("2026-12-01T08:30:00Z"),
            what: "Uppföljning".into(),
            with: None,
            mode: MeetingMode::InPerson,
            location: None,
            status: AgreedTimeStatus::Agreed,
            accepted_by_patient: true,
            accepted_by_care: true,
            declined_by_patient: false,
        }],
        linked_plans: vec![],
        discussed: Discussed {
            agreement: discussed(),
            fixed_care_contact: discussed(),
            agreed_time: discussed(),
            coordinated_plan: Discussion {
                not_applicable: Some("Inga andra planer".into()),
                ..discussed()
            },
        },
        contact_requests: vec![],
        confirmed: None,
    }
}

/// The violations as of a fixed instant before the sample's agreed time (what applies
/// "now" depends on it).
fn violations(c: &Contract) -> Vec<Violation> {
    c.validate_at(ts("2026-11-20T12:00:00Z"))
        .err()
        .map(|v| v.iter().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_sample_is_valid() {
    assert_eq!(violations(&active()), vec![]);
}

#[test]
fn an_active_contract_has_a_next_step_and_a_unit() {
    let mut c = active();
    c.next_step = None;
    c.responsible_unit = None;
    let v = violations(&c);
    assert_eq!(
        v,
        vec![
            Violation::ActiveWithoutNextStep,
            Violation::ActiveWithoutResponsibleUnit
        ]
    );
    assert_eq!(v[0].field(), "nextStep");
    assert_eq!(v[1].field(), "responsibleUnit");
    c.status = Status::Draft;
    assert_eq!(violations(&c), vec![]);
}

/// A unit that gives no phone hours (a line open around the clock, or hours it keeps
/// elsewhere) is not made to invent any.
#[test]
fn phone_hours_are_given_when_the_unit_has_them() {
    let mut c = active();
    c.responsible_unit.as_mut().unwrap().phone_hours.clear();
    assert_eq!(violations(&c), vec![]);
}

/// A fast vårdkontakt leaves 1 March and the next begins 15 March: the unit records
/// exactly that (the narrative says where to turn meanwhile).
#[test]
fn a_gap_between_fast_vardkontakter_is_recorded_as_it_is() {
    let mut c = active();
    c.care_contacts = vec![
        contact("k1", "2026-01-01T00:00:00Z", Some("2026-03-01T00:00:00Z")),
        contact("k2", "2026-03-15T00:00:00Z", None),
    ];
    assert_eq!(violations(&c), vec![]);
}

/// "Behöver ingen fast vårdkontakt nu" after the last one has ended, and "no agreed
/// times now" when only past ones are left: history does not make a part apply.
#[test]
fn a_part_that_does_not_apply_now_may_have_history() {
    let now = ts("2026-12-01T12:00:00Z");
    let mut c = active();
    c.care_contacts[0].period.end = Some(ts("2026-06-01T00:00:00Z"));
    c.discussed.fixed_care_contact.not_applicable =
        Some("Behöver ingen fast vårdkontakt nu".into());
    c.discussed.agreed_time.not_applicable = Some("Inga fler besök planerade".into());
    assert_eq!(c.validate_at(now), Ok(()));
    // What is current still counts: a contact that has not ended, a time to come.
    c.care_contacts[0].period.end = Some(ts("2027-01-01T00:00:00Z"));
    c.agreed_times[0].start = ts("2026-12-02T08:00:00Z");
    c.agreed_times[0].end = ts("2026-12-02T08:30:00Z");
    let found: Vec<Violation> = c.validate_at(now).unwrap_err().iter().cloned().collect();
    assert_eq!(
        found,
        vec![
            Violation::NotApplicableButPresent(Part::FixedCareContact),
            Violation::NotApplicableButPresent(Part::AgreedTime),
        ]
    );
}

#[test]
fn two_primary_contacts_may_not_overlap() {
    let mut c = active();
    c.care_contacts
        .push(contact("k2", "2026-06-01T00:00:00Z", None));
    let v = violations(&c);
    assert_eq!(
        v,
        vec![Violation::OverlappingPrimaryContacts { index: 1, other: 0 }]
    );
    assert_eq!(v[0].field(), "careContacts[1].period");
    // A handover exactly at the instant is fine: no overlap, no gap.
    c.care_contacts[0].period.end = Some(ts("2026-06-01T00:00:00Z"));
    assert_eq!(violations(&c), vec![]);
    // A fast läkarkontakt is no fast vårdkontakt.
    c.care_contacts[0].period.end = None;
    c.care_contacts[1].role = ContactRole::FastLakarkontakt;
    assert_eq!(violations(&c), vec![]);
}

#[test]
fn periods_must_end_after_they_start() {
    let mut c = active();
    c.care_contacts[0].period.end = Some(ts("2025-01-01T00:00:00Z"));
    c.agreed_times[0].end = c.agreed_times[0].start;
    let v = violations(&c);
    assert_eq!(
        v,
        vec![
            Violation::PeriodEndsBeforeStart {
                field: "careContacts[0].period".into()
            },
            Violation::PeriodEndsBeforeStart {
                field: "agreedTimes[0].end".into()
            },
        ]
    );
}

#[test]
fn an_agreed_time_is_accepted_by_both() {
    for (patient, care) in [(false, true), (true, false), (false, false)] {
        let mut c = active();
        c.agreed_times[0].accepted_by_patient = patient;
        c.agreed_times[0].accepted_by_care = care;
        let v = violations(&c);
        assert_eq!(v, vec![Violation::AgreedTimeNotAccepted { index: 0 }]);
        assert_eq!(v[0].field(), "agreedTimes[0].status");
    }
    let mut c = active();
    c.agreed_times[0].status = AgreedTimeStatus::Proposed;
    c.agreed_times[0].accepted_by_care = false;
    assert_eq!(violations(&c), vec![]);
}

#[test]
fn each_part_is_discussed_before_the_contract_is_active() {
    let mut c = active();
    c.discussed.agreed_time = Discussion::default();
    assert_eq!(
        violations(&c),
        vec![Violation::PartNotDiscussed(Part::AgreedTime)]
    );
    c.discussed.agreed_time = Discussion {
        discussed: true,
        date: None,
        not_applicable: None,
    };
    assert_eq!(
        violations(&c),
        vec![Violation::DiscussedWithoutDate(Part::AgreedTime)]
    );
    c.discussed.agreed_time = Discussion {
        discussed: false,
        date: None,
        not_applicable: Some("x".into()),
    };
    let v = violations(&c);
    assert!(
        v.contains(&Violation::NotApplicableWithoutDiscussion(Part::AgreedTime)),
        "{v:?}"
    );
    assert!(
        v.contains(&Violation::NotApplicableButPresent(Part::AgreedTime)),
        "{v:?}"
    );
}

#[test]
fn warning_signs_say_where_to_turn() {
    let mut c = active();
    c.agreement.commitments[0].where_to_turn = Some("  ".into());
    let v = violations(&c);
    assert_eq!(
        v,
        vec![Violation::WarningSignWithoutWhereToTurn { index: 0 }]
    );
    assert_eq!(v[0].field(), "agreement.commitments[0].whereToTurn");
}

#[test]
fn ids_are_unique_and_texts_not_empty() {
    let mut c = active();
    c.agreement
        .commitments
        .push(c.agreement.commitments[0].clone());
    c.next_step.as_mut().unwrap().description = " ".into();
    let v = violations(&c);
    assert!(
        v.contains(&Violation::DuplicateId {
            field: "agreement.commitments[1].id".into(),
            id: "c1".into()
        }),
        "{v:?}"
    );
    assert!(
        v.contains(&Violation::EmptyText {
            field: "nextStep.description".into()
        }),
        "{v:?}"
    );
}

#[test]
fn versions_only_go_up_and_finished_contracts_stay_finished() {
    let previous = active();
    let v1 = Version::FIRST;
    assert!(previous.validate_change(v1.next(), &previous, v1).is_ok());
    let err = previous.validate_change(v1, &previous, v1).unwrap_err();
    assert!(err.contains(&Violation::VersionNotIncreasing {
        previous: v1,
        next: v1
    }));
    let mut done = previous.clone();
    done.status = Status::Completed;
    let mut again = previous.clone();
    again.status = Status::Active;
    let err = again
        .validate_change(v1.next().next(), &done, v1.next())
        .unwrap_err();
    assert!(err.contains(&Violation::StatusTransition {
        from: Status::Completed,
        to: Status::Active
    }));
}

#[test]
fn json_round_trip_keeps_every_field() {
    let c = active();
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<Contract>(&text).unwrap(), c);
}

proptest! {
    /// However primary contacts are laid out in time, the check flags an overlap exactly
    /// when some instant is covered by two of them.
    #[test]
    fn overlap_check_matches_brute_force(spans in proptest::collection::vec((0i64..20, proptest::option::of(1i64..10)), 1..5)) {
        let mut c = active();
        let day = |d: i64| Timestamp::from_second(1_767_225_600 + d * 86_400).unwrap();
        c.care_contacts = spans.iter().enumerate().map(|(i, (s, len))| {
            let mut k = contact(&format!("k{i}"), "2026-01-01T00:00:00Z", None);
            k.period = Period { start: day(*s), end: len.map(|l| day(s + l)) };
            k
        }).collect();
        let flagged = violations(&c).iter().any(|v| matches!(v, Violation::OverlappingPrimaryContacts { .. }));
        let doubled = (0..40).any(|d| c.care_contacts.iter().filter(|k| k.period.contains(day(d))).count() > 1);
        prop_assert_eq!(flagged, doubled);
    }
}

#[test]
fn a_next_step_has_a_deadline_or_a_day_not_both() {
    let mut c = active();
    let step = c.next_step.as_mut().unwrap();
    step.due = Some(jiff::civil::date(2026, 12, 8));
    assert_eq!(violations(&c), []);
    let step = c.next_step.as_mut().unwrap();
    step.due = None;
    step.on = Some(jiff::civil::date(2026, 12, 3));
    assert_eq!(violations(&c), []);
    c.next_step.as_mut().unwrap().due = Some(jiff::civil::date(2026, 12, 8));
    assert_eq!(violations(&c), [Violation::NextStepDueAndOn]);
    assert_eq!(Violation::NextStepDueAndOn.field(), "nextStep.on");
}

#[test]
fn a_kunskapsstod_link_has_a_title_and_a_web_address() {
    let mut c = active();
    let link = |title: &str, url: &str| KnowledgeLink {
        title: title.into(),
        url: url.into(),
        diagnosis_group: Some("RA".into()),
        source: Some("1177".into()),
        reviewed: None,
    };
    c.agreement.knowledge = vec![link("Egenvård vid RA", "https://www.1177.se/ra/")];
    assert_eq!(violations(&c), []);
    c.agreement.knowledge = vec![link(" ", "www.1177.se/ra")];
    c.agreement.commitments[0].knowledge = vec![link("Varningstecken", "javascript:alert(1)")];
    assert_eq!(
        violations(&c),
        [
            Violation::EmptyText {
                field: "agreement.knowledge[0].title".into()
            },
            Violation::NotAWebAddress {
                field: "agreement.knowledge[0].url".into()
            },
            Violation::NotAWebAddress {
                field: "agreement.commitments[0].knowledge[0].url".into()
            },
        ]
    );
}
