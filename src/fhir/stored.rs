//! The FHIR resources of a stored contract version, as the gateway serves and sends them:
//! mapped with a profile, with what the sender sent that the contract does not model put
//! back, and `meta`: each resource's own version (the contract version at which it last
//! changed), when it was stored and where that change came from.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::json::{Json, object};
use super::residue::Residue;
use super::{ContractResources, Profile, VersionProvenance, to_fhir, to_json, to_provenance};
use crate::domain::{Contract, ContractId, Record, ResourceVersion};

/// `meta` for a resource of a stored version: the version at which it last changed,
/// when, and where that change came from (`source`, and as a tag a receiver can match
/// on).
fn meta<'a>(version: ResourceVersion, profile: &'a Profile) -> Json<'a> {
    object! {
        "versionId": version.version.to_string(),
        "lastUpdated": version.at.to_string(),
        // A uri: a source (a client's name) may hold spaces and any letter.
        "source": crate::percent::encode(&version.source, b":/"),
        "tag": vec![object! { "system": profile.identifiers.origin.as_str(), "code": version.source }],
    }
}

/// `{type}/{id}`: how a resource is named among a contract's, for its own version.
pub fn resource_key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}

/// The resources a contract maps to, with what the sender sent that the contract does
/// not model (`foreign`, as stored) put back — what the gateway serves, without `meta`.
pub fn served(
    id: &ContractId,
    contract: &Contract,
    foreign: Option<&Value>,
    profile: &Profile,
) -> ContractResources {
    let mut resources = to_fhir(id, contract, profile);
    if let Some(residue) = foreign.and_then(|f| Residue::deserialize(f).ok()) {
        residue.restore(&mut resources);
    }
    resources
}

/// The resources of one stored version, each with its `meta` (its own version: see
/// [`crate::domain::Revision::version_of`]).
pub fn resources_of(record: &Record, profile: &Profile) -> ContractResources {
    let r = &record.revision;
    let mut resources = served(&record.id, &r.contract, r.foreign_fhir.as_ref(), profile);
    let ContractResources {
        care_plan,
        care_team,
        goals,
        appointments,
        communication_requests,
    } = &mut resources;
    for resource in [care_plan, care_team]
        .into_iter()
        .chain(goals.iter_mut())
        .chain(appointments.iter_mut())
        .chain(communication_requests.iter_mut())
    {
        let version = r.version_of(&resource_key(resource));
        insert_meta(resource, &meta(version, profile).into());
    }
    resources
}

/// [`resources_of`] as they are written out: straight from the mapping when the version
/// holds nothing a sender sent that the contract does not model (nearly always), else
/// the `Value`s with that put back.
pub fn written_of<'a>(record: &'a Record, profile: &'a Profile) -> Vec<Json<'a>> {
    let r = &record.revision;
    if r.foreign_fhir.is_some() {
        return resources_of(record, profile)
            .into_all()
            .map(Json::Value)
            .collect();
    }
    to_json(&record.id, &r.contract, profile)
        .into_all()
        .map(|mut resource| {
            let version = r.version_of(&resource.resource_key());
            resource.put_after("id", "meta", meta(version, profile));
            resource
        })
        .collect()
}

/// A resource as the gateway compares it across versions: without what it writes in
/// `meta` for every version (version, time, source and its origin tag), so only what
/// the resource says is compared.
pub fn own_content(resource: &Value, profile: &Profile) -> Value {
    let mut resource = resource.clone();
    if let Some(object) = resource.as_object_mut()
        && let Some(Value::Object(meta)) = object.get_mut("meta")
    {
        strip_bookkeeping(meta, profile);
        if meta.is_empty() {
            object.remove("meta");
        }
    }
    resource
}

/// Takes out of `meta` what the gateway writes in it for every version: version, time,
/// source and its origin tag.
fn strip_bookkeeping(meta: &mut Map<String, Value>, profile: &Profile) {
    for key in ["versionId", "lastUpdated", "source"] {
        meta.remove(key);
    }
    if let Some(Value::Array(tags)) = meta.get_mut("tag") {
        tags.retain(|t| t["system"] != profile.identifiers.origin.as_str());
        if tags.is_empty() {
            meta.remove("tag");
        }
    }
}

/// Whether two resources say the same, `meta` aside as [`own_content`] sets it aside,
/// without copying either (an update compares every resource of the contract so).
pub fn same_own_content(a: &Value, b: &Value, profile: &Profile) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let meta = |o: &Map<String, Value>| o.get("meta").and_then(|m| own_meta(m, profile));
    let rest = |o: &Map<String, Value>| o.len() - usize::from(o.contains_key("meta"));
    rest(a) == rest(b)
        && a.iter()
            .filter(|(key, _)| *key != "meta")
            .all(|(key, value)| b.get(key) == Some(value))
        && meta(a) == meta(b)
}

