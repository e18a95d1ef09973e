//! Which stored contract version a FHIR resource comes from. Every resource is derived
//! from a contract version: CarePlan and CareTeam share the contract's id, Goals and
//! Appointments carry it as a prefix, and each version has one Provenance.

use serde_json::{Value, json};

use super::error::FhirError;
use crate::domain::{ContractId, Version};
use crate::fhir::residue::Residue;
use crate::fhir::{ContractResources, Profile, VersionProvenance, to_fhir, to_provenance};
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

/// `meta` for a resource derived from a stored version.
fn meta(record: &Record) -> Value {
    json!({
        "versionId": record.revision.version.to_string(),
        "lastUpdated": record.revision.recorded_at.to_string(),
        "source": record.revision.change.source,
    })
}

/// The resources of one stored version, with `meta`.
pub fn resources_of(record: &Record, profile: &Profile) -> ContractResources {
    let mut resources = to_fhir(&record.id, &record.revision.contract, profile);
    // What the sender sent that the contract does not model goes back out unchanged.
    let residue = record
        .revision
        .foreign_fhir
        .clone()
        .and_then(|f| serde_json::from_value::<Residue>(f).ok());
    if let Some(residue) = residue {
        residue.restore(&mut resources);
    }
    let meta = meta(record);
    let ContractResources {
        care_plan,
        care_team,
        goals,
        appointments,
    } = &mut resources;
    for r in [care_plan, care_team]
        .into_iter()
        .chain(goals.iter_mut())
        .chain(appointments.iter_mut())
    {
        insert_meta(r, &meta);
    }
    resources
}

/// The Provenance of one stored version (itself never changes: version 1).
pub fn provenance_of(record: &Record) -> Value {
    let r = &record.revision;
    let p = VersionProvenance {
        version: r.version,
        recorded: r.recorded_at,
        source: r.change.source.clone(),
        author: r.change.author.clone(),
        reason: r.change.reason.clone(),
    };
    let mut v = to_provenance(&record.id, &p);
    insert_meta(
        &mut v,
        &json!({ "versionId": "1", "lastUpdated": r.recorded_at.to_string() }),
    );
    v
}

/// `meta` goes right after `id`, where FHIR JSON puts it.
fn insert_meta(resource: &mut Value, meta: &Value) {
    if let Some(object) = resource.as_object_mut() {
        let at = object.keys().position(|k| k == "id").map_or(1, |i| i + 1);
        object.shift_insert(at, "meta".to_owned(), meta.clone());
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
