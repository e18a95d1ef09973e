//! Which contract each entry of a write acts on — the one its url names, never one
//! guessed from the resource's type — and the transaction's `urn:uuid:` references
//! resolved to the resources they stand for.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::edit::identifiers_besides;
use super::{Action, Entry, WriteError};
use crate::domain::ContractId;
use crate::fhir::{Kind, Profile, appointment_id};

/// The entries (by index) that act on one contract, in the order they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Group {
    pub contract: ContractId,
    pub entries: Vec<usize>,
}

/// Finds each entry's contract, gives new resources their ids, resolves references
/// between entries, and groups the entries by contract.
pub(super) fn plan(entries: &mut [Entry], profile: &Profile) -> Result<Vec<Group>, WriteError> {
    let mut contracts: Vec<Option<ContractId>> = vec![None; entries.len()];
    // What references to an entry's resource look like, by the contract it is in.
    let mut plan_names: HashMap<String, ContractId> = HashMap::new();
    for (i, entry) in entries.iter_mut().enumerate() {
        check_resource_matches(entry)?;
        let contract = match &mut entry.action {
            Action::Update { kind, id, .. } | Action::Delete { kind, id, .. } => {
                Some(contract_of(*kind, id, entry.at)?)
            }
            Action::Create {
                kind: Kind::CarePlan,
                resource,
                if_none_exist,
            } => {
                let named = if_none_exist
                    .as_deref()
                    .map(|q| {
                        let field = condition_field(entry.at);
                        contract_in_query(q, profile, &field)
                    })
                    .transpose()?;
                let own = own_contract_id(resource, profile, entry.at)?;
                if let (Some(named), Some(own)) = (&named, &own)
                    && named != own
                {
                    return Err(WriteError::bad(
                        field(entry.at, "resource.identifier", "CarePlan.identifier"),
                        format!("names contract {own}, the condition names {named}"),
                    ));
                }
                let id = match named.or(own) {
                    Some(id) => id,
                    None => new_contract_id()?,
                };
                if let Some(given) = resource["id"].as_str() {
                    plan_names.insert(format!("CarePlan/{given}"), id.clone());
                }
                resource["id"] = json!(id.as_str());
                Some(id)
            }
            Action::Create { .. } => None,
            Action::Upsert { .. } => return Err(super::edit::unresolved()),
        };
        if entry.action.kind() == Kind::CarePlan
            && let Some(c) = &contract
        {
            if let Some(url) = &entry.full_url {
                plan_names.insert(url.clone(), c.clone());
            }
            plan_names.insert(format!("CarePlan/{c}"), c.clone());
        }
        contracts[i] = contract;
    }
    // New CareTeams, Goals and Appointments belong to the contract of the CarePlan that
    // references them, or that they reference.
    for i in 0..entries.len() {
        if contracts[i].is_some() {
            continue;
        }
        let contract = owner(entries, i, &plan_names, &contracts)?;
        if let Action::Create {
            kind: Kind::Appointment,
            resource,
            if_none_exist,
        } = &mut entries[i].action
        {
            name_agreed_time(resource, if_none_exist.as_deref(), &contract, profile)?;
        }
        contracts[i] = Some(contract);
    }
    resolve_references(entries, &contracts);
    refuse_repeats(entries)?;
    let mut groups: Vec<Group> = Vec::new();
    for (i, contract) in contracts.into_iter().enumerate() {
        let contract = contract.ok_or_else(|| WriteError::Conflict("unplanned entry".into()))?;
        match groups.iter_mut().find(|g| g.contract == contract) {
            Some(group) => group.entries.push(i),
            None => groups.push(Group {
                contract,
                entries: vec![i],
            }),
        }
    }
    Ok(groups)
}

