//! `PersonId`: who a contract is about, by personnummer, samordningsnummer or, until
//! the person has one of those, a region's reservnummer.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::violation::IdentifierError;
use super::{Personnummer, Reservnummer, Samordningsnummer};

/// The person's identity: a personnummer or, for those without one, a samordningsnummer
/// — written as the bare 12 digits, the day field tells which — or a region's
/// reservnummer, written `system|value`, used until the person gets a real number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PersonId {
    Personnummer(Personnummer),
    Samordningsnummer(Samordningsnummer),
    Reservnummer(Reservnummer),
}

impl PersonId {
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        if input.contains('|') {
            return Reservnummer::parse(input).map(Self::Reservnummer);
        }
        match Personnummer::parse(input) {
            Ok(p) => Ok(Self::Personnummer(p)),
            Err(IdentifierError::IsSamordningsnummer) => {
                Samordningsnummer::parse(input).map(Self::Samordningsnummer)
            }
            Err(e) => Err(e),
        }
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Personnummer(p) => p.fmt(f),
            Self::Samordningsnummer(s) => s.fmt(f),
            Self::Reservnummer(r) => r.fmt(f),
        }
    }
}

/// In OpenAPI: the 12-digit number, as it is written.
impl utoipa::PartialSchema for PersonId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(
                r"^(\d{8}[-+]?\d{4}|[a-z]+:[^|\s]+\|[A-Za-z0-9-]{1,40})$",
            ))
            .description(Some(
                "Personnummer or samordningsnummer, 12 digits (YYYYMMDDNNNN, a hyphen allowed), \
                 or a region's reservnummer written system|value",
            ))
            .into()
    }
}

impl utoipa::ToSchema for PersonId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_two_kinds_apart() {
        assert!(matches!(
            PersonId::parse("19121212-1212"),
            Ok(PersonId::Personnummer(_))
        ));
        assert!(matches!(
            PersonId::parse("197010632391"),
            Ok(PersonId::Samordningsnummer(_))
        ));
        assert_eq!(
            PersonId::parse("197010632392"),
            Err(IdentifierError::BadCheckDigit)
        );
        assert!(matches!(
            PersonId::parse("urn:oid:1.2.752.97.3.1.3|99123456-0001"),
            Ok(PersonId::Reservnummer(_))
        ));
    }

    #[test]
    fn is_written_as_it_is_read() {
        for written in [
            "191212121212",
            "197010632391",
            "urn:oid:1.2.752.97.3.1.3|99123456-0001",
        ] {
            let id = PersonId::parse(written).unwrap();
            assert_eq!(id.to_string(), written);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<PersonId>(&json).unwrap(), id);
        }
    }
}
