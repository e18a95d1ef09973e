//! `pkgw sync`: the sync engine from the command line — run it, see where each target
//! stands, list and replay dead letters, and re-push contracts to a target.

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{CliError, DatabaseArgs, init_logging, open_store, shutdown_signal};
use crate::config::Settings;
use crate::sync::Engine;

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    command: SyncCommand,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// Deliver changes to the targets until Ctrl-C (as `pkgw serve` does in the
    /// background); with --once, until nothing is due and then exit.
    Run {
        /// Deliver what is due now, then exit (retries that must wait stay queued).
        #[arg(long)]
        once: bool,
    },
    /// Each target's queue: contracts waiting, retrying, the oldest wait, dead letters.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the changes targets refused for good, with the target's reason.
    DeadLetters {
        /// Only this target.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// Print JSON (one object per line) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue dead letters again, once the cause is fixed. A replayed change overwrites
    /// the target's copy even if it was changed there.
    Replay {
        /// Only this target's dead letters.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// Only the dead letter with this number (see dead-letters).
        #[arg(long, value_name = "N")]
        seq: Option<i64>,
    },
    /// Compare every contract the target should hold with what it holds: missing,
    /// stale, differing, extra. Prints a summary and the report as JSON.
    Verify {
        #[arg(long, value_name = "NAME")]
        target: String,
        /// Queue the missing, stale and differing contracts again (the gateway's copy
        /// overwrites the target's).
        #[arg(long)]
        repair: bool,
    },
    /// Read the changes a target made since the last pull (or --since) and merge them
    /// in, part by part, against the version the target was last sent.
    Pull {
        #[arg(long, value_name = "NAME")]
        target: String,
        #[arg(long, value_name = "INSTANT")]
        since: Option<jiff::Timestamp>,
    },
    /// List edits refused because they conflicted with changes their sender had not
    /// seen (409s), with what was sent, for a person to resolve.
    Conflicts {
        /// Print JSON (one object per line, with the edit as sent) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue contracts for a target again: every contract (--all) or those changed since
    /// an instant (--since 2026-11-01T00:00:00Z).
    Push {
        #[arg(long, value_name = "NAME")]
        target: String,
        #[arg(long, conflicts_with = "since", required_unless_present = "since")]
        all: bool,
        #[arg(long, value_name = "INSTANT")]
        since: Option<jiff::Timestamp>,
    },
}

pub(super) async fn run(args: SyncArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    settings.validate()?;
    let targets = settings.targets()?;
    let known = |name: &str| -> Result<(), CliError> {
        if targets.iter().any(|t| t.name == name) {
            Ok(())
        } else {
            Err(CliError::Failed(format!(
                "no enabled target named '{name}' (configured: {})",
                targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    let store = open_store(&settings).await?;
    match args.command {
        SyncCommand::Run { once } => {
            init_logging(&settings)?;
            if targets.is_empty() {
                eprintln!("no [[targets]] configured: only subscription notifications are sent");
            }
            let tracer = crate::trace::Tracer::start(&settings.trace).map_err(CliError::Failed)?;
            let engine = Engine::new(store.clone(), targets, settings.sync.clone())
                .map_err(CliError::Failed)?
                .with_subscriptions(settings.subscriptions.clone())
                .with_tracer(tracer);
            if once {
                engine.run_until_idle().await?;
            } else {
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let running = tokio::spawn(Arc::new(engine).run(stopped));
                shutdown_signal().await;
                let _ = stop.send(true);
                let _ = running.await;
            }
            print_status(&store, &settings, false).await?;
        }
        SyncCommand::Status { json } => print_status(&store, &settings, json).await?,
        SyncCommand::DeadLetters { target, json } => {
            if let Some(name) = &target {
                known(name)?;
            }
            let letters = store.dead_letters(target.as_deref()).await?;
            if !json {
                println!(
                    "{:>6}  {:<14} {:<38} {:>7}  {:<20}  why",
                    "n", "target", "contract", "version", "failed"
                );
            }
            for d in &letters {
                if json {
                    let line = serde_json::json!({
                        "seq": d.seq, "target": d.target, "contract": d.contract_id.as_str(),
                        "version": d.version.get(), "failedAt": d.failed_at.to_string(),
                        "status": d.status, "error": d.error, "outcome": d.outcome,
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{:>6}  {:<14} {:<38} {:>7}  {:<20}  {}",
                        d.seq,
                        d.target,
                        d.contract_id.as_str(),
                        d.version.get(),
                        d.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
                        d.error
                    );
                }
            }
            if !json {
                eprintln!("{} dead letters", letters.len());
            }
        }
        SyncCommand::Replay { target, seq } => {
            if let Some(name) = &target {
                known(name)?;
            }
            let n = store.replay(target.as_deref(), seq).await?;
            eprintln!("queued {n} dead letters again");
        }
        SyncCommand::Conflicts { json } => print_conflicts(&store, json).await?,
        SyncCommand::Pull { target, since } => {
            known(&target)?;
            let engine = Engine::new(store.clone(), targets, settings.sync.clone())
                .map_err(CliError::Failed)?
                .with_subscriptions(settings.subscriptions.clone());
            let report = engine
                .pull(&target, since)
                .await
                .ok_or_else(|| CliError::Failed(format!("no target {target}")))?
                .map_err(|e| CliError::Failed(e.to_string()))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report)
                    .map_err(|e| CliError::Failed(e.to_string()))?
            );
            eprintln!(
                "{target}: {} changed, {} unchanged, {} merged, {} conflicts, {} skipped, {} failed",
                report.seen,
                report.unchanged,
                report.merged.len(),
                report.conflicts.len(),
                report.skipped,
                report.failed.len()
            );
        }
        SyncCommand::Verify { target, repair } => {
            known(&target)?;
            let engine = Engine::new(store.clone(), targets, settings.sync.clone())
                .map_err(CliError::Failed)?
                .with_subscriptions(settings.subscriptions.clone());
            let bar = super::progress(store.count().await?, "contracts");
            let report = engine
                .verify(&target, repair, &|| bar.inc(1))
                .await
                .ok_or_else(|| CliError::Failed(format!("no target {target}")))?
                .map_err(|e| CliError::Failed(e.to_string()))?;
            bar.finish_and_clear();
            println!(
                "{}",
                serde_json::to_string_pretty(&report)
                    .map_err(|e| CliError::Failed(e.to_string()))?
            );
            eprintln!("{}", report.summary());
            if repair {
                eprintln!("queued {} contracts again", report.to_repair().len());
            }
        }
        SyncCommand::Push {
            target,
            all: _,
            since,
        } => {
            known(&target)?;
            let n = store.queue_all(&target, since).await?;
            eprintln!("queued {n} contracts for {target}");
        }
    }
    store.close().await;
    Ok(())
}

async fn print_status(
    store: &crate::store::Store,
    settings: &Settings,
    json: bool,
) -> Result<(), CliError> {
    let targets = settings.targets()?;
    let now = jiff::Timestamp::now();
    let mut all = Vec::new();
    if !json {
        println!(
            "{:<14} {:>8} {:>9} {:>12} {:>10} {:>8}  last error",
            "target", "queued", "retrying", "oldest (s)", "delivered", "dead"
        );
    }
    for t in &targets {
        let s = store.queue_status(&t.name).await?;
        let oldest = s.oldest.map(|o| now.duration_since(o).as_secs());
        if json {
            all.push(serde_json::json!({
                "target": t.name, "queued": s.queued, "retrying": s.retrying,
                "oldestSeconds": oldest, "delivered": s.delivered, "deadLetters": s.dead_letters,
                "lastError": s.last_error,
            }));
        } else {
            println!(
                "{:<14} {:>8} {:>9} {:>12} {:>10} {:>8}  {}",
                t.name,
                s.queued,
                s.retrying,
                oldest.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
                s.delivered,
                s.dead_letters,
                s.last_error.unwrap_or_default()
            );
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(all));
    }
    Ok(())
}

async fn print_conflicts(store: &crate::store::Store, json: bool) -> Result<(), CliError> {
    let conflicts = store.conflicts().await?;
    if !json {
        println!(
            "{:>6}  {:<20}  {:<38} {:<14} {:>5} {:>5}  parts",
            "n", "at", "contract", "from", "seen", "then"
        );
    }
    for c in &conflicts {
        if json {
            let line = serde_json::json!({
                "seq": c.seq, "at": c.at.to_string(), "contract": c.contract_id.as_str(),
                "source": c.source, "seenVersion": c.seen_version.get(),
                "currentVersion": c.current_version.get(), "parts": c.parts, "received": c.received,
            });
            println!("{line}");
        } else {
            println!(
                "{:>6}  {:<20}  {:<38} {:<14} {:>5} {:>5}  {}",
                c.seq,
                c.at.strftime("%Y-%m-%d %H:%M:%S"),
                c.contract_id.as_str(),
                c.source,
                c.seen_version.get(),
                c.current_version.get(),
                c.parts.join(", ")
            );
        }
    }
    if !json {
        eprintln!("{} conflicts", conflicts.len());
    }
    Ok(())
}
