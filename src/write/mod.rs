//! The one write path. Every change to a contract — a FHIR create, update or delete,
//! each entry of a transaction or batch, the native API's whole-contract writes, an
//! inbound edit from a sync source — goes through [`Writer`], which does, in this order
//! and in this one place:
//!
//! 1. **plan**: which contract each entry acts on — the one its url names, never one
//!    guessed from the resource's type ([`plan`]);
//! 2. **access**: a contract the caller may not see is "not found", before anything
//!    about it is told;
//! 3. **precondition**: `If-Match` against the current version (412 when stale), or
//!    for a configured sync source, the stale edit is merged part by part (409 naming
//!    the parts both sides changed);
//! 4. **edit**: each entry changes exactly the resource it names ([`edit`]), checked
//!    against the typed R4 model;
//! 5. **map and check**: the resources back to the contract, the domain invariants, and
//!    whether the caller may write the result; a change that changes nothing stores
//!    nothing;
//! 6. **store**: every contract of the write in one database transaction, each version
//!    with its outbox and audit rows ([`crate::store::Store::commit`]). A concurrent
//!    change that wins the race makes the whole write start again from step 1.
//!
//! It knows no HTTP: callers pass a [`Caller`] and [`Entry`]s in, and get [`Done`]s or a
//! [`WriteError`] back, which the API renders (an OperationOutcome under `/fhir`, the
//! native JSON under `/api`).

mod caller;
mod edit;
mod entry;
mod error;
mod identify;
mod kept;
mod merge;
mod person;
mod plan;
mod prepare;
mod save;
#[cfg(test)]
mod tests;
mod transfer;
mod versions;

use std::sync::Arc;

pub use caller::Caller;
pub use entry::{Action, Done, Entry, Outcome};
pub use error::WriteError;
pub use identify::Target;
pub use person::Merged;
pub use plan::{Condition, condition_in_query, contract_in_query};
pub use transfer::Transferred;

use crate::domain::ContractId;
use crate::fhir::{Kind, Profile};
use crate::store::{Pending, Record, Store, StoreError};
use edit::Edited;
use plan::Group;

/// How often a write starts again when a concurrent change won the race to a contract.
const ATTEMPTS: usize = 3;

/// The write service: cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    store: Store,
    profile: Arc<Profile>,
    /// The configured sync targets, whose edits of an older version are merged.
    sync_sources: Arc<Vec<String>>,
}

/// Why one attempt at a write did not finish.
enum Attempt {
    /// A concurrent change came first: start again.
    Raced,
    Failed(WriteError),
}

impl From<WriteError> for Attempt {
    fn from(e: WriteError) -> Self {
        Attempt::Failed(e)
    }
}

impl From<StoreError> for Attempt {
    fn from(e: StoreError) -> Self {
        match e {
            // A concurrent write took the contract, its id or one of its identifiers
            // first: start again, and see what it did.
            StoreError::VersionConflict { .. }
            | StoreError::AlreadyExists(_)
            | StoreError::IdentifierTaken { .. } => Attempt::Raced,
            other => Attempt::Failed(other.into()),
        }
    }
}

/// One contract's part of a write, ready to store.
struct Prepared {
    current: Option<Record>,
    /// `None` when nothing is to be stored.
    pending: Option<Pending>,
    edited: Vec<(usize, Edited)>,
}

impl Writer {
    pub fn new(store: Store, profile: Arc<Profile>, sync_sources: Arc<Vec<String>>) -> Self {
        Self {
            store,
            profile,
            sync_sources,
        }
    }

    /// Whether stale edits from `source` are merged rather than refused.
    fn merges(&self, source: &str) -> bool {
        self.sync_sources.iter().any(|t| t == source)
    }

