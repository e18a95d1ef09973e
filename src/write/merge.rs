//! A sync source's edit of an older version, merged part by part into the contract as
//! it is now (see [`crate::domain::merge`]).

use serde_json::Value;

use super::versions::Rendered;
use super::{Caller, Outcome, WriteError, Writer};
use crate::domain::{Contract, ContractId, Version, merge};
use crate::fhir::expression_for;
use crate::fhir::outcome::Issue;
use crate::store::{Record, StoreError};

impl Writer {
    /// Version `seen` of a contract (now at `now`), for a merge; 412 when there is no
    /// such version.
    pub(super) async fn version_seen(
        &self,
        id: &ContractId,
        seen: Version,
        now: Version,
    ) -> Result<Record, WriteError> {
        self.store.get_version(id, seen).await.map_err(|e| match e {
            StoreError::NotFound(_) => WriteError::Stale {
                resource: format!("CarePlan/{id}"),
                named: seen,
                current: now,
            },
            other => other.into(),
        })
    }

    /// A sync source's edit of version `base`, merged part by part into `current`: parts
    /// only it changed come from its edit, parts only others changed stay; a part both
    /// changed is a conflict — 409 naming the parts, nothing written, and the edit
    /// (`received`, as it came) kept as a conflict record (`pkgw sync conflicts`).
    pub(super) async fn merge(
        &self,
        caller: &Caller,
        received: &Value,
        base: &Record,
        current: &Record,
        theirs: Contract,
    ) -> Result<Contract, WriteError> {
        let conflict = match merge(&base.revision.contract, &current.revision.contract, &theirs) {
            Ok(merged) => return Ok(merged),
            Err(conflict) => conflict,
        };
        let parts: Vec<&str> = conflict.sections.iter().map(|s| s.field()).collect();
        let (seen, now) = (base.revision.version, current.revision.version);
        self.store
            .record_conflict(&current.id, &caller.source, seen, now, &parts, received)
            .await?;
        let issues = conflict
            .sections
            .iter()
            .map(|section| {
                Issue::error(
                    "conflict",
                    format!(
                        "{section} was changed both here (since version {seen}, now {now}) and in this edit; \
                         read the contract again and reapply the change"
                    ),
                    Some(expression_for(section.field(), &current.revision.contract)),
                )
            })
            .collect();
        Err(WriteError::MergeConflict(issues))
    }

    /// A sync source's whole copy of contract `id` as it edited version `seen` (`theirs`,
    /// mapped with the source's profile, with the FHIR content it kept, `foreign`),
    /// merged into the contract as it is now — how `pkgw sync pull` takes what a target
    /// changed. When the merge changes nothing of the contract, nothing is stored.
    pub async fn merge_copy(
        &self,
        caller: &Caller,
        id: &ContractId,
        seen: Version,
        theirs: Contract,
        foreign: Option<Value>,
        received: &Value,
    ) -> Result<(Record, Outcome), WriteError> {
        let name = format!("CarePlan/{id}");
        let current = self.live(caller, id, &name).await?;
        let base = self
            .version_seen(id, seen, current.revision.version)
            .await?;
        let merged = self
            .merge(caller, received, &base, &current, theirs)
            .await?;
        if merged == current.revision.contract {
            return Ok((current, Outcome::Unchanged));
        }
        let rendered = Rendered::of(id, &merged, foreign.as_ref(), &self.profile);
        let pending = self.checked(
            caller,
            id,
            Some(&current),
            &merged,
            foreign,
            &rendered,
            &name,
        )?;
        let Some(pending) = pending else {
            return Ok((current, Outcome::Unchanged));
        };
        let record = self.commit_one(caller, pending, &name).await?;
        Ok((record, Outcome::Updated))
    }
}
