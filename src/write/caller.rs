//! Who makes a change: passed into every write as a plain value, never read from the
//! request's context.

use std::sync::Arc;

use crate::auth::{Principal, Refusal};
use crate::domain::{Change, Contract};
use crate::store::RequestTrace;

use super::WriteError;

/// The caller of a write: the principal its token names (client, subject, scopes, the
/// patient it is limited to, the units it may write for) and the system the change
/// comes from, recorded with the version so the change is never sent back there.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub source: String,
    /// Why the caller makes its changes, kept with each version it writes.
    pub reason: Option<String>,
    /// The request the changes are made for, whose audit row the versions' rows are.
    pub trace: Option<Arc<RequestTrace>>,
}

impl Caller {
    pub fn new(principal: Arc<Principal>, source: impl Into<String>) -> Self {
        Self {
            principal,
            source: source.into(),
            reason: None,
            trace: None,
        }
    }

    /// With a reason for the changes it makes.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// For the request `trace`: the versions' audit rows are its rows.
    pub fn for_request(mut self, trace: Arc<RequestTrace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Where a change by this caller came from and why, as kept with the version; a
    /// caller limited to a person is that person, the change's author (`Patient/{id}`).
    pub fn change(&self) -> Change {
        Change {
            source: self.source.clone(),
            author: self
                .principal
                .compartment()
                .map(|person| format!("Patient/{person}")),
            reason: self.reason.clone(),
            transfer: None,
            merged_from: None,
        }
    }

    /// The gateway itself (sync, the CLI, imports): unrestricted.
    pub fn gateway(source: impl Into<String>) -> Self {
        let source = source.into();
        Self::new(Arc::new(Principal::unrestricted(source.clone())), source)
    }

    /// Whether the caller may see this contract's person.
    pub fn sees(&self, contract: &Contract) -> bool {
        self.principal.sees(&contract.patient.id)
    }

    /// Whether the caller may store `after` in place of `before` (none for a new
    /// contract; see [`Principal::may_write`]); a contract the caller may not see is
    /// "not found", as if it did not exist.
    pub(super) fn may_write(
        &self,
        before: Option<&Contract>,
        after: &Contract,
        name: &str,
    ) -> Result<(), WriteError> {
        self.principal
            .may_write(before, after)
            .map_err(|refusal| match refusal {
                Refusal::NotVisible => WriteError::not_known(name),
                Refusal::Forbidden(why) => WriteError::Forbidden(why),
            })
    }
}
