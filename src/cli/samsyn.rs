//! `pkgw samsyn --unit HSA-ID [--period P] [--format text|json|svg] [--out FILE]`: the
//! samsyn report of one unit's "7 frågor" answers beside its patients', the same as
//! `GET /fhir/$samsyn` (see [`crate::samsyn`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{CliError, DatabaseArgs, open_store};
use crate::config::Settings;
use crate::domain::HsaId;
use crate::samsyn::{Period, Report};

#[derive(Debug, Args)]
pub struct SamsynArgs {
    /// The unit's HSA-id.
    #[arg(long, value_name = "HSA-ID")]
    unit: String,
    /// The patients' answers to count: YYYY, YYYY-MM, YYYY-MM-DD or FROM/TO (both
    /// included). Default: all.
    #[arg(long, value_name = "PERIOD")]
    period: Option<String>,
    /// text: a table for the terminal; json: FHIR Parameters; svg: the chart.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Svg,
}

pub(super) async fn run(args: SamsynArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    let unit = HsaId::parse(&args.unit).map_err(|e| CliError::Failed(format!("--unit: {e}")))?;
    let period = match &args.period {
        Some(p) => Period::parse(p).map_err(|e| CliError::Failed(format!("--period: {e}")))?,
        None => Period::all(),
    };
    let profile = settings.profile()?;
    let store = open_store(&settings).await?;
    let minimum = settings.samsyn.min_patient_answers;
    let report = Report::build(&store, &profile, &unit, period, minimum).await;
    store.close().await;
    let report = report?;
    let out = match args.format {
        Format::Text => text(&report),
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report.parameters(&profile))
                .map_err(|e| CliError::Failed(e.to_string()))?
        ),
        Format::Svg => report.svg(),
    };
    match &args.out {
        Some(path) => {
            tokio::fs::write(path, out).await?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{out}"),
    }
    Ok(())
}

/// The report as a table: per question the patients' answers, their mean, the unit's
/// answer, the agreement and the gap.
fn text(report: &Report) -> String {
    let percent =
        |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{:.0} %", v * 100.0));
    let mut s = format!(
        "Samsyn, 7 frågor: {} ({}), svar från {} och {}, {}\n\n",
        report.unit_name.as_deref().unwrap_or("enheten"),
        report.unit.as_str(),
        crate::swedish::count(report.patients, "patient", "patienter"),
        crate::swedish::count(report.staff, "person i personalen", "personer i personalen"),
        if report.period.text.is_empty() {
            "alla svar".to_owned()
        } else {
            format!("period {}", report.period.text)
        },
    );
    if let Some(min) = report.withheld_below {
        let _ = writeln!(
            s,
            "Patienternas svar visas inte: färre än {min} har svarat.\n"
        );
    }
    s.push_str(
        "fråga  svar  ja/delvis/nej/vet inte/ej aktuellt  patienterna  enheten  samsyn  exakt    skillnad\n",
    );
    for (i, q) in report.questions.iter().enumerate() {
        let c = &q.comparison;
        let [ja, delvis, nej, vet_inte, inte_aktuellt] = c.distribution;
        let _ = writeln!(
            s,
            "{:<5}  {:>4}  {:>33}  {:>11}  {:>7}  {:>6}  {:>5}  {:>9}{}",
            q.link_id,
            c.patient_answers,
            format!("{ja}/{delvis}/{nej}/{vet_inte}/{inte_aktuellt}"),
            percent(c.patient_mean),
            percent(c.unit_mean),
            percent(c.weighted_agreement),
            percent(c.exact_agreement),
            // In percentage points, as the other figures are percentages.
            c.gap
                .map_or_else(|| "–".to_owned(), |g| format!("{:+.0} p.e.", g * 100.0)),
            if report.largest_gaps.contains(&i) {
                "  ← störst skillnad"
            } else {
                ""
            },
        );
    }
    s.push('\n');
    for q in &report.questions {
        let _ = writeln!(s, "{}. {}", q.link_id, q.patient_text);
    }
    s
}
