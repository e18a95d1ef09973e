//! Synthetic contracts for load tests and benchmarks: realistic (a person with a valid
//! personnummer, one of several units, what matters, one to four commitments, one to five
//! agreed times, linked plans), every one valid, and deterministic — contract `n` of seed
//! `s` is always the same, so any one can be made without the ones before it, and a run
//! of a million needs memory for one at a time.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use crate::domain::{
    Actor, AgreedTime, AgreedTimeStatus, Commitment, CommitmentStatus, Contract, ContractId, HsaId,
    LinkedPlan, MeetingMode, PersonId, Personnummer, PhoneHours, PhoneNumber, PlanKind,
    ResponsibleUnit, Situation,
};
use crate::store::{Change, History, Revision};

const FIRST_NAMES: &[&str] = &[
    "Anna", "Lars", "Maria", "Erik", "Karin", "Johan", "Eva", "Mohammed", "Fatima", "Gunnar",
    "Elsa", "Ali", "Ingrid", "Nils", "Sara", "Oskar", "Aisha", "Per", "Lena", "Hassan",
];
const LAST_NAMES: &[&str] = &[
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Ali",
    "Hassan",
    "Lindqvist",
    "Berg",
    "Ek",
];
const WHAT_MATTERS: &[&str] = &[
    "Att kunna bo kvar hemma",
    "Att orka promenera med hunden",
    "Att träffa barnbarnen",
    "Att kunna arbeta halvtid",
    "Att sova hela nätter",
    "Att slippa åka in akut",
    "Att kunna laga min egen mat",
    "Att sjunga i kören igen",
    "Att förstå mina mediciner",
];
const UNITS: &[(&str, &str, &str)] = &[
    (
        "SE2321000016-1A2B",
        "Vårdcentralen Björkhagen",
        "08-123 456 00",
    ),
    (
        "SE2321000016-KARD",
        "Kardiologiska kliniken, Danderyds sjukhus",
        "08-123 550 00",
    ),
    (
        "SE2321000016-GER2",
        "Geriatriska kliniken, Södersjukhuset",
        "08-616 10 00",
    ),
    (
        "SE2120000010-H7",
        "Hemsjukvården, Stockholms stad",
        "08-508 000 00",
    ),
    (
        "SE2321000016-PSY1",
        "Psykiatriska öppenvårdsmottagningen Söder",
        "08-123 470 00",
    ),
    (
        "SE2321000016-ONK3",
        "Onkologiska kliniken, Karolinska",
        "08-517 700 00",
    ),
];
/// Commitments: who, what, how often, situation, where to turn (for warning signs).
type CommitmentSeed = (
    u8,
    &'static str,
    Option<&'static str>,
    Situation,
    Option<&'static str>,
);
const COMMITMENTS: &[CommitmentSeed] = &[
    (
        0,
        "Väga mig och skriva upp vikten",
        Some("varje morgon"),
        Situation::StayingWell,
        None,
    ),
    (
        0,
        "Promenera minst 20 minuter",
        Some("dagligen"),
        Situation::StayingWell,
        None,
    ),
    (
        1,
        "Hjälper till med inköp",
        Some("varje fredag"),
        Situation::StayingWell,
        None,
    ),
    (
        2,
        "Följer upp provsvar och justerar läkemedel",
        Some("efter varje provtagning"),
        Situation::GettingWorse,
        None,
    ),
    (
        0,
        "Andfåddhet i vila eller snabb viktökning",
        None,
        Situation::WarningSign,
        Some("Ring min fasta vårdkontakt, annars 1177"),
    ),
    (
        0,
        "Ta extra vätskedrivande enligt ordination",
        Some("vid behov"),
        Situation::GettingWorse,
        None,
    ),
    (
        2,
        "Ringer upp efter varje besök",
        None,
        Situation::StayingWell,
        None,
    ),
    (
        0,
        "Feber över 38 grader under behandlingen",
        None,
        Situation::WarningSign,
        Some("Ring mottagningens jourtelefon dygnet runt"),
    ),
];

/// Makes synthetic contracts for one seed.
#[derive(Debug, Clone, Copy)]
pub struct Generator {
    seed: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// Contract `n`'s id.
    pub fn id(&self, n: u64) -> ContractId {
        ContractId::parse(&format!("gen-{:x}-{n:08}", self.seed))
            .unwrap_or_else(|_| unreachable_id())
    }

    /// Contract `n`, as a one-version history (what `pkgw import` reads).
    pub fn history(&self, n: u64) -> History {
        let contract = self.contract(n);
        History {
            id: self.id(n),
            versions: vec![Revision {
                version: crate::domain::Version::FIRST,
                recorded_at: Timestamp::from_second(1_780_000_000 + (n % 10_000_000) as i64)
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                change: Change::from_source("generate"),
                contract,
                foreign_fhir: None,
                deleted: false,
                unchanged: Default::default(),
            }],
        }
    }

