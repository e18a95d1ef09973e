//! One contract's entries of a write, prepared to store: access, precondition, the
//! edits, the mapping back, merge, rules, and what would not be kept.

use serde_json::Value;

use super::edit::{self, Edited};
use super::plan::Group;
use super::versions::Rendered;
use super::{
    Action, Attempt, Caller, Entry, Outcome, Prepared, WriteError, Writer, kept, name_of,
    refuse_missing,
};
use crate::domain::{ContractId, Version};
use crate::fhir::outcome::Issue;
use crate::fhir::residue::Residue;
use crate::fhir::stored::resources_of;
use crate::fhir::{ContractResources, Kind, from_fhir_checked};
use crate::store::{Pending, Record};

impl Writer {
    /// One contract's entries, prepared to store.
    pub(super) async fn prepare(
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
                refuse_missing(&ours, id, caller)?;
                None
            }
        };
        let seen = self.precondition(caller, &ours, current.as_ref(), id)?;
        let change = caller.change();
        if let (Some((i, _)), Some(current)) = (deletes_plan, &current) {
            let deletion = Pending::deletion(current, change);
            caller.may_write(
                Some(&current.revision.contract),
                &deletion.contract,
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
        // Not merged, the resources edited are the current version's: kept as they were,
        // they say which resources the write leaves unchanged without mapping again.
        let before = seen.is_none().then(|| resources.clone());
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
            (Some(_), Some(base), Some(current)) => {
                let received = received(&ours);
                self.merge(caller, &received, base, current, theirs).await?
            }
            _ => theirs,
        };
        let name = name_of(first, id);
        let mut served = crate::fhir::to_fhir(id, &after, &self.profile);
        residue.restore(&mut served);
        let rendered = Rendered {
            after: served,
            before: before.as_ref(),
        };
        let pending = self.checked(
            caller,
            id,
            current.as_ref(),
            &after,
            foreign,
            &rendered,
            &name,
        )?;
        // The contract's rules first (the cause), then what of the received content it
        // would not give back as sent.
        if seen.is_none() {
            let lost = self.lost(id, &ours, &edited, &rendered.after);
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

    /// The version a stale edit from a sync source was made on: `If-Match` names it, and
    /// is compared with the resource's own version.
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
        let mut seen: Option<Version> = None;
        for (_, entry) in ours {
            // Each resource has its own version: the one at which it last changed.
            let now = current.revision.version_of(&name_of(entry, id)).version;
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
        served: &ContractResources,
    ) -> Vec<Issue> {
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
                Kind::CommunicationRequest => served.communication_requests.iter().find(by_id),
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
}

/// The resources of a contract's entries as they came (one, or an array), for a
/// conflict record.
fn received(ours: &[(usize, &Entry)]) -> Value {
    let mut received: Vec<Value> = ours
        .iter()
        .filter_map(|(_, e)| e.resource().cloned())
        .collect();
    if received.len() == 1 {
        received.remove(0)
    } else {
        Value::Array(received)
    }
}
