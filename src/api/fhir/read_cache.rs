//! Serialized resources of stored versions, kept for the next read of the same one.
//!
//! A stored version never changes, so a resource mapped from it never does either: the
//! key is the contract, its version, and the resource. A write makes a new version, so
//! nothing needs invalidating, on this replica or any other: a read always looks up the
//! current version in the database first and only then asks here. The cache holds at
//! most [`CAPACITY`] entries; when full, an arbitrary one makes room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

/// Entries kept (a CarePlan is a few kB serialized: some tens of MB at most).
pub const CAPACITY: usize = 4096;

/// One cached resource: its bytes and the person it is about.
#[derive(Debug, Clone)]
pub struct Cached {
    pub bytes: Bytes,
    pub patient: String,
}

#[derive(Debug, Default)]
pub struct ReadCache {
    entries: Mutex<HashMap<String, Arc<Cached>>>,
}

impl ReadCache {
    pub fn key(contract: &str, version: u64, resource: &str) -> String {
        format!("{contract}@{version}/{resource}")
    }

    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    pub fn put(&self, key: String, value: Cached) -> Arc<Cached> {
        let value = Arc::new(value);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY
                && let Some(old) = entries.keys().next().cloned()
            {
                entries.remove(&old);
            }
            entries.insert(key, value.clone());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_keeps_what_it_was_given_and_no_more_than_its_capacity() {
        let cache = ReadCache::default();
        let entry = |n: usize| Cached {
            bytes: Bytes::from(format!("{{\"n\":{n}}}")),
            patient: "194003129865".into(),
        };
        cache.put(ReadCache::key("c", 1, "CarePlan/c"), entry(1));
        assert_eq!(
            cache
                .get(&ReadCache::key("c", 1, "CarePlan/c"))
                .unwrap()
                .bytes,
            entry(1).bytes
        );
        assert!(cache.get(&ReadCache::key("c", 2, "CarePlan/c")).is_none());
        for n in 0..CAPACITY + 10 {
            cache.put(ReadCache::key("c", n as u64, "CarePlan/c"), entry(n));
        }
        assert_eq!(cache.entries.lock().unwrap().len(), CAPACITY);
    }
}
