//! `pkgw serve`: run the gateway until Ctrl-C or SIGTERM; with `--demo`, load the demo
//! contracts into an empty store and print how to call the gateway.

use clap::Args;
use tokio::net::TcpListener;

use super::{CliError, DatabaseArgs, init_logging, open_store, shutdown_signal};
use crate::api::{self, AppState, Cors, Limits, RateLimits};
use crate::auth::{DevToken, Mode, Verifier, dev_token};
use crate::config::{Secret, Settings};
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
    let demo_keys = args.demo && settings.auth.mode == Mode::Required && !settings.auth.has_keys();
    if demo_keys {
        settings.auth.hs256_secret = Secret::new(crate::auth::random_secret());
    }
    let verifier = match settings.auth.mode {
        Mode::Required => Some(
            Verifier::from_settings(&settings.auth)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?,
        ),
        Mode::Off => {
            tracing::warn!(
                "authentication is off (auth.mode = \"off\"): every caller may read and change every contract"
            );
            None
        }
    };
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
        print_demo_help(&base, &settings, example, demo_keys)?;
    }
    let limits = Limits {
        max_concurrent: settings.server.max_concurrent_requests,
        body_bytes: settings.server.body_limit_bytes,
        request_timeout: settings.request_timeout(),
        header_timeout: std::time::Duration::from_secs(settings.server.header_timeout_secs),
        body_timeout: std::time::Duration::from_secs(settings.server.body_timeout_secs),
    };
    let tracer = crate::trace::Tracer::start(&settings.trace).map_err(CliError::Failed)?;
    if tracer.enabled() {
        tracing::info!(endpoint = %settings.trace.otlp_endpoint, "sending traces (OTLP/HTTP)");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (engine, sync) = match start_sync(&store, &settings, &tracer, stopped)? {
        Some((engine, task)) => (Some(engine), Some(task)),
        None => (None, None),
    };
    let names = settings.targets()?.into_iter().map(|t| t.name).collect();
    let templates = settings.templates(args.demo)?;
    let mut state = AppState::new(store.clone())
        .with_profile(settings.profile()?)
        .with_templates(templates)
        .with_sync(names, engine)
        .with_tracer(tracer.clone())
        .with_export_dir(settings.database.data_dir.join("exports"))
        .with_bundle_entries(settings.server.bundle_entries)
        .with_answer_limit(settings.server.answer_limit_bytes)
        .with_metrics_database_interval(std::time::Duration::from_millis(
            settings.server.metrics_database_ms,
        ))
        .with_client_concurrency(settings.server.max_concurrent_per_client)
        .with_subscriptions(settings.subscriptions.clone())
        .with_samsyn_minimum(settings.samsyn.min_patient_answers)
        .with_cors(Cors::new(&settings.server.cors_origins).map_err(CliError::Failed)?)
        .with_rate_limits(RateLimits::new(
            settings.server.rate_limit_per_sec,
            settings.server.rate_limit_burst,
        ));
    if let Some(verifier) = verifier {
        state = state.with_verifier(verifier).with_discovery(&settings.auth);
    }
    api::serve(listener, state, limits, shutdown_signal()).await?;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    if let Some(sync) = sync {
        let _ = sync.await;
    }
    tracer.flush().await;
    store.close().await;
    Ok(())
}

/// The sync engine and the task running it.
type RunningSync = (Arc<Engine>, tokio::task::JoinHandle<()>);

/// Starts the sync engine in the background when there are targets and sync is enabled.
fn start_sync(
    store: &Store,
    settings: &Settings,
    tracer: &crate::trace::Tracer,
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
        Engine::new(store.clone(), targets, settings.sync.clone())
            .map_err(CliError::Failed)?
            .with_subscriptions(settings.subscriptions.clone())
            .with_tracer(tracer.clone()),
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
    /// An Appointment of the example person's that care has accepted and they have not
    /// answered yet.
    to_answer: Option<String>,
}

/// Loads the demo contracts if the store is empty.
async fn load_demo(store: &Store) -> Result<Example, CliError> {
    let contracts =
        crate::demo::contracts().map_err(|e| CliError::Failed(format!("demo data: {e}")))?;
    let example = contracts
        .iter()
        .find(|(n, _)| *n == "hjartsvikt-primarvard")
        .map(|(_, c)| c);
    let patient = example.map(|c| c.patient.id.clone());
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

    let records = match &patient {
        Some(p) => store.find_by_patient(p).await?,
        None => Vec::new(),
    };
    let id = records.first().map(|r| r.id.clone());
    let now = jiff::Timestamp::now();
    let to_answer = records.iter().find_map(|record| {
        let open = record.revision.contract.agreed_times.iter().find(|t| {
            t.accepted_by_care && !t.accepted_by_patient && !t.declined_by_patient && t.start > now
        })?;
        Some(crate::fhir::appointment_id(&record.id, &open.id))
    });
    Ok(Example {
        id,
        patient: patient.map(|p| p.to_string()).unwrap_or_default(),
        loaded: loaded.len(),
        unit,
        to_answer,
    })
}

