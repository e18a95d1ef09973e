//! Date search parameters (`_lastUpdated`, `date`): a prefix (`eq`, `ne`, `gt`, `ge`,
//! `lt`, `le`; `eq` when absent) and a date or dateTime at any of R4's precisions — a
//! year (`2026`), a month (`2026-12`), a day (`2026-12-10`), a minute
//! (`2026-12-10T23:00`), a second or a fraction of one — each naming the whole interval
//! it covers. Without a time zone the value is Swedish time (Europe/Stockholm), the
//! server's time zone.

use jiff::{Timestamp, ToSpan};

use super::error::FhirError;
use crate::swedish::stockholm;

/// The prefixes a date parameter takes (R4's `sa`, `eb` and `ap` are refused).
pub const PREFIXES: &[&str] = &["eq", "ne", "gt", "ge", "lt", "le"];

/// A parsed date search value: the prefix and the interval `[low, high)` it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateParam {
    prefix: Prefix,
    low: Timestamp,
    high: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl DateParam {
    pub fn parse(name: &str, value: &str) -> Result<DateParam, FhirError> {
        let bad = || {
            FhirError::bad_param(
                name,
                format!(
                    "'{value}' is not [eq|ne|gt|ge|lt|le] followed by YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]"
                ),
            )
        };
        let (prefix, rest) = match value.get(..2) {
            Some("eq") => (Prefix::Eq, &value[2..]),
            Some("ne") => (Prefix::Ne, &value[2..]),
            Some("gt") => (Prefix::Gt, &value[2..]),
            Some("ge") => (Prefix::Ge, &value[2..]),
            Some("lt") => (Prefix::Lt, &value[2..]),
            Some("le") => (Prefix::Le, &value[2..]),
            _ => (Prefix::Eq, value),
        };
        let (low, high) = interval(rest).ok_or_else(bad)?;
        Ok(DateParam { prefix, low, high })
    }

    /// Whether the instant `t` satisfies the parameter.
    pub fn matches(&self, t: Timestamp) -> bool {
        let inside = self.low <= t && t < self.high;
        match self.prefix {
            Prefix::Eq => inside,
            Prefix::Ne => !inside,
            Prefix::Gt => t >= self.high,
            Prefix::Ge => t >= self.low,
            Prefix::Lt => t < self.low,
            Prefix::Le => t < self.high,
        }
    }
}

/// The interval `[low, high)` a date or dateTime names, at its precision.
fn interval(value: &str) -> Option<(Timestamp, Timestamp)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = match value.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (value, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let number = |i: usize, len: usize| {
        parts
            .get(i)
            .filter(|p| p.len() == len && digits(p))
            .and_then(|p| p.parse::<i16>().ok())
    };
    let year = number(0, 4)?;
    let Some(time) = time else {
        let zone = stockholm();
        let (start, step) = match parts.len() {
            1 => (jiff::civil::date(year, 1, 1), 1.year()),
            2 => (
                jiff::civil::Date::new(year, number(1, 2)? as i8, 1).ok()?,
                1.month(),
            ),
            3 => (
                jiff::civil::Date::new(year, number(1, 2)? as i8, number(2, 2)? as i8).ok()?,
                1.day(),
            ),
            _ => return None,
        };
        let low = start.to_zoned(zone.clone()).ok()?;
        let high = start.checked_add(step).ok()?.to_zoned(zone).ok()?;
        return Some((low.timestamp(), high.timestamp()));
    };
    if parts.len() != 3 {
        return None;
    }
    // The zone: `Z`, `+hh:mm` or `-hh:mm` at the end, or none (Swedish time).
    let (clock, zone) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, Some(jiff::tz::TimeZone::UTC))
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        if !(h.len() == 2 && m.len() == 2 && digits(h) && digits(m)) {
            return None;
        }
        let seconds = sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60);
        let offset = jiff::tz::Offset::from_seconds(seconds).ok()?;
        (clock, Some(jiff::tz::TimeZone::fixed(offset)))
    } else {
        (time, None)
    };
    // The precision: a minute, a second, or the last digit of the fraction.
    let step = match clock.len() {
        5 => jiff::SignedDuration::from_secs(60),
        8 => jiff::SignedDuration::from_secs(1),
        n if n > 9 && clock.as_bytes().get(8) == Some(&b'.') && n - 9 <= 9 => {
            jiff::SignedDuration::from_nanos(10_i64.pow(9 - (n - 9) as u32))
        }
        _ => return None,
    };
    let full = if clock.len() == 5 {
        format!("{date}T{clock}:00")
    } else {
        format!("{date}T{clock}")
    };
    let civil: jiff::civil::DateTime = full.parse().ok()?;
    let low = civil
        .to_zoned(zone.unwrap_or_else(stockholm))
        .ok()?
        .timestamp();
    Some((low, low.checked_add(step).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_date_is_a_swedish_day() {
        let p = DateParam::parse("date", "2026-12-10").unwrap();
        // 23:30 UTC on the 9th is already the 10th in Stockholm (CET, +01:00).
        assert!(p.matches(t("2026-12-09T23:30:00Z")));
        assert!(!p.matches(t("2026-12-10T23:30:00Z")));
    }

    #[test]
    fn prefixes_compare_as_fhir_says() {
        let at = t("2026-12-10T08:30:00Z");
        let case = |v: &str| DateParam::parse("date", v).unwrap().matches(at);
        assert!(
            case("ge2026-12-10")
                && case("le2026-12-10")
                && !case("gt2026-12-10")
                && !case("lt2026-12-10")
        );
        assert!(
            case("gt2026-12-09")
                && case("lt2026-12-11")
                && case("ne2026-12-11")
                && !case("ne2026-12-10")
        );
        assert!(
            case("ge2026-12-10T08:30:00Z")
                && !case("gt2026-12-10T08:30:00Z")
                && case("eq2026-12-10T09:30:00+01:00")
        );
        assert!(DateParam::parse("date", "yesterday").is_err());
        assert!(DateParam::parse("date", "xx2026-12-10").is_err());
    }

    /// Each precision names its whole interval, in Swedish time unless a zone is given.
    #[test]
    fn every_precision_names_its_interval() {
        let at = t("2026-12-10T08:30:00Z"); // 09:30 in Stockholm
        let case = |v: &str| DateParam::parse("date", v).unwrap().matches(at);
        assert!(case("2026") && !case("2025") && case("ge2026") && !case("gt2026"));
        assert!(case("2026-12") && !case("2026-11") && case("lt2027-01"));
        assert!(case("2026-12-10T09:30") && !case("2026-12-10T23:00"));
        assert!(case("2026-12-10T08:30Z") && !case("2026-12-10T08:31Z"));
        assert!(case("2026-12-10T09:30:00") && case("2026-12-10T09:30:00.0"));
        assert!(case("2026-12-10T03:30-05:00"));
        assert!(!case("2026-12-10T08:30:01Z") && case("lt2026-12-10T08:30:01Z"));
        for bad in [
            "2026-1",
            "26-12-10",
            "2026-12-10T9:30",
            "2026-12-10T09:30+1",
            "2026-13",
            "2026-12-10T25:00",
        ] {
            assert!(DateParam::parse("date", bad).is_err(), "{bad}");
        }
    }
}
