//! A value that must never be printed: a password in a database URL, a token secret,
//! a client secret. Its `Debug` says `[redacted]`; the value is read only through
//! [`Secret::expose`]. Its own module, so settings of every part (the config, auth,
//! sync) can hold one without importing each other.

use std::fmt;

use serde::Deserialize;

/// A value that must not be printed (it may hold a password).
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "[redacted]"
        })
    }
}
