//! `pkgw serve`: run the gateway until Ctrl-C or SIGTERM; with `--demo`, load the demo
//! contracts into an empty store and print how to call the gateway.

use clap::Args;
use tokio::net::TcpListener;

use super::{CliError, DatabaseArgs, init_logging, open_store, shutdown_signal};
use crate::api::{self, AppState, Limits};
use crate::config::Settings;
use crate::domain::ContractId;
use crate::store::{Change, Store};
use crate::sync::Engine;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (default from settings: 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Load the demo contracts when the store is empty, and print example calls.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: ServeArgs, mut settings: Settings) -> Result<(), CliError> {
    args.db.apply(&mut settings);
    if let Some(bind) = args.bind {
        settings.server.bind = bind;
    }
    settings.validate()?;
    init_logging(&settings)?;
    let store = open_store(&settings).await?;
    let example = if args.demo {
        Some(load_demo(&store).await?)
    } else {
        None
    };
    let listener = TcpListener::bind(settings.bind_addr()?)
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", settings.server.bind)))?;
    let base = format!("http://{}", listener.local_addr()?);
    tracing::info!(%base, backend = ?store.backend(), "pkgw listening");
    println!("pkgw is listening on {base}");
    if let Some(example) = &example {
        print_demo_help(&base, &settings, example);
    }
    let limits = Limits {
        body_bytes: settings.server.body_limit_bytes,
        request_timeout: settings.request_timeout(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (engine, sync) = match start_sync(&store, &settings, stopped)? {
        Some((engine, task)) => (Some(engine), Some(task)),
        None => (None, None),
    };
    let names = settings.targets()?.into_iter().map(|t| t.name).collect();
    let state = AppState::new(store.clone())
        .with_sync(names, engine)
        .with_export_dir(settings.database.data_dir.join("exports"));
    api::serve(listener, state, limits, shutdown_signal()).await?;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    if let Some(sync) = sync {
        let _ = sync.await;
    }
    store.close().await;
    Ok(())
}

/// The sync engine and the task running it.
type RunningSync = (Arc<Engine>, tokio::task::JoinHandle<()>);

/// Starts the sync engine in the background when there are targets and sync is enabled.
fn start_sync(
    store: &Store,
    settings: &Settings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<RunningSync>, CliError> {
    let targets = settings.targets()?;
    // Runs without targets too: it delivers the subscriptions' notifications.
    if !settings.sync.enabled {
        return Ok(None);
    }
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    tracing::info!(targets = %names.join(","), "sync running");
    let engine = Arc::new(
        Engine::new(store.clone(), targets, settings.sync.clone()).map_err(CliError::Failed)?,
    );
    let task = tokio::spawn(engine.clone().run(stop));
    Ok(Some((engine, task)))
}

/// One demo contract to point the examples at.
struct Example {
    id: Option<ContractId>,
    patient: String,
    loaded: usize,
    /// A unit with demo "7 frågor" answers.
    unit: Option<String>,
}

/// Loads the demo contracts if the store is empty.
async fn load_demo(store: &Store) -> Result<Example, CliError> {
    let contracts =
        crate::demo::contracts().map_err(|e| CliError::Failed(format!("demo data: {e}")))?;
    let example = contracts
        .iter()
        .find(|(n, _)| *n == "hjartsvikt-primarvard")
        .map(|(_, c)| c);
    let patient = example.map(|c| c.patient.id);
    let unit = example
        .and_then(|c| c.responsible_unit.as_ref())
        .map(|u| u.hsa_id.as_str().to_owned());
    let mut loaded = Vec::new();
    if store.count().await? == 0 {
        for (_, contract) in contracts {
            let record = store.create(contract, Change::from_source("demo")).await?;
            loaded.push((record.id, record.revision.contract));
        }
        for answers in crate::demo::answers(&loaded, &crate::fhir::Profile::default_profile()) {
            store.create_response(answers).await?;
        }
    }

    let id = match &patient {
        Some(p) => store
            .find_by_patient(p)
            .await?
            .into_iter()
            .next()
            .map(|r| r.id),
        None => None,
    };
    Ok(Example {
        id,
        patient: patient.map(|p| p.to_string()).unwrap_or_default(),
        loaded: loaded.len(),
        unit,
    })
}

fn print_demo_help(base: &str, settings: &Settings, example: &Example) {
    let where_ = if settings.uses_embedded_store() {
        format!(
            "SQLite at {}",
            settings.database.data_dir.join("pkgw.db").display()
        )
    } else {
        "the configured database".to_owned()
    };
    if example.loaded > 0 {
        println!("Loaded {} demo contracts into {where_}.", example.loaded);
    } else {
        println!("The store ({where_}) already has contracts; demo data not loaded again.");
    }
    println!("\nTry:");
    println!("  curl {base}/health");
    println!("  curl '{base}/api/contracts?patient={}'", example.patient);
    if let Some(id) = &example.id {
        println!("  curl -i {base}/api/contracts/{id}");
        println!("  curl {base}/api/contracts/{id}/history");
        println!("  curl {base}/api/contracts/{id}/versions/1");
    }
    println!("\nFHIR R4:");
    println!("  curl {base}/fhir/metadata");
    println!(
        "  curl '{base}/fhir/CarePlan/$coordinated-plan?patient={}'",
        example.patient
    );
    if let Some(id) = &example.id {
        println!("  curl {base}/fhir/CarePlan/{id}");
    }
    if let Some(unit) = &example.unit {
        println!(
            "\n7 frågor, samsyn of a unit and its patients (JSON, and a chart for the browser):"
        );
        println!("  curl '{base}/fhir/$samsyn?unit={unit}&_pretty=true'");
        println!("  {base}/fhir/$samsyn?unit={unit}&_format=svg");
    }
    println!("\nStop with Ctrl-C.");
}
