//! `Status`: where a contract is in its life, with FHIR CarePlan's status codes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The contract's status. `completed` and `revoked` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Draft,
    Active,
    OnHold,
    Completed,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::OnHold => "on-hold",
            Self::Completed => "completed",
            Self::Revoked => "revoked",
        }
    }

    /// Whether a contract in this status may change to `next`: a draft may become
    /// anything, a contract in force may not go back to draft, and a finished one stays so.
    pub fn can_become(self, next: Status) -> bool {
        match (self, next) {
            (a, b) if a == b => true,
            (Self::Draft, _) => true,
            (Self::Active | Self::OnHold, Self::Draft) => false,
            (Self::Active | Self::OnHold, _) => true,
            (Self::Completed | Self::Revoked, _) => false,
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Self::Draft,
            Self::Active,
            Self::OnHold,
            Self::Completed,
            Self::Revoked,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn finished_contracts_stay_finished() {
        assert!(Draft.can_become(Active));
        assert!(Active.can_become(OnHold) && OnHold.can_become(Active));
        assert!(!Active.can_become(Draft));
        assert!(!Completed.can_become(Active) && !Revoked.can_become(Draft));
        assert!(Revoked.can_become(Revoked));
    }
}
