//! The patch formats `PATCH` takes: the two R4 names, JSON Patch (RFC 6902) and FHIRPath
//! Patch (a `Parameters` resource of `operation`s), and JSON Merge Patch (RFC 7386: the
//! elements to change, `null` to remove one), which clients such as fhirpy send. Each
//! turns a resource and a patch into the
//! patched resource, or an error naming the operation and why; the result is then
//! written like any update (the write path checks it as it checks a PUT).
//!
//! FHIRPath Patch paths are taken in the form clients write them: a resource type, then
//! element names, each optionally with an index (`CarePlan.note[0].text`). Other
//! FHIRPath (functions such as `where()`, operators) is refused by name, never guessed.

use serde_json::{Map, Value};

/// Why a patch cannot be applied: where (the operation, as an expression) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct PatchError {
    pub at: String,
    pub message: String,
    /// The patch itself is not well formed (else: the resource is not as it expects).
    pub malformed: bool,
}

/// The patch is not well formed.
fn bad(at: impl Into<String>, message: impl Into<String>) -> PatchError {
    PatchError {
        at: at.into(),
        message: message.into(),
        malformed: true,
    }
}

/// The patch does not fit the resource as it is.
fn error(at: impl Into<String>, message: impl Into<String>) -> PatchError {
    PatchError {
        at: at.into(),
        message: message.into(),
        malformed: false,
    }
}

/// Applies a JSON Patch (an array of operations) to `doc`, all or nothing.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let operations = patch
        .as_array()
        .ok_or_else(|| bad("body", "a JSON Patch is an array of operations"))?;
    let mut doc = doc.clone();
    for (i, op) in operations.iter().enumerate() {
        let at = format!("[{i}]");
        let field = |name: &str| {
            op[name]
                .as_str()
                .ok_or_else(|| bad(format!("{at}.{name}"), "is required (a string)"))
        };
        let path = pointer(field("path")?, &format!("{at}.path"))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| bad(format!("{at}.value"), "is required"))
        };
        match field("op")? {
            "add" => add(&mut doc, &path, value()?, &at)?,
            "remove" => {
                remove(&mut doc, &path, &at)?;
            }
            "replace" => {
                remove(&mut doc, &path, &at)?;
                add(&mut doc, &path, value()?, &at)?;
            }
            "move" => {
                let from = pointer(field("from")?, &format!("{at}.from"))?;
                if path.len() > from.len() && path[..from.len()] == from[..] {
                    return Err(bad(&at, "cannot move a value into itself"));
                }
                let moved = remove(&mut doc, &from, &at)?;
                add(&mut doc, &path, moved, &at)?;
            }
            "copy" => {
                let from = pointer(field("from")?, &format!("{at}.from"))?;
                let copied = get(&doc, &from, &at)?.clone();
                add(&mut doc, &path, copied, &at)?;
            }
            "test" => {
                if *get(&doc, &path, &at)? != value()? {
                    return Err(error(&at, "test failed: the value differs"));
                }
            }
            other => {
                return Err(bad(
                    format!("{at}.op"),
                    format!(
                        "{other:?} is not a JSON Patch operation (add, remove, replace, move, copy, test)"
                    ),
                ));
            }
        }
    }
    Ok(doc)
}

/// Applies a JSON Merge Patch (RFC 7386): each member of the patch replaces the
/// resource's (objects merged member by member), and `null` removes it.
pub fn merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(bad(
            "body",
            "a JSON Merge Patch is an object of the elements to change",
        ));
    }
    let mut doc = doc.clone();
    merge(&mut doc, patch);
    prune(&mut doc);
    Ok(doc)
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (name, change) in changes {
            if change.is_null() {
                fields.remove(name);
            } else {
                merge(fields.entry(name.clone()).or_insert(Value::Null), change);
            }
        }
    }
}

