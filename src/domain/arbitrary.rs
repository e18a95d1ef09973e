//! Property-test generators for whole contracts (tests only). They make any shape the
//! types allow, valid or not, so mappings and stores are tested beyond the fixtures.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;

/// Non-empty text with Swedish letters, spaces and punctuation.
pub fn text() -> impl Strategy<Value = String> {
    (
        select(vec!['A', 'Å', 'Ö', 'k', 'z']),
        vec(
            select(vec![
                'a', 'ä', 'ö', 'å', 'E', ' ', '-', ',', '1', '\'', '"', '<', '&',
            ]),
            0..24,
        ),
    )
        .prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect())
}

fn date() -> impl Strategy<Value = Date> {
    (1900i16..2030, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| jiff::civil::date(y, m, d))
}

fn instant() -> impl Strategy<Value = Timestamp> {
    (1_600_000_000i64..1_900_000_000, 0i64..1000)
        .prop_map(|(s, ms)| Timestamp::from_millisecond(s * 1000 + ms).unwrap_or_default())
}

fn person() -> impl Strategy<Value = PersonId> {
    (date(), 0u16..1000, any::<bool>()).prop_map(|(d, serial, samordning)| {
        if samordning {
            PersonId::Samordningsnummer(Samordningsnummer::from_parts(d, serial))
        } else {
            PersonId::Personnummer(Personnummer::from_parts(d, serial))
        }
    })
}

