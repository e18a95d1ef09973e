//! Which stored contract version a FHIR resource comes from. Every resource is derived
//! from a contract version: CarePlan and CareTeam share the contract's id, Goals,
//! Appointments and CommunicationRequests carry it as a prefix, and each version has one Provenance.

use serde_json::Value;

pub use crate::fhir::Kind;
pub use crate::fhir::stored::{provenance_of, resources_of};
use crate::fhir::{ContractResources, Profile};
use crate::store::Record;

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
        communication_requests,
    } = resources_of(record, profile);
    match kind {
        Kind::CarePlan => vec![care_plan],
        Kind::CareTeam => vec![care_team],
        Kind::Goal => goals,
        Kind::Appointment => appointments,
        Kind::CommunicationRequest => communication_requests,
        Kind::Provenance => Vec::new(),
    }
}

/// The resource of `kind` with `id` in a version's resources, if the version has it.
pub fn find(record: &Record, kind: Kind, id: &str, profile: &Profile) -> Option<Value> {
    let mut all = resources_of_kind(record, kind, profile);
    match kind {
        Kind::CarePlan | Kind::CareTeam | Kind::Provenance => all.pop(),
        Kind::Goal | Kind::Appointment | Kind::CommunicationRequest => {
            all.into_iter().find(|r| r["id"] == id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fhir::FhirError;
    use crate::domain::Version;

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
        let request = Kind::CommunicationRequest.locate(&format!("{c}-kontakt-12"));
        assert_eq!(request.unwrap().0.as_str(), c);
        for bad in ["kontakt-0", "kontakt-01", "kontakt-", "kontakt-x"] {
            let id = format!("{c}-{bad}");
            assert!(Kind::CommunicationRequest.locate(&id).is_none(), "{id}");
        }
        let (pc, v) = Kind::Provenance.locate(&format!("{c}-v3")).unwrap();
        assert_eq!((pc.as_str(), v.map(Version::get)), (c, Some(3)));
        assert!(matches!(
            Kind::parse("Patient").map_err(FhirError::from),
            Err(FhirError::UnknownType(_))
        ));
    }
}
