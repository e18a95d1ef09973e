//! The JSON the mapping writes ([`Json`], a tree that serializes itself), small helpers
//! for building it and for reading FHIR JSON (codings, identifiers, references and
//! nested extensions), and the error that names the FHIR element.

use std::borrow::Cow;

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

/// JSON as the mapping writes it: objects are lists of keys in the order written (no
/// hashing), and strings are borrowed from the contract and the profile where they can
/// be. It serializes itself ([`serde::Serialize`]), so a resource becomes bytes without
/// a `serde_json::Value` in between; `Value::from` makes one where a `Value` is wanted
/// (see `benches/mapping.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(&'a str, Json<'a>)>),
    /// A value made elsewhere, kept as it is.
    Value(Value),
}

impl<'a> Json<'a> {
    /// Sets `key` on an object unless `value` is null or an empty array (FHIR has no
    /// empty arrays); a key already there gets the new value in its place.
    pub fn put(&mut self, key: &'a str, value: impl Into<Json<'a>>) {
        let value = value.into();
        let empty = match &value {
            Json::Null | Json::Value(Value::Null) => true,
            Json::Array(items) => items.is_empty(),
            Json::Value(Value::Array(items)) => items.is_empty(),
            _ => false,
        };
        if let (false, Json::Object(entries)) = (empty, self) {
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some((_, old)) => *old = value,
                None => entries.push((key, value)),
            }
        }
    }

    /// Puts `key` right after the key `after` of an object (first when it has no
    /// `after`); the object must not have `key` yet.
    pub fn put_after(&mut self, after: &str, key: &'a str, value: impl Into<Json<'a>>) {
        if let Json::Object(entries) = self {
            let at = entries
                .iter()
                .position(|(k, _)| *k == after)
                .map_or(1, |i| i + 1)
                .min(entries.len());
            entries.insert(at, (key, value.into()));
        }
    }

    /// `{type}/{id}`: how a resource is named among a contract's, as
    /// [`super::stored::resource_key`] names a `Value`.
    pub fn resource_key(&self) -> String {
        format!(
            "{}/{}",
            self.str_at("resourceType").unwrap_or_default(),
            self.str_at("id").unwrap_or_default()
        )
    }

    /// The string at `key` of an object.
    pub fn str_at(&self, key: &str) -> Option<&str> {
        match self {
            Json::Object(entries) => entries.iter().find_map(|(k, v)| match v {
                Json::Str(s) if *k == key => Some(s.as_ref()),
                _ => None,
            }),
            Json::Value(value) => value.get(key).and_then(Value::as_str),
            _ => None,
        }
    }
}

impl serde::Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Str(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Json::Value(value) => value.serialize(serializer),
        }
    }
}

impl From<Json<'_>> for Value {
    fn from(json: Json<'_>) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Str(s) => Value::String(s.into_owned()),
            Json::Array(items) => Value::Array(items.into_iter().map(Value::from).collect()),
            Json::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    map.insert(key.to_owned(), Value::from(value));
                }
                Value::Object(map)
            }
            Json::Value(value) => value,
        }
    }
}

impl<'a> From<&'a str> for Json<'a> {
    fn from(s: &'a str) -> Self {
        Json::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Json<'_> {
    fn from(s: String) -> Self {
        Json::Str(Cow::Owned(s))
    }
}

impl From<bool> for Json<'_> {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl<'a> From<Vec<Json<'a>>> for Json<'a> {
    fn from(items: Vec<Json<'a>>) -> Self {
        Json::Array(items)
    }
}

impl From<Value> for Json<'_> {
    fn from(value: Value) -> Self {
        Json::Value(value)
    }
}

impl<'a, T: Into<Json<'a>>> From<Option<T>> for Json<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Json::Null, Into::into)
    }
}

/// A [`Json`] object with its keys in the order written.
macro_rules! object {
    ($($key:literal : $value:expr),* $(,)?) => {
        $crate::fhir::json::Json::Object(vec![
            $( ($key, ::core::convert::Into::<$crate::fhir::json::Json>::into($value)) ),*
        ])
    };
}
pub(crate) use object;

pub fn coding(code: &Code) -> Json<'_> {
    object! { "system": code.system.as_str(), "code": code.code.as_str(), "display": code.display.as_str() }
}

pub fn concept(code: &Code) -> Json<'_> {
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

pub fn identifier<'a>(system: &'a str, value: impl Into<Json<'a>>) -> Json<'a> {
    object! { "system": system, "value": value }
}

/// `{"url": url, key: value}`.
pub fn ext<'a>(url: &'a str, key: &'a str, value: impl Into<Json<'a>>) -> Json<'a> {
    Json::Object(vec![("url", Json::from(url)), (key, value.into())])
}

/// A complex extension with sub-extensions.
pub fn complex<'a>(url: &'a str, parts: Vec<Json<'a>>) -> Json<'a> {
    object! { "url": url, "extension": parts }
}

/// A `valueString` sub-extension when `value` is present.
pub fn opt_string<'a>(url: &'a str, value: Option<&'a str>) -> Option<Json<'a>> {
    value.map(|v| ext(url, "valueString", v))
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
