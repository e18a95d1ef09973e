//! The serialized resources of stored versions, kept for the next read of the same one.
//!
//! A stored version never changes, so the resources mapped from it never do either: the
//! key is the contract and its version, and the entry holds every resource of that
//! version as JSON bytes. A write makes a new version, so nothing needs invalidating, on
//! this replica or any other: a read always looks up the current version in the database
//! first and only then asks here. Reads by id take one resource from the entry;
//! `$coordinated-plan` splices several entries' bytes into its Bundle without mapping or
//! parsing anything. The cache holds at most [`CAPACITY`] versions; when full, an
//! arbitrary one makes room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use crate::fhir::Profile;
use crate::fhir::stored::written_of;
use crate::store::Record;

/// Versions kept (a contract's resources are some 15 kB serialized: some tens of MB at
/// most).
pub const CAPACITY: usize = 4096;

/// One resource of a cached version.
#[derive(Debug, Clone)]
pub struct CachedResource {
    /// `CarePlan`, `CareTeam`, `Goal` or `Appointment`.
    pub kind: String,
    pub id: String,
    pub bytes: Bytes,
    /// For an Appointment that is booked: when it starts.
    pub booked_start: Option<jiff::Timestamp>,
    /// The resource's own version (the contract version at which it last changed), and
    /// when that was.
    pub version: crate::domain::Version,
    pub at: jiff::Timestamp,
}

impl CachedResource {
    /// `Type/id`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.id)
    }
}

/// Every resource of one stored version, and the person they are about.
#[derive(Debug, Clone)]
pub struct Cached {
    pub patient: String,
    /// CarePlan, CareTeam, Goals, Appointments, in that order.
    pub resources: Vec<CachedResource>,
}

impl Cached {
    /// Maps and serializes every resource of `record`.
    pub fn of(record: &Record, profile: &Profile) -> Cached {
        let resources = written_of(record, profile)
            .into_iter()
            .map(|r| {
                let text = |key: &str| r.str_at(key).unwrap_or_default().to_owned();
                let (kind, id) = (text("resourceType"), text("id"));
                let booked_start = (kind == "Appointment" && r.str_at("status") == Some("booked"))
                    .then(|| r.str_at("start").and_then(|s| s.parse().ok()))
                    .flatten();
                let own = record.revision.version_of(&format!("{kind}/{id}"));
                CachedResource {
                    kind,
                    id,
                    bytes: r.to_vec().into(),
                    booked_start,
                    version: own.version,
                    at: own.at,
                }
            })
            .collect();
        Cached {
            patient: record.revision.contract.patient.id.to_string(),
            resources,
        }
    }

    /// The resource of `kind` with `id`: a CarePlan or CareTeam by kind alone (its id is
    /// the contract's), a Goal or Appointment by its own id.
    pub fn find(&self, kind: &str, id: &str) -> Option<&CachedResource> {
        let one_per_contract = matches!(kind, "CarePlan" | "CareTeam");
        self.resources
            .iter()
            .find(|r| r.kind == kind && (one_per_contract || r.id == id))
    }
}

#[derive(Debug, Default)]
pub struct ReadCache {
    entries: Mutex<HashMap<String, Arc<Cached>>>,
}

impl ReadCache {
    fn key(contract: &str, version: u64) -> String {
        format!("{contract}@{version}")
    }

    pub fn get(&self, contract: &str, version: u64) -> Option<Arc<Cached>> {
        self.entries
            .lock()
            .ok()?
            .get(&Self::key(contract, version))
            .cloned()
    }

    /// The cached resources of `record`'s version, mapped and kept if they were not yet.
    pub fn get_or_map(&self, record: &Record, profile: &Profile) -> Arc<Cached> {
        let version = record.revision.version.get();
        if let Some(hit) = self.get(record.id.as_str(), version) {
            return hit;
        }
        self.put(record.id.as_str(), version, Cached::of(record, profile))
    }

    pub fn put(&self, contract: &str, version: u64, value: Cached) -> Arc<Cached> {
        let value = Arc::new(value);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY
                && let Some(old) = entries.keys().next().cloned()
            {
                entries.remove(&old);
            }
            entries.insert(Self::key(contract, version), value.clone());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Cached {
        Cached {
            patient: "194003129865".into(),
            resources: vec![CachedResource {
                kind: "CarePlan".into(),
                id: "c".into(),
                bytes: Bytes::from(format!("{{\"n\":{n}}}")),
                booked_start: None,
                version: crate::domain::Version::FIRST,
                at: jiff::Timestamp::UNIX_EPOCH,
            }],
        }
    }

    #[test]
    fn it_keeps_what_it_was_given_and_no_more_than_its_capacity() {
        let cache = ReadCache::default();
        cache.put("c", 1, entry(1));
        let hit = cache.get("c", 1).unwrap();
        assert_eq!(
            hit.find("CarePlan", "c").unwrap().bytes,
            entry(1).resources[0].bytes
        );
        assert!(hit.find("Goal", "c").is_none());
        assert!(cache.get("c", 2).is_none());
        for n in 0..CAPACITY + 10 {
            cache.put("c", n as u64, entry(n));
        }
        assert_eq!(cache.entries.lock().unwrap().len(), CAPACITY);
    }
}