fn print_demo_help(
    base: &str,
    settings: &Settings,
    example: &Example,
    demo_keys: bool,
) -> Result<(), CliError> {
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
    let auth = if settings.auth.mode == Mode::Off {
        println!("\nAuthentication is off (auth.mode = \"off\"): no token needed.");
        String::new()
    } else if settings.auth.hs256_secret.expose().is_empty() {
        println!("\nTokens are checked with the configured JWKS; get one from your issuer.");
        " -H \"Authorization: Bearer $TOKEN\"".to_owned()
    } else {
        let hours = std::time::Duration::from_secs(8 * 3600);
        let token = |client: &str, subject: &str, scope: &str, patient: Option<&str>| {
            dev_token(
                &settings.auth,
                &DevToken {
                    client: client.into(),
                    subject: subject.into(),
                    scope: scope.into(),
                    patient: patient.map(str::to_owned),
                    units: None,
                    valid_for: hours,
                },
            )
            .map_err(CliError::Failed)
        };
        if demo_keys {
            println!("\nDevelopment tokens (HS256 with a key made for this run; valid 8 hours):");
        } else {
            println!("\nDevelopment tokens (HS256 with auth.hs256_secret; valid 8 hours):");
        }
        println!("  # an EHR system: every interaction on every resource");
        println!(
            "  export TOKEN={}",
            token("demo-ehr", "demo-ehr", "system/*.cruds", None)?
        );
        println!("  # a practitioner: read and search");
        println!(
            "  export PRACTITIONER_TOKEN={}",
            token("demo-portal", "practitioner-sara-ek", "user/*.rs", None)?
        );
        println!(
            "  # a patient portal for {}: only that person's data",
            example.patient
        );
        println!(
            "  export PATIENT_TOKEN={}",
            token(
                "demo-1177",
                "patient-portal-user",
                "patient/*.rs",
                Some(&example.patient)
            )?
        );
        println!("  # the same person acting from the portal: their answers, their own parts");
        println!(
            "  export PATIENT_WRITE_TOKEN={}",
            token(
                "demo-1177",
                "patient-portal-user",
                "patient/*.cruds",
                Some(&example.patient)
            )?
        );
        println!("  (more with: pkgw token --help)");
        " -H \"Authorization: Bearer $TOKEN\"".to_owned()
    };
    println!("\nTry:");
    println!("  curl {base}/health");
    println!(
        "  curl{auth} '{base}/api/contracts?patient={}'",
        example.patient
    );
    if let Some(id) = &example.id {
        println!("  curl{auth} -i {base}/api/contracts/{id}");
        println!("  curl{auth} {base}/api/contracts/{id}/history");
        println!("  curl{auth} {base}/api/contracts/{id}/versions/1");
    }
    println!("\nFHIR R4:");
    println!("  curl {base}/fhir/metadata");
    println!(
        "  curl{auth} '{base}/fhir/CarePlan/$coordinated-plan?patient={}'",
        example.patient
    );
    if !auth.is_empty() {
        println!(
            "  curl -H \"Authorization: Bearer $PATIENT_TOKEN\" '{base}/fhir/CarePlan?patient={}'",
            example.patient
        );
    }
    if let Some(id) = &example.id {
        println!("  curl{auth} {base}/fhir/CarePlan/{id}");
    }
    if let Some(appointment) = example.to_answer.as_ref().filter(|_| !auth.is_empty()) {
        println!("  # the person accepts a time care has proposed (AppointmentResponse)");
        println!(
            "  curl -H \"Authorization: Bearer $PATIENT_WRITE_TOKEN\" -X POST {base}/fhir/AppointmentResponse \\\n    -H 'Content-Type: application/fhir+json' -d '{{\"resourceType\": \"AppointmentResponse\", \"appointment\": {{\"reference\": \"Appointment/{appointment}\"}}, \"participantStatus\": \"accepted\"}}'"
        );
    }
    if let Some(id) = example.id.as_ref().filter(|_| !auth.is_empty()) {
        println!("  # the person says \"vi är överens\" to the agreement as it stands");
        println!(
            "  curl -H \"Authorization: Bearer $PATIENT_WRITE_TOKEN\" -X POST '{base}/fhir/CarePlan/{id}/$confirm'"
        );
    }
    if let Some(unit) = &example.unit {
        println!(
            "\n7 frågor, samsyn of a unit and its patients (JSON, and a chart for the browser):"
        );
        println!("  curl{auth} '{base}/fhir/$samsyn?unit={unit}&_pretty=true'");
        println!("  curl{auth} -o samsyn.svg '{base}/fhir/$samsyn?unit={unit}&_format=svg'");
    }
    if !auth.is_empty() {
        println!("\nThe person's view, in a browser (log in with PATIENT_WRITE_TOKEN):");
        println!("  {base}/portal");
    }
    println!("\nStop with Ctrl-C.");
    Ok(())
}
