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
/// be. It writes its own bytes ([`Json::to_vec`], the bytes `serde_json` would write,
/// faster), so a resource becomes bytes without a `serde_json::Value` in between; it
/// also implements [`serde::Serialize`], and `Value::from` makes a `Value` where one is
/// wanted (see `benches/mapping.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Keys are FHIR element names written in the mapping's code, never data: they need
    /// no escaping and are written as they are.
    Object(Vec<(&'static str, Json<'a>)>),
    /// A value made elsewhere, kept as it is.
    Value(Value),
}

impl<'a> Json<'a> {
    /// Sets `key` on an object unless `value` is null or an empty array (FHIR has no
    /// empty arrays); a key already there gets the new value in its place.
    pub fn put(&mut self, key: &'static str, value: impl Into<Json<'a>>) {
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
    pub fn put_after(&mut self, after: &str, key: &'static str, value: impl Into<Json<'a>>) {
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

impl Json<'_> {
    /// The JSON bytes, exactly as `serde_json::to_vec` writes the tree (keys in their
    /// order, no spaces, the same escapes), but with strings copied in one go where they
    /// need no escape (see [`write_str`]).
    pub fn to_vec(&self) -> Vec<u8> {
        // Room for a few escapes besides: a narrative has a dozen or two quotes (its
        // attributes), and a buffer that overflows by one byte doubles, which the read
        // cache would then keep (`Bytes` from a `Vec` keeps its capacity).
        let unescaped = self.unescaped_len();
        let mut out = Vec::with_capacity(unescaped + unescaped / 64 + 64);
        self.write(&mut out);
        out
    }

    /// How many bytes [`Json::write`] writes when no string needs an escape (a kept
    /// `Value` counted as nothing): the capacity to write into, so that a Bundle is not
    /// copied from one buffer to the next as it grows.
    fn unescaped_len(&self) -> usize {
        let separators = |n: usize| n.saturating_sub(1);
        match self {
            Json::Null | Json::Bool(true) => 4,
            Json::Bool(false) => 5,
            Json::Str(s) => s.len() + 2,
            Json::Array(items) => {
                2 + separators(items.len()) + items.iter().map(Json::unescaped_len).sum::<usize>()
            }
            Json::Object(entries) => {
                2 + separators(entries.len())
                    + entries
                        .iter()
                        .map(|(key, value)| key.len() + 3 + value.unescaped_len())
                        .sum::<usize>()
            }
            Json::Value(_) => 0,
        }
    }

    /// Appends the JSON bytes to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(true) => out.extend_from_slice(b"true"),
            Json::Bool(false) => out.extend_from_slice(b"false"),
            Json::Str(s) => write_str(out, s),
            Json::Array(items) => {
                out.push(b'[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Json::Object(entries) => {
                out.push(b'{');
                for (n, (key, value)) in entries.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    debug_assert!(next_to_escape(key.as_bytes(), 0).is_none(), "{key:?}");
                    out.push(b'"');
                    out.extend_from_slice(key.as_bytes());
                    out.extend_from_slice(b"\":");
                    value.write(out);
                }
                out.push(b'}');
            }
            // Writing a `Value` into a `Vec` cannot fail.
            Json::Value(value) => {
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
    }
}

/// Appends `s` as a JSON string with serde_json's escapes: `\"`, `\\`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, and `\u00xx` (lowercase) for the other control characters; everything else,
/// DEL and non-ASCII included, as it is. The bytes to escape are looked for sixteen at a
/// time, which the compiler turns into vector instructions, and the text between them is
/// copied in one go: most strings have none, and the narrative's XHTML only its quotes.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_str_contents(out, s);
    out.push(b'"');
}

/// Appends the inside of [`write_str`]'s string, without the quotes: for a string
/// written in pieces (a `fullUrl` of a base, a type and an id).
pub fn write_str_contents(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut plain = 0;
    while let Some(at) = next_to_escape(bytes, plain) {
        out.extend_from_slice(&bytes[plain..at]);
        let byte = bytes[at];
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => 0,
        };
        if short == 0 {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        // The bytes escaped are ASCII, so `at + 1` is at a character boundary.
        plain = at + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
}

/// Whether JSON escapes `b`.
fn escaped(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// Where the next byte JSON escapes is, from `from` on, with no branch per byte: sixteen
/// bytes at a time (vector instructions), then the last few as words of eight. Keys and
/// most values are shorter than sixteen bytes; looking at those byte by byte was most of
/// the time spent writing.
fn next_to_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let first = |chunk: &[u8]| chunk.iter().position(|&b| escaped(b));
    let mut chunks = bytes[from..].chunks_exact(16);
    let mut at = from;
    for chunk in chunks.by_ref() {
        if chunk.iter().fold(false, |hit, &b| hit | escaped(b)) {
            return first(chunk).map(|n| at + n);
        }
        at += 16;
    }
    let tail = chunks.remainder();
    let hit = match bytes.len().checked_sub(8) {
        // The last word reaches back over bytes already looked at where the tail is
        // shorter than eight; `first` then looks at the tail alone.
        Some(last) => (tail.len() > 8 && word_escapes(&tail[..8])) || word_escapes(&bytes[last..]),
        None => tail.iter().fold(false, |hit, &b| hit | escaped(b)),
    };
    if hit {
        first(tail).map(|n| at + n)
    } else {
        None
    }
}

/// Whether any of eight bytes is one JSON escapes: a byte below 0x20, `"` or `\`
/// (the borrow of a subtraction marks a byte below a bound; only a byte below it starts
/// a borrow, so the answer is exact).
fn word_escapes(eight: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = <[u8; 8]>::try_from(eight).map_or(0, u64::from_le_bytes);
    let below = |bound: u64, v: u64| v.wrapping_sub(ONES * bound) & !v & HIGH != 0;
    below(0x20, word)
        | below(1, word ^ (ONES * u64::from(b'"')))
        | below(1, word ^ (ONES * u64::from(b'\\')))
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
pub fn ext<'a>(url: &'a str, key: &'static str, value: impl Into<Json<'a>>) -> Json<'a> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn written(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every ASCII byte, DEL included, then text around escapes at both ends of a
        // sixteen-byte chunk and across one.
        let ascii: String = (0u8..=0x7f).map(char::from).collect();
        let cases = [
            ascii.as_str(),
            "",
            "Vårdcentralen Öster — 08:00–10:00",
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hej</p></div>",
            "0123456789abcde\"",
            "0123456789abcdef\"",
            "\\0123456789abcdef0123456789abcdef\n",
            "\u{1f}\u{7f}\u{85}\u{2028}",
            // In the last few bytes, looked at as words of eight.
            "ab\"",
            "abcdefg\\",
            "abcdefghijklmn\t",
            "0123456789abcdef0123\u{1}",
            "0123456789abcdef01234567890\"",
            "\"0123456789abcdef01234",
            "åäö\u{a2}\u{dc}\u{c2}\u{a2}",
        ];
        for case in cases {
            assert_eq!(
                written(case),
                serde_json::to_string(case).unwrap(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn a_tree_is_written_as_serde_json_writes_it() {
        let mut tree = object! { "resourceType": "Goal", "active": true, "none": Json::Null };
        tree.put(
            "note",
            vec![object! { "text": "rad 1\nrad 2" }, Json::from("\"")],
        );
        tree.put("kept", serde_json::json!({"a": [1, 2.5, null], "b\t": "c"}));
        assert_eq!(tree.to_vec(), serde_json::to_vec(&tree).unwrap());
        assert_eq!(
            String::from_utf8(tree.to_vec()).unwrap(),
            r#"{"resourceType":"Goal","active":true,"none":null,"note":[{"text":"rad 1\nrad 2"},"\""],"kept":{"a":[1,2.5,null],"b\t":"c"}}"#
        );
    }

    #[test]
    fn the_output_is_sized_for_the_tree() {
        // Without escapes the length is exact.
        let goal = object! { "resourceType": "Goal", "id": "g-1", "active": false, "note": vec![object! { "text": "Hej" }] };
        assert_eq!(goal.unescaped_len(), goal.to_vec().len());
        // A narrative's quotes fit in the room besides: the buffer is not doubled.
        let div = format!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"sv\">{}{}</div>",
            "<p>Det här är viktigt för mig.</p>".repeat(150),
            "<th scope=\"col\">När</th>".repeat(8)
        );
        let plan = object! { "resourceType": "CarePlan", "text": object! { "status": "generated", "div": div.as_str() } };
        let bytes = plan.to_vec();
        assert_eq!(bytes.len(), plan.unescaped_len() + 20);
        assert!(
            bytes.capacity() < bytes.len() + bytes.len() / 32,
            "{}",
            bytes.capacity()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_escaped_as_serde_json_escapes_it(s in proptest::prelude::any::<String>(), ascii in "[\\x00-\\x7f]{0,40}") {
            proptest::prop_assert_eq!(written(&s), serde_json::to_string(&s).unwrap());
            proptest::prop_assert_eq!(written(&ascii), serde_json::to_string(&ascii).unwrap());
        }
    }
}
