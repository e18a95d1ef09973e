//! `Version`: the number of a contract version. The first is 1; each change adds one.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::violation::IdentifierError;

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
#[serde(try_from = "u64", into = "u64")]
pub struct Version(u64);

impl Version {
    pub const FIRST: Version = Version(1);

    /// Parses `3`, `"3"` or an ETag such as `W/"3"`.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let s = input.trim();
        let s = s.strip_prefix("W/").unwrap_or(s);
        let s = s.trim_matches('"');
        s.parse::<u64>()
            .map_err(|_| IdentifierError::VersionShape)
            .and_then(Self::try_from)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }

    /// Whether this version is the one directly after `previous`.
    pub fn follows(self, previous: Version) -> bool {
        self.0 == previous.0 + 1
    }

    /// The weak ETag for this version, `W/"n"`.
    pub fn etag(self) -> String {
        format!("W/\"{}\"", self.0)
    }
}

impl TryFrom<u64> for Version {
    type Error = IdentifierError;
    fn try_from(n: u64) -> Result<Self, Self::Error> {
        if n == 0 {
            Err(IdentifierError::VersionShape)
        } else {
            Ok(Self(n))
        }
    }
}

impl From<Version> for u64 {
    fn from(v: Version) -> Self {
        v.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_etags() {
        for s in ["3", "\"3\"", "W/\"3\"", " 3 "] {
            assert_eq!(Version::parse(s).unwrap().get(), 3, "{s}");
        }
        for s in ["0", "-1", "W/3x", ""] {
            assert!(Version::parse(s).is_err(), "{s}");
        }
        assert_eq!(Version::FIRST.next().etag(), "W/\"2\"");
        assert!(Version::FIRST.next().follows(Version::FIRST));
        assert!(!Version::FIRST.follows(Version::FIRST));
    }
}
