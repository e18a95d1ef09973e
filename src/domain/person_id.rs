//! `PersonId`: who a contract is about, by personnummer or samordningsnummer.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::violation::IdentifierError;
use super::{Personnummer, Samordningsnummer};

/// The person's national identity: a personnummer or, for those without one, a
/// samordningsnummer. Written as the bare 12 digits; the day field tells which it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PersonId {
    Personnummer(Personnummer),
    Samordningsnummer(Samordningsnummer),
}

impl PersonId {
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
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
        }
    }
}

/// In OpenAPI: the 12-digit number, as it is written.
impl utoipa::PartialSchema for PersonId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(r"^\d{8}-?\d{4}$"))
            .description(Some(
                "Personnummer or samordningsnummer, 12 digits (YYYYMMDDNNNN, a hyphen allowed)",
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
    }
}