/// A JSON Pointer's reference tokens (`/note/0/text` → `note`, `0`, `text`).
fn pointer(text: &str, at: &str) -> Result<Vec<String>, PatchError> {
    if text.is_empty() {
        return Err(bad(
            at,
            "the whole resource cannot be patched: name an element",
        ));
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(bad(at, "a JSON Pointer starts with /"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'a>(doc: &'a Value, path: &[String], at: &str) -> Result<&'a Value, PatchError> {
    let mut node = doc;
    for token in path {
        node = match node {
            Value::Object(m) => m.get(token),
            Value::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| error(at, format!("/{} is not there", path.join("/"))))?;
    }
    Ok(node)
}

fn parent<'a>(
    doc: &'a mut Value,
    path: &[String],
    at: &str,
) -> Result<(&'a mut Value, String), PatchError> {
    let (last, init) = path
        .split_last()
        .ok_or_else(|| bad(at, "name an element"))?;
    let mut node = doc;
    for token in init {
        node = match node {
            Value::Object(m) => m.get_mut(token),
            Value::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| error(at, format!("/{} is not there", init.join("/"))))?;
    }
    Ok((node, last.clone()))
}

fn add(doc: &mut Value, path: &[String], value: Value, at: &str) -> Result<(), PatchError> {
    let (node, last) = parent(doc, path, at)?;
    match node {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) if last == "-" => a.push(value),
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i <= a.len())
                .ok_or_else(|| error(at, format!("{last} is not an index of the array")))?;
            a.insert(i, value);
        }
        _ => return Err(error(at, "the parent is not an object or array")),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &[String], at: &str) -> Result<Value, PatchError> {
    let (node, last) = parent(doc, path, at)?;
    let missing = || error(at, format!("/{} is not there", path.join("/")));
    match node {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < a.len())
                .ok_or_else(missing)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

/// Applies a FHIRPath Patch (`Parameters` with `operation`s) to `resource`.
pub fn fhirpath_patch(resource: &Value, parameters: &Value) -> Result<Value, PatchError> {
    let kind = resource["resourceType"].as_str().unwrap_or_default();
    let mut doc = resource.clone();
    let operations = parameters["parameter"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if operations.is_empty() {
        return Err(bad("Parameters.parameter", "no operation to apply"));
    }
    for (i, op) in operations.iter().enumerate() {
        let at = format!("Parameters.parameter[{i}]");
        if op["name"] != "operation" {
            return Err(bad(
                format!("{at}.name"),
                "each parameter of a FHIRPath Patch is an operation",
            ));
        }
        let parts = op["part"].as_array().cloned().unwrap_or_default();
        let part = |name: &str| parts.iter().find(|p| p["name"] == name);
        let text = |name: &str| -> Result<&str, PatchError> {
            part(name)
                .and_then(|p| {
                    ["valueCode", "valueString"]
                        .iter()
                        .find_map(|k| p[*k].as_str())
                })
                .ok_or_else(|| bad(format!("{at}.part({name})"), "is required"))
        };
        let index = |name: &str| -> Result<usize, PatchError> {
            part(name)
                .and_then(|p| p["valueInteger"].as_u64())
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| {
                    bad(
                        format!("{at}.part({name})"),
                        "is required (valueInteger ≥ 0)",
                    )
                })
        };
        let value = || -> Result<Value, PatchError> {
            part("value")
                .map(part_value)
                .ok_or_else(|| bad(format!("{at}.part(value)"), "is required"))?
                .map_err(|m| bad(format!("{at}.part(value)"), m))
        };
        let path_at = format!("{at}.part(path)");
        let path = steps(text("path")?, kind, &path_at)?;
        let kind_of = text("type")?;
        let found = locate(&doc, &path, matches!(kind_of, "insert" | "move"));
        match kind_of {
            "add" => {
                let name = text("name")?.to_owned();
                let target = one(found, &path_at)?;
                let node = at_mut(&mut doc, &target)
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| error(&path_at, "does not name an element with children"))?;
                let value = value()?;
                match node.get_mut(&name) {
                    Some(Value::Array(list)) => list.push(value),
                    Some(_) => {
                        return Err(error(
                            format!("{at}.part(name)"),
                            format!("{name} has a value already: use replace"),
                        ));
                    }
                    None if is_list(kind, &name) => {
                        node.insert(name, Value::Array(vec![value]));
                    }
                    None => {
                        node.insert(name, value);
                    }
                }
            }
            "insert" => {
                let target = one(found, &path_at)?;
                let list = at_mut(&mut doc, &target)
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| error(&path_at, "does not name a list"))?;
                let i = index("index")?;
                if i > list.len() {
                    return Err(error(
                        format!("{at}.part(index)"),
                        "is past the end of the list",
                    ));
                }
                list.insert(i, value()?);
            }
            "delete" => match found.len() {
                0 => {}
                1 => {
                    delete(&mut doc, &found[0]);
                }
                _ => return Err(error(&path_at, "names more than one element")),
            },
            "replace" => {
                let target = one(found, &path_at)?;
                let slot =
                    at_mut(&mut doc, &target).ok_or_else(|| error(&path_at, "is not there"))?;
                *slot = value()?;
            }
            "move" => {
                let target = one(found, &path_at)?;
                let list = at_mut(&mut doc, &target)
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| error(&path_at, "does not name a list"))?;
                let (from, to) = (index("source")?, index("destination")?);
                if from >= list.len() || to >= list.len() {
                    return Err(error(
                        at.as_str(),
                        "source and destination must be indexes of the list",
                    ));
                }
                let moved = list.remove(from);
                list.insert(to, moved);
            }
            other => {
                return Err(bad(
                    format!("{at}.part(type)"),
                    format!(
                        "{other:?} is not a FHIRPath Patch operation (add, insert, delete, replace, move)"
                    ),
                ));
            }
        }
        prune(&mut doc);
    }
    Ok(doc)
}

