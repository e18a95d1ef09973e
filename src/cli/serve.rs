//! `pkgw serve`: run the gateway until Ctrl-C or SIGTERM; with `--demo`, load the demo
//! contracts into an empty store and print how to call the gateway.

use clap::Args;
use tokio::net::TcpListener;

use super::{CliError, DatabaseArgs, init_logging, open_store};
use crate::api::{self, AppState, Limits};
use crate::config::Settings;
use crate::domain::ContractId;
use crate::store::{Change, Store};

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
    api::serve(
        listener,
        AppState::new(store.clone()),
        limits,
        shutdown_signal(),
    )
    .await?;
    tracing::info!("shutting down");
    store.close().await;
    Ok(())
}

/// One demo contract to point the examples at.
struct Example {
    id: Option<ContractId>,
    patient: String,
    loaded: usize,
}

/// Loads the demo contracts if the store is empty.
async fn load_demo(store: &Store) -> Result<Example, CliError> {
    let contracts =
        crate::demo::contracts().map_err(|e| CliError::Failed(format!("demo data: {e}")))?;
    let patient = contracts
        .iter()
        .find(|(n, _)| *n == "hjartsvikt-primarvard")
        .map(|(_, c)| c.patient.id);
    let mut loaded = 0;
    if store.count().await? == 0 {
        for (_, contract) in contracts {
            store.create(contract, Change::from_source("demo")).await?;
            loaded += 1;
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
        loaded,
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
    println!("\nStop with Ctrl-C.");
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
