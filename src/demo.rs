//! The demo contracts, built into the binary so `pkgw serve --demo` works from anywhere.
//! They are the files in `fixtures/contracts/`; a test checks the two lists agree.

use crate::domain::Contract;

/// Each fixture's file stem and JSON text.
pub const FIXTURES: &[(&str, &str)] = &[
    (
        "cancer-min-vardplan",
        include_str!("../fixtures/contracts/cancer-min-vardplan.json"),
    ),
    (
        "eget-initiativ",
        include_str!("../fixtures/contracts/eget-initiativ.json"),
    ),
    (
        "hjartsvikt-primarvard",
        include_str!("../fixtures/contracts/hjartsvikt-primarvard.json"),
    ),
    (
        "psykiatri-sip",
        include_str!("../fixtures/contracts/psykiatri-sip.json"),
    ),
    (
        "ung-diabetes",
        include_str!("../fixtures/contracts/ung-diabetes.json"),
    ),
    (
        "utskriven-fran-sjukhus",
        include_str!("../fixtures/contracts/utskriven-fran-sjukhus.json"),
    ),
];

/// The demo contracts, parsed. Fails only if a fixture is broken, which a test rules out.
pub fn contracts() -> Result<Vec<(&'static str, Contract)>, serde_json::Error> {
    FIXTURES
        .iter()
        .map(|(name, json)| Ok((*name, serde_json::from_str(json)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Part, Status};

    #[test]
    fn every_fixture_file_is_built_in() {
        let mut on_disk: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/contracts"))
                .unwrap()
                .map(|e| {
                    e.unwrap()
                        .path()
                        .file_stem()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
        on_disk.sort();
        let built_in: Vec<&str> = FIXTURES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn every_fixture_is_a_valid_contract() {
        for (name, contract) in contracts().unwrap() {
            assert!(
                contract.validate().is_ok(),
                "{name}: {:?}",
                contract.validate()
            );
        }
    }

    #[test]
    fn fixtures_cover_what_the_seeds_ask_for() {
        let all = contracts().unwrap();
        let any = |f: &dyn Fn(&Contract) -> bool| all.iter().any(|(_, c)| f(c));
        assert!(any(&|c| c.initiated_by == crate::domain::Initiator::Patient));
        assert!(any(&|c| c.status == Status::Draft));
        assert!(any(&|c| Part::ALL.iter().any(|p| c
            .discussed
            .get(*p)
            .not_applicable
            .is_some())));
        assert!(any(&|c| matches!(
            c.patient.id,
            crate::domain::PersonId::Samordningsnummer(_)
        )));
        assert!(any(&|c| c
            .linked_plans
            .iter()
            .any(|p| p.kind == crate::domain::PlanKind::MinVardplan)));
        assert!(any(&|c| c
            .linked_plans
            .iter()
            .any(|p| p.kind == crate::domain::PlanKind::Sip)));
    }
}
