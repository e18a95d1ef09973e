//! What a search (or read) returns of each resource, and in which order: `_summary`
//! (`true`, `text`, `data`, `count`, `false`), `_elements` and `_sort`, as R4 defines
//! them. A subset is marked with the `SUBSETTED` tag, and the write path refuses a
//! resource carrying it (writing a subset back would drop what it left out).
//!
//! The element lists are R4's (4.0.1) for the types served: every top-level element, the
//! summary ones (`isSummary`) and the mandatory ones (`min` ≥ 1).

use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::Kind;

/// The system and code of the tag that marks a subset.
pub const SUBSETTED: (&str, &str) = (crate::fhir::SUBSETTED_SYSTEM, "SUBSETTED");

/// Top-level elements of a type: all, the summary ones, the mandatory ones.
struct Elements {
    all: &'static [&'static str],
    summary: &'static [&'static str],
    mandatory: &'static [&'static str],
}

#[rustfmt::skip]
fn elements(kind: Kind) -> Elements {
    match kind {
        Kind::CarePlan => Elements {
            all: &["id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "instantiatesCanonical", "instantiatesUri", "basedOn", "replaces", "partOf", "status", "intent", "category", "title", "description", "subject", "encounter", "period", "created", "author", "contributor", "careTeam", "addresses", "supportingInfo", "goal", "activity", "note"],
            summary: &["id", "meta", "implicitRules", "identifier", "instantiatesCanonical", "instantiatesUri", "basedOn", "replaces", "partOf", "status", "intent", "category", "title", "description", "subject", "encounter", "period", "created", "author", "addresses"],
            mandatory: &["status", "intent", "subject"],
        },
        Kind::CareTeam => Elements {
            all: &["id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "status", "category", "name", "subject", "encounter", "period", "participant", "reasonCode", "reasonReference", "managingOrganization", "telecom", "note"],
            summary: &["id", "meta", "implicitRules", "identifier", "status", "category", "name", "subject", "encounter", "period", "managingOrganization"],
            mandatory: &[],
        },
        Kind::Goal => Elements {
            all: &["id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "lifecycleStatus", "achievementStatus", "category", "priority", "description", "subject", "start[x]", "target", "statusDate", "statusReason", "expressedBy", "addresses", "note", "outcomeCode", "outcomeReference"],
            summary: &["id", "meta", "implicitRules", "lifecycleStatus", "achievementStatus", "category", "priority", "description", "subject", "start[x]", "statusDate", "expressedBy"],
            mandatory: &["lifecycleStatus", "description", "subject"],
        },
        Kind::Appointment => Elements {
            all: &["id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "status", "cancelationReason", "serviceCategory", "serviceType", "specialty", "appointmentType", "reasonCode", "reasonReference", "priority", "description", "supportingInformation", "start", "end", "minutesDuration", "slot", "created", "comment", "patientInstruction", "basedOn", "participant", "requestedPeriod"],
            summary: &["id", "meta", "implicitRules", "identifier", "status", "cancelationReason", "serviceCategory", "serviceType", "specialty", "appointmentType", "reasonCode", "start", "end"],
            mandatory: &["status", "participant"],
        },
        Kind::CommunicationRequest => Elements {
            all: &["id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "basedOn", "replaces", "groupIdentifier", "status", "statusReason", "category", "priority", "doNotPerform", "medium", "subject", "about", "encounter", "payload", "occurrence[x]", "authoredOn", "requester", "recipient", "sender", "reasonCode", "reasonReference", "note"],
            summary: &["id", "meta", "implicitRules", "identifier", "basedOn", "replaces", "groupIdentifier", "status", "category", "priority", "doNotPerform", "medium", "subject", "encounter", "occurrence[x]", "authoredOn", "requester", "recipient", "sender"],
            mandatory: &["status"],
        },
        Kind::Provenance => Elements {
            all: &["id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "target", "occurred[x]", "recorded", "policy", "location", "reason", "activity", "agent", "entity", "signature"],
            summary: &["id", "meta", "implicitRules", "target", "recorded"],
            mandatory: &["target", "recorded", "agent"],
        },
    }
}

/// Whether JSON key `key` is the element `element` (`start[x]` is `startDate`, …).
fn is(key: &str, element: &str) -> bool {
    match element.strip_suffix("[x]") {
        Some(stem) => key
            .strip_prefix(stem)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase())),
        None => key == element,
    }
}

/// What of each resource is returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Subset {
    /// The whole resource (`_summary=false`, or nothing asked).
    #[default]
    Whole,
    /// `_summary=true`: the summary elements.
    Summary,
    /// `_summary=text`: the narrative, `id`, `meta` and the mandatory elements.
    Text,
    /// `_summary=data`: all but the narrative.
    Data,
    /// `_elements=a,b`: those, with `id`, `meta` and the mandatory elements.
    Elements(Vec<String>),
}

impl Subset {
    /// The subset `_summary` and `_elements` ask for on `kind` (`count` and `false`
    /// return resources whole); an unknown `_summary`, both at once, or an element
    /// `kind` does not have is refused by name.
    pub fn from_params(kind: Kind, params: &[(String, String)]) -> Result<Subset, FhirError> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let subset = match get("_summary") {
            Some("true") => Subset::Summary,
            Some("text") => Subset::Text,
            Some("data") => Subset::Data,
            Some("false" | "count") | None => Subset::Whole,
            Some(other) => {
                return Err(FhirError::bad_param(
                    "_summary",
                    format!("{other} is not a _summary (true, text, data, count, false)"),
                ));
            }
        };
        let Some(list) = get("_elements") else {
            return Ok(subset);
        };
        if subset != Subset::Whole {
            return Err(FhirError::bad_param(
                "_elements",
                "_elements and _summary cannot be combined",
            ));
        }
        let all = elements(kind).all;
        let names: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(unknown) = names
            .iter()
            .find(|n| !all.iter().any(|e| e.trim_end_matches("[x]") == n.as_str()))
        {
            return Err(FhirError::bad_param(
                "_elements",
                format!("{} has no element {unknown}", kind.name()),
            ));
        }
        Ok(Subset::Elements(names))
    }

    /// `resource` (of `kind`) as this subset has it, tagged `SUBSETTED` when it is one.
    pub fn apply(&self, kind: Kind, resource: &mut Value) {
        let table = elements(kind);
        let keep = |key: &str| -> bool {
            let mandatory = table.mandatory.iter().any(|e| is(key, e));
            match self {
                Subset::Whole => true,
                Subset::Data => key != "text",
                Subset::Summary => {
                    key == "resourceType" || table.summary.iter().any(|e| is(key, e)) || mandatory
                }
                Subset::Text => matches!(key, "resourceType" | "id" | "meta" | "text") || mandatory,
                Subset::Elements(names) => {
                    matches!(key, "resourceType" | "id" | "meta")
                        || mandatory
                        || names
                            .iter()
                            .any(|n| is(key, n) || is(key, &format!("{n}[x]")))
                }
            }
        };
        if *self == Subset::Whole {
            return;
        }
        if let Some(fields) = resource.as_object_mut() {
            fields.retain(|key, _| keep(key));
            let meta = fields.entry("meta").or_insert_with(|| json!({}));
            let tag = json!({ "system": SUBSETTED.0, "code": SUBSETTED.1 });
            match meta.get_mut("tag").and_then(Value::as_array_mut) {
                Some(tags) => tags.push(tag),
                None => meta["tag"] = json!([tag]),
            }
        }
    }
}

/// One `_sort` key: what to sort on, and whether descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    name: String,
    descending: bool,
}

/// The `_sort` keys a search on `kind` asks for, and those it cannot sort on.
pub fn sort_keys(kind: Kind, value: &str) -> (Vec<SortKey>, Vec<String>) {
    let mut keys = Vec::new();
    let mut unsupported = Vec::new();
    for key in value.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let (descending, name) = match key.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, key),
        };
        let supported =
            matches!(name, "_lastUpdated" | "_id") || (name == "date" && kind == Kind::Appointment);
        if supported {
            keys.push(SortKey {
                name: name.to_owned(),
                descending,
            });
        } else {
            unsupported.push(key.to_owned());
        }
    }
    (keys, unsupported)
}

