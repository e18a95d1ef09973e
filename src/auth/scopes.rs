//! SMART App Launch scopes (<https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html>):
//! `context/Type.letters` in version 2 (`system/*.cruds`, `user/CarePlan.rs`,
//! `patient/*.rs`) and the version 1 forms (`patient/*.read`, `user/*.write`, `…/*.*`).
//!
//! Each interaction needs its letter: **c**reate, **r**ead (and vread, history of one
//! resource), **u**pdate, **d**elete, **s**earch (and history of a type). Scopes the
//! gateway does not grant anything for (`openid`, `fhirUser`, `launch/patient`, scopes
//! narrowed by a query such as `patient/Observation.rs?category=…`) are ignored: they
//! never widen access.

use std::fmt;

/// Who a scope speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Context {
    /// The patient in the token's `patient` claim, and only them.
    Patient,
    /// The user the token was issued to, with what that user may see.
    User,
    /// A system acting on its own behalf (an EHR, a batch job).
    System,
}

/// One interaction letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Letter {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Letter {
    pub const ALL: [Letter; 5] = [
        Letter::Create,
        Letter::Read,
        Letter::Update,
        Letter::Delete,
        Letter::Search,
    ];

    pub fn as_char(self) -> char {
        match self {
            Letter::Create => 'c',
            Letter::Read => 'r',
            Letter::Update => 'u',
            Letter::Delete => 'd',
            Letter::Search => 's',
        }
    }
}

impl fmt::Display for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// One granted scope: a context, a resource type (or `*`), and letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub context: Context,
    /// A resource type, or `*` for all.
    pub resource: String,
    letters: [bool; 5],
}

impl Grant {
    /// Parses one scope; `None` for a scope that grants no data access here.
    pub fn parse(scope: &str) -> Option<Grant> {
        if scope.contains('?') {
            return None;
        }
        let (context, rest) = scope.split_once('/')?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return None,
        };
        let (resource, permissions) = rest.rsplit_once('.')?;
        let valid_type = resource == "*"
            || (resource.starts_with(|c: char| c.is_ascii_uppercase())
                && resource.chars().all(|c| c.is_ascii_alphanumeric()));
        if !valid_type {
            return None;
        }
        let letters = match permissions {
            // SMART v1.
            "read" => [false, true, false, false, true],
            "write" => [true, false, true, true, false],
            "*" => [true; 5],
            // SMART v2: a non-empty subset of c, r, u, d, s, in that order.
            v2 => {
                let mut letters = [false; 5];
                let mut last = None;
                for c in v2.chars() {
                    let at = Letter::ALL.iter().position(|l| l.as_char() == c)?;
                    if last.is_some_and(|l| at <= l) {
                        return None;
                    }
                    letters[at] = true;
                    last = Some(at);
                }
                last?;
                letters
            }
        };
        Some(Grant {
            context,
            resource: resource.to_owned(),
            letters,
        })
    }

    pub fn allows(&self, resource: &str, letter: Letter) -> bool {
        (self.resource == "*" || self.resource == resource)
            && Letter::ALL
                .iter()
                .position(|l| *l == letter)
                .is_some_and(|i| self.letters[i])
    }
}

/// The grants of a token's `scope`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Grant>);

impl Scopes {
    /// From a space-separated `scope` claim.
    pub fn parse(scope: &str) -> Scopes {
        Scopes(scope.split_whitespace().filter_map(Grant::parse).collect())
    }

    /// Every letter on every type, for every context (the gateway with authentication
    /// turned off, and its own jobs).
    pub fn all() -> Scopes {
        Scopes(vec![Grant {
            context: Context::System,
            resource: "*".into(),
            letters: [true; 5],
        }])
    }

    /// Whether some grant allows `letter` on `resource`.
    pub fn allows(&self, resource: &str, letter: Letter) -> bool {
        self.0.iter().any(|g| g.allows(resource, letter))
    }

    /// Whether some grant of `context` allows `letter` on `resource`.
    pub fn allows_as(&self, context: Context, resource: &str, letter: Letter) -> bool {
        self.0
            .iter()
            .any(|g| g.context == context && g.allows(resource, letter))
    }

    /// Whether any grant is for the patient context.
    pub fn has_patient_context(&self) -> bool {
        self.0.iter().any(|g| g.context == Context::Patient)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scopes_grant_their_letters_on_their_types() {
        let s = Scopes::parse("openid fhirUser user/CarePlan.rs patient/*.r system/Goal.cud");
        assert!(s.allows("CarePlan", Letter::Read));
        assert!(s.allows("CarePlan", Letter::Search));
        assert!(!s.allows("CarePlan", Letter::Update));
        assert!(s.allows("Appointment", Letter::Read));
        assert!(!s.allows("Appointment", Letter::Search));
        assert!(s.allows("Goal", Letter::Delete));
        assert!(!s.allows("Goal", Letter::Search));
        assert!(s.has_patient_context());
    }

    #[test]
    fn v1_forms_are_accepted() {
        let read = Scopes::parse("patient/*.read");
        assert!(read.allows("CarePlan", Letter::Read) && read.allows("Goal", Letter::Search));
        assert!(!read.allows("CarePlan", Letter::Create));
        let write = Scopes::parse("user/CarePlan.write");
        assert!(
            write.allows("CarePlan", Letter::Update) && write.allows("CarePlan", Letter::Delete)
        );
        assert!(!write.allows("CarePlan", Letter::Read));
        assert!(Scopes::parse("system/*.*").allows("AuditEvent", Letter::Search));
    }

    #[test]
    fn malformed_or_narrowed_scopes_grant_nothing() {
        for scope in [
            "patient/*.sr",
            "patient/*.rr",
            "patient/*.",
            "patient/*.x",
            "admin/*.cruds",
            "patient/careplan.rs",
            "patient/Observation.rs?category=vital-signs",
            "patient/*",
            "launch/patient",
        ] {
            assert!(Scopes::parse(scope).is_empty(), "{scope}");
        }
    }
}
