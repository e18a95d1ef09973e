//! `pkgw migrate`: apply the embedded migrations and exit.

use super::{CliError, open_store};
use crate::config::Settings;

pub(super) async fn run(settings: Settings) -> Result<(), CliError> {
    let store = open_store(&settings).await?;
    eprintln!("database is up to date ({:?})", store.backend());
    store.close().await;
    Ok(())
}
