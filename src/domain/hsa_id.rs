//! `HsaId`: the identity of a unit or a person in the Swedish HSA catalogue
//! (OID 1.2.752.29.4.19), e.g. `SE2321000016-15CQ`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::violation::IdentifierError;

/// The longest HSA-id the catalogue allows.
const MAX_LEN: usize = 31;

/// A well-formed HSA-id: a two-letter country code, the issuing organisation's number
/// (10 or 12 digits), a hyphen and an alphanumeric suffix. Held in upper case.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct HsaId(String);

impl HsaId {
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let s = input.trim().to_ascii_uppercase();
        if s.is_empty() || s.len() > MAX_LEN || !s.is_ascii() {
            return Err(IdentifierError::HsaIdShape);
        }
        let Some((org, suffix)) = s.split_once('-') else {
            return Err(IdentifierError::HsaIdShape);
        };
        let (country, number) = org.split_at(org.len().min(2));
        let well_formed = country.len() == 2
            && country.bytes().all(|b| b.is_ascii_uppercase())
            && matches!(number.len(), 10 | 12)
            && number.bytes().all(|b| b.is_ascii_digit())
            && !suffix.is_empty()
            && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
        if well_formed {
            Ok(Self(s))
        } else {
            Err(IdentifierError::HsaIdShape)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HsaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_real_shapes() {
        for s in [
            "SE2321000016-15CQ",
            "SE162321000024-0001",
            "se2321000131-E000000000001",
        ] {
            assert!(HsaId::parse(s).is_ok(), "{s}");
        }
        assert_eq!(
            HsaId::parse(" se2321000016-15cq ").unwrap().as_str(),
            "SE2321000016-15CQ"
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "SE2321000016",
            "2321000016-15CQ",
            "SE232100001-15CQ",
            "SE2321000016-",
            "SE2321000016-15 CQ",
            "SE2321000016-ÅÄÖ",
        ] {
            assert_eq!(HsaId::parse(s), Err(IdentifierError::HsaIdShape), "{s}");
        }
        assert!(HsaId::parse(&format!("SE2321000016-{}", "A".repeat(20))).is_err());
    }

    proptest! {
        #[test]
        fn built_ids_parse_and_keep_their_text(org in 0u64..10_000_000_000, suffix in proptest::collection::vec(proptest::sample::select(b"ABCDEFXYZ0123456789".to_vec()), 1..15)) {
            let text = format!("SE{org:010}-{}", String::from_utf8(suffix).unwrap());
            prop_assert_eq!(HsaId::parse(&text).unwrap().to_string(), text);
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter)) {
            let _ = HsaId::parse(&s);
        }
    }
}
