//! `pkgw audit [--patient P] [--contract ID] [--since DATE]`: the audit trail — who read,
//! searched or changed whose data, when, from where and with what outcome — oldest
//! first, as a table or as FHIR `AuditEvent`s (NDJSON).

use clap::{Args, ValueEnum};

use super::{CliError, DatabaseArgs, open_store};
use crate::config::Settings;
use crate::domain::PersonId;
use crate::store::AuditQuery;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only rows about this person (personnummer or samordningsnummer).
    #[arg(long, value_name = "PERSONNUMMER")]
    patient: Option<String>,
    /// Only rows about this contract (writes).
    #[arg(long, value_name = "ID")]
    contract: Option<String>,
    /// Only rows from this instant on (`2026-11-01T00:00:00Z`) or day (`2026-11-01`).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// text: one line per row; fhir: AuditEvent resources, one per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Fhir,
}

pub(super) async fn run(args: AuditArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let patient = args
        .patient
        .as_deref()
        .map(|p| {
            PersonId::parse(p)
                .map(|p| p.to_string())
                .map_err(|e| CliError::Failed(format!("--patient: {e}")))
        })
        .transpose()?;
    let since = args
        .since
        .as_deref()
        .map(|s| {
            s.parse::<jiff::Timestamp>()
                .or_else(|_| {
                    s.parse::<jiff::civil::Date>()
                        .and_then(|d| d.to_zoned(crate::swedish::stockholm()))
                        .map(|z| z.timestamp())
                })
                .map_err(|e| CliError::Failed(format!("--since: {e}")))
        })
        .transpose()?;
    let store = open_store(&settings).await?;
    let rows = store
        .audit(&AuditQuery {
            patient,
            contract_id: args.contract,
            since,
            after: None,
            limit: Some(args.limit),
        })
        .await;
    store.close().await;
    let profile = settings.profile()?;
    for row in rows? {
        match args.format {
            Format::Fhir => println!("{}", crate::api::fhir::audit_event(&row, &profile)),
            Format::Text => println!(
                "{}  {:<16}  {:<7}  {:<20}  {:>3}  {:<12}  {:<15}  {}",
                row.at.round(jiff::Unit::Second).unwrap_or(row.at),
                row.action,
                row.outcome,
                row.client.as_deref().unwrap_or(&row.origin),
                row.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                row.patient.as_deref().unwrap_or("-"),
                row.remote.as_deref().unwrap_or("-"),
                row.resources.as_deref().unwrap_or("-"),
            ),
        }
    }
    Ok(())
}