/// The contract a resource id belongs to; 404 when the id cannot be one of ours.
fn contract_of(kind: Kind, id: &str, at: Option<usize>) -> Result<ContractId, WriteError> {
    if kind == Kind::Provenance {
        return Err(WriteError::NotSupported(
            "Provenance is written by the gateway, not by clients".into(),
        ));
    }
    match kind.locate(id) {
        Some((contract, _)) => Ok(contract),
        None if kind == Kind::CarePlan => Err(WriteError::bad(
            field(at, "request.url", "CarePlan.id"),
            format!("{id} is not a valid contract id"),
        )),
        None => Err(WriteError::not_known(&format!("{}/{id}", kind.name()))),
    }
}

fn field(at: Option<usize>, in_entry: &str, alone: &str) -> String {
    match at {
        Some(at) => format!("Bundle.entry[{at}].{in_entry}"),
        None => alone.to_owned(),
    }
}

fn condition_field(at: Option<usize>) -> String {
    field(at, "request.ifNoneExist", "If-None-Exist")
}

/// The resource is of the type the url names and, for an update, has its id; and it is
/// whole: a subset (tagged `SUBSETTED`, as `_summary` and `_elements` answer) would drop
/// what it left out.
fn check_resource_matches(entry: &Entry) -> Result<(), WriteError> {
    let Some(resource) = entry.resource() else {
        return Ok(());
    };
    let subsetted = resource["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["code"] == "SUBSETTED" && t["system"] == crate::fhir::SUBSETTED_SYSTEM);
    if subsetted {
        return Err(WriteError::bad(
            entry.resource_field("meta.tag"),
            "the resource is a subset (SUBSETTED, from _summary or _elements): read it whole and write that",
        ));
    }
    let kind = entry.action.kind();
    if fhir_wire::resource_type(resource) != Some(kind.name()) {
        return Err(WriteError::bad(
            entry.resource_field("resourceType"),
            format!("the request is for a {}, the resource is not", kind.name()),
        ));
    }
    if let Action::Update { id, .. } = &entry.action
        && resource.get("id").and_then(Value::as_str) != Some(id.as_str())
    {
        return Err(WriteError::bad(
            entry.resource_field("id"),
            format!("must be {id}, as in the request's url"),
        ));
    }
    Ok(())
}

/// What a condition (`If-None-Exist`, a conditional update's or delete's url) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The gateway's own contract identifier (or a bare value): the contract id itself.
    Contract(ContractId),
    /// An identifier of another system (an EHR's own), found through the store's index.
    Identifier { system: String, value: String },
}

/// The condition a query `identifier=system|value` states, percent-encoded or not. Only
/// `identifier` is understood; anything else is refused rather than guessed at.
pub fn condition_in_query(
    query: &str,
    profile: &Profile,
    name: &str,
) -> Result<Condition, WriteError> {
    let system = &profile.identifiers.contract;
    let refused = || {
        WriteError::bad(
            name,
            format!(
                "supported: identifier=SYSTEM|VALUE (the contract's own, {system}|<contract id>, or another system's)"
            ),
        )
    };
    let value = query
        .strip_prefix("identifier=")
        .filter(|v| !v.contains('&'))
        .map(decode)
        .ok_or_else(refused)?;
    match value.split_once('|') {
        Some((s, id)) if s.is_empty() || s == system => ContractId::parse(id)
            .map(Condition::Contract)
            .map_err(|_| refused()),
        Some((s, v)) if !v.is_empty() => Ok(Condition::Identifier {
            system: s.to_owned(),
            value: v.to_owned(),
        }),
        Some(_) => Err(refused()),
        None => ContractId::parse(&value)
            .map(Condition::Contract)
            .map_err(|_| refused()),
    }
}

/// The contract a query names by the gateway's own identifier (see
/// [`condition_in_query`]); another system's identifier is refused here.
pub fn contract_in_query(
    query: &str,
    profile: &Profile,
    name: &str,
) -> Result<ContractId, WriteError> {
    match condition_in_query(query, profile, name)? {
        Condition::Contract(id) => Ok(id),
        Condition::Identifier { .. } => Err(super::edit::unresolved()),
    }
}

