//! Pull mode, for systems that cannot push: read the CarePlans a target changed since
//! the last pull (`_lastUpdated`), read the rest of each contract's resources there, and
//! merge what the target changed — against the version the gateway last sent it — into
//! the contract, exactly as a pushed edit is merged. A copy equal to what was sent (the
//! gateway's own delivery) changes nothing, so a loop through a shared target settles;
//! a part changed on both sides is a conflict record, and nothing is applied.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::client::TargetClient;
use super::deliver::same_content;
use super::settings::Target;
use super::verify::VerifyError;
use crate::domain::ContractId;
use crate::fhir::stored::resources_of;
use crate::fhir::{ContractResources, from_fhir};
use crate::store::{Remote, Store};
use crate::write::{Caller, Outcome, WriteError, Writer};

/// What a pull did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullReport {
    pub target: String,
    /// CarePlans the target reported changed.
    pub seen: usize,
    /// Of those, copies equal to what the gateway sent, or whose change it already has.
    pub unchanged: usize,
    /// Contracts that took the target's change, as a new version.
    pub merged: Vec<String>,
    /// Contracts where the target and the gateway changed the same part.
    pub conflicts: Vec<String>,
    /// CarePlans that are not the gateway's, or that it never sent this target.
    pub skipped: usize,
    /// Contracts whose copy could not be read as a contract (details in the log).
    pub failed: Vec<String>,
}

/// Pulls the target's changes since `since` (default: where the last pull ended).
pub async fn pull(
    store: &Store,
    target: &Target,
    client: &TargetClient,
    since: Option<jiff::Timestamp>,
) -> Result<PullReport, VerifyError> {
    let since = match since {
        Some(t) => Some(t),
        None => store.pulled_until(&target.name).await?,
    };
    let mut report = PullReport {
        target: target.name.clone(),
        ..PullReport::default()
    };
    let mut until = since;
    let mut next = Some(match since {
        // `ge`: a change in the same instant as the last one seen is not missed; seeing
        // one twice changes nothing.
        Some(t) => format!("CarePlan?_lastUpdated=ge{t}&_count=100"),
        None => "CarePlan?_count=100".to_owned(),
    });
    while let Some(path) = next.take() {
        let page = client.send(Method::GET, &path, None, None, &[]).await?;
        let Some(bundle) = page.body else { break };
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let plan = &entry["resource"];
            report.seen += 1;
            let changed_at = plan["meta"]["lastUpdated"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            if let Some(at) = changed_at {
                until = Some(until.map_or(at, |u| u.max(at)));
            }
            take_change(store, target, client, plan, &mut report).await?;
        }
        next = client.next_page(&bundle);
    }
    if let Some(until) = until {
        store.set_pulled_until(&target.name, until).await?;
    }
    Ok(report)
}

