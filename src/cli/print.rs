//! `pkgw print ID --out FILE.html`: the contract as a printable Swedish page, the same as
//! `GET /contracts/{id}/print`.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, DatabaseArgs, open_store};
use crate::config::Settings;
use crate::domain::ContractId;

#[derive(Debug, Args)]
pub struct PrintArgs {
    /// The contract's id.
    #[arg(value_name = "ID")]
    id: String,
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: PrintArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let id = ContractId::parse(&args.id).map_err(|e| CliError::Failed(format!("ID: {e}")))?;
    let store = open_store(&settings).await?;
    let record = store.get(&id).await?;
    store.close().await;
    let page = crate::print::page(&record, &settings.profile()?);
    match &args.out {
        Some(path) => {
            tokio::fs::write(path, page).await?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{page}"),
    }
    Ok(())
}
