//! What is kept for each version of a contract: the contract, its number, when it was
//! recorded and where the change came from. Plain data, shared by the store (which
//! persists it), the mapping (which serves it) and the write path.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Contract, ContractId, PersonId, Transfer, TransferNote, UnitRef, Version};

/// Where a change came from and why; kept with every version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Change {
    /// The system the change came from (`api`, `import`, a sync target's name, …).
    pub source: String,
    /// Who made it, as the client identified itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set when the change is a care transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferNote>,
    /// Set when the change is the merge of the person's earlier identity (a
    /// reservnummer, say) onto the one the contract is now about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub merged_from: Option<PersonId>,
}

impl Change {
    pub fn from_source(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            author: None,
            reason: None,
            transfer: None,
            merged_from: None,
        }
    }

    /// The change a care transition makes from `sending` (the contract before it): who
    /// handed over to whom, when, of what kind and why. `None` when `sending` has no
    /// responsible unit (a transfer refuses that before).
    pub fn transfer(source: impl Into<String>, t: &Transfer, sending: &Contract) -> Option<Self> {
        let from = sending.responsible_unit.as_ref().map(UnitRef::of)?;
        Some(Self {
            source: source.into(),
            author: None,
            reason: t.reason.clone(),
            transfer: Some(TransferNote {
                from,
                to: UnitRef::of(&t.to),
                at: t.at,
                kind: t.kind.clone(),
            }),
            merged_from: None,
        })
    }
}

/// One stored version of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revision {
    pub version: Version,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
    pub change: Change,
    pub contract: Contract,
    /// FHIR content received with this version that the contract does not model, kept
    /// to be sent back out (see `fhir::residue`); opaque to the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub foreign_fhir: Option<serde_json::Value>,
    /// Written by a delete: the contract was revoked and no longer reads as current.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The resources (`{type}/{id}`) this version did not change, with the version each
    /// carries over; every other resource is at this version (see [`Revision::version_of`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unchanged: BTreeMap<String, ResourceVersion>,
}

/// When one resource of a contract last changed: the contract version, its time and the
/// system the change came from. A resource's `meta.versionId` and ETag are this version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceVersion {
    pub version: Version,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub source: String,
}

impl Revision {
    /// The version of the resource `key` (`{type}/{id}`) in this version of the contract:
    /// the one it carries over when this version did not change it, else this one.
    pub fn version_of(&self, key: &str) -> ResourceVersion {
        self.unchanged
            .get(key)
            .cloned()
            .unwrap_or_else(|| self.as_resource_version())
    }

    /// This version, as the version of a resource it changed.
    pub fn as_resource_version(&self) -> ResourceVersion {
        ResourceVersion {
            version: self.version,
            at: self.recorded_at,
            source: self.change.source.clone(),
        }
    }
}

/// A stored version together with the contract's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: ContractId,
    #[serde(flatten)]
    pub revision: Revision,
}

/// In OpenAPI: the version's object with the contract's `id` among its properties (as
/// serde flattens it; an `allOf` would clash with the version's closed object).
impl utoipa::PartialSchema for Record {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let mut schema = <Revision as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object
                .properties
                .insert("id".into(), <ContractId as utoipa::PartialSchema>::schema());
            object.required.push("id".into());
            object.description =
                Some("A stored version of a contract, with the contract's id".into());
        }
        schema
    }
}

impl utoipa::ToSchema for Record {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Revision as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A contract with all its versions, oldest first: one line of an NDJSON export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct History {
    pub id: ContractId,
    pub versions: Vec<Revision>,
}