/// What of a resource's `meta` is not the gateway's per-version bookkeeping (see
/// [`strip_bookkeeping`]); `None` when nothing is left.
fn own_meta(meta: &Value, profile: &Profile) -> Option<Value> {
    let mut meta = meta.clone();
    if let Value::Object(object) = &mut meta {
        strip_bookkeeping(object, profile);
        if object.is_empty() {
            return None;
        }
    }
    Some(meta)
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
        transfer: r.change.transfer.clone(),
        targets: changed_in(record),
    };
    let mut v = to_provenance(&record.id, &p);
    insert_meta(
        &mut v,
        &json!({ "versionId": "1", "lastUpdated": r.recorded_at.to_string() }),
    );
    v
}

/// The resources (`{type}/{id}`) a version changed: those at that version. A deletion
/// names the CarePlan.
fn changed_in(record: &Record) -> Vec<String> {
    let r = &record.revision;
    if r.deleted {
        return vec![format!("CarePlan/{}", record.id)];
    }
    super::resource_keys(&record.id, &r.contract)
        .into_iter()
        .filter(|key| r.version_of(key).version == r.version)
        .collect()
}

/// `meta` goes right after `id`, where FHIR JSON puts it; what the sender's `meta` kept
/// (profiles, security labels, its own tags: see `residue`) joins the gateway's.
fn insert_meta(resource: &mut Value, meta: &Value) {
    if let Some(object) = resource.as_object_mut() {
        let mut meta = meta.clone();
        if let (Some(Value::Object(theirs)), Some(ours)) =
            (object.shift_remove("meta"), meta.as_object_mut())
        {
            for (key, value) in theirs {
                match (ours.get_mut(&key), value) {
                    (Some(Value::Array(items)), Value::Array(more)) => items.extend(more),
                    (Some(_), _) => {}
                    (None, value) => {
                        ours.insert(key, value);
                    }
                }
            }
        }
        let at = object.keys().position(|k| k == "id").map_or(1, |i| i + 1);
        object.shift_insert(at, "meta".to_owned(), meta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `same_own_content` answers what comparing two `own_content` copies answers.
    #[test]
    fn resources_compare_as_their_own_content_without_copies() {
        let profile = Profile::default_profile();
        let origin = profile.identifiers.origin.as_str();
        let plan = json!({
            "resourceType": "CarePlan", "id": "a", "status": "active",
            "meta": { "versionId": "3", "lastUpdated": "2026-01-01T00:00:00Z", "source": "ehr",
                      "tag": [{ "system": origin, "code": "ehr" }] },
            "note": [{ "text": "x" }],
        });
        let cases = [
            // The gateway's bookkeeping alone differs, or is not there at all.
            json!({ "resourceType": "CarePlan", "id": "a", "status": "active", "note": [{ "text": "x" }] }),
            json!({ "note": [{ "text": "x" }], "status": "active", "id": "a", "resourceType": "CarePlan",
                    "meta": { "versionId": "4", "tag": [{ "system": origin, "code": "portal" }] } }),
            // What the resource says differs.
            json!({ "resourceType": "CarePlan", "id": "a", "status": "active", "note": [{ "text": "y" }] }),
            json!({ "resourceType": "CarePlan", "id": "a", "status": "active" }),
            json!({ "resourceType": "CarePlan", "id": "a", "status": "active", "note": [{ "text": "x" }],
                    "intent": "plan" }),
            // The sender's own meta counts.
            json!({ "resourceType": "CarePlan", "id": "a", "status": "active", "note": [{ "text": "x" }],
                    "meta": { "tag": [{ "system": "urn:theirs", "code": "t" }] } }),
            json!({ "resourceType": "CarePlan", "id": "a", "status": "active", "note": [{ "text": "x" }],
                    "meta": { "profile": ["urn:p"] } }),
        ];
        for (i, other) in cases.iter().enumerate() {
            let expected = own_content(&plan, &profile) == own_content(other, &profile);
            assert_eq!(
                same_own_content(&plan, other, &profile),
                expected,
                "case {i}"
            );
            assert_eq!(
                same_own_content(other, &plan, &profile),
                expected,
                "case {i}"
            );
            assert_eq!(expected, i < 2, "case {i}");
        }
    }
}
