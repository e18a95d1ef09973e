//! Versions per resource: each resource of a contract carries the contract version at
//! which it last changed. A write works out which of the contract's resources it leaves
//! as they were; those keep their version, the rest take the new one.

use std::collections::BTreeMap;

use crate::domain::{Record, ResourceVersion};
use crate::fhir::stored::{own_content, resource_key, resources_of};
use crate::fhir::{ContractResources, Profile};

/// The resources of `served` (what the gateway will serve after a write) that are as
/// they were in `current`, each with the version it carries over.
pub(super) fn unchanged(
    current: Option<&Record>,
    served: &ContractResources,
    profile: &Profile,
) -> BTreeMap<String, ResourceVersion> {
    let Some(current) = current else {
        return BTreeMap::new();
    };
    let before = resources_of(current, profile);
    served
        .all()
        .filter_map(|after| {
            let key = resource_key(after);
            let was = before.all().find(|b| resource_key(b) == key)?;
            let same = own_content(was, profile) == own_content(after, profile);
            same.then(|| {
                let version = current.revision.version_of(&key);
                (key, version)
            })
        })
        .collect()
}
