//! The `pkgw` binary: parse the command line and hand it to the library.

use std::process::ExitCode;

use clap::Parser;

/// Allocation-heavy JSON work on many threads: mimalloc does it faster than the system
/// allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
