//! `pkgw export`: every contract with its history as NDJSON, to stdout or a file.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, DatabaseArgs, open_store};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: ExportArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let store = open_store(&settings).await?;
    let written = match &args.out {
        Some(path) => {
            let file = tokio::fs::File::create(path).await?;
            crate::ndjson::export(&store, &mut tokio::io::BufWriter::new(file)).await?
        }
        None => {
            crate::ndjson::export(&store, &mut tokio::io::BufWriter::new(tokio::io::stdout()))
                .await?
        }
    };
    eprintln!("exported {written} contracts");
    store.close().await;
    Ok(())
}
