//! `Reservnummer`: a region's temporary number for a person whose identity is not (yet)
//! known by a personnummer or samordningsnummer — an unconscious patient, a newborn, a
//! visitor from abroad. Each region issues its own, in a form of its own, under an
//! identifier system of its own; the number is used until the person gets a real one,
//! and their contracts are then merged onto it (`Patient/$merge`).
//!
//! The domain knows a reservnummer by its system and value; which systems a region
//! uses and what their values look like is configuration (`[[reservnummer]]`, see
//! [`crate::fhir::ReservnummerScheme`]), checked on every write.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::violation::IdentifierError;

/// The longest value a reservnummer may have.
pub const MAX_VALUE: usize = 40;
/// The longest system a reservnummer may name.
const MAX_SYSTEM: usize = 200;

/// A reservnummer: the issuing region's identifier system and the number in it.
/// Written `system|value`, as a FHIR token is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reservnummer {
    system: Box<str>,
    value: Box<str>,
}

impl Reservnummer {
    /// A reservnummer of `system` (an absolute URI: `urn:oid:…`, `http(s)://…`) and
    /// `value` (1–40 letters, digits or '-').
    pub fn new(system: &str, value: &str) -> Result<Self, IdentifierError> {
        let absolute = ["urn:oid:", "urn:uuid:", "http://", "https://"]
            .iter()
            .any(|p| system.len() > p.len() && system.starts_with(p));
        if !absolute
            || system.len() > MAX_SYSTEM
            || system
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '|')
        {
            return Err(IdentifierError::ReservnummerSystem);
        }
        if value.is_empty()
            || value.len() > MAX_VALUE
            || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(IdentifierError::ReservnummerShape);
        }
        Ok(Self {
            system: system.into(),
            value: value.into(),
        })
    }

    /// Parses the written form, `system|value`.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let (system, value) = input
            .split_once('|')
            .ok_or(IdentifierError::ReservnummerSystem)?;
        Self::new(system, value)
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

/// How one region writes its reservnummer (`[[reservnummer]]` in the settings): its
/// name, its identifier system, the pattern every value matches, and the short key that
/// names the system in a `Patient` id (`{key}-{value}`: a FHIR id cannot hold a URI).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservnummerScheme {
    pub region: String,
    pub system: String,
    /// Lower-case letters and digits, starting with a letter; unique among the schemes.
    pub key: String,
    /// A regular expression the whole value matches (anchored at both ends).
    pub pattern: Pattern,
}

/// A value pattern: a regular expression matched against the whole value.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern {
    written: String,
    anchored: regex_lite::Regex,
}

impl Pattern {
    pub fn new(written: &str) -> Result<Self, String> {
        let anchored = regex_lite::Regex::new(&format!("^(?:{written})$"))
            .map_err(|e| format!("'{written}' is not a regular expression: {e}"))?;
        Ok(Self {
            written: written.to_owned(),
            anchored,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        self.anchored.is_match(value)
    }

    pub fn as_str(&self) -> &str {
        &self.written
    }
}

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl Eq for Pattern {}

impl ReservnummerScheme {
    /// Checks what the types cannot: the system is one a reservnummer can have, the key
    /// is short and plain. Returns (field, why).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        Reservnummer::new(&self.system, "0").map_err(|e| ("system", e.to_string()))?;
        let plain = self.key.len() <= 16
            && self.key.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !plain {
            return Err((
                "key",
                format!(
                    "'{}' must be 1–16 lower-case letters or digits, starting with a letter",
                    self.key
                ),
            ));
        }
        Ok(())
    }
}

/// Checks a region's schemes: each on its own, and no key or system twice. The error
/// names the scheme by its place (`[2].key: …`).
pub fn check_schemes(schemes: &[ReservnummerScheme]) -> Result<(), String> {
    for (i, scheme) in schemes.iter().enumerate() {
        scheme
            .check()
            .map_err(|(field, why)| format!("[{i}].{field}: {why}"))?;
        if let Some(j) = schemes[..i]
            .iter()
            .position(|s| s.key == scheme.key || s.system == scheme.system)
        {
            return Err(format!(
                "[{i}]: the key or system of [{j}] again; each region's system once, under its own key"
            ));
        }
    }
    Ok(())
}

impl Reservnummer {
    /// Whether this is a reservnummer of one of `schemes`, in its form.
    pub fn check(&self, schemes: &[ReservnummerScheme]) -> Result<(), IdentifierError> {
        let scheme = schemes
            .iter()
            .find(|s| s.system == self.system())
            .ok_or_else(|| IdentifierError::ReservnummerUnknown(self.system().to_owned()))?;
        if scheme.pattern.matches(self.value()) {
            Ok(())
        } else {
            Err(IdentifierError::ReservnummerPattern {
                region: scheme.region.clone(),
                system: scheme.system.clone(),
                pattern: scheme.pattern.as_str().to_owned(),
            })
        }
    }
}

impl fmt::Display for Reservnummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.system, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_system_and_a_value() {
        let r = Reservnummer::parse("urn:oid:1.2.752.97.3.1.3|99123456-0001").unwrap();
        assert_eq!(r.system(), "urn:oid:1.2.752.97.3.1.3");
        assert_eq!(r.value(), "99123456-0001");
        assert_eq!(r.to_string(), "urn:oid:1.2.752.97.3.1.3|99123456-0001");
    }

