//! `pkgw export`: every contract as NDJSON, to stdout or a file — with its whole history
//! (`--format history`, the default: a lossless backup that `import` reads back), or as
//! FHIR resources (`--format fhir`: each contract's current CarePlan, CareTeam, Goals and
//! Appointments, one per line, for other FHIR systems).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tokio::io::AsyncWrite;

use super::{CliError, DatabaseArgs, open_store, progress};
use crate::config::Settings;
use crate::fhir::Profile;

/// What the lines hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One contract per line with every version (pkgw's own format).
    #[default]
    History,
    /// One FHIR R4 resource per line (FHIR bulk data NDJSON).
    Fhir,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// The mapping profile for --format fhir: a built-in name (default, cosmic) or a file.
    #[arg(long, value_name = "PROFILE", default_value = "default")]
    profile: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: ExportArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let profile = load_profile(&args.profile)?;
    let store = open_store(&settings).await?;
    let bar = progress(store.count().await?, "contracts");
    let written = match &args.out {
        Some(path) => {
            let file = tokio::fs::File::create(path).await?;
            write(
                &store,
                &args,
                &profile,
                &mut tokio::io::BufWriter::new(file),
                &bar,
            )
            .await?
        }
        None => {
            let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
            write(&store, &args, &profile, &mut out, &bar).await?
        }
    };
    bar.finish_and_clear();
    eprintln!("exported {written} contracts");
    store.close().await;
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(
    store: &crate::store::Store,
    args: &ExportArgs,
    profile: &Profile,
    out: &mut W,
    bar: &indicatif::ProgressBar,
) -> Result<u64, CliError> {
    let tick = || bar.inc(1);
    Ok(match args.format {
        Format::History => crate::ndjson::export(store, out, &tick).await?,
        Format::Fhir => crate::ndjson::export_fhir(store, profile, out, &tick).await?,
    })
}

/// A mapping profile by built-in name or file path.
pub(super) fn load_profile(name: &str) -> Result<Profile, CliError> {
    if name.ends_with(".toml") {
        Profile::load(std::path::Path::new(name))
    } else {
        Profile::built_in(name)
    }
    .map_err(|e| CliError::Failed(format!("--profile: {e}")))
}
