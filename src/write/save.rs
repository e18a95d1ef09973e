//! Whole contracts: the native API's create and update, and the last step every write
//! shares — may the caller write it, does it keep the contract's rules, does it change
//! anything.

use serde_json::Value;

use super::versions::{self, Rendered};
use super::{Caller, Outcome, WriteError, Writer};
use crate::domain::{Contract, ContractId, Version};
use crate::store::{Pending, Record};

impl Writer {
    /// Stores a whole contract (the native API): as a new contract under `id` when
    /// `if_match` is `None`, else as the version after `if_match`, which must be the
    /// current one. What the earlier version kept of FHIR stays with it.
    pub async fn save(
        &self,
        caller: &Caller,
        id: &ContractId,
        if_match: Option<Version>,
        contract: Contract,
    ) -> Result<(Record, Outcome), WriteError> {
        let name = format!("contract {id}");
        let Some(v) = if_match else {
            return self.create(caller, id, contract, None).await;
        };
        let current = self.live(caller, id, &name).await?;
        if current.revision.version != v {
            return Err(WriteError::Stale {
                resource: name,
                named: v,
                current: current.revision.version,
            });
        }
        let foreign = current.revision.foreign_fhir.clone();
        self.store_one(caller, id, Some(current), contract, foreign, &name)
            .await
    }

    /// A new contract made whole (the native API, an import of FHIR resources), with
    /// what it keeps of FHIR (`foreign`); 409 when the id is taken.
    pub async fn create(
        &self,
        caller: &Caller,
        id: &ContractId,
        contract: Contract,
        foreign: Option<Value>,
    ) -> Result<(Record, Outcome), WriteError> {
        let name = format!("contract {id}");
        if self.current(caller, id, &name).await?.is_some() {
            return Err(WriteError::Conflict(format!("{name} already exists")));
        }
        self.store_one(caller, id, None, contract, foreign, &name)
            .await
    }

    /// Stores `contract` in place of `current` (or as new), once [`Writer::checked`].
    async fn store_one(
        &self,
        caller: &Caller,
        id: &ContractId,
        current: Option<Record>,
        contract: Contract,
        foreign: Option<Value>,
        name: &str,
    ) -> Result<(Record, Outcome), WriteError> {
        let rendered = Rendered::of(id, &contract, foreign.as_ref(), &self.profile);
        let pending = self.checked(
            caller,
            id,
            current.as_ref(),
            &contract,
            foreign,
            &rendered,
            name,
        )?;
        let Some(pending) = pending else {
            let current = current.ok_or_else(|| WriteError::not_known(name))?;
            return Ok((current, Outcome::Unchanged));
        };
        let outcome = if current.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        };
        let record = self.commit_one(caller, pending, name).await?;
        Ok((record, outcome))
    }

    /// The change that stores `after` (with what it keeps of FHIR, `foreign`) in place of
    /// `current`, once the caller may write it and it keeps the contract's rules; `None`
    /// when it changes nothing. `rendered` is what the gateway will serve of `after` (see
    /// [`crate::fhir::stored::served`]): the resources it leaves as they were keep their
    /// versions.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn checked(
        &self,
        caller: &Caller,
        id: &ContractId,
        current: Option<&Record>,
        after: &Contract,
        foreign: Option<Value>,
        rendered: &Rendered<'_>,
        name: &str,
    ) -> Result<Option<Pending>, WriteError> {
        let before = current.map(|c| &c.revision.contract);
        // Who may write is asked first: even "it is already so" tells about the contract.
        caller.may_write(before, after, name)?;
        let rules = |v| WriteError::Rules(v, Box::new(after.clone()));
        after.validate().map_err(rules)?;
        self.profile
            .identifiers
            .check_person(&after.patient.id)
            .map_err(|e| rules(crate::domain::Violation::PersonIdentifier(e).into()))?;
        if current.is_none() {
            id.check_new().map_err(|v| rules(v.into()))?;
        }
        if let Some(c) = current {
            if c.revision.contract == *after && c.revision.foreign_fhir == foreign {
                return Ok(None);
            }
            let v = c.revision.version;
            after
                .validate_change(v.next(), &c.revision.contract, v)
                .map_err(rules)?;
            after
                .validate_person(&c.revision.contract, &caller.change())
                .map_err(rules)?;
        }
        Ok(Some(Pending {
            id: id.clone(),
            base: current.map(|c| c.revision.version),
            based_on: current.map(|c| Box::new(c.revision.clone())),
            contract: after.clone(),
            change: caller.change(),
            foreign_fhir: foreign,
            deleted: false,
            unchanged: versions::unchanged(current, rendered, &self.profile),
        }))
    }
}
