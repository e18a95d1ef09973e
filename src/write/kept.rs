//! Never silent: a received resource is stored only when the contract gives it back as
//! it was sent — every element the sender gave is in the resource the gateway will
//! serve, with the value it sent. What the contract cannot hold (an element inside a
//! mapped one it does not model, a code it would replace) is refused, each element
//! named, rather than dropped or changed without a word.
//!
//! Not compared: what the gateway writes itself for every version (`id`, its own
//! identifiers, `meta`'s version, time, source and origin tag, the narrative `text`),
//! what it writes into a resource from the contract's others (see [`from_elsewhere`]
//! and [`following`]), and the
//! values of
//! `reference` and `display` (references are resolved to the contract's ids, names shown
//! as the contract has them). Instants are compared as instants.

use serde_json::Value;

use crate::fhir::Profile;
use crate::fhir::outcome::Issue;
use crate::fhir::residue::ours_identifier;
use crate::fhir::stored::own_content;

/// At most this many elements are named in one answer.
const MOST: usize = 20;

/// The elements of `received` (a resource) that `served` (what the gateway would serve
/// after the write) does not give back as sent.
pub(super) fn lost(received: &Value, served: &Value, profile: &Profile) -> Vec<Issue> {
    let kind = received["resourceType"].as_str().unwrap_or("Resource");
    let mut received = own_content(received, profile);
    if let Some(object) = received.as_object_mut() {
        object.remove("id");
        object.remove("text");
        // An Appointment's link to its CarePlan as older clients send it (in basedOn),
        // which the gateway gives back in supportingInformation; anything else in
        // basedOn is compared as sent (and refused, as the contract does not keep it).
        if kind == "Appointment"
            && let Some(Value::Array(mut based_on)) = object.remove("basedOn")
        {
            let plan = |item: &Value| {
                item["reference"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("CarePlan/"))
            };
            let links: Vec<Value> = based_on.iter().filter(|i| plan(i)).cloned().collect();
            based_on.retain(|i| !plan(i));
            if !links.is_empty() {
                object
                    .entry("supportingInformation")
                    .or_insert(Value::Array(links));
            }
            if !based_on.is_empty() {
                object.insert("basedOn".into(), Value::Array(based_on));
            }
        }
        for element in from_elsewhere(kind) {
            // Compared when the resource already has it (nothing may come beside it);
            // not yet there, it comes with the other resource.
            if served.get(*element).is_none() {
                object.remove(*element);
            }
        }
        for element in following(kind) {
            object.remove(*element);
        }
        if let Some(Value::Array(identifiers)) = object.get_mut("identifier") {
            identifiers.retain(|i| {
                !i["system"]
                    .as_str()
                    .is_some_and(|system| ours_identifier(system, profile))
            });
            if identifiers.is_empty() {
                object.remove("identifier");
            }
        }
    }
    let mut issues = Vec::new();
    walk(&received, served, &mut kind.to_owned(), &mut issues);
    issues
}

/// References the mapping writes to the contract's other resources (the CarePlan's goal
/// and careTeam): a CarePlan sent before them (a contract built resource by resource)
/// cannot yet be given them back; once there, nothing may come beside them.
fn from_elsewhere(kind: &str) -> &'static [&'static str] {
    match kind {
        "CarePlan" => &["goal", "careTeam"],
        _ => &[],
    }
}

/// Elements whose value the mapping writes from another resource: the CarePlan's author
/// and care contributor are the CareTeam's responsible unit, the CareTeam's status is
/// the contract's, which the CarePlan carries.
fn following(kind: &str) -> &'static [&'static str] {
    match kind {
        "CarePlan" => &["author", "contributor"],
        "CareTeam" => &["status"],
        _ => &[],
    }
}

