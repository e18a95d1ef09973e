//! Date search parameters (`_lastUpdated`, `date`): a prefix (`eq`, `ne`, `gt`, `ge`,
//! `lt`, `le`; `eq` when absent) and a date or dateTime. A date without a time is the
//! whole day in Swedish time (Europe/Stockholm), the server's time zone.

use jiff::{Timestamp, ToSpan};

use super::error::FhirError;
use crate::swedish::stockholm;

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
                format!("'{value}' is not [eq|ne|gt|ge|lt|le]YYYY-MM-DD[Thh:mm:ss+zz:zz]"),
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
        let (low, high) = if let Ok(t) = rest.parse::<Timestamp>() {
            (t, t.checked_add(1.nanosecond()).map_err(|_| bad())?)
        } else {
            let day: jiff::civil::Date = rest.parse().map_err(|_| bad())?;
            let start = day.to_zoned(stockholm()).map_err(|_| bad())?;
            let end = start.tomorrow().map_err(|_| bad())?;
            (start.timestamp(), end.timestamp())
        };
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
}