/// What a resource is sorted by for `key`: an instant or an id; none sorts last.
fn sort_value(resource: &Value, key: &SortKey) -> Option<(Option<jiff::Timestamp>, String)> {
    let instant = |v: &Value| v.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match key.name.as_str() {
        "_lastUpdated" => {
            instant(&resource["meta"]["lastUpdated"]).map(|t| (Some(t), String::new()))
        }
        "date" => instant(&resource["start"]).map(|t| (Some(t), String::new())),
        _ => resource["id"].as_str().map(|id| (None, id.to_owned())),
    }
}

/// Orders `items` (whose resource `resource_of` gives) by `keys`, stably; resources
/// without a key's value come last for it.
pub fn sort<T>(items: &mut [T], keys: &[SortKey], resource_of: impl Fn(&T) -> &Value) {
    if keys.is_empty() {
        return;
    }
    items.sort_by(|a, b| {
        for key in keys {
            let (x, y) = (
                sort_value(resource_of(a), key),
                sort_value(resource_of(b), key),
            );
            let order = match (x, y) {
                (Some(x), Some(y)) if key.descending => y.cmp(&x),
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if order.is_ne() {
                return order;
            }
        }
        std::cmp::Ordering::Equal
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_keep_what_r4_says_and_say_they_are_subsets() {
        let plan = json!({
            "resourceType": "CarePlan", "id": "k", "meta": { "versionId": "1" },
            "text": { "status": "generated", "div": "<div/>" }, "status": "active",
            "intent": "plan", "subject": { "reference": "Patient/p" }, "title": "Patientkontrakt",
            "goal": [{ "reference": "Goal/g" }], "note": [{ "text": "n" }],
        });
        let keys = |subset: Subset| {
            let mut p = plan.clone();
            subset.apply(Kind::CarePlan, &mut p);
            let tagged = p["meta"]["tag"].to_string().contains("SUBSETTED");
            let mut keys: Vec<String> = p.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            (keys.join(","), tagged)
        };
        assert_eq!(
            keys(Subset::Summary),
            (
                "id,intent,meta,resourceType,status,subject,title".into(),
                true
            )
        );
        assert_eq!(
            keys(Subset::Text),
            (
                "id,intent,meta,resourceType,status,subject,text".into(),
                true
            )
        );
        assert_eq!(
            keys(Subset::Data).0,
            "goal,id,intent,meta,note,resourceType,status,subject,title"
        );
        assert_eq!(
            keys(Subset::Elements(vec!["note".into()])).0,
            "id,intent,meta,note,resourceType,status,subject"
        );
        assert_eq!(
            keys(Subset::Whole),
            (
                "goal,id,intent,meta,note,resourceType,status,subject,text,title".into(),
                false
            )
        );
        let mut goal =
            json!({ "resourceType": "Goal", "id": "g", "startDate": "2026-01-01", "note": [] });
        Subset::Summary.apply(Kind::Goal, &mut goal);
        assert_eq!(
            goal["startDate"], "2026-01-01",
            "start[x] is a summary element"
        );
        assert!(goal.get("note").is_none());
    }

    #[test]
    fn elements_and_summaries_are_checked() {
        let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        assert!(Subset::from_params(Kind::CarePlan, &params(&[("_elements", "notes")])).is_err());
        assert!(Subset::from_params(Kind::CarePlan, &params(&[("_summary", "maybe")])).is_err());
        assert!(
            Subset::from_params(
                Kind::CarePlan,
                &params(&[("_summary", "true"), ("_elements", "note")])
            )
            .is_err()
        );
        assert_eq!(
            Subset::from_params(Kind::Goal, &params(&[("_elements", "start,note")])).unwrap(),
            Subset::Elements(vec!["start".into(), "note".into()])
        );
    }

    #[test]
    fn sorting_by_instants_and_ids_both_ways() {
        let r = |id: &str, updated: &str, start: Option<&str>| {
            let mut v = json!({ "id": id, "meta": { "lastUpdated": updated } });
            if let Some(s) = start {
                v["start"] = json!(s);
            }
            v
        };
        let mut items = vec![
            r(
                "a",
                "2026-12-01T10:00:00.2Z",
                Some("2026-12-10T09:30:00+01:00"),
            ),
            r(
                "b",
                "2026-12-01T10:00:00.24Z",
                Some("2026-12-10T08:45:00+00:00"),
            ),
            r("c", "2026-11-30T10:00:00Z", None),
        ];
        let ids = |items: &[Value]| {
            items
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join("")
        };
        let (keys, bad) = sort_keys(Kind::Appointment, "-_lastUpdated");
        assert!(bad.is_empty());
        sort(&mut items, &keys, |v| v);
        assert_eq!(
            ids(&items),
            "bac",
            "fractions compare as instants, not as text"
        );
        let (keys, _) = sort_keys(Kind::Appointment, "date");
        sort(&mut items, &keys, |v| v);
        assert_eq!(
            ids(&items),
            "abc",
            "08:30 UTC before 08:45 UTC; no start last"
        );
        let (_, bad) = sort_keys(Kind::CarePlan, "date,-title");
        assert_eq!(bad, ["date", "-title"]);
    }
}
