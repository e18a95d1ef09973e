//! A person's identity merged onto their real number: when someone known by a
//! reservnummer (or a samordningsnummer) gets a personnummer, or Skatteverket changes a
//! number, every live contract of the old identity becomes the new one's, in one
//! database transaction, each as a new version whose change says so. Nothing else
//! changes a contract's person (see [`crate::domain::Violation::PersonChanged`]).

use super::versions::{self, Rendered};
use super::{ATTEMPTS, Caller, WriteError, Writer};
use crate::domain::PersonId;
use crate::fhir::outcome::Issue;
use crate::store::{Pending, Record, StoreError};

/// What a merge did, or in a preview would do.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Each contract as it is after the merge (in a preview: as it is now).
    pub contracts: Vec<Record>,
    /// Nothing was stored: the merge was only tried.
    pub preview: bool,
}

impl Writer {
    /// Moves every live contract of `source` to `target`. Only a caller that sees every
    /// person and every unit may: a merge moves all of a person's contracts at once,
    /// and a caller limited to some would learn of, or leave behind, the others.
    pub async fn merge_person(
        &self,
        caller: &Caller,
        source: &PersonId,
        target: &PersonId,
        preview: bool,
    ) -> Result<Merged, WriteError> {
        let p = &caller.principal;
        if p.compartment().is_some() || p.units.is_some() {
            return Err(WriteError::Forbidden(
                "merging a person's identities moves every contract of the person: only a \
                 client for all units may (not a patient's token, not one limited to units)"
                    .into(),
            ));
        }
        let refuse = |field: &str, why: String| {
            WriteError::Invalid(vec![Issue::error("business-rule", why, Some(field.into()))])
        };
        let ids = &self.profile.identifiers;
        for (field, person) in [("source-patient", source), ("target-patient", target)] {
            ids.check_person(person)
                .map_err(|e| refuse(field, e.to_string()))?;
        }
        if matches!(target, PersonId::Reservnummer(_)) {
            return Err(refuse(
                "target-patient",
                "a person is merged onto a real number (personnummer or samordningsnummer), \
                 not onto a reservnummer"
                    .into(),
            ));
        }
        if source == target {
            return Err(refuse(
                "target-patient",
                "the source and the target are the same person".into(),
            ));
        }
        let mut attempt = 1;
        loop {
            match self.merge_once(caller, source, target, preview).await {
                Err(WriteError::Store(StoreError::VersionConflict { .. }))
                    if attempt < ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(WriteError::Store(StoreError::VersionConflict { .. })) => {
                    return Err(WriteError::Conflict(
                        "the person's contracts kept changing during the merge; try again".into(),
                    ));
                }
                other => return other,
            }
        }
    }

    async fn merge_once(
        &self,
        caller: &Caller,
        source: &PersonId,
        target: &PersonId,
        preview: bool,
    ) -> Result<Merged, WriteError> {
        let current: Vec<Record> = self
            .store
            .find_by_patient(source)
            .await?
            .into_iter()
            .filter(|r| !r.revision.deleted)
            .collect();
        if current.is_empty() {
            return Err(WriteError::NotFound(
                "no live contract is about the source person".into(),
            ));
        }
        let mut pending = Vec::with_capacity(current.len());
        for record in &current {
            let mut next = record.revision.contract.clone();
            next.patient.id = target.clone();
            next.validate()
                .map_err(|v| WriteError::Rules(v, Box::new(next.clone())))?;
            let foreign = record.revision.foreign_fhir.clone();
            let rendered = Rendered::of(&record.id, &next, foreign.as_ref(), &self.profile);
            let mut change = caller.change();
            change.reason = Some(merge_reason(source, target, caller.reason.as_deref()));
            change.merged_from = Some(source.clone());
            pending.push(Pending {
                id: record.id.clone(),
                base: Some(record.revision.version),
                based_on: Some(Box::new(record.revision.clone())),
                contract: next,
                change,
                foreign_fhir: foreign,
                deleted: false,
                unchanged: versions::unchanged(Some(record), &rendered, &self.profile),
            });
        }
        if preview {
            return Ok(Merged {
                contracts: current,
                preview: true,
            });
        }
        let contracts = self
            .store
            .commit_for(pending, caller.trace.as_deref())
            .await?;
        Ok(Merged {
            contracts,
            preview: false,
        })
    }
}

/// Why the version was written: which identity became which, and the caller's reason.
fn merge_reason(source: &PersonId, target: &PersonId, why: Option<&str>) -> String {
    let kind = |p: &PersonId| match p {
        PersonId::Personnummer(_) => "personnummer",
        PersonId::Samordningsnummer(_) => "samordningsnummer",
        PersonId::Reservnummer(_) => "reservnummer",
    };
    let value = |p: &PersonId| match p {
        PersonId::Reservnummer(r) => r.value().to_owned(),
        other => other.to_string(),
    };
    let mut reason = format!(
        "Sammanslagning: {} {} ersatt av {} {}",
        kind(source),
        value(source),
        kind(target),
        value(target)
    );
    if let Some(why) = why {
        reason.push_str(&format!(" ({why})"));
    }
    reason
}