    /// Contract `n`: an active contract built on the demo's heart-failure contract, with
    /// its own person, unit, goals, commitments, agreed times and plans.
    pub fn contract(&self, n: u64) -> Contract {
        let mut r = fastrand::Rng::with_seed(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut c = template();
        let birth = Date::new(1930 + r.i16(0..75), r.i8(1..=12), r.i8(1..=28)).unwrap_or(Date::MIN);
        c.patient.id = PersonId::Personnummer(Personnummer::from_parts(birth, r.u16(0..1000)));
        c.patient.name = Some(format!(
            "{} {}",
            FIRST_NAMES[r.usize(..FIRST_NAMES.len())],
            LAST_NAMES[r.usize(..LAST_NAMES.len())]
        ));
        let (hsa, name, phone) = UNITS[r.usize(..UNITS.len())];
        let hours = PhoneHours::from_words(
            [
                "mon-fri 08:00-10:00",
                "mon-thu 13:00-14:30",
                "mon-fri 07:30-16:00",
            ][r.usize(..3)],
        );
        if let (Ok(hsa_id), Ok(phone), Ok(hours)) =
            (HsaId::parse(hsa), PhoneNumber::parse(phone), hours)
        {
            c.responsible_unit = Some(ResponsibleUnit {
                hsa_id,
                name: name.to_owned(),
                phone,
                channels: Vec::new(),
                phone_hours: vec![hours],
            });
        }
        let mut goals: Vec<String> = WHAT_MATTERS.iter().map(|s| (*s).to_owned()).collect();
        r.shuffle(&mut goals);
        goals.truncate(r.usize(1..=3));
        c.agreement.what_matters = goals;
        let mut picks: Vec<&CommitmentSeed> = COMMITMENTS.iter().collect();
        r.shuffle(&mut picks);
        picks.truncate(r.usize(1..=4));
        c.agreement.commitments = picks
            .into_iter()
            .enumerate()
            .map(|(i, (who, what, when, situation, turn))| Commitment {
                id: format!("a{i}"),
                who: match who {
                    0 => Actor::Patient,
                    1 => Actor::Network {
                        name: "Närstående".into(),
                        relation: Some("anhörig".into()),
                    },
                    _ => Actor::Care {
                        role: "Distriktssköterska".into(),
                        name: None,
                        unit: None,
                        organization: None,
                    },
                },
                what: (*what).to_owned(),
                when: when.map(str::to_owned),
                situation: *situation,
                where_to_turn: turn.map(str::to_owned),
                status: CommitmentStatus::Active,
                knowledge: Vec::new(),
            })
            .collect();
        let first = Timestamp::from_second(1_796_000_000 + r.i64(0..20_000_000))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        c.agreed_times = (0..r.usize(1..=5))
            .map(|i| {
                let start = first
                    .checked_add(SignedDuration::from_hours(24 * 14 * i as i64))
                    .unwrap_or(first);
                AgreedTime {
                    id: format!("t{i}"),
                    start,
                    end: start
                        .checked_add(SignedDuration::from_mins(30))
                        .unwrap_or(start),
                    what: ["Återbesök", "Telefonuppföljning", "Provtagning", "Hembesök"]
                        [r.usize(..4)]
                    .into(),
                    with: Some("Fast vårdkontakt".into()),
                    mode: [
                        MeetingMode::InPerson,
                        MeetingMode::Phone,
                        MeetingMode::Video,
                        MeetingMode::HomeVisit,
                    ][r.usize(..4)],
                    location: None,
                    status: AgreedTimeStatus::Agreed,
                    accepted_by_patient: true,
                    accepted_by_care: true,
                    declined_by_patient: false,
                }
            })
            .collect();
        c.linked_plans = (0..r.usize(0..=2))
            .map(|i| LinkedPlan {
                id: format!("p{i}"),
                kind: [PlanKind::Sip, PlanKind::Other][i % 2],
                title: ["Samordnad individuell plan", "Läkemedelslista"][i % 2].into(),
                coordinator: None,
                reference: None,
            })
            .collect();
        c
    }
}

/// The contract every generated one starts from (valid, active), parsed once.
fn template() -> Contract {
    static TEMPLATE: std::sync::OnceLock<Contract> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            crate::demo::contracts()
                .ok()
                .and_then(|all| all.into_iter().find(|(n, _)| *n == "hjartsvikt-primarvard"))
                .map(|(_, c)| c)
                .unwrap_or_else(|| unreachable!("the demo fixtures are checked by tests"))
        })
        .clone()
}

fn unreachable_id() -> ContractId {
    unreachable!("generated ids are letters, digits and '-'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_contracts_are_valid_varied_and_deterministic() {
        let g = Generator::new(7);
        let mut units = std::collections::BTreeSet::new();
        for n in 0..300 {
            let c = g.contract(n);
            c.validate()
                .unwrap_or_else(|v| panic!("contract {n}: {v:?}"));
            assert!((1..=5).contains(&c.agreed_times.len()));
            assert!((1..=4).contains(&c.agreement.commitments.len()));
            units.insert(c.responsible_unit.unwrap().hsa_id.to_string());
        }
        assert!(units.len() > 3, "varied units");
        assert_eq!(
            g.contract(42),
            Generator::new(7).contract(42),
            "deterministic"
        );
        assert_ne!(
            g.contract(42),
            Generator::new(8).contract(42),
            "seeds differ"
        );
        assert_ne!(g.id(1), Generator::new(8).id(1));
    }
}
