//! What strict FHIR servers refuse and a lenient parser would silently drop: elements R4
//! does not define for the resource, empty arrays, objects and strings (R4 JSON forbids
//! them), and `contained` resources (the gateway does not keep them: a contract's
//! resources travel as resources of their own). Each is named by its FHIRPath, so the
//! sender learns exactly what would have been lost.
//!
//! The check compares what was received with the same resource after a round trip
//! through the typed R4 model: what the model did not keep is what R4 does not define.

use serde_json::Value;

use super::MappingError;

/// Checks `received` (a `kind` resource) against `typed`, its round trip through the
/// typed model.
pub fn check(kind: &str, received: &Value, typed: &Value) -> Result<(), MappingError> {
    if received.get("contained").is_some() {
        return Err(MappingError::new(
            format!("{kind}.contained"),
            "contained resources are not kept: send each as a resource of its own and reference it",
        ));
    }
    walk(received, typed, &mut kind.to_owned())
}

/// Walks `received` beside `typed`; `path` is the FHIRPath of `received`, extended in
/// place as the walk goes down (a string made only for the element named in an error,
/// not for every element: that was 4 % of an update's instructions).
fn walk(received: &Value, typed: &Value, path: &mut String) -> Result<(), MappingError> {
    use std::fmt::Write as _;
    let at = path.len();
    match received {
        Value::Object(map) => {
            for (key, value) in map {
                path.truncate(at);
                path.push('.');
                path.push_str(key);
                if is_empty(value) {
                    return Err(MappingError::new(
                        path.clone(),
                        "is empty: R4 JSON leaves an element out rather than send it empty",
                    ));
                }
                match typed.get(key) {
                    Some(kept) => walk(value, kept, path)?,
                    None => {
                        return Err(MappingError::new(
                            path.clone(),
                            "is not an element R4 defines here, so it cannot be kept",
                        ));
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.truncate(at);
                let _ = write!(path, "[{i}]");
                let kept = typed.get(i).unwrap_or(&Value::Null);
                walk(item, kept, path)?;
            }
        }
        _ => {}
    }
    path.truncate(at);
    Ok(())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn checked(resource: &Value) -> Result<(), MappingError> {
        crate::fhir::check_resource("CarePlan", resource)
    }

    fn plan() -> Value {
        json!({
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": { "reference": "Patient/x" },
            "activity": [{ "detail": { "status": "in-progress", "description": "Gå" } }],
        })
    }

    #[test]
    fn what_r4_defines_passes() {
        checked(&plan()).unwrap();
    }

    #[test]
    fn unknown_elements_are_named() {
        let mut top = plan();
        top["foo"] = json!("bar");
        assert_eq!(checked(&top).unwrap_err().expression, "CarePlan.foo");
        let mut nested = plan();
        nested["activity"][0]["detail"]["colour"] = json!("blue");
        assert_eq!(
            checked(&nested).unwrap_err().expression,
            "CarePlan.activity[0].detail.colour"
        );
    }

    #[test]
    fn empty_arrays_objects_and_strings_are_named() {
        for (element, empty) in [
            ("note", json!([])),
            ("period", json!({})),
            ("title", json!("")),
        ] {
            let mut p = plan();
            p[element] = empty;
            assert_eq!(
                checked(&p).unwrap_err().expression,
                format!("CarePlan.{element}")
            );
        }
    }

    #[test]
    fn contained_resources_are_refused() {
        let mut p = plan();
        p["contained"] = json!([{ "resourceType": "Patient", "id": "p" }]);
        assert_eq!(checked(&p).unwrap_err().expression, "CarePlan.contained");
    }
}
