//! `pkgw validate FILE`: check a FHIR resource, a contract Bundle or NDJSON as the gateway
//! would take it, and print an OperationOutcome. Exit status 0 when there is no error.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::fhir::Profile;
use crate::fhir::outcome::operation_outcome;
use crate::fhir::validate::validate_text;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A FHIR resource or Bundle (JSON), or NDJSON of them; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Mapping profile: a built-in name (default, cosmic) or a TOML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    profile: String,
}

pub(super) fn run(args: ValidateArgs) -> Result<(), CliError> {
    let profile = if args.profile.ends_with(".toml") {
        Profile::load(std::path::Path::new(&args.profile))
    } else {
        Profile::built_in(&args.profile)
    }
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", args.file.display())))?
    };
    let issues = validate_text(&text, &profile);
    let outcome = operation_outcome(&issues);
    println!(
        "{}",
        serde_json::to_string_pretty(&outcome).unwrap_or_default()
    );
    let errors = issues.iter().filter(|i| i.severity == "error").count();
    if errors == 0 {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} has {errors} error(s)",
            args.file.display()
        )))
    }
}
