//! The FHIR resource types a contract is served as, and which contract (and version) a
//! resource id belongs to: CarePlan and CareTeam share the contract's id, Goals,
//! Appointments and CommunicationRequests carry it as a prefix, and each version has one
//! Provenance.

use crate::domain::{ContractId, Version};

/// A resource type this server does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource type {0} is not supported")]
pub struct UnknownType(pub String);

/// The resource types this server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    CarePlan,
    CareTeam,
    Goal,
    Appointment,
    CommunicationRequest,
    Provenance,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::CarePlan,
        Kind::CareTeam,
        Kind::Goal,
        Kind::Appointment,
        Kind::CommunicationRequest,
        Kind::Provenance,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::CarePlan => "CarePlan",
            Kind::CareTeam => "CareTeam",
            Kind::Goal => "Goal",
            Kind::Appointment => "Appointment",
            Kind::CommunicationRequest => "CommunicationRequest",
            Kind::Provenance => "Provenance",
        }
    }

    pub fn parse(name: &str) -> Result<Kind, UnknownType> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownType(name.to_owned()))
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
            Kind::CommunicationRequest => {
                super::request_number(id)?;
                let (c, _) = id.rsplit_once("-kontakt-")?;
                contract(c).map(|c| (c, None))
            }
            Kind::Provenance => {
                let (c, v) = id.rsplit_once("-v")?;
                let version = Version::parse(v).ok()?;
                contract(c).map(|c| (c, Some(version)))
            }
        }
    }
}
