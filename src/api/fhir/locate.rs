//! Which stored contract version a FHIR resource comes from. Every resource is derived
//! from a contract version: CarePlan and CareTeam share the contract's id, Goals and
//! Appointments carry it as a prefix, and each version has one Provenance.

use serde_json::Value;

use super::error::FhirError;
use crate::domain::{ContractId, Version};
pub use crate::fhir::stored::{provenance_of, resources_of};
use crate::fhir::{ContractResources, Profile};
use crate::store::Record;

/// The resource types this server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CarePlan,
    CareTeam,
    Goal,
    Appointment,
    Provenance,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::CarePlan,
        Kind::CareTeam,
        Kind::Goal,
        Kind::Appointment,
        Kind::Provenance,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::CarePlan => "CarePlan",
            Kind::CareTeam => "CareTeam",
            Kind::Goal => "Goal",
            Kind::Appointment => "Appointment",
            Kind::Provenance => "Provenance",
        }
    }

    pub fn parse(name: &str) -> Result<Kind, FhirError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| FhirError::UnknownType(name.to_owned()))
    }

    /// The contract (and for a Provenance, the version) a resource id belongs to.
    pub fn locate(self, id: &str) -> Option<(ContractId, Option<Version>)> {
        let contract = |s: &str| ContractId::parse(s).ok();
        match self {
            Kind::CarePlan | Kind::CareTeam => contract(id).map(|c| (c, None)),
            Kind::Goal => {
                let (c, n) = id.rsplit_once("-mal-")?;
                n.parse::<usize>().ok()?;
                contract(c).map(|c| (c, None))
            }
            Kind::Appointment => {
                let (c, hash) = id.rsplit_once('-')?;
                let is_hash = hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit());
                if is_hash {
                    contract(c).map(|c| (c, None))
                } else {
                    None
                }
            }
            Kind::Provenance => {
                let (c, v) = id.rsplit_once("-v")?;
                let version = Version::parse(v).ok()?;
                contract(c).map(|c| (c, Some(version)))
            }
        }
    }
}

/// The resources of `kind` in one stored version.
pub fn resources_of_kind(record: &Record, kind: Kind, profile: &Profile) -> Vec<Value> {
    if kind == Kind::Provenance {
        return vec![provenance_of(record)];
    }
    let ContractResources {
        care_plan,
        care_team,
        goals,
        appointments,
    } = resources_of(record, profile);
    match kind {
        Kind::CarePlan => vec![care_plan],
        Kind::CareTeam => vec![care_team],
        Kind::Goal => goals,
        Kind::Appointment => appointments,
        Kind::Provenance => Vec::new(),
    }
}

/// The resource of `kind` with `id` in a version's resources, if the version has it.
pub fn find(record: &Record, kind: Kind, id: &str, profile: &Profile) -> Option<Value> {
    let mut all = resources_of_kind(record, kind, profile);
    match kind {
        Kind::CarePlan | Kind::CareTeam | Kind::Provenance => all.pop(),
        Kind::Goal | Kind::Appointment => all.into_iter().find(|r| r["id"] == id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_the_contract_of_every_kind() {
        let c = "8f9a3c1e-0b6d-4d0f-9a51-3b2c7e4d5f60";
        assert_eq!(Kind::CarePlan.locate(c).unwrap().0.as_str(), c);
        assert_eq!(
            Kind::Goal.locate(&format!("{c}-mal-2")).unwrap().0.as_str(),
            c
        );
        assert_eq!(
            Kind::Appointment
                .locate(&format!("{c}-00ff00ff00ff00ff"))
                .unwrap()
                .0
                .as_str(),
            c
        );
        assert!(Kind::Appointment.locate(&format!("{c}-xyz")).is_none());
        let (pc, v) = Kind::Provenance.locate(&format!("{c}-v3")).unwrap();
        assert_eq!((pc.as_str(), v.map(Version::get)), (c, Some(3)));
        assert!(matches!(
            Kind::parse("Patient"),
            Err(FhirError::UnknownType(_))
        ));
    }
}
