//! The demo contracts, built into the binary so `pkgw serve --demo` works from anywhere.
//! They are the files in `fixtures/contracts/`; a test checks the two lists agree.
//! Beside them, "7 frågor" answers for the demo units, so the samsyn chart shows
//! something real.

use jiff::Timestamp;
use serde_json::json;

use crate::domain::samsyn::Answer;
use crate::domain::{Contract, ContractId, PersonId, Personnummer};
use crate::fhir::questionnaire::{Respondent, response};
use crate::fhir::{Profile, patient_reference};
use crate::store::StoredResponse;

/// How many other patients of each demo unit answered.
const PATIENTS_PER_UNIT: u64 = 14;

/// Each fixture's file stem and JSON text.
pub const FIXTURES: &[(&str, &str)] = &[
    (
        "cancer-min-vardplan",
        include_str!("../fixtures/contracts/cancer-min-vardplan.json"),
    ),
    (
        "dygnet-runt",
        include_str!("../fixtures/contracts/dygnet-runt.json"),
    ),
    (
        "eget-initiativ",
        include_str!("../fixtures/contracts/eget-initiativ.json"),
    ),
    (
        "galler-inte-langre",
        include_str!("../fixtures/contracts/galler-inte-langre.json"),
    ),
    (
        "hjartsvikt-primarvard",
        include_str!("../fixtures/contracts/hjartsvikt-primarvard.json"),
    ),
    (
        "mellan-vardkontakter",
        include_str!("../fixtures/contracts/mellan-vardkontakter.json"),
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

/// "7 frågor" answers for the demo: each person of a demo contract about it, fourteen
/// more patients of each contract's unit, and each unit's own answers — care a little
/// surer than its patients that the parts work, as the method expects to find.
/// Deterministic, authored in the autumn of 2026.
pub fn answers(contracts: &[(ContractId, Contract)], profile: &Profile) -> Vec<StoredResponse> {
    let mut out = Vec::new();
    let mut units_done = Vec::new();
    for (n, (id, contract)) in contracts.iter().enumerate() {
        let Some(unit) = &contract.responsible_unit else {
            continue;
        };
        let unit_ref = json!({ "type": "Organization", "identifier": { "system": profile.identifiers.hsa_id, "value": unit.hsa_id.as_str() }, "display": unit.name });
        let mut r = fastrand::Rng::with_seed(n as u64 + 7);
        let when = |r: &mut fastrand::Rng| {
            Timestamp::from_second(1_788_000_000 + r.i64(0..7_000_000))
                .unwrap_or(Timestamp::UNIX_EPOCH)
        };
        let patient =
            |person: &crate::domain::Patient, plan: Option<&ContractId>, r: &mut fastrand::Rng| {
                let answers: Vec<Answer> = (0..7).map(|q| patient_answer(r, q, n)).collect();
                let authored = when(r);
                let mut resource = response(
                    Respondent::Patient,
                    patient_reference(person, profile).into(),
                    Some(unit_ref.clone()),
                    authored,
                    &answers,
                );
                if let Some(plan) = plan {
                    resource["basedOn"] = json!([{ "reference": format!("CarePlan/{plan}") }]);
                }
                StoredResponse::accepted(
                    Respondent::Patient.as_str(),
                    Some(person.id.to_string()),
                    unit.hsa_id.as_str().to_owned(),
                    plan.map(|p| p.to_string()),
                    Some(authored),
                    resource,
                )
            };
        out.push(patient(&contract.patient, Some(id), &mut r));
        if units_done.contains(&unit.hsa_id) {
            continue;
        }
        units_done.push(unit.hsa_id.clone());
        for k in 0..PATIENTS_PER_UNIT {
            let birth = jiff::civil::Date::new(1935 + r.i16(0..70), r.i8(1..=12), r.i8(1..=28))
                .unwrap_or(jiff::civil::Date::MIN);
            let person = crate::domain::Patient {
                id: PersonId::Personnummer(Personnummer::from_parts(
                    birth,
                    (k * 37 + n as u64) as u16 % 1000,
                )),
                name: None,
            };
            out.push(patient(&person, None, &mut r));
        }
        let care: Vec<Answer> = (0..7)
            .map(|q| {
                if (q + n) % 4 == 3 {
                    Answer::Delvis
                } else {
                    Answer::Ja
                }
            })
            .collect();
        let authored = when(&mut r);
        out.push(StoredResponse::accepted(
            Respondent::Care.as_str(),
            None,
            unit.hsa_id.as_str().to_owned(),
            None,
            Some(authored),
            response(Respondent::Care, unit_ref.clone(), None, authored, &care),
        ));
    }
    out
}

/// A patient's answer to question `q` (0-based) of unit `n`: mostly ja, less so where
/// the unit has work to do (a different question for each unit).
fn patient_answer(r: &mut fastrand::Rng, q: usize, n: usize) -> Answer {
    let weak = (q + n) % 7 == 1 || (q + 2 * n) % 7 == 4;
    let roll = r.u8(0..100);
    match (weak, roll) {
        (false, 0..60) | (true, 0..20) => Answer::Ja,
        (false, 60..80) | (true, 20..50) => Answer::Delvis,
        (false, 80..92) | (true, 50..88) => Answer::Nej,
        _ => Answer::VetInte,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::questionnaire::read_response;
    use crate::samsyn::{Period, Report};

    #[test]
    fn the_demo_answers_fit_the_questionnaires_and_show_each_unit_something() {
        let profile = Profile::default_profile();
        let loaded: Vec<(ContractId, Contract)> = contracts()
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, (_, c))| (ContractId::parse(&format!("demo-{i}")).unwrap(), c))
            .collect();
        let all = answers(&loaded, &profile);
        for a in &all {
            let facts = read_response(&a.resource, &profile).unwrap();
            assert_eq!(facts.unit.unwrap().as_str(), a.unit);
            assert_eq!(facts.respondent.as_str(), a.respondent);
            assert_eq!(facts.authored, Some(a.authored));
        }
        for (_, contract) in &loaded {
            let unit = &contract.responsible_unit.as_ref().unwrap().hsa_id;
            let report = Report::of(
                &all,
                &profile,
                unit,
                Period::parse("2026").unwrap(),
                crate::samsyn::MIN_PATIENT_ANSWERS,
            );
            assert_eq!(
                report.withheld_below, None,
                "{unit}: the demo shows figures"
            );
            assert!(report.patients > PATIENTS_PER_UNIT as usize, "{unit}");
            assert!(report.unit_answered.is_some(), "{unit}");
            assert!(!report.largest_gaps.is_empty(), "{unit}");
        }
        let facts = |a: &[StoredResponse]| -> Vec<_> {
            a.iter()
                .map(|r| {
                    (
                        r.patient.clone(),
                        r.unit.clone(),
                        r.authored,
                        r.resource["item"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            facts(&answers(&loaded, &profile)),
            facts(&all),
            "deterministic"
        );
    }
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