/// A FHIRPath Patch value: `value[x]` as is, or an element made of its parts.
fn part_value(p: &Value) -> Result<Value, String> {
    if let Some(parts) = p["part"].as_array() {
        let mut element = Map::new();
        for part in parts {
            let name = part["name"].as_str().ok_or("a part without a name")?;
            let value = part_value(part)?;
            match element.get_mut(name) {
                Some(Value::Array(list)) => list.push(value),
                Some(single) => *single = Value::Array(vec![single.take(), value]),
                None => {
                    element.insert(name.to_owned(), value);
                }
            }
        }
        return Ok(Value::Object(element));
    }
    p.as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.starts_with("value")))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| "give the value as value[x] or as parts".into())
}

/// One step of a path: an element name and, optionally, an index.
type Step = (String, Option<usize>);

/// The steps of a simple FHIRPath (`CarePlan.note[0].text`), after the resource type.
fn steps(path: &str, kind: &str, at: &str) -> Result<Vec<Step>, PatchError> {
    let mut parts = path.split('.');
    if parts.next() != Some(kind) {
        return Err(bad(
            at,
            format!("{path:?}: a path starts with the resource type, {kind}"),
        ));
    }
    parts
        .map(|part| {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => {
                    let i = rest
                        .strip_suffix(']')
                        .and_then(|i| i.parse::<usize>().ok())
                        .ok_or_else(|| bad(at, format!("{part:?} is not name[index]")))?;
                    (name, Some(i))
                }
                None => (part, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad(
                    at,
                    format!(
                        "{path:?}: only element names and [index] are taken here, not {part:?}"
                    ),
                ));
            }
            Ok((name.to_owned(), index))
        })
        .collect()
}

/// Where in the JSON a path's elements are, as JSON Pointer tokens: each item of a list
/// the path goes through (FHIRPath's way), or, with `list`, a list at its end itself
/// (what `insert` and `move` work on).
fn locate(doc: &Value, path: &[Step], list: bool) -> Vec<Vec<String>> {
    let mut found = vec![Vec::new()];
    for (step, (name, index)) in path.iter().enumerate() {
        let last = step + 1 == path.len();
        let mut next = Vec::new();
        for at in found {
            let Some(node) = at_ref(doc, &at).and_then(|n| n.get(name)) else {
                continue;
            };
            let mut here = at.clone();
            here.push(name.clone());
            match (node, index) {
                (Value::Array(list), Some(i)) if *i < list.len() => {
                    here.push(i.to_string());
                    next.push(here);
                }
                (Value::Array(_), Some(_)) => {}
                // The list itself (for insert and move), when it is the path's end.
                (Value::Array(_), None) if last && list => next.push(here),
                (Value::Array(list), None) => {
                    for i in 0..list.len() {
                        let mut item = here.clone();
                        item.push(i.to_string());
                        next.push(item);
                    }
                }
                (_, Some(0) | None) => next.push(here),
                _ => {}
            }
        }
        found = next;
    }
    found
}

