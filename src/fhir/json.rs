//! Small helpers for building and reading FHIR JSON: codings, identifiers, references
//! and (nested) extensions, and the error that names the FHIR element.

use serde_json::{Map, Value};

use super::Code;

/// A FHIR resource that cannot be mapped to a contract; `expression` is the element's
/// FHIRPath (e.g. `CarePlan.subject.identifier`), as an OperationOutcome wants it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expression}: {message}")]
pub struct MappingError {
    pub expression: String,
    pub message: String,
}

impl MappingError {
    pub fn new(expression: impl Into<String>, message: impl ToString) -> Self {
        Self {
            expression: expression.into(),
            message: message.to_string(),
        }
    }
}

/// A JSON object whose values are moved in (`Value::from`), where `json!` would copy
/// each interpolated value through serde again: the mapping builds every resource with
/// it, which makes mapping a contract several times faster (see `benches/mapping.rs`).
/// The map is made with room for its keys, so it never grows while it is filled.
macro_rules! object {
    ($($key:literal : $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut map = serde_json::Map::with_capacity(<[&str]>::len(&[$($key),*]));
        $( map.insert(String::from($key), serde_json::Value::from($value)); )*
        serde_json::Value::Object(map)
    }};
}
pub(crate) use object;

pub fn coding(code: &Code) -> Value {
    object! { "system": code.system.as_str(), "code": code.code.as_str(), "display": code.display.as_str() }
}

pub fn concept(code: &Code) -> Value {
    object! { "coding": vec![coding(code)] }
}

/// Whether a CodeableConcept has a coding with `code`'s system and code.
pub fn has_coding(concept: Option<&Value>, code: &Code) -> bool {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .is_some_and(|codings| {
            codings.iter().any(|c| {
                str_of(c, "system") == Some(&code.system) && str_of(c, "code") == Some(&code.code)
            })
        })
}

pub fn identifier(system: &str, value: &str) -> Value {
    object! { "system": system, "value": value }
}

/// `{"url": url, key: value}`.
pub fn ext(url: &str, key: &str, value: Value) -> Value {
    let mut m = Map::with_capacity(2);
    m.insert("url".into(), Value::String(url.to_owned()));
    m.insert(key.into(), value);
    Value::Object(m)
}

/// A complex extension with sub-extensions.
pub fn complex(url: &str, parts: Vec<Value>) -> Value {
    object! { "url": url, "extension": parts }
}

/// A `valueString` sub-extension when `value` is present.
pub fn opt_string(url: &str, value: Option<&str>) -> Option<Value> {
    value.map(|v| ext(url, "valueString", Value::String(v.to_owned())))
}

/// The extensions of `element` with `url`.
pub fn extensions<'a>(element: &'a Value, url: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    element
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| str_of(e, "url") == Some(url))
}

pub fn extension<'a>(element: &'a Value, url: &'a str) -> Option<&'a Value> {
    extensions(element, url).next()
}

/// The string value (`valueString`, `valueCode`, …) of the sub-extension `url`.
pub fn ext_str<'a>(element: &'a Value, url: &'a str, key: &str) -> Option<&'a str> {
    extension(element, url).and_then(|e| str_of(e, key))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Sets `key` on an object unless `value` is null or an empty array (FHIR has no empty
/// arrays).
pub fn put(object: &mut Value, key: &str, value: Value) {
    let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
    if let (false, Some(m)) = (empty, object.as_object_mut()) {
        m.insert(key.to_owned(), value);
    }
}

/// A required string field.
pub fn text_at(v: &Value, key: &str, expression: &str) -> Result<String, MappingError> {
    str_of(v, key)
        .map(str::to_owned)
        .ok_or_else(|| MappingError::new(expression, "is missing"))
}

/// Parses a JSON string field into `T`, naming the element when it fails.
pub fn parse_at<T, E: ToString>(
    v: &Value,
    key: &str,
    expression: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, MappingError> {
    let s = str_of(v, key).ok_or_else(|| MappingError::new(expression, "is missing"))?;
    parse(s).map_err(|e| MappingError::new(expression, e))
}
