//! The FHIR resources of a stored contract version, as the gateway serves and sends them:
//! mapped with a profile, with what the sender sent that the contract does not model put
//! back, and `meta` (the contract's version, when it was stored, where it came from).

use serde_json::{Value, json};

use super::residue::Residue;
use super::{ContractResources, Profile, VersionProvenance, to_fhir, to_provenance};
use crate::domain::Record;

/// `meta` for a resource derived from a stored version.
/// `meta` for a resource derived from a stored version: the version, when it was stored,
/// and where the change came from (`source`, and as a tag a receiver can match on).
fn meta(record: &Record, profile: &Profile) -> Value {
    let source = &record.revision.change.source;
    json!({
        "versionId": record.revision.version.to_string(),
        "lastUpdated": record.revision.recorded_at.to_string(),
        "source": source,
        "tag": [{ "system": profile.identifiers.origin, "code": source }],
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
    let meta = meta(record, profile);
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
        transfer: r.change.transfer.clone(),
    };
    let mut v = to_provenance(&record.id, &p);
    insert_meta(
        &mut v,
        &json!({ "versionId": "1", "lastUpdated": r.recorded_at.to_string() }),
    );
    v
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
