//! The `pkgw` binary: parse the command line and hand it to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = pkgw::cli::Cli::parse();
    match pkgw::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pkgw: {e}");
            ExitCode::FAILURE
        }
    }
}
