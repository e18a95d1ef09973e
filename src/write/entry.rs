//! What a write is asked to do, resource by resource, and what it did.

use serde_json::Value;

use crate::domain::{ResourceVersion, Version};
use crate::fhir::Kind;
use crate::store::Record;

/// One change, on exactly the resource it names.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `POST {type}`: a new resource. A CarePlan makes a new contract (under the id its
    /// `ifNoneExist` or its own business identifier names, else a new one); an
    /// Appointment adds an agreed time to the contract its `basedOn` names; a CareTeam
    /// or Goal belongs to the contract whose CarePlan, in the same transaction,
    /// references it.
    Create {
        kind: Kind,
        resource: Value,
        /// `identifier=system|value`: when a resource with it exists, nothing is done.
        if_none_exist: Option<String>,
    },
    /// `PUT {type}/{id}`: the resource takes the place of the one with this id; a
    /// CarePlan that does not exist yet is created under the id (update as create).
    Update {
        kind: Kind,
        id: String,
        resource: Value,
        if_match: Option<Version>,
    },
    /// `PUT CarePlan?identifier=…`: the update of the contract the condition finds, or,
    /// when it finds none, a new contract (which must carry the identifier). The writer
    /// turns it into an `Update` or a `Create` before anything else, each time it tries.
    Upsert {
        kind: Kind,
        /// The condition, `identifier=system|value` (percent-encoded or not).
        condition: String,
        resource: Value,
        if_match: Option<Version>,
    },
    /// `DELETE {type}/{id}`: a CarePlan's deletion revokes the contract; an
    /// Appointment's removes the agreed time.
    Delete {
        kind: Kind,
        id: String,
        if_match: Option<Version>,
    },
}

impl Action {
    pub fn kind(&self) -> Kind {
        match self {
            Action::Create { kind, .. }
            | Action::Update { kind, .. }
            | Action::Upsert { kind, .. }
            | Action::Delete { kind, .. } => *kind,
        }
    }

    pub fn if_match(&self) -> Option<Version> {
        match self {
            Action::Update { if_match, .. }
            | Action::Upsert { if_match, .. }
            | Action::Delete { if_match, .. } => *if_match,
            Action::Create { .. } => None,
        }
    }

    fn resource(&self) -> Option<&Value> {
        match self {
            Action::Create { resource, .. }
            | Action::Update { resource, .. }
            | Action::Upsert { resource, .. } => Some(resource),
            Action::Delete { .. } => None,
        }
    }
}

/// An [`Action`] as one request or one entry of a transaction asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub action: Action,
    /// The entry's `fullUrl`: references to it (`urn:uuid:…`) from other entries of the
    /// transaction resolve to the resource.
    pub full_url: Option<String>,
    /// The entry's place in its Bundle, for errors; `None` for a request of its own.
    pub at: Option<usize>,
}

impl Entry {
    /// A request of its own.
    pub fn alone(action: Action) -> Self {
        Self {
            action,
            full_url: None,
            at: None,
        }
    }

    /// Where an element of the entry is, for errors: `Bundle.entry[2].request.ifMatch`
    /// in a transaction, or what `alone` names by itself (a header, `CarePlan.id`).
    pub(super) fn field(&self, in_entry: &str, alone: &str) -> String {
        match self.at {
            Some(at) => format!("Bundle.entry[{at}].{in_entry}"),
            None => alone.to_owned(),
        }
    }

    /// Where an element of the entry's resource is: `Bundle.entry[2].resource.id`, or
    /// `CarePlan.id`.
    pub(super) fn resource_field(&self, element: &str) -> String {
        let alone = format!("{}.{element}", self.action.kind().name());
        self.field(&format!("resource.{element}"), &alone)
    }

    pub(super) fn resource(&self) -> Option<&Value> {
        self.action.resource()
    }
}

/// What a write did with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// The resource was already as sent: no new version.
    Unchanged,
    /// A conditional create found the resource: nothing was done.
    Existing,
    Deleted,
    /// It was deleted before: nothing was done (FHIR's delete is idempotent).
    AlreadyDeleted,
}

/// One entry done: the resource it was about and the contract version it now reads
/// from (the new one, or the current one when nothing was written).
#[derive(Debug, Clone)]
pub struct Done {
    pub kind: Kind,
    pub id: String,
    pub record: Record,
    pub outcome: Outcome,
}

impl Done {
    /// The resource's own version: the contract version at which it last changed (the
    /// contract's version, for a deletion).
    pub fn version(&self) -> ResourceVersion {
        let revision = &self.record.revision;
        if revision.deleted {
            return revision.as_resource_version();
        }
        revision.version_of(&format!("{}/{}", self.kind.name(), self.id))
    }
}