    /// Does every entry, all or nothing: one [`Done`] per entry, in order.
    pub async fn apply(
        &self,
        caller: &Caller,
        entries: Vec<Entry>,
    ) -> Result<Vec<Done>, WriteError> {
        refuse_chosen_ids(caller, &entries, &self.profile)?;
        let mut attempt = 1;
        loop {
            let (planned, groups) = self.planned(&entries).await?;
            match self.attempt(caller, &planned, &groups).await {
                Ok(done) => return Ok(done),
                Err(Attempt::Raced) if attempt < ATTEMPTS => attempt += 1,
                Err(Attempt::Raced) => {
                    return Err(WriteError::Conflict(
                        "the contract kept changing while this change was made; try again".into(),
                    ));
                }
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
    }

    /// Every step of [`Writer::apply`] but storing: `Ok` when the write would be done
    /// as asked now, else the error it would answer (`$validate`). Nothing is stored.
    pub async fn check(&self, caller: &Caller, entries: Vec<Entry>) -> Result<(), WriteError> {
        refuse_chosen_ids(caller, &entries, &self.profile)?;
        let (planned, groups) = self.planned(&entries).await?;
        for group in &groups {
            match self.prepare(caller, &planned, group).await {
                // A concurrent change came first: the write would start again.
                Ok(_) | Err(Attempt::Raced) => {}
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// One attempt's plan (step 1): the conditions resolved against the store, each
    /// entry's contract found, and no identifier of another system taken twice.
    async fn planned(&self, entries: &[Entry]) -> Result<(Vec<Entry>, Vec<Group>), WriteError> {
        let mut planned = entries.to_vec();
        let conditioned = self.resolve(&mut planned).await?;
        let groups = plan::plan(&mut planned, &self.profile)?;
        self.check_identifiers(&planned, &groups, &conditioned)
            .await?;
        Ok((planned, groups))
    }

    /// [`Writer::apply`] of one entry.
    pub async fn apply_one(&self, caller: &Caller, entry: Entry) -> Result<Done, WriteError> {
        let mut done = self.apply(caller, vec![entry]).await?;
        done.pop()
            .ok_or_else(|| WriteError::Conflict("the write did nothing".into()))
    }

    async fn attempt(
        &self,
        caller: &Caller,
        entries: &[Entry],
        groups: &[Group],
    ) -> Result<Vec<Done>, Attempt> {
        let mut prepared = Vec::with_capacity(groups.len());
        for group in groups {
            prepared.push(self.prepare(caller, entries, group).await?);
        }
        let wrote: Vec<bool> = prepared.iter().map(|p| p.pending.is_some()).collect();
        let pending: Vec<Pending> = prepared
            .iter_mut()
            .filter_map(|p| p.pending.take())
            .collect();
        let mut stored = self
            .store
            .commit_for(pending, caller.trace.as_deref())
            .await?
            .into_iter();
        let mut done: Vec<Option<Done>> = vec![None; entries.len()];
        for (p, wrote) in prepared.into_iter().zip(wrote) {
            let record = if wrote { stored.next() } else { p.current };
            let record = record.ok_or_else(|| {
                Attempt::Failed(WriteError::Conflict("a write's version is missing".into()))
            })?;
            for (i, edited) in p.edited {
                done[i] = Some(Done {
                    kind: edited.kind,
                    id: edited.id,
                    record: record.clone(),
                    outcome: edited.outcome,
                });
            }
        }
        done.into_iter()
            .map(|d| {
                d.ok_or_else(|| {
                    Attempt::Failed(WriteError::Conflict("an entry was not done".into()))
                })
            })
            .collect()
    }

    /// The current version of contract `id` (`name` in messages), which must exist, be
    /// the caller's to see, and not be deleted.
    async fn live(
        &self,
        caller: &Caller,
        id: &ContractId,
        name: &str,
    ) -> Result<Record, WriteError> {
        let current = self
            .current(caller, id, name)
            .await?
            .ok_or_else(|| WriteError::not_known(name))?;
        if current.revision.deleted {
            return Err(WriteError::Gone(format!("{name} was deleted")));
        }
        Ok(current)
    }

    /// Stores one change; a concurrent change that came first makes it stale (412).
    async fn commit_one(
        &self,
        caller: &Caller,
        pending: Pending,
        name: &str,
    ) -> Result<Record, WriteError> {
        let mut stored = self
            .store
            .commit_for(vec![pending], caller.trace.as_deref())
            .await
            .map_err(|e| match e {
                StoreError::VersionConflict {
                    expected, current, ..
                } => WriteError::Stale {
                    resource: name.to_owned(),
                    named: expected,
                    current,
                },
                other => other.into(),
            })?;
        stored
            .pop()
            .ok_or_else(|| WriteError::Conflict("the write stored nothing".into()))
    }

    /// The current version of a contract the caller may see; `None` when there is none,
    /// and "not known" when it is another person's.
    async fn current(
        &self,
        caller: &Caller,
        id: &ContractId,
        name: &str,
    ) -> Result<Option<Record>, WriteError> {
        // A caller limited to one person learns from the head alone whether the contract
        // is theirs: another person's and none take the same one lookup.
        if let Some(own) = caller.principal.compartment() {
            match self.store.head(id).await? {
                None => return Ok(None),
                Some(head) if !head.is_about(own) => {
                    return Err(WriteError::not_known(name));
                }
                Some(_) => {}
            }
        }
        match self.store.get(id).await {
            Ok(record) if caller.sees(&record.revision.contract) => Ok(Some(record)),
            Ok(_) => Err(WriteError::not_known(name)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `{type}/{id}` of the resource an entry names, for messages.
fn name_of(entry: &Entry, contract: &ContractId) -> String {
    let kind = entry.action.kind();
    match &entry.action {
        Action::Update { id, .. } | Action::Delete { id, .. } => format!("{}/{id}", kind.name()),
        Action::Create { resource, .. } => match resource["id"].as_str() {
            Some(id) if kind != Kind::Goal => format!("{}/{id}", kind.name()),
            _ => format!("{} of CarePlan/{contract}", kind.name()),
        },
        Action::Upsert { .. } => format!("CarePlan/{contract}"),
    }
}

/// A write to a contract that does not exist is refused unless it makes the contract: a
/// create of its CarePlan, or an update of it without `If-Match` (update as create, for a
/// caller that may choose ids: for others "not there" reads as "not yours", 404).
fn refuse_missing(
    ours: &[(usize, &Entry)],
    id: &ContractId,
    caller: &Caller,
) -> Result<(), WriteError> {
    let chooses = caller.principal.may_choose_ids();
    let makes = ours.iter().any(|(_, e)| match e.action {
        Action::Create {
            kind: Kind::CarePlan,
            ..
        } => true,
        Action::Update {
            kind: Kind::CarePlan,
            if_match: None,
            ..
        } => chooses,
        _ => false,
    });
    if makes {
        return Ok(());
    }
    let (_, first) = ours[0];
    match &first.action {
        Action::Create {
            kind: kind @ (Kind::Appointment | Kind::CommunicationRequest),
            ..
        } => Err(WriteError::invalid(
            "not-found",
            format!("CarePlan/{id} is not known"),
            first.resource_field(if *kind == Kind::Appointment {
                "supportingInformation"
            } else {
                "about"
            }),
        )),
        _ => Err(WriteError::not_known(&name_of(first, id))),
    }
}

/// A caller limited to a patient or to units may not choose a new contract's id (by
/// `ifNoneExist` or the contract's identifier in a created CarePlan): whether the id is
/// taken would tell it about contracts it may not see. Decided before any lookup.
fn refuse_chosen_ids(
    caller: &Caller,
    entries: &[Entry],
    profile: &Profile,
) -> Result<(), WriteError> {
    if caller.principal.may_choose_ids() {
        return Ok(());
    }
    // What a condition finds may be another person's contract: a patient's token writes
    // by no condition at all. A unit-limited EHR may name its own identifier.
    let patient = caller.principal.compartment().is_some();
    for entry in entries {
        match &entry.action {
            Action::Create {
                kind: Kind::CarePlan,
                resource,
                if_none_exist,
            } => {
                // A condition on another system's identifier (the EHR's own) names no id.
                let chosen = if_none_exist.as_deref().is_some_and(|q| {
                    patient
                        || !matches!(
                            plan::condition_in_query(q, profile, "If-None-Exist"),
                            Ok(plan::Condition::Identifier { .. })
                        )
                });
                let named = plan::contract_identifier(resource, profile).is_some();
                if chosen || named {
                    return Err(WriteError::Forbidden(
                        "a patient's or unit-limited token may not choose a contract's id: create it without ifNoneExist or the contract identifier, and the gateway names it".into(),
                    ));
                }
            }
            Action::Upsert { .. } if patient => {
                return Err(WriteError::Forbidden(
                    "a patient's token may not update a contract by a condition: update it by its id".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