/// Walks `received` beside `served`, `path` the FHIRPath of `received`, extended in
/// place as the walk goes down (a string made only for an element named in an issue).
fn walk(received: &Value, served: &Value, path: &mut String, issues: &mut Vec<Issue>) {
    use std::fmt::Write as _;
    if issues.len() >= MOST {
        return;
    }
    let at = path.len();
    match received {
        Value::Object(map) => {
            for (key, value) in map {
                path.truncate(at);
                path.push('.');
                path.push_str(key);
                match served.get(key) {
                    None => issues.push(Issue::error(
                        "structure",
                        "the contract cannot keep this element: nothing of it would be stored, so the write is refused",
                        Some(path.clone()),
                    )),
                    Some(_) if matches!(key.as_str(), "reference" | "display") => {}
                    Some(kept) => walk(value, kept, path, issues),
                }
            }
        }
        // An item is kept when the served array has it at its place, or the very item at
        // another (the gateway writes its own identifiers, codings and extensions first).
        Value::Array(items) => {
            let served_items = served.as_array().map(Vec::as_slice).unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                path.truncate(at);
                let _ = write!(path, "[{i}]");
                let mut at_place = Vec::new();
                match served_items.get(i) {
                    Some(kept) => walk(item, kept, path, &mut at_place),
                    None => at_place.push(Issue::error(
                        "structure",
                        "the contract cannot keep this element: nothing of it would be stored, so the write is refused",
                        Some(path.clone()),
                    )),
                }
                // Elsewhere it must be the very item: a reference is compared too.
                let elsewhere = || served_items.contains(item);
                if !at_place.is_empty() && !elsewhere() {
                    issues.extend(at_place);
                }
            }
        }
        leaf if !same(leaf, served) => issues.push(Issue::error(
            "value",
            format!("the contract would store {served} here, not {leaf}: send what it can keep"),
            Some(path.clone()),
        )),
        _ => {}
    }
    path.truncate(at);
}

/// Equal values; instants and numbers by what they mean, not how they are written.
fn same(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::String(a), Value::String(b)) => {
            match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn profile() -> Profile {
        Profile::default_profile()
    }

    #[test]
    fn what_is_given_back_passes() {
        let received = json!({
            "resourceType": "Appointment", "id": "x", "status": "booked",
            "start": "2026-12-10T10:00:00+01:00",
            "meta": { "versionId": "3", "tag": [{ "system": profile().identifiers.origin, "code": "fhir" }] },
            "basedOn": [{ "reference": "CarePlan/k", "display": "Planen" }],
        });
        let served = json!({
            "resourceType": "Appointment", "id": "y", "status": "booked",
            "start": "2026-12-10T09:00:00Z",
            "supportingInformation": [{ "reference": "CarePlan/k", "display": "Patientkontrakt" }],
        });
        assert_eq!(lost(&received, &served, &profile()), vec![]);
        // basedOn naming anything else is not the link: it is named as not kept.
        let mut order = received.clone();
        order["basedOn"] = json!([{ "reference": "ServiceRequest/remiss" }]);
        let issues = lost(&order, &served, &profile());
        assert_eq!(issues.len(), 1, "{issues:?}");
    }

    #[test]
    fn dropped_and_replaced_elements_are_named() {
        let received = json!({
            "resourceType": "CarePlan", "intent": "order",
            "identifier": [{ "system": "a", "value": "1" }, { "system": "b", "value": "2" }],
            "subject": { "reference": "Patient/p", "extension": [{ "url": "u", "valueString": "v" }] },
            "meta": { "profile": ["http://example.org/p"] },
        });
        let served = json!({
            "resourceType": "CarePlan", "intent": "plan",
            "identifier": [{ "system": "a", "value": "1" }],
            "subject": { "reference": "Patient/p" },
        });
        let named: Vec<String> = lost(&received, &served, &profile())
            .into_iter()
            .filter_map(|i| i.expression)
            .collect();
        assert_eq!(
            named,
            [
                "CarePlan.intent",
                "CarePlan.identifier[1]",
                "CarePlan.subject.extension",
                "CarePlan.meta",
            ]
        );
    }
}
