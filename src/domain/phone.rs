//! How a person reaches care by phone: `PhoneNumber` and `PhoneHours`.

use std::fmt;

use jiff::civil::Time;
use serde::{Deserialize, Serialize};

use super::violation::IdentifierError;

/// A phone number as people write it (`010-241 00 00`, `+46 10 241 00 00`), checked to
/// hold 6–20 digits and nothing but digits, spaces, hyphens and a leading `+`; or one of
/// Sweden's short national numbers (3–5 digits beginning with 1: `1177`, `112`,
/// `114 14`, `113 13`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let s = input.trim();
        let body = s.strip_prefix('+').unwrap_or(s);
        let digits = body.bytes().filter(u8::is_ascii_digit).count();
        let allowed = body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-');
        let short = !s.starts_with('+') && body.starts_with('1') && (3..=5).contains(&digits);
        if allowed && ((6..=20).contains(&digits) || short) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdentifierError::PhoneShape)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A day of the week, with FHIR's `days-of-week` codes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Self::Mon,
        Self::Tue,
        Self::Wed,
        Self::Thu,
        Self::Fri,
        Self::Sat,
        Self::Sun,
    ];
    pub const WORKDAYS: [Weekday; 5] = [Self::Mon, Self::Tue, Self::Wed, Self::Thu, Self::Fri];

    /// The day as it is written in JSON, which is also FHIR's `days-of-week` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Mon => "mon",
            Self::Tue => "tue",
            Self::Wed => "wed",
            Self::Thu => "thu",
            Self::Fri => "fri",
            Self::Sat => "sat",
            Self::Sun => "sun",
        }
    }
}

/// When a phone line is open: on these days, from `opens` until `closes` (local time);
/// `closes` may be the end of the day, written `24:00` (`00:00–24:00` is "dygnet runt").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PhoneHoursJson", into = "PhoneHoursJson")]
pub struct PhoneHours {
    days: Vec<Weekday>,
    opens: Time,
    closes: Time,
}

impl PhoneHours {
    /// Hours on `days` from `opens` to `closes`; closing must come after opening.
    pub fn new(days: Vec<Weekday>, opens: Time, closes: Time) -> Result<Self, IdentifierError> {
        if closes <= opens {
            return Err(IdentifierError::HoursClosedBeforeOpen);
        }
        let mut days = days;
        days.sort();
        days.dedup();
        Ok(Self {
            days,
            opens,
            closes,
        })
    }

    /// Hours in words as people write them in configuration and on the command line:
    /// `mon-fri 08:00-10:00`, `mon,wed 13:00-15:00`.
    pub fn from_words(words: &str) -> Result<Self, IdentifierError> {
        let (days, times) = words
            .trim()
            .split_once(' ')
            .ok_or(IdentifierError::TimeShape)?;
        let (opens, closes) = times
            .trim()
            .split_once('-')
            .ok_or(IdentifierError::TimeShape)?;
        let day = |d: &str| {
            Weekday::ALL
                .into_iter()
                .find(|w| format!("{w:?}").eq_ignore_ascii_case(d.trim()))
                .ok_or(IdentifierError::TimeShape)
        };
        let mut list = Vec::new();
        for part in days.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (day(from)?, day(to)?);
                    list.extend(Weekday::ALL.into_iter().filter(|w| *w >= from && *w <= to));
                }
                None => list.push(day(part)?),
            }
        }
        Self::new(
            list,
            parse_clock(opens.trim())?,
            parse_clock(closes.trim())?,
        )
    }

    pub fn days(&self) -> &[Weekday] {
        &self.days
    }

    pub fn opens(&self) -> Time {
        self.opens
    }

    pub fn closes(&self) -> Time {
        self.closes
    }
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PhoneHoursJson {
    days: Vec<Weekday>,
    opens: String,
    closes: String,
}

/// `hh:mm`; `24:00` is the end of the day ([`Time::MAX`]).
fn parse_clock(s: &str) -> Result<Time, IdentifierError> {
    if s == "24:00" {
        return Ok(Time::MAX);
    }
    let b = s.as_bytes();
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| (c - b'0') as i8)
    };
    match (b.len(), b.get(2), digit(0), digit(1), digit(3), digit(4)) {
        (5, Some(b':'), Some(h1), Some(h2), Some(m1), Some(m2)) => {
            Time::new(h1 * 10 + h2, m1 * 10 + m2, 0, 0).map_err(|_| IdentifierError::TimeShape)
        }
        _ => Err(IdentifierError::TimeShape),
    }
}

