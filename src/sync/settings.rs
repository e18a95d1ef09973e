//! The sync settings: `[sync]` (how the engine runs) and `[[targets]]` (the systems
//! that get the contracts), as read from `pkgw.toml`; [`Target`] is a target checked and
//! ready to use.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::fhir::Profile;
use crate::secret::Secret;
use crate::store::{Dispatch, Routing};

/// `[sync]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    /// Run the delivery workers inside `pkgw serve`.
    pub enabled: bool,
    /// How often an idle worker looks for new changes.
    pub poll_interval_ms: u64,
    /// Contracts a worker claims at a time.
    pub batch_size: u32,
    /// Contracts delivered to one target at the same time.
    pub concurrency: usize,
    /// How long a claimed contract stays with its worker before another may take it
    /// (when a worker dies mid-delivery). A write without `If-Match` (the first to a
    /// target) is given up when the lease runs out, so keep it well above
    /// `request_timeout_secs`.
    pub lease_secs: u64,
    /// Longest wait for a target's answer.
    pub request_timeout_secs: u64,
    /// First retry delay; it doubles with each failure, up to `backoff_max_secs`, and a
    /// random part of it is waited (full jitter).
    pub backoff_initial_ms: u64,
    pub backoff_max_secs: u64,
    /// After this long without success a change becomes a dead letter; 0: retry for as
    /// long as it takes.
    pub give_up_after_secs: u64,
}

impl SyncSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}

/// How a target gets a contract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each resource on its own: `PUT {type}/{id}`, with `If-Match` when the target's
    /// version is known.
    #[default]
    Push,
    /// All of a contract's resources in one `transaction` Bundle.
    Transaction,
}

/// How a pushed resource is addressed at the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteBy {
    /// `PUT {type}/{id}`: the gateway's own ids (the target must accept client ids).
    #[default]
    Id,
    /// Conditional update by the gateway's business identifier:
    /// `PUT CarePlan?identifier=…` (an Appointment also `&supporting-info=CarePlan/…`; a Goal,
    /// which has no identifier, by id).
    Identifier,
}

/// How the gateway proves who it is to a target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthSettings {
    #[default]
    None,
    /// A fixed bearer token.
    Bearer { token: Secret },
    /// OAuth2 client credentials; the token is cached until shortly before it expires.
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// One `[[targets]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    /// A short name, used in logs, the CLI, metrics and as the origin of changes that
    /// come from this system (which are never sent back to it).
    pub name: String,
    /// The target's FHIR base URL, e.g. `https://ehr.example/fhir`.
    pub base_url: String,
    #[serde(default)]
    pub auth: AuthSettings,
    /// The mapping profile: a built-in name (`default`, `cosmic`) or a file path.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Only contracts these units (HSA-ids) are or were just responsible for; empty: all.
    #[serde(default)]
    pub units: Vec<String>,
    /// Only these contracts (ids); empty: all (within `units`).
    #[serde(default)]
    pub contracts: Vec<String>,
    /// The resource types the target accepts; empty: all of them.
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    /// In push mode, how resources are addressed: `id` or `identifier`.
    #[serde(default)]
    pub write: WriteBy,
    /// For a system that cannot push: read its changes every this many seconds (pull
    /// mode); 0: never (it pushes, or `pkgw sync pull` is run by hand).
    #[serde(default)]
    pub pull_interval_secs: u64,
    /// Send the journal note too: a `DocumentReference` under the profile's journal
    /// keyword for each version that changed what the person and care agreed (an EHR
    /// that files it in the journal; see `fhir::journal_note`).
    #[serde(default)]
    pub journal_note: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_profile() -> String {
    "default".into()
}

fn yes() -> bool {
    true
}

/// The resource types a contract is sent as, in the order they are written (what a
/// resource refers to exists before it).
pub const RESOURCE_TYPES: [&str; 5] = [
    "Goal",
    "CareTeam",
    "CarePlan",
    "Appointment",
    "CommunicationRequest",
];

/// A target, checked.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// Without a trailing slash.
    pub base_url: String,
    pub auth: AuthSettings,
    pub profile: Arc<Profile>,
    pub units: BTreeSet<String>,
    pub contracts: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    pub mode: Mode,
    pub write_by: WriteBy,
    /// Pull the target's changes this often (pull mode), if at all.
    pub pull_interval: Option<std::time::Duration>,
    /// Whether it takes the journal note (`DocumentReference`).
    pub journal_note: bool,
}

