//! `pkgw token --scope … [--patient …] [--units …]`: a development token, signed with the
//! configured HS256 secret (`auth.hs256_secret`), for the configured issuer and audience.
//! Production tokens come from the region's identity provider, not from here.

use clap::Args;

use super::CliError;
use crate::auth::{DevToken, dev_token};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// SMART scopes, space-separated: `system/*.cruds`, `user/CarePlan.rs`,
    /// `patient/*.rs` (with --patient), `system/AuditEvent.rs`, ….
    #[arg(long, value_name = "SCOPES")]
    scope: String,
    /// The patient a `patient/` scope is about (personnummer or samordningsnummer).
    #[arg(long, value_name = "PERSONNUMMER")]
    patient: Option<String>,
    /// Limit writes to contracts these units (HSA-ids, comma-separated) are responsible
    /// for or receive.
    #[arg(long, value_name = "HSA-IDS", value_delimiter = ',')]
    units: Vec<String>,
    /// The client the token is for (`client_id`).
    #[arg(long, default_value = "dev-client")]
    client: String,
    /// Who the token speaks for (`sub`). Default: the client.
    #[arg(long)]
    subject: Option<String>,
    /// How long it is valid, in minutes.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
}

pub(super) fn run(args: TokenArgs, settings: &Settings) -> Result<(), CliError> {
    if args.scope.contains("patient/") && args.patient.is_none() {
        return Err(CliError::Failed(
            "--patient: a patient/ scope needs the patient it is about".into(),
        ));
    }
    let token = dev_token(
        &settings.auth,
        &DevToken {
            subject: args.subject.unwrap_or_else(|| args.client.clone()),
            client: args.client,
            scope: args.scope,
            patient: args.patient,
            units: (!args.units.is_empty()).then_some(args.units),
            valid_for: std::time::Duration::from_secs(args.minutes * 60),
        },
    )
    .map_err(CliError::Failed)?;
    println!("{token}");
    Ok(())
}
