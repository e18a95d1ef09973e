//! `pkgw import FILE.ndjson`: load contracts — with their histories, as `export` wrote
//! them (`--format history`, the default), or from FHIR NDJSON (`--format fhir`: each
//! contract's CarePlan followed by its CareTeam, Goals and Appointments). Histories are
//! stored 256 to a commit, each whole or not at all; afterwards the database's planner
//! statistics are refreshed (`ANALYZE`) and, on PostgreSQL, what the import wrote is
//! written out (`CHECKPOINT`), as after any bulk load, so the gateway's first requests
//! do not wait behind it.

use std::path::PathBuf;

use clap::Args;
use tokio::io::AsyncBufRead;

use super::export::{Format, load_profile};
use super::{CliError, DatabaseArgs, open_store, progress};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// NDJSON file; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// The mapping profile for --format fhir: a built-in name (default, cosmic) or a file.
    #[arg(long, value_name = "PROFILE", default_value = "default")]
    profile: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: ImportArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let store = open_store(&settings).await?;
    let report = if args.file.as_os_str() == "-" {
        read(
            &store,
            &args,
            tokio::io::BufReader::new(tokio::io::stdin()),
            0,
        )
        .await?
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| CliError::Failed(format!("cannot open {}: {e}", args.file.display())))?;
        let lines = count_lines(&args.file).await.unwrap_or(0);
        read(&store, &args, tokio::io::BufReader::new(file), lines).await?
    };
    if report.imported > 0 {
        store.analyze().await?;
        if !store.checkpoint().await? {
            eprintln!(
                "the database's role may not run CHECKPOINT: run it as a superuser (or a \
                 member of pg_checkpoint) before the gateway takes traffic, or the first \
                 checkpoint writes the import out under the first requests (docs/scaling.md)"
            );
        }
    }
    store.close().await;
    for r in &report.rejected {
        eprintln!("line {}: {}", r.line, r.reason);
    }
    eprintln!(
        "imported {} contracts, rejected {}",
        report.imported,
        report.rejected.len()
    );
    if report.rejected.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} lines were not imported",
            report.rejected.len()
        )))
    }
}

async fn read<R: AsyncBufRead + Unpin>(
    store: &crate::store::Store,
    args: &ImportArgs,
    input: R,
    lines: u64,
) -> Result<crate::ndjson::ImportReport, CliError> {
    let bar = progress(lines, "lines");
    let tick = || bar.inc(1);
    let report = match args.format {
        Format::History => crate::ndjson::import(store, input, &tick).await?,
        Format::Fhir => {
            let profile = load_profile(&args.profile)?;
            crate::ndjson::import_fhir(store, &profile, input, &tick).await?
        }
    };
    bar.finish_and_clear();
    Ok(report)
}

/// Lines in a file, for the progress bar (streamed: the file is not held in memory).
async fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut chunk = vec![0; 256 * 1024];
    let mut lines = 0;
    loop {
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            return Ok(lines);
        }
        lines += chunk[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}