impl Target {
    /// Checks a `[[targets]]` entry; errors name the key (`targets[2].profile: …`).
    pub fn from_settings(at: usize, s: &TargetSettings) -> Result<Target, String> {
        let key = |k: &str| format!("targets[{at}].{k}");
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "{}: '{}' must be letters, digits, '-', '_' or '.'",
                key("name"),
                s.name
            ));
        }
        if !(s.base_url.starts_with("http://") || s.base_url.starts_with("https://")) {
            return Err(format!(
                "{}: must start with http:// or https://",
                key("base_url")
            ));
        }
        let profile = if s.profile.ends_with(".toml") {
            Profile::load(std::path::Path::new(&s.profile))
        } else {
            Profile::built_in(&s.profile)
        }
        .map_err(|e| format!("{}: {e}", key("profile")))?;
        if let Some(unknown) = s
            .resources
            .iter()
            .find(|r| !RESOURCE_TYPES.contains(&r.as_str()))
        {
            return Err(format!(
                "{}: '{unknown}' is not one of {}",
                key("resources"),
                RESOURCE_TYPES.join(", ")
            ));
        }
        if !s.resources.is_empty() && !s.resources.iter().any(|r| r == "CarePlan") {
            return Err(format!("{}: must include CarePlan", key("resources")));
        }
        Ok(Target {
            name: s.name.clone(),
            base_url: s.base_url.trim_end_matches('/').to_owned(),
            auth: s.auth.clone(),
            profile: Arc::new(profile),
            units: s.units.iter().cloned().collect(),
            contracts: s.contracts.iter().cloned().collect(),
            resources: s.resources.iter().cloned().collect(),
            mode: s.mode,
            write_by: s.write,
            pull_interval: (s.pull_interval_secs > 0)
                .then(|| std::time::Duration::from_secs(s.pull_interval_secs)),
            journal_note: s.journal_note,
        })
    }

    /// Whether the target should have this change: its units and contracts allow it.
    pub fn wants(&self, change: &Dispatch) -> bool {
        let unit_ok = self.units.is_empty() || change.units.iter().any(|u| self.units.contains(u));
        let contract_ok =
            self.contracts.is_empty() || self.contracts.contains(change.contract_id.as_str());
        unit_ok && contract_ok
    }

    /// Whether the target takes resources of this type.
    pub fn accepts(&self, resource_type: &str) -> bool {
        self.resources.is_empty() || self.resources.contains(resource_type)
    }
}

/// Checks every `[[targets]]` entry, and that names are unique.
pub fn targets_from_settings(settings: &[TargetSettings]) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for (at, s) in settings.iter().enumerate() {
        let target = Target::from_settings(at, s)?;
        if targets.iter().any(|t: &Target| t.name == target.name) {
            return Err(format!(
                "targets[{at}].name: '{}' is used twice",
                target.name
            ));
        }
        if s.enabled {
            targets.push(target);
        }
    }
    Ok(targets)
}

/// Where a change goes: every target that wants it, except the one it came from.
pub fn route(targets: &[Target], change: &Dispatch) -> Routing {
    let authored_by = targets
        .iter()
        .find(|t| t.name == change.origin)
        .map(|t| t.name.clone());
    Routing {
        deliver_to: targets
            .iter()
            .filter(|t| t.name != change.origin && t.wants(change))
            .map(|t| t.name.clone())
            .collect(),
        authored_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContractId, Version};

    fn settings(name: &str, units: &[&str]) -> TargetSettings {
        TargetSettings {
            name: name.into(),
            base_url: "http://ehr.example/fhir/".into(),
            auth: AuthSettings::None,
            profile: "default".into(),
            units: units.iter().map(|u| (*u).to_owned()).collect(),
            contracts: Vec::new(),
            resources: Vec::new(),
            mode: Mode::Push,
            write: WriteBy::Id,
            pull_interval_secs: 0,
            journal_note: false,
            enabled: true,
        }
    }

    fn change(origin: &str, units: &[&str]) -> Dispatch {
        Dispatch {
            contract_id: ContractId::parse("k-1").unwrap(),
            version: Version::FIRST,
            origin: origin.into(),
            units: units.iter().map(|u| (*u).to_owned()).collect(),
            patient: None,
            traceparent: None,
        }
    }

    #[test]
    fn a_change_goes_to_the_units_targets_and_never_back_to_its_origin() {
        let targets = targets_from_settings(&[
            settings("sjukhus", &["SE2321000016-HOSP"]),
            settings("vardcentral", &["SE2321000016-VC01"]),
            settings("portal", &[]),
        ])
        .unwrap();
        assert_eq!(targets[0].base_url, "http://ehr.example/fhir");
        let from_api = route(&targets, &change("api", &["SE2321000016-VC01"]));
        assert_eq!(from_api.deliver_to, ["vardcentral", "portal"]);
        assert_eq!(from_api.authored_by, None);
        // A transfer: the unit before and the unit after both hear of it.
        let transfer = route(
            &targets,
            &change("api", &["SE2321000016-VC01", "SE2321000016-HOSP"]),
        );
        assert_eq!(transfer.deliver_to, ["sjukhus", "vardcentral", "portal"]);
        let echo = route(&targets, &change("portal", &["SE2321000016-VC01"]));
        assert_eq!(echo.deliver_to, ["vardcentral"]);
        assert_eq!(echo.authored_by.as_deref(), Some("portal"));
    }

    #[test]
    fn bad_targets_are_refused_naming_the_key() {
        let mut bad = settings("x y", &[]);
        assert!(
            targets_from_settings(&[bad.clone()])
                .unwrap_err()
                .starts_with("targets[0].name")
        );
        bad.name = "ok".into();
        bad.profile = "epic".into();
        assert!(
            targets_from_settings(&[bad.clone()])
                .unwrap_err()
                .starts_with("targets[0].profile")
        );
        bad.profile = "default".into();
        bad.resources = vec!["Patient".into()];
        assert!(
            targets_from_settings(&[bad.clone()])
                .unwrap_err()
                .starts_with("targets[0].resources")
        );
        let err = targets_from_settings(&[settings("a", &[]), settings("a", &[])]).unwrap_err();
        assert!(err.starts_with("targets[1].name"), "{err}");
    }
}
