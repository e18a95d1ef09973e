//! The `pkgw` command line: one file per command; `main.rs` only parses and calls [`run`].

mod audit;
mod export;
mod generate;
mod import;
mod migrate;
mod print;
mod samsyn;
mod serve;
mod sync;
mod token;
mod transfer;
mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigError, LogFormat, Settings};
use crate::store::{Store, StoreOptions};

/// pkgw: the Patientkontrakt gateway. Keeps each person's Patientkontrakt as one
/// versioned record and serves it over HTTP.
#[derive(Debug, Parser)]
#[command(name = "pkgw", version)]
pub struct Cli {
    /// Settings file (TOML). Default: pkgw.toml in the working directory, if present.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway's HTTP server.
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Import contracts from NDJSON: histories (as export writes them) or FHIR resources.
    Import(import::ImportArgs),
    /// Export every contract as NDJSON: with its history, or as FHIR resources.
    Export(export::ExportArgs),
    /// Check a FHIR resource, contract Bundle or NDJSON and print an OperationOutcome.
    Validate(validate::ValidateArgs),
    /// Deliver changes to the target systems; queues, dead letters and re-pushes.
    Sync(sync::SyncArgs),
    /// Write synthetic contracts as NDJSON, for load tests (deterministic by seed).
    Generate(generate::GenerateArgs),
    /// Write a contract as a printable Swedish HTML page.
    Print(print::PrintArgs),
    /// Transfer a contract to the next unit: a care transition in one step.
    Transfer(Box<transfer::TransferArgs>),
    /// The samsyn report of a unit's "7 frågor" answers beside its patients'.
    Samsyn(samsyn::SamsynArgs),
    /// Mint a development token (HS256 with auth.hs256_secret).
    Token(token::TokenArgs),
    /// The audit trail: who read, searched or changed whose data.
    Audit(audit::AuditArgs),
}

/// Where the data is; overrides the settings file and environment.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: postgres://user@host/db or sqlite://path?mode=rwc. Default: SQLite in
    /// the data directory.
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded SQLite database.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

impl DatabaseArgs {
    fn apply(&self, settings: &mut Settings) {
        if let Some(url) = &self.database_url {
            settings.database.url = crate::config::Secret::new(url.clone());
        }
        if let Some(dir) = &self.data_dir {
            settings.database.data_dir = dir.clone();
        }
    }
}

/// Anything that stops a command; printed once, then the process exits with status 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Ndjson(#[from] crate::ndjson::NdjsonError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve::run(args, settings).await,
        Command::Migrate(db) => {
            db.apply(&mut settings);
            migrate::run(settings).await
        }
        Command::Import(args) => import::run(args, settings).await,
        Command::Export(args) => export::run(args, settings).await,
        Command::Validate(args) => validate::run(args),
        Command::Sync(args) => sync::run(args, settings).await,
        Command::Transfer(args) => transfer::run(*args, settings).await,
        Command::Print(args) => print::run(args, settings).await,
        Command::Generate(args) => generate::run(args, settings).await,
        Command::Samsyn(args) => samsyn::run(args, settings).await,
        Command::Token(args) => token::run(args, &settings),
        Command::Audit(args) => audit::run(args, settings).await,
    }
}

/// Starts logging to stderr at the configured level.
pub fn init_logging(settings: &Settings) -> Result<(), ConfigError> {
    use std::io::IsTerminal;

    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = settings.log_filter()?;
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Text => registry
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .try_init(),
        // One JSON object per line: the event's fields at the top, as collectors index them.
        LogFormat::Json => registry
            .with(layer.json().flatten_event(true).with_current_span(false))
            .try_init(),
    };
    Ok(())
}

/// Opens (and migrates) the configured store, creating the data directory if needed.
async fn open_store(settings: &Settings) -> Result<Store, CliError> {
    if settings.uses_embedded_store() {
        std::fs::create_dir_all(&settings.database.data_dir).map_err(|e| {
            CliError::Failed(format!(
                "cannot create data directory {}: {e}",
                settings.database.data_dir.display()
            ))
        })?;
    }
    let options: StoreOptions = settings.store_options();
    Ok(Store::open(&options).await?)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A progress bar on standard error for a job of `total` steps; it draws nothing when
/// standard error is not a terminal (logs, pipes, tests).
fn progress(total: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
