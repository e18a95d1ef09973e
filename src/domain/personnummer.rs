//! `Personnummer`: the Swedish personal identity number (folkbokföring), always held as
//! the 12-digit form `YYYYMMDDNNNC`.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::luhn;
use super::violation::IdentifierError;

/// A valid personnummer: 12 digits, a real birth date, and a correct Luhn check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Personnummer(NationalDigits);

/// Twelve digits of a national identity number whose check digit is right; `day_offset`
/// is 0 for a personnummer and 60 for a samordningsnummer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NationalDigits([u8; 12]);

impl NationalDigits {
    /// Parses `YYYYMMDDNNNC`, optionally with `-` or `+` before the last four digits.
    /// Checks shape, digits, which kind of number it is (`day_offset` 0 for a
    /// personnummer, 60 for a samordningsnummer), the birth date and the check digit.
    pub(crate) fn parse(input: &str, day_offset: u8) -> Result<Self, IdentifierError> {
        let s = input.trim();
        let compact: String = if s.len() == 13 && matches!(s.as_bytes()[8], b'-' | b'+') {
            s.bytes()
                .enumerate()
                .filter(|(i, _)| *i != 8)
                .map(|(_, b)| char::from(b))
                .collect()
        } else {
            s.to_owned()
        };
        if compact.len() == 10 || compact.len() == 11 {
            return Err(IdentifierError::TenDigitForm);
        }
        if compact.len() != 12 {
            return Err(IdentifierError::WrongLength(compact.len()));
        }
        let mut digits = [0u8; 12];
        for (slot, b) in digits.iter_mut().zip(compact.bytes()) {
            if !b.is_ascii_digit() {
                return Err(IdentifierError::NotDigits);
            }
            *slot = b - b'0';
        }
        let parsed = NationalDigits(digits);
        match (day_offset, parsed.day_field()) {
            (0, d) if d > 60 => return Err(IdentifierError::IsSamordningsnummer),
            (60, d) if d <= 31 => return Err(IdentifierError::IsPersonnummer),
            _ => {}
        }
        parsed.birth_date(day_offset)?;
        if luhn::check_digit(&digits[2..11]) != digits[11] {
            return Err(IdentifierError::BadCheckDigit);
        }
        Ok(parsed)
    }

    /// Builds the digits for a birth date and a three-digit serial, computing the check digit.
    pub(crate) fn from_parts(date: Date, serial: u16, day_offset: u8) -> Self {
        let text = format!(
            "{:04}{:02}{:02}{:03}",
            date.year(),
            date.month(),
            date.day() as u8 + day_offset,
            serial % 1000
        );
        let mut digits = [0u8; 12];
        for (slot, b) in digits.iter_mut().zip(text.bytes()) {
            *slot = b - b'0';
        }
        digits[11] = luhn::check_digit(&digits[2..11]);
        NationalDigits(digits)
    }

    pub(crate) fn birth_date(&self, day_offset: u8) -> Result<Date, IdentifierError> {
        let d = &self.0;
        let num = |r: std::ops::Range<usize>| d[r].iter().fold(0i32, |a, &x| a * 10 + i32::from(x));
        let (year, month, day) = (num(0..4), num(4..6), num(6..8));
        let day = day - i32::from(day_offset);
        if !(1..=31).contains(&day) {
            return Err(IdentifierError::ImpossibleDate);
        }
        Date::new(year as i16, month as i8, day as i8).map_err(|_| IdentifierError::ImpossibleDate)
    }

    fn day_field(&self) -> u8 {
        self.0[6] * 10 + self.0[7]
    }
}

