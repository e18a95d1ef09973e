//! A care transition as a write: the contract handed over to the receiving unit in one
//! version (see [`crate::domain::Contract::transfer`]), or kept to be applied at a
//! handover still ahead.

use super::versions::{self, Rendered};
use super::{Caller, WriteError, Writer};
use crate::domain::{ContractId, Transfer, Version};
use crate::store::{Change, Pending, Record};

/// What a transfer did.
#[derive(Debug, Clone)]
pub enum Transferred {
    /// Handed over: the version that says so.
    Done(Box<Record>),
    /// The handover is ahead: kept under this schedule id, and applied by the gateway
    /// at its instant; until then the sending unit stays responsible.
    Scheduled(String),
}

impl Writer {
    /// Transfers contract `id` as `t` says, based on `if_match` (the current version
    /// when `None`), at `now` or, for a handover after `now`, at its instant.
    pub async fn transfer(
        &self,
        caller: &Caller,
        id: &ContractId,
        if_match: Option<Version>,
        t: &Transfer,
        now: jiff::Timestamp,
    ) -> Result<Transferred, WriteError> {
        let name = format!("CarePlan/{id}");
        let current = self.live(caller, id, &name).await?;
        let version = current.revision.version;
        if let Some(named) = if_match.filter(|v| *v != version) {
            return Err(WriteError::Stale {
                resource: name,
                named,
                current: version,
            });
        }
        let contract = &current.revision.contract;
        let next = contract
            .transfer(t)
            .map_err(|v| WriteError::Rules(v, Box::new(contract.clone())))?;
        caller.may_write(Some(contract), &next, &name)?;
        if t.at > now {
            let sid = uuid::Uuid::new_v4().simple().to_string();
            if !self
                .store
                .schedule_transfer(&sid, id, t, &caller.source)
                .await?
            {
                return Err(WriteError::Conflict(format!(
                    "a transfer of {name} is already scheduled; cancel it first"
                )));
            }
            return Ok(Transferred::Scheduled(sid));
        }
        let change = Change::transfer(caller.source.clone(), t, contract).ok_or_else(|| {
            WriteError::Rules(
                crate::domain::Violation::TransferWithoutUnit.into(),
                Box::new(contract.clone()),
            )
        })?;
        let foreign = current.revision.foreign_fhir.clone();
        let rendered = Rendered::of(id, &next, foreign.as_ref(), &self.profile);
        let pending = Pending {
            id: id.clone(),
            base: Some(version),
            based_on: Some(Box::new(current.revision.clone())),
            contract: next,
            change,
            foreign_fhir: foreign,
            deleted: false,
            unchanged: versions::unchanged(Some(&current), &rendered, &self.profile),
        };
        let record = self.commit_one(caller, pending, &name).await?;
        Ok(Transferred::Done(Box::new(record)))
    }
}
