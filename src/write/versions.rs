//! Versions per resource: each resource of a contract carries the contract version at
//! which it last changed. A write works out which of the contract's resources it leaves
//! as they were; those keep their version, the rest take the new one.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::{Contract, ContractId, Record, ResourceVersion};
use crate::fhir::stored::{resource_key, resources_of, same_own_content, served};
use crate::fhir::{ContractResources, Profile};

/// A write's resources: what the gateway will serve after it (without `meta`), and what
/// it served before, when the write has that at hand already (else it is mapped here).
pub(super) struct Rendered<'a> {
    pub after: ContractResources,
    pub before: Option<&'a ContractResources>,
}

impl Rendered<'static> {
    /// What the gateway will serve of `contract` with the FHIR content it keeps.
    pub fn of(
        id: &ContractId,
        contract: &Contract,
        foreign: Option<&Value>,
        profile: &Profile,
    ) -> Self {
        Rendered {
            after: served(id, contract, foreign, profile),
            before: None,
        }
    }
}

/// The resources of a write that are as they were in `current`, each with the version
/// it carries over.
pub(super) fn unchanged(
    current: Option<&Record>,
    rendered: &Rendered<'_>,
    profile: &Profile,
) -> BTreeMap<String, ResourceVersion> {
    let Some(current) = current else {
        return BTreeMap::new();
    };
    let mapped;
    let before = match rendered.before {
        Some(before) => before,
        None => {
            mapped = resources_of(current, profile);
            &mapped
        }
    };
    rendered
        .after
        .all()
        .filter_map(|after| {
            let key = resource_key(after);
            let was = before.all().find(|b| resource_key(b) == key)?;
            let same = same_own_content(was, after, profile);
            same.then(|| {
                let version = current.revision.version_of(&key);
                (key, version)
            })
        })
        .collect()
}