fn hsa_id() -> impl Strategy<Value = HsaId> {
    (0u64..10_000_000_000, 0u32..100_000).prop_map(|(org, n)| {
        HsaId::parse(&format!("SE{org:010}-{n:X}")).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn phone() -> impl Strategy<Value = PhoneNumber> {
    (0u64..1_000_000_000)
        .prop_map(|n| PhoneNumber::parse(&format!("0{n:09}")).unwrap_or_else(|e| panic!("{e}")))
}

fn hours() -> impl Strategy<Value = PhoneHours> {
    (
        vec(select(Weekday::ALL.to_vec()), 0..7),
        0i8..12,
        1i8..12,
        select(vec![0i8, 15, 30, 45]),
    )
        .prop_map(|(days, open, len, m)| {
            PhoneHours::new(
                days,
                Time::new(open, m, 0, 0).unwrap_or_default(),
                Time::new(open + len, m, 0, 0).unwrap_or_default(),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
}

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        Just(Actor::Patient),
        (text(), of(text())).prop_map(|(name, relation)| Actor::Network { name, relation }),
        (text(), of(text()), of(hsa_id()), of(text())).prop_map(
            |(role, name, unit, organization)| Actor::Care {
                role,
                name,
                unit,
                organization,
            }
        ),
    ]
}

fn commitment(i: usize) -> impl Strategy<Value = Commitment> {
    (
        actor(),
        text(),
        of(text()),
        select(vec![
            Situation::StayingWell,
            Situation::GettingWorse,
            Situation::WarningSign,
        ]),
        of(text()),
        select(vec![
            CommitmentStatus::Active,
            CommitmentStatus::Completed,
            CommitmentStatus::Cancelled,
        ]),
    )
        .prop_map(
            move |(who, what, when, situation, where_to_turn, status)| Commitment {
                id: format!("c{i}"),
                who,
                what,
                when,
                situation,
                where_to_turn,
                status,
                knowledge: Vec::new(),
            },
        )
}

fn channel() -> impl Strategy<Value = Channel> {
    prop_oneof![
        (phone(), vec(hours(), 0..3)).prop_map(|(number, hours)| Channel::Phone { number, hours }),
        text().prop_map(|via| Channel::Message { via }),
        text().prop_map(|via| Channel::Video { via }),
        text().prop_map(|url| Channel::WebBooking { url }),
        text().prop_map(|via| Channel::Kallelse { via }),
        (text(), of(text())).prop_map(|(name, url)| Channel::EService { name, url }),
    ]
}

fn contact(i: usize) -> impl Strategy<Value = CareContact> {
    (
        select(vec![
            ContactRole::FastVardkontakt,
            ContactRole::FastLakarkontakt,
        ]),
        any::<bool>(),
        text(),
        of(text()),
        of(hsa_id()),
        of(hsa_id()),
        instant(),
        of(instant()),
        vec(channel(), 0..3),
    )
        .prop_map(
            move |(role, primary, name, title, hsa, unit, start, end, channels)| CareContact {
                id: format!("k{i}"),
                role,
                primary,
                name,
                title,
                hsa_id: hsa,
                unit,
                period: Period { start, end },
                channels,
            },
        )
}

fn agreed_time(i: usize) -> impl Strategy<Value = AgreedTime> {
    (
        instant(),
        1i64..10_000,
        text(),
        of(text()),
        select(vec![
            MeetingMode::InPerson,
            MeetingMode::Phone,
            MeetingMode::Video,
            MeetingMode::HomeVisit,
        ]),
        of(text()),
        select(vec![
            AgreedTimeStatus::Proposed,
            AgreedTimeStatus::Agreed,
            AgreedTimeStatus::Cancelled,
            AgreedTimeStatus::Fulfilled,
        ]),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            move |(
                start,
                minutes,
                what,
                with,
                mode,
                location,
                status,
                (by_patient, by_care, declined),
            )| {
                AgreedTime {
                    id: format!("t{i}"),
                    start,
                    end: start
                        .checked_add(jiff::SignedDuration::from_mins(minutes))
                        .unwrap_or(start),
                    what,
                    with,
                    mode,
                    location,
                    status,
                    accepted_by_patient: by_patient,
                    accepted_by_care: by_care,
                    declined_by_patient: declined && !by_patient,
                }
            },
        )
}

fn linked_plan(i: usize) -> impl Strategy<Value = LinkedPlan> {
    let coordinator = (text(), of(text()), of(text()), of(hsa_id()), of(phone())).prop_map(
        |(name, role, organization, hsa_id, phone)| Coordinator {
            name,
            role,
            organization,
            hsa_id,
            phone,
        },
    );
    (
        select(vec![
            PlanKind::Sip,
            PlanKind::MinVardplan,
            PlanKind::Vardforlopp,
            PlanKind::Other,
        ]),
        text(),
        of(coordinator),
        of(text()),
    )
        .prop_map(move |(kind, title, coordinator, reference)| LinkedPlan {
            id: format!("p{i}"),
            kind,
            title,
            coordinator,
            reference,
        })
}

fn discussion() -> impl Strategy<Value = Discussion> {
    (any::<bool>(), of(date()), of(text())).prop_map(|(discussed, date, not_applicable)| {
        Discussion {
            discussed,
            date,
            not_applicable,
        }
    })
}

/// Lists whose items get ids `prefix0`, `prefix1`, ….
fn numbered<S: Strategy>(make: fn(usize) -> S, max: usize) -> impl Strategy<Value = Vec<S::Value>> {
    (0..=max).prop_flat_map(move |n| (0..n).map(make).collect::<Vec<_>>())
}

/// The person's request to be contacted, numbered from 1; `about_time` is set to a
/// placeholder the contract replaces with one of its times.
fn contact_request(i: usize) -> impl Strategy<Value = ContactRequest> {
    (
        select(ContactReason::ALL.to_vec()),
        text(),
        instant(),
        any::<bool>(),
        select(vec![
            RequestStatus::Open,
            RequestStatus::Done,
            RequestStatus::Withdrawn,
        ]),
    )
        .prop_map(
            move |(reason, message, asked_at, about, status)| ContactRequest {
                number: u32::try_from(i).unwrap_or(0) + 1,
                reason,
                message,
                asked_at,
                about_time: about.then(String::new),
                status,
            },
        )
}

/// A kunskapsstöd link.
fn knowledge() -> impl Strategy<Value = KnowledgeLink> {
    (text(), text(), of(text()), of(text()), of(date())).prop_map(
        |(title, path, diagnosis_group, source, reviewed)| KnowledgeLink {
            title,
            url: format!("https://www.1177.se/{}", path.replace(' ', "-")),
            diagnosis_group,
            source,
            reviewed,
        },
    )
}

/// Any contract the types allow.
pub fn contract() -> impl Strategy<Value = Contract> {
    let head = (
        select(vec![
            Status::Draft,
            Status::Active,
            Status::OnHold,
            Status::Completed,
            Status::Revoked,
        ]),
        person(),
        of(text()),
        select(vec![Initiator::Staff, Initiator::Patient]),
        of((
            hsa_id(),
            text(),
            phone(),
            vec(hours(), 0..3),
            vec(channel(), 0..3),
        )),
        of((text(), of(date()), any::<bool>(), of(actor()))),
    );
    let parts = (
        (vec(text(), 0..4), vec(knowledge(), 0..2)),
        numbered(commitment, 4),
        numbered(contact, 3),
        numbered(agreed_time, 3),
        (
            numbered(linked_plan, 2),
            numbered(contact_request, 2),
            of(instant()),
        ),
        (discussion(), discussion(), discussion(), discussion()),
    );
    (head, parts).prop_map(
        |(
            (status, id, name, initiated_by, unit, step),
            (
                (what_matters, knowledge),
                commitments,
                care_contacts,
                agreed_times,
                (linked_plans, mut contact_requests, confirmed),
                d,
            ),
        )| {
            // A request is about one of the contract's times, or none.
            for r in &mut contact_requests {
                r.about_time = r
                    .about_time
                    .take()
                    .and_then(|_| agreed_times.first().map(|t| t.id.clone()));
            }
            Contract {
                status,
                patient: Patient { id, name },
                initiated_by,
                responsible_unit: unit.map(|(hsa_id, name, phone, phone_hours, channels)| {
                    ResponsibleUnit {
                        hsa_id,
                        name,
                        phone,
                        phone_hours,
                        channels,
                    }
                }),
                // The day is a deadline (`due`) or the fixed day (`on`).
                next_step: step.map(|(description, day, fixed, who)| NextStep {
                    description,
                    due: day.filter(|_| !fixed),
                    on: day.filter(|_| fixed),
                    who,
                }),
                agreement: Agreement {
                    what_matters,
                    commitments,
                    knowledge,
                },
                care_contacts,
                agreed_times,
                linked_plans,
                discussed: Discussed {
                    agreement: d.0,
                    fixed_care_contact: d.1,
                    agreed_time: d.2,
                    coordinated_plan: d.3,
                },
                contact_requests,
                confirmed: confirmed.map(|at| Confirmation { at }),
            }
        },
    )
}
