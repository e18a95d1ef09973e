//! `Samordningsnummer`: the coordination number for people who are not (or not yet)
//! registered in Sweden. Same shape as a personnummer, with 60 added to the birth day.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::personnummer::NationalDigits;
use super::violation::IdentifierError;

const DAY_OFFSET: u8 = 60;

/// A valid samordningsnummer: 12 digits, birth day + 60, and a correct check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Samordningsnummer(NationalDigits);

impl Samordningsnummer {
    /// Parses `YYYYMMDDNNNC` (with or without separator) where DD is the birth day + 60.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        NationalDigits::parse(input, DAY_OFFSET).map(Self)
    }

    /// The number for a birth date and a serial (0–999), with its check digit computed.
    pub fn from_parts(birth_date: Date, serial: u16) -> Self {
        Self(NationalDigits::from_parts(birth_date, serial, DAY_OFFSET))
    }

    pub fn birth_date(&self) -> Date {
        self.0.birth_date(DAY_OFFSET).unwrap_or_default()
    }
}

impl fmt::Display for Samordningsnummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn accepts_day_plus_sixty() {
        // Born 1970-10-03: day field 63.
        let s = Samordningsnummer::parse("19701063-2391").unwrap();
        assert_eq!(s.to_string(), "197010632391");
        assert_eq!(s.birth_date(), date(1970, 10, 3));
    }

    #[test]
    fn rejects_personnummer_and_bad_numbers() {
        assert_eq!(
            Samordningsnummer::parse("191212121212"),
            Err(IdentifierError::IsPersonnummer)
        );
        assert_eq!(
            Samordningsnummer::parse("197010632392"),
            Err(IdentifierError::BadCheckDigit)
        );
        // Day 92 would be the 32nd.
        assert_eq!(
            Samordningsnummer::parse("197010922391"),
            Err(IdentifierError::ImpossibleDate)
        );
    }

    proptest! {
        #[test]
        fn every_built_number_parses_back(y in 1900i16..2030, m in 1i8..=12, d in 1i8..=28, serial in 0u16..1000) {
            let birth = date(y, m, d);
            let s = Samordningsnummer::from_parts(birth, serial);
            let parsed = Samordningsnummer::parse(&s.to_string()).unwrap();
            prop_assert_eq!(parsed.birth_date(), birth);
            prop_assert!(super::super::Personnummer::parse(&s.to_string()).is_err());
        }
    }
}
