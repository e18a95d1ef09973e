//! `pkgw import FILE.ndjson`: load contracts with their histories, as `export` wrote them.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, DatabaseArgs, open_store};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// NDJSON file, one contract history per line; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: ImportArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let store = open_store(&settings).await?;
    let report = if args.file.as_os_str() == "-" {
        crate::ndjson::import(&store, tokio::io::BufReader::new(tokio::io::stdin())).await?
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| CliError::Failed(format!("cannot open {}: {e}", args.file.display())))?;
        crate::ndjson::import(&store, tokio::io::BufReader::new(file)).await?
    };
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