/// Merges one changed CarePlan's contract from the target.
async fn take_change(
    store: &Store,
    target: &Target,
    client: &TargetClient,
    plan: &Value,
    report: &mut PullReport,
) -> Result<(), VerifyError> {
    let system = &target.profile.identifiers.contract;
    let contract = plan["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == system.as_str())
        .and_then(|i| i["value"].as_str())
        .and_then(|v| ContractId::parse(v).ok());
    let Some(contract) = contract else {
        report.skipped += 1;
        return Ok(());
    };
    let sent = match (
        store.head(&contract).await?,
        store.remote(&target.name, &contract).await?,
    ) {
        (Some(_), Some((version, _))) => store.get_version(&contract, version).await?,
        (None, _) => return adopt(store, target, client, plan, contract, report).await,
        // Never sent there: without a common version, nothing can be merged.
        (Some(_), None) => {
            report.skipped += 1;
            return Ok(());
        }
    };
    let ours_sent = resources_of(&sent, &target.profile);
    let (theirs, remote) = read_copy(client, plan, &ours_sent).await?;
    let id = contract.to_string();
    if holds_all(&ours_sent, &theirs) {
        report.unchanged += 1;
        return Ok(());
    }
    let edited = match from_fhir(&theirs, &target.profile) {
        Ok(edited) => edited,
        Err(e) => {
            tracing::warn!(target_name = %target.name, %contract, element = %e.expression, "a pulled copy is not a valid contract");
            report.failed.push(id);
            return Ok(());
        }
    };
    // The target's edit of the version it was sent, merged by the write path.
    let (writer, caller) = pulling(store, target);
    let foreign = crate::fhir::residue::Residue::stored(&theirs, &target.profile);
    let merged = writer
        .merge_copy(
            &caller,
            &contract,
            sent.revision.version,
            edited,
            foreign,
            plan,
        )
        .await;
    match merged {
        Ok((record, outcome)) => {
            store
                .holds(&target.name, &contract, record.revision.version, &remote)
                .await?;
            // The merge holds changes made here that the target has not seen (one sent
            // meanwhile may have been refused there for the very edit merged now): the
            // merged version goes to it, with If-Match on the versions just read. Not
            // an echo: what it sent is there already; what it lacks is sent.
            if !holds_all(&resources_of(&record, &target.profile), &theirs) {
                store
                    .queue_contracts(&target.name, std::slice::from_ref(&contract), false)
                    .await?;
            }
            if outcome == Outcome::Unchanged {
                report.unchanged += 1;
            } else {
                report.merged.push(id);
            }
        }
        Err(WriteError::MergeConflict(_)) => report.conflicts.push(id),
        Err(WriteError::Store(e)) => return Err(e.into()),
        // Changed here meanwhile, or the merge breaks a rule: the next pull (from the same
        // instant) tries again against the new version.
        Err(e) => {
            tracing::warn!(target_name = %target.name, %contract, error = %e, "a pulled change was not applied");
            report.failed.push(id);
        }
    }
    Ok(())
}

/// Whether the target's copies hold everything in `ours`, resource by resource.
fn holds_all(ours: &ContractResources, theirs: &ContractResources) -> bool {
    ours.all()
        .zip(theirs.all())
        .all(|(ours, theirs)| same_content(ours, theirs))
        && ours.goals.len() == theirs.goals.len()
        && ours.appointments.len() == theirs.appointments.len()
}

/// A contract the gateway does not have yet (another gateway put it at the target):
/// stored as it is there, as coming from the target, which therefore already holds it.
async fn adopt(
    store: &Store,
    target: &Target,
    client: &TargetClient,
    plan: &Value,
    contract: ContractId,
    report: &mut PullReport,
) -> Result<(), VerifyError> {
    let (theirs, remote) =
        read_copy(client, plan, &ContractResources::with_plan(Value::Null)).await?;
    let id = contract.to_string();
    let copy = match from_fhir(&theirs, &target.profile) {
        Ok(copy) => copy,
        Err(e) => {
            tracing::warn!(target_name = %target.name, %contract, element = %e.expression, "a pulled copy is not a valid contract");
            report.failed.push(id);
            return Ok(());
        }
    };
    let foreign = crate::fhir::residue::Residue::stored(&theirs, &target.profile);
    let (writer, caller) = pulling(store, target);
    match writer.create(&caller, &contract, copy, foreign).await {
        Ok((record, _)) => {
            store
                .holds(&target.name, &contract, record.revision.version, &remote)
                .await?;
            report.merged.push(id);
        }
        Err(WriteError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(target_name = %target.name, %contract, error = %e, "a pulled contract was not stored");
            report.failed.push(id);
        }
    }
    Ok(())
}

/// The write path as a pull writes: as the gateway on behalf of the target, whose
/// edits of an older version are merged.
fn pulling(store: &Store, target: &Target) -> (Writer, Caller) {
    let writer = Writer::new(
        store.clone(),
        target.profile.clone(),
        Arc::new(vec![target.name.clone()]),
    );
    let caller =
        Caller::gateway(target.name.clone()).because(format!("pulled from {}", target.name));
    (writer, caller)
}

/// The target's copy of a contract's resources — the CarePlan given, its CareTeam and
/// Goals, and the Appointments based on it or sent with it — with their versions there.
async fn read_copy(
    client: &TargetClient,
    plan: &Value,
    sent: &ContractResources,
) -> Result<(ContractResources, Remote), VerifyError> {
    let mut remote = Remote::new();
    let key = |r: &Value| {
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or_default(),
            r["id"].as_str().unwrap_or_default()
        )
    };
    remote.insert(
        key(plan),
        plan["meta"]["versionId"]
            .as_str()
            .map(|v| format!("W/\"{v}\"")),
    );
    let team_path = plan["careTeam"][0]["reference"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| sent.care_team["id"].as_str().map(|_| key(&sent.care_team)));
    let care_team = match team_path {
        Some(path) => read(client, path, &mut remote).await?,
        None => None,
    }
    .unwrap_or_else(|| serde_json::json!({ "resourceType": "CareTeam" }));
    // The Goals are those the CarePlan refers to (one the target dropped is gone).
    let mut goals = Vec::new();
    for path in plan["goal"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["reference"].as_str())
    {
        goals.extend(read(client, path.to_owned(), &mut remote).await?);
    }
    // The Appointments that name the CarePlan there, and those the gateway sent.
    let mut paths: Vec<String> = sent.appointments.iter().map(key).collect();
    let search = format!("Appointment?supporting-info={}&_count=100", key(plan));
    let found = client.send(Method::GET, &search, None, None, &[]).await?;
    for entry in found
        .body
        .as_ref()
        .and_then(|b| b["entry"].as_array())
        .into_iter()
        .flatten()
    {
        let path = key(&entry["resource"]);
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    let mut appointments = Vec::new();
    for path in paths {
        appointments.extend(read(client, path, &mut remote).await?);
    }
    // The person's requests: the target's copy where it has one (care answers them
    // there), else as sent — a request stays in the record; a target without it (one
    // that does not take them) has not withdrawn it.
    let mut communication_requests = Vec::new();
    for sent in &sent.communication_requests {
        let theirs = read(client, key(sent), &mut remote).await?;
        communication_requests.push(theirs.unwrap_or_else(|| sent.clone()));
    }
    Ok((
        ContractResources {
            care_plan: plan.clone(),
            care_team,
            goals,
            appointments,
            communication_requests,
        },
        remote,
    ))
}

/// One resource of the target's copy, if it has it, noting its version there.
async fn read(
    client: &TargetClient,
    path: String,
    remote: &mut Remote,
) -> Result<Option<Value>, VerifyError> {
    let gone = [StatusCode::NOT_FOUND, StatusCode::GONE];
    let answer = client.send(Method::GET, &path, None, None, &gone).await?;
    Ok(match answer.body {
        Some(body) if answer.status.is_success() => {
            let version = answer.etag.clone().or_else(|| {
                body["meta"]["versionId"]
                    .as_str()
                    .map(|v| format!("W/\"{v}\""))
            });
            remote.insert(path, version);
            Some(body)
        }
        _ => None,
    })
}