fn one(found: Vec<Vec<String>>, at: &str) -> Result<Vec<String>, PatchError> {
    match found.len() {
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        0 => Err(error(at, "names no element of the resource")),
        _ => Err(error(at, "names more than one element")),
    }
}

fn at_ref<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |node, t| match node {
        Value::Array(a) => a.get(t.parse::<usize>().ok()?),
        _ => node.get(t),
    })
}

fn at_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, t| match node {
        Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?),
        _ => node.get_mut(t),
    })
}

fn delete(doc: &mut Value, tokens: &[String]) {
    let Some((last, init)) = tokens.split_last() else {
        return;
    };
    match at_mut(doc, init) {
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        Some(Value::Object(m)) => {
            m.remove(last);
        }
        _ => {}
    }
}

/// Removes the empty lists and objects a delete leaves (R4 has no empty elements).
fn prune(node: &mut Value) {
    match node {
        Value::Object(m) => {
            for v in m.values_mut() {
                prune(v);
            }
            m.retain(|_, v| !is_empty(v));
        }
        Value::Array(a) => {
            for v in a.iter_mut() {
                prune(v);
            }
            a.retain(|v| !is_empty(v));
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.is_empty()) || matches!(v, Value::Object(m) if m.is_empty())
}

/// Whether an element a FHIRPath Patch `add`s to a resource is a list in R4, so the
/// first value added makes a list of one. Known for the elements of the types served.
fn is_list(kind: &str, name: &str) -> bool {
    matches!(
        (kind, name),
        (
            _,
            "identifier" | "note" | "extension" | "modifierExtension" | "contained"
        ) | (
            "CarePlan",
            "basedOn"
                | "replaces"
                | "partOf"
                | "category"
                | "careTeam"
                | "addresses"
                | "supportingInfo"
                | "goal"
                | "activity"
                | "contributor"
                | "instantiatesCanonical"
                | "instantiatesUri"
        ) | (
            "CareTeam",
            "category"
                | "participant"
                | "reasonCode"
                | "reasonReference"
                | "managingOrganization"
                | "telecom"
        ) | (
            "Goal",
            "category" | "target" | "addresses" | "outcomeCode" | "outcomeReference"
        ) | (
            "Appointment",
            "serviceCategory"
                | "serviceType"
                | "specialty"
                | "reasonCode"
                | "reasonReference"
                | "supportingInformation"
                | "slot"
                | "basedOn"
                | "participant"
                | "requestedPeriod"
        )
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_patch_does_each_operation_and_refuses_whole() {
        let doc = json!({ "resourceType": "Goal", "note": [{ "text": "a" }], "description": { "text": "d" } });
        let patched = json_patch(
            &doc,
            &json!([
                { "op": "test", "path": "/description/text", "value": "d" },
                { "op": "add", "path": "/note/-", "value": { "text": "b" } },
                { "op": "replace", "path": "/note/0/text", "value": "A" },
                { "op": "copy", "from": "/note/1", "path": "/note/0" },
                { "op": "move", "from": "/note/2", "path": "/note/1" },
                { "op": "remove", "path": "/note/0" },
            ]),
        )
        .unwrap();
        assert_eq!(patched["note"], json!([{ "text": "b" }, { "text": "A" }]));
        let failed = json_patch(
            &doc,
            &json!([
                { "op": "replace", "path": "/note/0/text", "value": "x" },
                { "op": "test", "path": "/description/text", "value": "other" },
            ]),
        )
        .unwrap_err();
        assert_eq!(failed.at, "[1]");
        assert!(json_patch(&doc, &json!([{ "op": "remove", "path": "/nope" }])).is_err());
        assert!(json_patch(&doc, &json!([{ "op": "frob", "path": "/note" }])).is_err());
        assert!(json_patch(&doc, &json!([{ "op": "remove", "path": "" }])).is_err());
    }

    #[test]
    fn merge_patch_replaces_merges_and_removes() {
        let doc = json!({ "resourceType": "CarePlan", "description": "a", "period": { "start": "2026", "end": "2027" }, "note": [{ "text": "n" }] });
        let patched = merge_patch(
            &doc,
            &json!({ "description": "b", "period": { "end": null }, "note": null }),
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({ "resourceType": "CarePlan", "description": "b", "period": { "start": "2026" } })
        );
        assert!(merge_patch(&doc, &json!([])).unwrap_err().malformed);
    }

    fn operation(parts: Value) -> Value {
        json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": parts }] })
    }

    #[test]
    fn fhirpath_patch_adds_inserts_replaces_moves_and_deletes() {
        let doc =
            json!({ "resourceType": "CarePlan", "status": "active", "note": [{ "text": "a" }] });
        let added = fhirpath_patch(
            &doc,
            &operation(json!([
                { "name": "type", "valueCode": "add" },
                { "name": "path", "valueString": "CarePlan" },
                { "name": "name", "valueString": "note" },
                { "name": "value", "part": [{ "name": "text", "valueMarkdown": "b" }] },
            ])),
        )
        .unwrap();
        assert_eq!(added["note"], json!([{ "text": "a" }, { "text": "b" }]));
        let described = fhirpath_patch(
            &doc,
            &operation(json!([
                { "name": "type", "valueCode": "add" },
                { "name": "path", "valueString": "CarePlan" },
                { "name": "name", "valueString": "description" },
                { "name": "value", "valueString": "Ny" },
            ])),
        )
        .unwrap();
        assert_eq!(described["description"], "Ny");
        let inserted = fhirpath_patch(
            &added,
            &operation(json!([
                { "name": "type", "valueCode": "insert" },
                { "name": "path", "valueString": "CarePlan.note" },
                { "name": "index", "valueInteger": 0 },
                { "name": "value", "valueAnnotation": { "text": "först" } },
            ])),
        )
        .unwrap();
        assert_eq!(inserted["note"][0]["text"], "först");
        let replaced = fhirpath_patch(
            &inserted,
            &operation(json!([
                { "name": "type", "valueCode": "replace" },
                { "name": "path", "valueString": "CarePlan.note[1].text" },
                { "name": "value", "valueString": "A" },
            ])),
        )
        .unwrap();
        assert_eq!(replaced["note"][1]["text"], "A");
        let moved = fhirpath_patch(
            &replaced,
            &operation(json!([
                { "name": "type", "valueCode": "move" },
                { "name": "path", "valueString": "CarePlan.note" },
                { "name": "source", "valueInteger": 0 },
                { "name": "destination", "valueInteger": 2 },
            ])),
        )
        .unwrap();
        assert_eq!(moved["note"][2]["text"], "först");
        let deleted = fhirpath_patch(
            &doc,
            &operation(json!([
                { "name": "type", "valueCode": "delete" },
                { "name": "path", "valueString": "CarePlan.note[0]" },
            ])),
        )
        .unwrap();
        assert!(
            deleted.get("note").is_none(),
            "no empty list is left: {deleted}"
        );
    }

    #[test]
    fn fhirpath_patch_refuses_what_it_cannot_do_exactly() {
        let doc = json!({ "resourceType": "CarePlan", "note": [{ "text": "a" }, { "text": "b" }] });
        let refuse = |parts: Value| fhirpath_patch(&doc, &operation(parts)).unwrap_err();
        let e = refuse(json!([
            { "name": "type", "valueCode": "delete" },
            { "name": "path", "valueString": "CarePlan.note.where(text='a')" },
        ]));
        assert!(e.message.contains("where"), "{e}");
        let e = refuse(json!([
            { "name": "type", "valueCode": "replace" },
            { "name": "path", "valueString": "CarePlan.note.text" },
            { "name": "value", "valueString": "x" },
        ]));
        assert!(e.message.contains("more than one"), "{e}");
        let e = refuse(json!([
            { "name": "type", "valueCode": "replace" },
            { "name": "path", "valueString": "Goal.note" },
            { "name": "value", "valueString": "x" },
        ]));
        assert!(e.message.contains("CarePlan"), "{e}");
        let e = refuse(
            json!([{ "name": "type", "valueCode": "upsert" }, { "name": "path", "valueString": "CarePlan" }]),
        );
        assert_eq!(e.at, "Parameters.parameter[0].part(type)");
    }
}