    fn stockholm() -> ReservnummerScheme {
        ReservnummerScheme {
            region: "Region Stockholm".into(),
            system: "urn:oid:1.2.752.97.3.1.3".into(),
            key: "sll".into(),
            pattern: Pattern::new(r"99\d{6}-?\d{4}").unwrap(),
        }
    }

    #[test]
    fn a_region_says_which_values_are_its_own() {
        let schemes = [stockholm()];
        let ok = Reservnummer::parse("urn:oid:1.2.752.97.3.1.3|99123456-0001").unwrap();
        assert_eq!(ok.check(&schemes), Ok(()));
        // The pattern holds for the whole value, not a part of it.
        let longer = Reservnummer::parse("urn:oid:1.2.752.97.3.1.3|99123456-00012").unwrap();
        assert!(matches!(
            longer.check(&schemes),
            Err(IdentifierError::ReservnummerPattern { .. })
        ));
        let other = Reservnummer::parse("urn:oid:1.2.752.129.2.1.3|99123456-0001").unwrap();
        assert_eq!(
            other.check(&schemes),
            Err(IdentifierError::ReservnummerUnknown(
                "urn:oid:1.2.752.129.2.1.3".into()
            ))
        );
        // A region without reservnummer takes none.
        assert!(matches!(
            ok.check(&[]),
            Err(IdentifierError::ReservnummerUnknown(_))
        ));
    }

    #[test]
    fn a_scheme_is_checked() {
        assert_eq!(stockholm().check(), Ok(()));
        let bad_key = ReservnummerScheme {
            key: "SLL".into(),
            ..stockholm()
        };
        assert_eq!(bad_key.check().unwrap_err().0, "key");
        let bad_system = ReservnummerScheme {
            system: "sll".into(),
            ..stockholm()
        };
        assert_eq!(bad_system.check().unwrap_err().0, "system");
        assert!(Pattern::new("99(").is_err());
        let twice = [stockholm(), stockholm()];
        assert!(check_schemes(&twice).unwrap_err().starts_with("[1]:"));
        assert!(
            check_schemes(&[bad_key])
                .unwrap_err()
                .starts_with("[0].key:")
        );
    }

    #[test]
    fn refuses_what_is_no_identifier() {
        for (input, why) in [
            ("99123456", IdentifierError::ReservnummerSystem),
            ("oid:1.2|991", IdentifierError::ReservnummerSystem),
            ("urn:oid:|991", IdentifierError::ReservnummerSystem),
            ("urn:oid:1.2 3|991", IdentifierError::ReservnummerSystem),
            ("urn:oid:1.2|", IdentifierError::ReservnummerShape),
            ("urn:oid:1.2|99 12", IdentifierError::ReservnummerShape),
            ("urn:oid:1.2|99|12", IdentifierError::ReservnummerShape),
            ("https://x.se/r|åäö", IdentifierError::ReservnummerShape),
        ] {
            assert_eq!(Reservnummer::parse(input), Err(why), "{input}");
        }
        let long = format!("urn:oid:1.2|{}", "9".repeat(MAX_VALUE + 1));
        assert_eq!(
            Reservnummer::parse(&long),
            Err(IdentifierError::ReservnummerShape)
        );
    }
}