/// A query value with its `%XX` escapes decoded (RFC 3986; a `+` stays a plus); left
/// as it is when they do not make UTF-8.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// The contract id a new CarePlan gives as its business identifier, if it gives one.
/// The identifier of the contract's own system in a CarePlan, if it has one.
pub(super) fn contract_identifier<'a>(plan: &'a Value, profile: &Profile) -> Option<&'a Value> {
    plan["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == profile.identifiers.contract.as_str())
}

fn own_contract_id(
    plan: &Value,
    profile: &Profile,
    at: Option<usize>,
) -> Result<Option<ContractId>, WriteError> {
    contract_identifier(plan, profile)
        .and_then(|i| i["value"].as_str())
        .map(|v| {
            ContractId::parse(v).map_err(|e| {
                WriteError::bad(
                    field(at, "resource.identifier", "CarePlan.identifier"),
                    e.to_string(),
                )
            })
        })
        .transpose()
}

fn new_contract_id() -> Result<ContractId, WriteError> {
    ContractId::parse(&uuid::Uuid::new_v4().to_string())
        .map_err(|e| WriteError::Conflict(format!("no new contract id: {e}")))
}

/// References from `value` (`reference` elements, at any depth).
fn references(value: &Value) -> Vec<&str> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("reference", Value::String(r)) => found.push(r),
                    _ => collect_references(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// The contract a new CareTeam, Goal, Appointment or CommunicationRequest belongs to.
fn owner(
    entries: &[Entry],
    i: usize,
    plan_names: &HashMap<String, ContractId>,
    contracts: &[Option<ContractId>],
) -> Result<ContractId, WriteError> {
    let entry = &entries[i];
    let kind = entry.action.kind();
    let resource = entry.resource().cloned().unwrap_or_default();
    let plan_of = |links: Vec<&str>| {
        links.iter().find_map(|r| {
            plan_names.get(*r).cloned().or_else(|| {
                r.strip_prefix("CarePlan/")
                    .and_then(|id| ContractId::parse(id).ok())
            })
        })
    };
    if kind == Kind::Appointment {
        // Its CarePlan: in supportingInformation, or basedOn as older clients send it.
        let mut links = references(&resource["supportingInformation"]);
        links.extend(references(&resource["basedOn"]));
        return plan_of(links).ok_or_else(|| {
            WriteError::bad(
                entry.resource_field("supportingInformation"),
                "an agreed time belongs to a contract: supportingInformation must reference CarePlan/{id}",
            )
        });
    }
    if kind == Kind::CommunicationRequest {
        return plan_of(references(&resource["about"])).ok_or_else(|| {
            WriteError::bad(
                entry.resource_field("about"),
                "a request to be contacted is about a contract: about must reference CarePlan/{id}",
            )
        });
    }
    // Names this resource goes by: its fullUrl and `{type}/{id}`.
    let mut names: Vec<String> = entry.full_url.iter().cloned().collect();
    if let Some(id) = resource["id"].as_str() {
        names.push(format!("{}/{id}", kind.name()));
    }
    let element = if kind == Kind::CareTeam {
        "careTeam"
    } else {
        "goal"
    };
    let by_plan = entries.iter().zip(contracts).find_map(|(other, contract)| {
        let plan = other
            .resource()
            .filter(|_| other.action.kind() == Kind::CarePlan)?;
        let refers = references(&plan[element])
            .iter()
            .any(|r| names.iter().any(|n| n == r));
        refers.then(|| contract.clone()).flatten()
    });
    by_plan.ok_or_else(|| {
        WriteError::bad(
            entry.field("fullUrl", kind.name()),
            format!(
                "a new {} belongs to the contract whose CarePlan, in the same transaction, \
                 references it (CarePlan.{element}) by its fullUrl",
                kind.name()
            ),
        )
    })
}

/// Gives a new Appointment its agreed time's identifier (kept, taken from the
/// condition, or new) and the id made from it.
fn name_agreed_time(
    appointment: &mut Value,
    if_none_exist: Option<&str>,
    contract: &ContractId,
    profile: &Profile,
) -> Result<(), WriteError> {
    let system = profile.identifiers.agreed_time.as_str();
    let wanted = if_none_exist
        .map(|q| {
            q.strip_prefix("identifier=")
                .map(|v| v.rsplit('|').next().unwrap_or(v).to_owned())
                .ok_or_else(|| {
                    WriteError::bad(
                        "If-None-Exist",
                        format!("supported: identifier={system}|<id>"),
                    )
                })
        })
        .transpose()?;
    let given = appointment["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == system)
        .and_then(|i| i["value"].as_str().map(str::to_owned));
    let time_id = match (given, wanted) {
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => uuid::Uuid::new_v4().to_string(),
    };
    if time_id.is_empty() {
        return Err(WriteError::bad(
            "Appointment.identifier",
            "the value is empty",
        ));
    }
    let mut identifiers = identifiers_besides(appointment, system);
    identifiers.push(json!({ "system": system, "value": time_id }));
    appointment["identifier"] = Value::Array(identifiers);
    appointment["id"] = json!(appointment_id(contract, &time_id));
    Ok(())
}

/// Replaces references to another entry's `fullUrl` with `{type}/{id}` of the resource
/// it stands for (R4 3.1.0.11.2: resolving references in a transaction).
fn resolve_references(entries: &mut [Entry], contracts: &[Option<ContractId>]) {
    let mut names: HashMap<String, String> = HashMap::new();
    for (entry, contract) in entries.iter().zip(contracts) {
        let (Some(url), Some(contract)) = (&entry.full_url, contract) else {
            continue;
        };
        let kind = entry.action.kind();
        let id = match (&entry.action, kind) {
            (Action::Update { id, .. } | Action::Delete { id, .. }, _) => Some(id.clone()),
            (_, Kind::CarePlan | Kind::CareTeam) => Some(contract.to_string()),
            (Action::Create { resource, .. }, Kind::Appointment) => {
                resource["id"].as_str().map(str::to_owned)
            }
            _ => None,
        };
        if let Some(id) = id {
            names.insert(url.clone(), format!("{}/{id}", kind.name()));
        }
    }
    if names.is_empty() {
        return;
    }
    for entry in entries.iter_mut() {
        if let Action::Create { resource, .. } | Action::Update { resource, .. } = &mut entry.action
        {
            replace_references(resource, &names);
        }
    }
}

fn replace_references(value: &mut Value, names: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(r) if key == "reference" => {
                        if let Some(name) = names.get(r.as_str()) {
                            *r = name.clone();
                        }
                    }
                    other => replace_references(other, names),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_references(v, names)),
        _ => {}
    }
}

/// A resource may appear in a transaction once (R4 3.1.0.11.2).
fn refuse_repeats(entries: &[Entry]) -> Result<(), WriteError> {
    let mut seen: HashMap<(Kind, &str), usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let named = match &entry.action {
            Action::Update { kind, id, .. } | Action::Delete { kind, id, .. } => {
                (*kind, id.as_str())
            }
            Action::Create {
                kind: kind @ (Kind::CarePlan | Kind::Appointment),
                resource,
                ..
            } => match resource["id"].as_str() {
                Some(id) => (*kind, id),
                None => continue,
            },
            Action::Create { .. } | Action::Upsert { .. } => continue,
        };
        if let Some(first) = seen.insert(named, i) {
            return Err(WriteError::bad(
                entry.field("request.url", "url"),
                format!(
                    "{}/{} is already the subject of entry {first}: a resource may appear in a transaction once",
                    named.0.name(),
                    named.1
                ),
            ));
        }
    }
    Ok(())
}