fn format_clock(t: Time) -> String {
    if t == Time::MAX {
        return "24:00".into();
    }
    format!("{:02}:{:02}", t.hour(), t.minute())
}

impl TryFrom<PhoneHoursJson> for PhoneHours {
    type Error = IdentifierError;
    fn try_from(raw: PhoneHoursJson) -> Result<Self, Self::Error> {
        Self::new(
            raw.days,
            parse_clock(&raw.opens)?,
            parse_clock(&raw.closes)?,
        )
    }
}

impl From<PhoneHours> for PhoneHoursJson {
    fn from(h: PhoneHours) -> Self {
        Self {
            days: h.days,
            opens: format_clock(h.opens),
            closes: format_clock(h.closes),
        }
    }
}

/// In OpenAPI: as it is written in JSON (days, and `hh:mm` opening and closing).
impl utoipa::PartialSchema for PhoneHours {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        PhoneHoursJson::schema()
    }
}

impl utoipa::ToSchema for PhoneHours {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <PhoneHoursJson as utoipa::ToSchema>::schemas(schemas);
        schemas.push((
            "Weekday".into(),
            <Weekday as utoipa::PartialSchema>::schema(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_code_is_how_it_is_written_in_json() {
        for day in Weekday::ALL {
            assert_eq!(serde_json::json!(day), serde_json::json!(day.code()));
        }
    }

    #[test]
    fn phone_numbers_as_people_write_them() {
        for s in [
            "010-241 00 00",
            "+46 10 241 00 00",
            "0771-11 77 00",
            "1177",
            "112",
            "114 14",
        ] {
            assert!(PhoneNumber::parse(s).is_ok(), "{s}");
        }
        for s in ["ring oss", "+46+10 241", "12", "+1177", "2345", "011 77"] {
            assert!(PhoneNumber::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn hours_round_trip_through_json_as_hh_mm() {
        let json = r#"{"days":["mon","tue","wed","thu","fri"],"opens":"08:00","closes":"10:30"}"#;
        let h: PhoneHours = serde_json::from_str(json).unwrap();
        assert_eq!(h.days(), Weekday::WORKDAYS);
        assert_eq!(serde_json::to_string(&h).unwrap(), json);
    }

    #[test]
    fn hours_must_close_after_opening() {
        let bad = r#"{"days":["mon"],"opens":"10:00","closes":"08:00"}"#;
        let err = serde_json::from_str::<PhoneHours>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("close after they open"), "{err}");
        for t in ["8", "8:00:00", "24:01", "25:00", "08:60", "-1:00", "08.00"] {
            assert!(parse_clock(t).is_err(), "{t}");
        }
    }

    /// "Dygnet runt": a line open until midnight is written `24:00`.
    #[test]
    fn hours_may_run_to_midnight() {
        let json = r#"{"days":["mon","tue","wed","thu","fri","sat","sun"],"opens":"00:00","closes":"24:00"}"#;
        let h: PhoneHours = serde_json::from_str(json).unwrap();
        assert_eq!(h.closes(), Time::MAX);
        assert_eq!(serde_json::to_string(&h).unwrap(), json);
        assert!(PhoneHours::from_words("mon-sun 00:00-24:00").is_ok());
        assert!(PhoneHours::from_words("mon 24:00-24:00").is_err());
    }
}

#[cfg(test)]
mod words_tests {
    use super::*;

    #[test]
    fn phone_hours_in_words() {
        let h = PhoneHours::from_words("mon-fri 08:00-10:00").unwrap();
        assert_eq!(h.days().len(), 5);
        assert_eq!((h.opens().hour(), h.closes().hour()), (8, 10));
        let h = PhoneHours::from_words("Mon,wed,sun 13:30-15:00").unwrap();
        assert_eq!(h.days(), [Weekday::Mon, Weekday::Wed, Weekday::Sun]);
        for bad in [
            "mon-fri",
            "funday 08:00-09:00",
            "mon 10:00-09:00",
            "mon 8-9",
        ] {
            assert!(PhoneHours::from_words(bad).is_err(), "{bad}");
        }
    }
}