impl fmt::Display for NationalDigits {
    /// The twelve digits, written at once: a personnummer is written into every
    /// reference to the person, and formatting twelve numbers one by one stood out in the
    /// mapping's profile.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.map(|d| b'0' + d);
        // Every digit is 0–9 (see `parse`), so the text is ASCII.
        f.pad(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl Personnummer {
    /// Parses the 12-digit form, with or without a separator before the last four digits.
    /// The 10-digit form needs a reference date for the century: see [`Self::parse_short`].
    ///
    /// ```
    /// use pkgw::domain::Personnummer;
    ///
    /// let p = Personnummer::parse("19121212-1212").unwrap();
    /// assert_eq!(p.to_string(), "191212121212");
    /// assert!(Personnummer::parse("19121212-1213").is_err()); // wrong check digit
    /// ```
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        NationalDigits::parse(input, 0).map(Self)
    }

    /// Parses the 10-digit form `YYMMDD-NNNC` (`+` for people aged 100 or more) against
    /// `today`, picking the century that makes the person the right age.
    pub fn parse_short(input: &str, today: Date) -> Result<Self, IdentifierError> {
        let s = input.trim();
        if !s.is_ascii() {
            return Err(IdentifierError::NotDigits);
        }
        let (head, sep, tail) = match s.len() {
            11 => (&s[..6], s.as_bytes()[6], &s[7..]),
            10 => (&s[..6], b'-', &s[6..]),
            n => return Err(IdentifierError::WrongLength(n)),
        };
        if !matches!(sep, b'-' | b'+')
            || !head.bytes().chain(tail.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(IdentifierError::NotDigits);
        }
        let yy: i16 = head[..2].parse().map_err(|_| IdentifierError::NotDigits)?;
        let mut year = today.year() - (today.year() - yy).rem_euclid(100);
        // The birthday this century may still be ahead of us: then it was last century.
        let month_day: i32 = head[2..].parse().map_err(|_| IdentifierError::NotDigits)?;
        if year == today.year()
            && month_day > i32::from(today.month()) * 100 + i32::from(today.day())
        {
            year -= 100;
        }
        if sep == b'+' {
            year -= 100;
        }
        Self::parse(&format!(
            "{year:04}{head_rest}{tail}",
            head_rest = &head[2..]
        ))
    }

    /// The number for a birth date and a serial (0–999), with its check digit computed.
    pub fn from_parts(birth_date: Date, serial: u16) -> Self {
        Self(NationalDigits::from_parts(birth_date, serial, 0))
    }

    pub fn birth_date(&self) -> Date {
        self.0.birth_date(0).unwrap_or_default()
    }
}

impl fmt::Display for Personnummer {
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
    fn accepts_the_standard_test_numbers() {
        // Tolvan Tolvansson, the customary Swedish example.
        for s in ["191212121212", "19121212-1212", "19121212+1212"] {
            assert_eq!(Personnummer::parse(s).unwrap().to_string(), "191212121212");
        }
        // Skatteverket's check-digit example, and one from its published test-number data set.
        for s in ["198112189876", "201701012393"] {
            assert!(Personnummer::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_bad_check_digits_dates_and_shapes() {
        assert_eq!(
            Personnummer::parse("191212121213"),
            Err(IdentifierError::BadCheckDigit)
        );
        assert_eq!(
            Personnummer::parse("19120230-1212"),
            Err(IdentifierError::ImpossibleDate)
        );
        assert_eq!(
            Personnummer::parse("19121312-1212"),
            Err(IdentifierError::ImpossibleDate)
        );
        assert_eq!(
            Personnummer::parse("1912121212"),
            Err(IdentifierError::TenDigitForm)
        );
        assert_eq!(
            Personnummer::parse("19121212121"),
            Err(IdentifierError::TenDigitForm)
        );
        assert_eq!(
            Personnummer::parse("1912121212123"),
            Err(IdentifierError::WrongLength(13))
        );
        assert_eq!(
            Personnummer::parse("19121212X212"),
            Err(IdentifierError::NotDigits)
        );
        assert_eq!(
            Personnummer::parse(""),
            Err(IdentifierError::WrongLength(0))
        );
    }

    #[test]
    fn a_leap_day_is_a_date_only_in_leap_years() {
        assert!(
            Personnummer::parse(&Personnummer::from_parts(date(2000, 2, 29), 123).to_string())
                .is_ok()
        );
        let text = format!("19000229{}", "1234");
        assert_eq!(
            Personnummer::parse(&text),
            Err(IdentifierError::ImpossibleDate)
        );
    }

    #[test]
    fn samordningsnummer_is_not_a_personnummer() {
        let s = super::super::Samordningsnummer::from_parts(date(1970, 10, 3), 239).to_string();
        assert_eq!(
            Personnummer::parse(&s),
            Err(IdentifierError::IsSamordningsnummer)
        );
    }

    #[test]
    fn ten_digit_form_picks_the_century() {
        let today = date(2026, 11, 23);
        assert_eq!(
            Personnummer::parse_short("121212-1212", today)
                .unwrap()
                .to_string(),
            "201212121212"
        );
        assert_eq!(
            Personnummer::parse_short("121212+1212", today)
                .unwrap()
                .to_string(),
            "191212121212"
        );
        // Born 1926 and 100 years old: '+'.
        let p = Personnummer::from_parts(date(1926, 1, 5), 402).to_string();
        assert_eq!(
            Personnummer::parse_short(&format!("{}+{}", &p[2..8], &p[8..]), today)
                .unwrap()
                .to_string(),
            p
        );
        // A birthday later this year than today belongs to last century.
        let p = Personnummer::from_parts(date(1926, 12, 24), 402).to_string();
        assert_eq!(
            Personnummer::parse_short(&format!("{}-{}", &p[2..8], &p[8..]), today)
                .unwrap()
                .to_string(),
            p
        );
    }

    #[test]
    fn serde_uses_the_canonical_string() {
        let p: Personnummer = serde_json::from_str("\"19121212-1212\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"191212121212\"");
        assert!(serde_json::from_str::<Personnummer>("\"191212121213\"").is_err());
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (1890i16..2030, 1i8..=12, 1i8..=31)
            .prop_filter_map("real date", |(y, m, d)| Date::new(y, m, d).ok())
    }

    proptest! {
        #[test]
        fn every_built_number_parses_back(d in any_date(), serial in 0u16..1000) {
            let p = Personnummer::from_parts(d, serial);
            let parsed = Personnummer::parse(&p.to_string()).unwrap();
            prop_assert_eq!(parsed, p);
            prop_assert_eq!(parsed.birth_date(), d);
        }

        #[test]
        fn any_single_digit_change_in_the_check_part_is_caught(d in any_date(), serial in 0u16..1000, pos in 2usize..12, delta in 1u8..10) {
            let mut text: Vec<u8> = Personnummer::from_parts(d, serial).to_string().into_bytes();
            text[pos] = b'0' + (text[pos] - b'0' + delta) % 10;
            let text = String::from_utf8(text).unwrap();
            prop_assert!(Personnummer::parse(&text).is_err(), "{} parsed", text);
        }

        #[test]
        fn never_panics_on_arbitrary_input(s in proptest::collection::vec(any::<char>(), 0..20).prop_map(String::from_iter)) {
            let _ = Personnummer::parse(&s);
            let _ = Personnummer::parse_short(&s, date(2026, 1, 1));
        }
    }
}
