//! Settings, layered: built-in defaults, then `pkgw.toml` (or the file named by
//! `--config`), then `PKGW__SECTION__KEY` environment variables, then command-line flags.
//! Validated once at start, with a message that names the key.
//!
//! `pkgw.example.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::auth::AuthSettings;
pub use crate::secret::Secret;
use crate::store::{Backend, StoreOptions};
use crate::sync::{SyncSettings, Target, TargetSettings, targets_from_settings};

/// The file read when no `--config` is given (missing is fine).
pub const DEFAULT_FILE: &str = "pkgw.toml";

const DEFAULTS: &str = r#"
[server]
bind = "127.0.0.1:8080"
request_timeout_secs = 30
body_limit_bytes = 1048576
max_concurrent_requests = 512
max_concurrent_per_client = 64
header_timeout_secs = 10
body_timeout_secs = 10
bundle_entries = 100
answer_limit_bytes = 16777216
rate_limit_per_sec = 200
rate_limit_burst = 400
metrics_database_ms = 1000

[database]
url = ""
read_url = ""
data_dir = "data"
max_connections = 10

[log]
level = "info"

[auth]
mode = "required"
issuer = "pkgw-dev"
audience = "pkgw"
leeway_secs = 60
hs256_secret = ""
jwks_file = ""
jwks_url = ""
authorize_url = ""
token_url = ""
grant_types = []
smart_capabilities = []

[sync]
enabled = true
poll_interval_ms = 500
batch_size = 100
concurrency = 4
lease_secs = 60
request_timeout_secs = 10
backoff_initial_ms = 500
backoff_max_secs = 300
give_up_after_secs = 0
"#;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    /// OpenTelemetry traces (`[trace]`): off unless an OTLP endpoint is given.
    #[serde(default)]
    pub trace: crate::trace::TraceSettings,
    pub auth: AuthSettings,
    pub sync: SyncSettings,
    /// The systems that get the contracts (`[[targets]]`).
    #[serde(default)]
    pub targets: Vec<TargetSettings>,
    /// Where Subscriptions may send notifications (`[subscriptions]`).
    #[serde(default)]
    pub subscriptions: crate::sync::outbound::SubscriptionSettings,
    /// The samsyn report (`[samsyn]`).
    #[serde(default)]
    pub samsyn: SamsynSettings,
    /// The region's reservnummer: its identifier system and the form of its numbers
    /// (`[[reservnummer]]`); none by default, and then only a personnummer or
    /// samordningsnummer identifies a person.
    #[serde(default)]
    pub reservnummer: Vec<crate::domain::ReservnummerScheme>,
    /// Templates per diagnosis group (`[templates]`).
    #[serde(default)]
    pub templates: TemplateSettings,
    /// The gateway's own FHIR mapping (`[fhir]`).
    #[serde(default)]
    pub fhir: FhirSettings,
}

/// `[fhir]` in the settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirSettings {
    /// The mapping profile the FHIR API, the narrative and the printed page use: a
    /// built-in name (`default`, `cosmic`) or a `.toml` file — where a region says what
    /// each unit's first page shows (`[first_page]`).
    pub profile: String,
}

impl Default for FhirSettings {
    fn default() -> Self {
        Self {
            profile: "default".into(),
        }
    }
}

/// `[templates]` in the settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    /// A directory of templates, one JSON file each; none by default (and then
    /// `serve --demo` offers the examples in `templates/`).
    #[serde(default)]
    pub dir: String,
}

/// `[samsyn]` in the settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamsynSettings {
    /// The fewest patients whose answers a unit's report shows (fewer: withheld), so one
    /// person's answers are never shown as "the patients'".
    pub min_patient_answers: usize,
}

