//! `pkgw sync verify`: compares what a target holds with what it should hold. Every
//! contract the target should have is mapped as it would be sent and each resource is
//! read back from the target: **missing** (the target lacks one of its resources),
//! **stale** (the target has not been sent the latest version yet), **differing** (the
//! target's copy is not what the gateway sent: changed there, or damaged). CarePlans at the target that
//! carry the gateway's contract identifier but that it should not hold are **extra**.
//! With `--repair`, missing, stale and differing contracts are queued again (overwriting
//! the target's copy); extra ones are only reported — they may be someone else's.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use reqwest::{Method, StatusCode};
use serde::Serialize;

use super::client::TargetClient;
use super::deliver::same_content;
use super::retry::Failure;
use super::settings::{RESOURCE_TYPES, Target};
use crate::domain::ContractId;
use crate::fhir::stored::resources_of;
use crate::store::{Dispatch, Store, StoreError};

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub target: String,
    /// Contracts the target should hold.
    pub checked: usize,
    pub ok: usize,
    pub missing: Vec<String>,
    pub stale: Vec<String>,
    pub differing: Vec<String>,
    /// CarePlans at the target (by id) the target should not hold.
    pub extra: Vec<String>,
}

impl Report {
    /// Contracts to send again.
    pub fn to_repair(&self) -> Vec<ContractId> {
        let ids: BTreeSet<&String> = self
            .missing
            .iter()
            .chain(&self.stale)
            .chain(&self.differing)
            .collect();
        ids.into_iter()
            .filter_map(|id| ContractId::parse(id).ok())
            .collect()
    }

    /// One line for a person.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} contracts checked, {} ok, {} missing, {} stale, {} differing, {} extra",
            self.target,
            self.checked,
            self.ok,
            self.missing.len(),
            self.stale.len(),
            self.differing.len(),
            self.extra.len()
        )
    }
}

/// Why a verification could not finish.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the target: {}", .0.error())]
    Target(Failure),
}

impl From<Failure> for VerifyError {
    fn from(f: Failure) -> Self {
        Self::Target(f)
    }
}

/// Compares the target's copies with the gateway's.
pub async fn verify(
    store: &Store,
    target: &Target,
    client: &TargetClient,
    tick: &dyn Fn(),
) -> Result<Report, VerifyError> {
    let mut report = Report {
        target: target.name.clone(),
        ..Report::default()
    };
    let mut should_hold = BTreeSet::new();
    let mut records = store.current();
    while let Some(record) = records.try_next().await? {
        tick();
        let unit = record.revision.contract.responsible_unit.as_ref();
        let change = Dispatch {
            contract_id: record.id.clone(),
            version: record.revision.version,
            origin: String::new(),
            units: unit.map(|u| u.hsa_id.to_string()).into_iter().collect(),
            patient: Some(record.revision.contract.patient.id.to_string()),
            traceparent: None,
        };
        if !target.wants(&change) {
            continue;
        }
        should_hold.insert(record.id.to_string());
        report.checked += 1;
        let id = record.id.to_string();
        let delivered = store
            .remote(&target.name, &record.id)
            .await?
            .map(|(v, _)| v);
        let stale = delivered.is_none_or(|v| v < record.revision.version);
        let resources = resources_of(&record, &target.profile);
        let (mut missing, mut differing) = (false, false);
        for ours in resources.all() {
            let kind = ours["resourceType"].as_str().unwrap_or_default();
            if !RESOURCE_TYPES.contains(&kind) || !target.accepts(kind) {
                continue;
            }
            let path = format!("{kind}/{}", ours["id"].as_str().unwrap_or_default());
            let gone = [StatusCode::NOT_FOUND, StatusCode::GONE];
            let theirs = client.send(Method::GET, &path, None, None, &gone).await?;
            match theirs.body {
                Some(body) if theirs.status.is_success() => differing |= !same_content(ours, &body),
                _ => missing = true,
            }
        }
        // One finding per contract, the most telling: a stale copy lacks and differs, of
        // course.
        if stale {
            report.stale.push(id);
        } else if missing {
            report.missing.push(id);
        } else if differing {
            report.differing.push(id);
        } else {
            report.ok += 1;
        }
    }
    report.extra = extra_plans(target, client, &should_hold).await?;
    Ok(report)
}

/// CarePlans at the target with the gateway's contract identifier that it should not hold.
async fn extra_plans(
    target: &Target,
    client: &TargetClient,
    should_hold: &BTreeSet<String>,
) -> Result<Vec<String>, VerifyError> {
    let system = &target.profile.identifiers.contract;
    let mut extra = Vec::new();
    let mut next = Some("CarePlan?_count=100".to_owned());
    while let Some(path) = next.take() {
        let page = client.send(Method::GET, &path, None, None, &[]).await?;
        let Some(bundle) = page.body else { break };
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let plan = &entry["resource"];
            let ours = plan["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["system"] == system.as_str())
                .and_then(|i| i["value"].as_str());
            if let Some(contract) = ours
                && !should_hold.contains(contract)
            {
                extra.push(plan["id"].as_str().unwrap_or(contract).to_owned());
            }
        }
        next = client.next_page(&bundle);
    }
    Ok(extra)
}
