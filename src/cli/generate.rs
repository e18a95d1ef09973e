//! `pkgw generate --contracts N`: synthetic contracts as NDJSON for load tests and
//! benchmarks — realistic, valid, deterministic by `--seed`, streamed (a million need
//! memory for one). The history format loads with `pkgw import`.

use std::path::PathBuf;

use clap::Args;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::export::{Format, load_profile};
use super::{CliError, progress};
use crate::config::Settings;
use crate::fhir::stored::resources_of;
use crate::generate::Generator;
use crate::store::Record;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many contracts.
    #[arg(long, value_name = "N")]
    contracts: u64,
    /// The same seed gives the same contracts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// The mapping profile for --format fhir: a built-in name (default, cosmic) or a file.
    #[arg(long, value_name = "PROFILE", default_value = "default")]
    profile: String,
}

pub(super) async fn run(args: GenerateArgs, _settings: Settings) -> Result<(), CliError> {
    match &args.out {
        Some(path) => {
            let file = tokio::fs::File::create(path).await?;
            write(&args, &mut tokio::io::BufWriter::new(file)).await?;
        }
        None => write(&args, &mut tokio::io::BufWriter::new(tokio::io::stdout())).await?,
    }
    eprintln!(
        "generated {} contracts (seed {})",
        args.contracts, args.seed
    );
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(args: &GenerateArgs, out: &mut W) -> Result<(), CliError> {
    let generator = Generator::new(args.seed);
    let profile = load_profile(&args.profile)?;
    let bar = progress(args.contracts, "contracts");
    let mut line = Vec::with_capacity(16 * 1024);
    let encode = |e: serde_json::Error| CliError::Failed(e.to_string());
    for n in 0..args.contracts {
        let history = generator.history(n);
        line.clear();
        match args.format {
            Format::History => {
                serde_json::to_writer(&mut line, &history).map_err(encode)?;
                line.push(b'\n');
            }
            Format::Fhir => {
                let record = Record {
                    id: history.id.clone(),
                    revision: history.versions[0].clone(),
                };
                for resource in resources_of(&record, &profile).all() {
                    serde_json::to_writer(&mut line, resource).map_err(encode)?;
                    line.push(b'\n');
                }
            }
        }
        out.write_all(&line).await?;
        bar.inc(1);
    }
    out.flush().await?;
    bar.finish_and_clear();
    Ok(())
}
