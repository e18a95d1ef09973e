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
mod kept;
mod plan;
#[cfg(test)]
mod tests;
mod transfer;

use std::sync::Arc;

use serde_json::Value;

pub use caller::Caller;
pub use entry::{Action, Done, Entry, Outcome};
pub use error::WriteError;
pub use plan::contract_in_query;
pub use transfer::Transferred;

use crate::domain::{Contract, ContractId, Version, merge};
use crate::fhir::outcome::Issue;
use crate::fhir::residue::Residue;
use crate::fhir::stored::resources_of;
use crate::fhir::{ContractResources, Kind, Profile, expression_for, from_fhir_checked};
use crate::store::{Change, Pending, Record, Store, StoreError};
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
            StoreError::VersionConflict { .. } | StoreError::AlreadyExists(_) => Attempt::Raced,
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

    pub fn profile(&self) -> &Profile {
        &self.profile
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
        let mut attempt = 1;
        loop {
            let mut planned = entries.clone();
            let groups = plan::plan(&mut planned, &self.profile)?;
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

    /// [`Writer::apply`] of one entry.
    pub async fn apply_one(&self, caller: &Caller, entry: Entry) -> Result<Done, WriteError> {
        let mut done = self.apply(caller, vec![entry]).await?;
        done.pop()
            .ok_or_else(|| WriteError::Conflict("the write did nothing".into()))
    }

    /// Stores a whole contract (the native API): as a new contract under `id` when
    /// `if_match` is `None`, else as the version after `if_match`, which must be the
    /// current one. Nothing the contract does not model is kept from earlier versions.
    pub async fn save(
        &self,
        caller: &Caller,
        id: &ContractId,
        if_match: Option<Version>,
        contract: Contract,
    ) -> Result<(Record, Outcome), WriteError> {
        let name = format!("contract {id}");
        let current = self.current(caller, id, &name).await?;
        let current = match (current, if_match) {
            (Some(_), None) => return Err(WriteError::Conflict(format!("{name} already exists"))),
            (None, Some(_)) => return Err(WriteError::not_known(&name)),
            (Some(c), Some(_)) if c.revision.deleted => {
                return Err(WriteError::Gone(format!("{name} was deleted")));
            }
            (Some(c), Some(v)) if c.revision.version != v => {
                return Err(WriteError::Stale {
                    resource: name,
                    named: v,
                    current: c.revision.version,
                });
            }
            (current, _) => current,
        };
        let foreign = current
            .as_ref()
            .and_then(|c| c.revision.foreign_fhir.clone());
        let pending = self.checked(caller, id, current.as_ref(), &contract, foreign, &name)?;
        let Some(pending) = pending else {
            let current = current.ok_or_else(|| WriteError::not_known(&name))?;
            return Ok((current, Outcome::Unchanged));
        };
        let outcome = if current.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        };
        let mut records = self
            .store
            .commit(vec![pending])
            .await
            .map_err(|e| match e {
                StoreError::VersionConflict {
                    expected, current, ..
                } => WriteError::Stale {
                    resource: format!("contract {id}"),
                    named: expected,
                    current,
                },
                other => other.into(),
            })?;
        let record = records
            .pop()
            .ok_or_else(|| WriteError::Conflict("the write did nothing".into()))?;
        Ok((record, outcome))
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
        let mut stored = self.store.commit(pending).await?.into_iter();
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

    /// The current version of a contract the caller may see; `None` when there is none,
    /// and "not known" when it is another person's.
    async fn current(
        &self,
        caller: &Caller,
        id: &ContractId,
        name: &str,
    ) -> Result<Option<Record>, WriteError> {
        match self.store.get(id).await {
            Ok(record) if caller.sees(&record.revision.contract) => Ok(Some(record)),
            Ok(_) => Err(WriteError::not_known(name)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One contract's entries, prepared to store.
    async fn prepare(
        &self,
        caller: &Caller,
        entries: &[Entry],
        group: &Group,
    ) -> Result<Prepared, Attempt> {
        let id = &group.contract;
        let ours: Vec<(usize, &Entry)> = group.entries.iter().map(|&i| (i, &entries[i])).collect();
        let (_, first) = ours[0];
        let current = self.current(caller, id, &name_of(first, id)).await?;
        let unchanged = |outcome: Outcome| -> Vec<(usize, Edited)> {
            ours.iter()
                .map(|(i, e)| (*i, Edited::of(e, id, outcome.clone())))
                .collect()
        };
        let deletes_plan = ours.iter().find(|(_, e)| {
            matches!(
                e.action,
                Action::Delete {
                    kind: Kind::CarePlan,
                    ..
                }
            )
        });
        if let (Some((_, deleting)), Some((_, other))) = (
            deletes_plan,
            ours.iter().find(|(_, e)| {
                !matches!(
                    e.action,
                    Action::Delete {
                        kind: Kind::CarePlan,
                        ..
                    }
                )
            }),
        ) {
            return Err(WriteError::bad(
                other.field("request.url", "url"),
                format!(
                    "{} deletes the contract: no other entry may change its resources",
                    name_of(deleting, id)
                ),
            )
            .into());
        }
        let creates_plan = ours.iter().find_map(|(_, e)| match &e.action {
            Action::Create {
                kind: Kind::CarePlan,
                if_none_exist,
                ..
            } => Some(if_none_exist.is_some()),
            _ => None,
        });
        let conditional = creates_plan == Some(true);
        let current = match current {
            // A contract's id is its business identifier: unique.
            Some(_) if creates_plan == Some(false) => {
                return Err(WriteError::Conflict(format!("CarePlan/{id} already exists")).into());
            }
            // A conditional create that finds its contract: nothing is done to it.
            Some(c) if conditional && !c.revision.deleted => {
                return Ok(Prepared {
                    edited: unchanged(Outcome::Existing),
                    current: Some(c),
                    pending: None,
                });
            }
            Some(c) if c.revision.deleted && deletes_plan.is_some() => {
                return Ok(Prepared {
                    edited: unchanged(Outcome::AlreadyDeleted),
                    current: Some(c),
                    pending: None,
                });
            }
            Some(c) if c.revision.deleted => {
                return Err(WriteError::Gone(format!("CarePlan/{id} was deleted")).into());
            }
            Some(c) => Some(c),
            None => {
                refuse_missing(&ours, id)?;
                None
            }
        };
        let seen = self.precondition(caller, &ours, current.as_ref(), id)?;
        let change = Change::from_source(caller.source.clone());
        if let (Some((i, _)), Some(current)) = (deletes_plan, &current) {
            let deletion = Pending::deletion(current, change);
            caller.may_write(
                Some(&current.revision.contract),
                &deletion.contract,
                false,
                &format!("CarePlan/{id}"),
            )?;
            return Ok(Prepared {
                edited: vec![(*i, Edited::of(&entries[*i], id, Outcome::Deleted))],
                current: Some(current.clone()),
                pending: Some(deletion),
            });
        }
        let base = match seen {
            Some(seen) => {
                let now = current.as_ref().map_or(seen, |c| c.revision.version);
                Some(self.version_seen(id, seen, now).await?)
            }
            None => current.clone(),
        };
        let mut resources = match &base {
            Some(base) => resources_of(base, &self.profile),
            None => ContractResources::with_plan(Value::Null),
        };
        let new = current.is_none();
        let mut edited = Vec::with_capacity(ours.len());
        for (i, entry) in &ours {
            edited.push((
                *i,
                edit::edit(entry, &mut resources, id, new, &self.profile)?,
            ));
        }
        let theirs = from_fhir_checked(&resources, &self.profile)
            .map_err(|e| WriteError::Invalid(vec![Issue::from(&e)]))?;
        let residue = Residue::of(&resources, &self.profile);
        let foreign = residue.to_stored();
        let after = match (seen, &base, &current) {
            (Some(seen), Some(base), Some(current)) => {
                self.merge(caller, &ours, base, current, theirs, seen)
                    .await?
            }
            _ => theirs,
        };
        let name = name_of(first, id);
        let pending = self.checked(caller, id, current.as_ref(), &after, foreign, &name)?;
        // The contract's rules first (the cause), then what of the received content it
        // would not give back as sent.
        if seen.is_none() {
            let lost = self.lost(id, &ours, &edited, &after, &residue);
            if !lost.is_empty() {
                return Err(WriteError::Invalid(lost).into());
            }
        }
        if pending.is_none() {
            for (_, e) in &mut edited {
                if e.outcome == Outcome::Updated {
                    e.outcome = Outcome::Unchanged;
                }
            }
        }
        Ok(Prepared {
            current,
            pending,
            edited,
        })
    }

    /// The version a stale edit from a sync source was made on: `If-Match` names it.
    /// `None` when the edit is not stale; 412 for a stale edit from anyone else.
    fn precondition(
        &self,
        caller: &Caller,
        ours: &[(usize, &Entry)],
        current: Option<&Record>,
        id: &ContractId,
    ) -> Result<Option<Version>, WriteError> {
        let Some(current) = current else {
            return match ours.iter().find(|(_, e)| e.action.if_match().is_some()) {
                Some((_, e)) => Err(WriteError::not_known(&name_of(e, id))),
                None => Ok(None),
            };
        };
        let now = current.revision.version;
        let mut seen: Option<Version> = None;
        for (_, entry) in ours {
            match entry.action.if_match() {
                Some(named) if named != now && self.merges(&caller.source) => {
                    seen = Some(seen.map_or(named, |s| s.min(named)));
                }
                Some(named) if named != now => {
                    return Err(WriteError::Stale {
                        resource: name_of(entry, id),
                        named,
                        current: now,
                    });
                }
                _ => {}
            }
        }
        Ok(seen)
    }

    /// What of the received resources the contract would not give back as sent (see
    /// [`kept`]). An edit merged into a newer version is not compared: parts others
    /// changed meanwhile are theirs.
    fn lost(
        &self,
        id: &ContractId,
        ours: &[(usize, &Entry)],
        edited: &[(usize, Edited)],
        contract: &Contract,
        residue: &Residue,
    ) -> Vec<Issue> {
        let mut served = crate::fhir::to_fhir(id, contract, &self.profile);
        residue.restore(&mut served);
        let mut issues = Vec::new();
        for ((_, entry), (_, edited)) in ours.iter().zip(edited) {
            let Some(received) = entry.resource() else {
                continue;
            };
            if edited.outcome == Outcome::Existing {
                continue;
            }
            let by_id = |r: &&Value| r["id"] == edited.id.as_str();
            let one = match edited.kind {
                Kind::CarePlan => Some(&served.care_plan),
                Kind::CareTeam => Some(&served.care_team),
                Kind::Goal => served.goals.iter().find(by_id),
                Kind::Appointment => served.appointments.iter().find(by_id),
                Kind::Provenance => None,
            };
            match one {
                Some(one) => issues.extend(kept::lost(received, one, &self.profile)),
                None => issues.push(Issue::error(
                    "structure",
                    format!("{} would not be kept", name_of(entry, id)),
                    Some(entry.field("resource", edited.kind.name())),
                )),
            }
        }
        issues
    }

    /// Version `seen` of a contract (now at `now`), for a merge; 412 when there is no
    /// such version.
    async fn version_seen(
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
    /// changed is a conflict — 409 naming the parts, nothing written, and the edit kept as
    /// a conflict record (`pkgw sync conflicts`).
    async fn merge(
        &self,
        caller: &Caller,
        ours: &[(usize, &Entry)],
        base: &Record,
        current: &Record,
        theirs: Contract,
        seen: Version,
    ) -> Result<Contract, WriteError> {
        let conflict = match merge(&base.revision.contract, &current.revision.contract, &theirs) {
            Ok(merged) => return Ok(merged),
            Err(conflict) => conflict,
        };
        let parts: Vec<&str> = conflict.sections.iter().map(|s| s.field()).collect();
        let mut received: Vec<Value> = ours
            .iter()
            .filter_map(|(_, e)| e.resource().cloned())
            .collect();
        let received = if received.len() == 1 {
            received.remove(0)
        } else {
            Value::Array(received)
        };
        let now = current.revision.version;
        self.store
            .record_conflict(&current.id, &caller.source, seen, now, &parts, &received)
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

    /// The change that stores `after` (with what it keeps of FHIR, `foreign`) in place of
    /// `current`, once the caller may write it and it keeps the contract's rules; `None`
    /// when it changes nothing.
    fn checked(
        &self,
        caller: &Caller,
        id: &ContractId,
        current: Option<&Record>,
        after: &Contract,
        foreign: Option<Value>,
        name: &str,
    ) -> Result<Option<Pending>, WriteError> {
        let before = current.map(|c| &c.revision.contract);
        // Who may write is asked first: even "it is already so" tells about the contract.
        caller.may_write(before, after, false, name)?;
        let rules = |v| WriteError::Rules(v, Box::new(after.clone()));
        after.validate().map_err(rules)?;
        if let Some(c) = current {
            if c.revision.contract == *after && c.revision.foreign_fhir == foreign {
                return Ok(None);
            }
            let v = c.revision.version;
            after
                .validate_change(v.next(), &c.revision.contract, v)
                .map_err(rules)?;
        }
        Ok(Some(Pending {
            id: id.clone(),
            base: current.map(|c| c.revision.version),
            contract: after.clone(),
            change: Change::from_source(caller.source.clone()),
            foreign_fhir: foreign,
            deleted: false,
        }))
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
    }
}

/// A write to a contract that does not exist is refused unless it makes the contract: a
/// create of its CarePlan, or an update of it without `If-Match` (update as create).
fn refuse_missing(ours: &[(usize, &Entry)], id: &ContractId) -> Result<(), WriteError> {
    let makes = ours.iter().any(|(_, e)| {
        matches!(
            e.action,
            Action::Create {
                kind: Kind::CarePlan,
                ..
            } | Action::Update {
                kind: Kind::CarePlan,
                if_match: None,
                ..
            }
        )
    });
    if makes {
        return Ok(());
    }
    let (_, first) = ours[0];
    match &first.action {
        Action::Create {
            kind: Kind::Appointment,
            ..
        } => Err(WriteError::invalid(
            "not-found",
            format!("CarePlan/{id} is not known"),
            first.resource_field("basedOn"),
        )),
        _ => Err(WriteError::not_known(&name_of(first, id))),
    }
}