impl Default for SamsynSettings {
    fn default() -> Self {
        Self {
            min_patient_answers: crate::samsyn::MIN_PATIENT_ANSWERS,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub bind: String,
    /// Longest time one request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Requests handled at once; more wait their turn (within the request timeout).
    pub max_concurrent_requests: usize,
    /// Requests one client (token client) may have in flight at once; more get 429, so
    /// one client cannot take every place.
    pub max_concurrent_per_client: usize,
    /// The time a request's headers may take to arrive (and a kept-alive connection may
    /// stay idle); then the connection is closed.
    pub header_timeout_secs: u64,
    /// The time a request's body may take to arrive after its headers; then 408.
    pub body_timeout_secs: u64,
    /// The most entries one transaction or batch Bundle may carry; more get 413.
    pub bundle_entries: usize,
    /// The largest answer given, in bytes; a search page, batch or read over it is
    /// refused (400 `too-costly`) and should ask for less.
    pub answer_limit_bytes: usize,
    /// Requests per second one client (token client, or address without a token) may
    /// make on average; 0 turns rate limiting off. Over it: 429 with Retry-After.
    pub rate_limit_per_sec: u32,
    /// How many requests a client may make at once above the average rate.
    pub rate_limit_burst: u32,
    /// How old, in milliseconds, the figures `/metrics` reads from the database
    /// (contracts, outbox, the sync queues) may be: they are read at most once per this
    /// interval however often `/metrics` is called (it takes no token, and each reading
    /// counts rows); 0 reads them at every scrape.
    pub metrics_database_ms: u64,
    /// The origins browsers may call the API from (`https://portal.region.se`); empty:
    /// none (see `api::cors`).
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`; empty means SQLite in `data_dir`.
    pub url: Secret,
    /// A read-only streaming replica of the PostgreSQL database at `url`, for reads
    /// that may lag (`postgres://…`); empty means every read goes to `url`.
    pub read_url: Secret,
    /// Where the embedded SQLite database lives.
    pub data_dir: PathBuf,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A filter such as `info` or `warn,pkgw=debug`.
    pub level: String,
    /// `text` (for people) or `json` (one JSON object per line, for log collectors).
    #[serde(default)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads the layers. `file` is required to exist when given; otherwise `pkgw.toml` in
    /// the working directory is read if present.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let file_source = match file {
            Some(path) => File::from(path).format(FileFormat::Toml).required(true),
            None => File::new(DEFAULT_FILE, FileFormat::Toml).required(false),
        };
        let settings: Settings = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(file_source)
            .add_source(
                Environment::with_prefix("PKGW")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        self.trace.validate().map_err(ConfigError)?;
        let url = self.database.url.expose();
        if !url.is_empty() {
            Backend::of_url(url).map_err(|e| ConfigError(format!("database.url: {e}")))?;
        }
        let read_url = self.database.read_url.expose();
        if !read_url.is_empty() {
            let backends = (Backend::of_url(url), Backend::of_url(read_url));
            if !matches!(backends, (Ok(Backend::Postgres), Ok(Backend::Postgres))) {
                return Err(ConfigError(
                    "database.read_url: a read replica is a PostgreSQL server's, and \
                     database.url must then be PostgreSQL too (postgres://…)"
                        .into(),
                ));
            }
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections must be at least 1".into(),
            ));
        }
        for (key, secs) in [
            ("request_timeout_secs", self.server.request_timeout_secs),
            ("header_timeout_secs", self.server.header_timeout_secs),
            ("body_timeout_secs", self.server.body_timeout_secs),
        ] {
            if secs == 0 {
                return Err(ConfigError(format!("server.{key} must be at least 1")));
            }
        }
        if self.server.max_concurrent_per_client == 0 {
            return Err(ConfigError(
                "server.max_concurrent_per_client must be at least 1".into(),
            ));
        }
        self.log_filter()?;
        crate::api::Cors::new(&self.server.cors_origins).map_err(ConfigError)?;
        for endpoint in &self.subscriptions.allowed_endpoints {
            let url = reqwest::Url::parse(endpoint).ok();
            if !url.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                return Err(ConfigError(format!(
                    "subscriptions.allowed_endpoints: {endpoint:?} is not an http(s) URL"
                )));
            }
        }
        if self.sync.batch_size == 0
            || self.sync.lease_secs == 0
            || self.sync.request_timeout_secs == 0
        {
            return Err(ConfigError(
                "sync.batch_size, sync.lease_secs and sync.request_timeout_secs must be at least 1"
                    .into(),
            ));
        }
        crate::domain::check_schemes(&self.reservnummer)
            .map_err(|why| ConfigError(format!("reservnummer{why}")))?;
        self.templates(false)?;
        self.profile()?;
        self.targets()?;
        Ok(())
    }

    /// The templates on offer: those in `templates.dir`, else none (the shipped examples
    /// for a demo).
    pub fn templates(&self, demo: bool) -> Result<crate::templates::Templates, ConfigError> {
        if self.templates.dir.is_empty() {
            return if demo {
                crate::templates::Templates::examples().map_err(ConfigError)
            } else {
                Ok(crate::templates::Templates::default())
            };
        }
        crate::templates::Templates::load_dir(Path::new(&self.templates.dir)).map_err(ConfigError)
    }

    /// The gateway's own mapping profile (`fhir.profile`), with the region's reservnummer.
    pub fn profile(&self) -> Result<crate::fhir::Profile, ConfigError> {
        let named = &self.fhir.profile;
        let profile = if named.ends_with(".toml") {
            crate::fhir::Profile::load(Path::new(named))
        } else {
            crate::fhir::Profile::built_in(named)
        };
        profile
            .map(|p| p.with_reservnummer(&self.reservnummer))
            .map_err(|e| ConfigError(format!("fhir.profile: {e}")))
    }

    /// The enabled targets, checked.
    pub fn targets(&self) -> Result<Vec<Target>, ConfigError> {
        targets_from_settings(&self.targets).map_err(ConfigError)
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            ConfigError(format!(
                "server.bind must be an address and port such as 127.0.0.1:8080, got '{}'",
                self.server.bind
            ))
        })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_secs)
    }

    pub fn log_filter(&self) -> Result<tracing_subscriber::filter::Targets, ConfigError> {
        self.log
            .level
            .parse()
            .map_err(|e| ConfigError(format!("log.level '{}': {e}", self.log.level)))
    }

    /// How to open the store: the configured URL, or SQLite in the data directory.
    pub fn store_options(&self) -> StoreOptions {
        let url = self.database.url.expose();
        let mut options = if url.is_empty() {
            StoreOptions::sqlite_in(&self.database.data_dir)
        } else {
            StoreOptions::new(url)
        };
        options.max_connections = self.database.max_connections;
        let read_url = self.database.read_url.expose();
        options.read_url = (!read_url.is_empty()).then(|| read_url.to_owned());
        options
    }

    /// Whether the store is the embedded SQLite file (whose directory must exist).
    pub fn uses_embedded_store(&self) -> bool {
        self.database.url.expose().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn defaults_give_sqlite_in_data() {
        let s = Settings::load(Some(Path::new("pkgw.example.toml"))).unwrap();
        assert_eq!(s.bind_addr().unwrap().port(), 8080);
        assert!(s.uses_embedded_store());
        assert!(s.store_options().url.starts_with("sqlite://data/pkgw.db"));
    }

    #[test]
    fn file_values_override_defaults_and_unknown_keys_are_named() {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            f,
            "[server]\nbind = \"0.0.0.0:9000\"\n[database]\nurl = \"postgres://u:pw@db/pk\""
        )
        .unwrap();
        let s = Settings::load(Some(f.path())).unwrap();
        assert_eq!(s.bind_addr().unwrap().port(), 9000);
        assert_eq!(s.store_options().url, "postgres://u:pw@db/pk");
        assert!(
            !format!("{s:?}").contains("pw"),
            "the password is not printed"
        );

        let mut bad = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(bad, "[server]\nbnid = \"0.0.0.0:9000\"").unwrap();
        let err = Settings::load(Some(bad.path())).unwrap_err().to_string();
        assert!(err.contains("bnid"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(f, "[server]\nbind = \"localhost\"").unwrap();
        let err = Settings::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("server.bind"), "{err}");
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(f, "[database]\nurl = \"mysql://x\"").unwrap();
        let err = Settings::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("database.url"), "{err}");
        // A read replica is PostgreSQL's, beside a PostgreSQL primary.
        for (url, read_url) in [
            ("", "postgres://u:pw@replica/pk"),
            ("postgres://u@db/pk", "sqlite://replica.db"),
        ] {
            let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
            writeln!(f, "[database]\nurl = \"{url}\"\nread_url = \"{read_url}\"").unwrap();
            let err = Settings::load(Some(f.path())).unwrap_err().to_string();
            assert!(err.contains("database.read_url"), "{err}");
            assert!(!err.contains("pw"), "{err}");
        }
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            f,
            "[database]\nurl = \"postgres://u@db/pk\"\nread_url = \"postgres://u:pw@replica/pk\""
        )
        .unwrap();
        let s = Settings::load(Some(f.path())).unwrap();
        let options = s.store_options();
        assert_eq!(
            options.read_url.as_deref(),
            Some("postgres://u:pw@replica/pk")
        );
        assert!(
            !format!("{s:?}").contains("pw"),
            "the password is not printed"
        );
        for endpoint in ["collector:4318", "file:///tmp/spans", "http://"] {
            let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
            writeln!(f, "[trace]\notlp_endpoint = \"{endpoint}\"").unwrap();
            let err = Settings::load(Some(f.path())).unwrap_err().to_string();
            assert!(err.contains("trace.otlp_endpoint"), "{endpoint}: {err}");
        }
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(f, "[trace]\notlp_endpoint = \"http://collector:4318\"").unwrap();
        let s = Settings::load(Some(f.path())).unwrap();
        assert_eq!(s.trace.service_name, "pkgw");
    }

    /// A region's own profile file decides each unit's first page; a bad one is named.
    #[test]
    fn the_gateways_profile_can_be_a_regions_file() {
        let unit = crate::domain::HsaId::parse("SE2321000016-1A2B").unwrap();
        let default = Settings::load(Some(Path::new("pkgw.example.toml"))).unwrap();
        assert_eq!(
            default.profile().unwrap().first_page_of(Some(&unit)),
            crate::fhir::FirstPageElement::ALL
        );
        let mut profile = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        let text = std::fs::read_to_string("mappings/default.toml").unwrap();
        writeln!(
            profile,
            "{text}\n[first_page]\nshows = [\"phone\", \"phone_hours\", \"contact_services\", \"next_step\", \"next_agreed_time\", \"fixed_contacts\"]\nunits = [{{ hsa_id = \"SE2321000016-1A2B\", shows = [\"next_step\", \"phone\"] }}]"
        )
        .unwrap();
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            f,
            "[fhir]\nprofile = {:?}",
            profile.path().display().to_string()
        )
        .unwrap();
        let s = Settings::load(Some(f.path())).unwrap();
        let shows = s.profile().unwrap().first_page_of(Some(&unit)).to_vec();
        assert_eq!(
            shows,
            [
                crate::fhir::FirstPageElement::NextStep,
                crate::fhir::FirstPageElement::Phone
            ]
        );
        let mut bad = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(bad, "[fhir]\nprofile = \"/nonexistent/region.toml\"").unwrap();
        let err = Settings::load(Some(bad.path())).unwrap_err().to_string();
        assert!(err.contains("fhir.profile"), "{err}");
    }

    #[test]
    fn a_named_file_must_exist() {
        assert!(Settings::load(Some(Path::new("/nonexistent/pkgw.toml"))).is_err());
    }
}
