//! Conditions that name a contract by an identifier of another system (an EHR's own):
//! resolved through the store's identifier index before each attempt at a write, so an
//! EHR can create, update and delete idempotently by its own identifier, and one
//! identifier never names two contracts — also when two creates race (the index's
//! unique key makes the later one start again, and find the first).

use serde_json::json;

use super::plan::{Condition, Group, condition_in_query};
use super::{Action, Entry, WriteError, Writer};
use crate::domain::ContractId;
use crate::fhir::Kind;
use crate::fhir::residue::ours_identifier;

/// What a condition finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The gateway's own identifier: the contract with that id (which may not exist yet).
    Named(ContractId),
    /// The live contract whose CarePlan carries the other system's identifier.
    Found(ContractId),
    /// No live contract carries it.
    Missing { system: String, value: String },
}

impl Writer {
    /// What a condition (`identifier=system|value`, percent-encoded or not) names;
    /// `field` names it in errors.
    pub async fn target(&self, query: &str, field: &str) -> Result<Target, WriteError> {
        Ok(match condition_in_query(query, &self.profile, field)? {
            Condition::Contract(id) => Target::Named(id),
            Condition::Identifier { system, value } => {
                match self.store.contract_with_identifier(&system, &value).await? {
                    Some(id) => Target::Found(id),
                    None => Target::Missing { system, value },
                }
            }
        })
    }

    /// Turns each conditional update into the update of the contract its condition
    /// finds, or the create of a new one, and each create's condition naming another
    /// system's identifier into one naming the contract found (or none, when none is).
    /// Returns the identifiers conditions found nothing for: a contract made for one of
    /// them that meets another one at the store lost a race ([`Writer::check_identifiers`]
    /// leaves those to the store's unique key, and the write starts again).
    pub(super) async fn resolve(
        &self,
        entries: &mut [Entry],
    ) -> Result<Vec<(String, String)>, WriteError> {
        let mut missing = Vec::new();
        for entry in entries.iter_mut() {
            let id_field = entry.resource_field("id");
            let identifier_field = entry.resource_field("identifier");
            if let Action::Upsert {
                kind,
                condition,
                resource,
                if_match,
            } = &entry.action
            {
                let field = entry.field("request.url", "identifier");
                let (kind, mut resource, if_match) = (*kind, resource.clone(), *if_match);
                entry.action = match self.target(condition, &field).await? {
                    Target::Named(id) | Target::Found(id) => {
                        match resource["id"].as_str() {
                            Some(given) if given != id.as_str() => {
                                return Err(WriteError::bad(
                                    id_field,
                                    format!(
                                        "must be {id}, the contract the identifier names, or left out"
                                    ),
                                ));
                            }
                            _ => resource["id"] = json!(id.as_str()),
                        }
                        Action::Update {
                            kind,
                            id: id.to_string(),
                            resource,
                            if_match,
                        }
                    }
                    Target::Missing { system, value } => {
                        if if_match.is_some() {
                            return Err(WriteError::NotFound(format!(
                                "no contract carries the identifier {system}|{value}, so If-Match names a version of nothing"
                            )));
                        }
                        require_carries(&resource, &system, &value, identifier_field)?;
                        missing.push((system, value));
                        if let Some(fields) = resource.as_object_mut() {
                            fields.remove("id");
                        }
                        Action::Create {
                            kind,
                            resource,
                            if_none_exist: None,
                        }
                    }
                };
                continue;
            }
            let field = entry.field("request.ifNoneExist", "If-None-Exist");
            if let Action::Create {
                kind: Kind::CarePlan,
                resource,
                if_none_exist: Some(query),
            } = &entry.action
            {
                let resolved = match self.target(query, &field).await? {
                    Target::Named(_) => continue,
                    Target::Found(id) => Some(format!(
                        "identifier={}|{id}",
                        self.profile.identifiers.contract
                    )),
                    Target::Missing { system, value } => {
                        require_carries(resource, &system, &value, identifier_field)?;
                        missing.push((system, value));
                        None
                    }
                };
                if let Action::Create { if_none_exist, .. } = &mut entry.action {
                    *if_none_exist = resolved;
                }
            }
        }
        Ok(missing)
    }

    /// Refuses a CarePlan that would carry an identifier of another system that another
    /// live contract carries: one identifier names one contract. Those in `raced` (a
    /// condition found nothing for them a moment ago) are left to the store, whose
    /// unique key makes the write start again and find the contract made meanwhile.
    pub(super) async fn check_identifiers(
        &self,
        entries: &[Entry],
        groups: &[Group],
        raced: &[(String, String)],
    ) -> Result<(), WriteError> {
        for group in groups {
            for entry in group.entries.iter().map(|&i| &entries[i]) {
                let Some(resource) = entry
                    .resource()
                    .filter(|_| entry.action.kind() == Kind::CarePlan)
                else {
                    continue;
                };
                for identifier in resource["identifier"].as_array().into_iter().flatten() {
                    let (Some(system), Some(value)) =
                        (identifier["system"].as_str(), identifier["value"].as_str())
                    else {
                        continue;
                    };
                    if ours_identifier(system, &self.profile)
                        || raced.iter().any(|(s, v)| s == system && v == value)
                    {
                        continue;
                    }
                    let owner = self.store.contract_with_identifier(system, value).await?;
                    if owner.is_some_and(|owner| owner != group.contract) {
                        return Err(WriteError::Conflict(format!(
                            "the identifier {system}|{value} names another contract already: one identifier names one contract"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A contract made under a condition must carry the identifier the condition names, or
/// the condition would not find it the next time.
fn require_carries(
    resource: &serde_json::Value,
    system: &str,
    value: &str,
    field: String,
) -> Result<(), WriteError> {
    let carries = resource["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["system"] == system && i["value"] == value);
    if carries {
        Ok(())
    } else {
        Err(WriteError::bad(
            field,
            format!("must carry {system}|{value}, the identifier the condition names"),
        ))
    }
}
