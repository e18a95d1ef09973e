//! The HTTP face of the gateway: the FHIR R4 API (`/fhir`), the native JSON contract API
//! (`/api/contracts`), health checks (`/health`, `/ready`) and `/metrics` (Prometheus).
//!
//! Handlers translate HTTP to store calls and store results to HTTP; they hold no rules
//! of their own (those are in `domain`) and write nothing except through the store.
//! [`router`] builds the app without serving it, so tests can call it; [`serve`] runs it
//! until the shutdown future resolves.

pub(crate) mod answer;
mod caller;
mod contracts;
mod cors;
mod error;
pub mod fhir;
mod guard;
mod health;
mod json;
mod listen;
mod metrics;
pub mod openapi;
mod portal;
pub mod route;
mod smart;
mod templates;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use tokio::net::TcpListener;

pub use cors::Cors;
pub use error::{ApiError, Issue};
pub(crate) use guard::entry_allowed;
pub use guard::{AuditInfo, Authentication, ClientSlots, Need, RateLimits, Whom};
pub use route::{Declared, Needs, declared, need, route_of};
pub use smart::Discovery;

use crate::fhir::Profile;
use crate::store::Store;
use crate::sync::Engine;

/// What every handler can reach: [`Shared`] behind one reference count, so the
/// clone each extractor and layer of each request makes is one atomic increment (with
/// the fields cloned one by one, cloning and dropping the state was about a sixth of
/// the CPU time of a read by id).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug, Clone)]
pub struct Shared {
    pub store: Store,
    /// The store as reads that may lag see it: reading from the replica when
    /// `database.read_url` is set ([`Store::replica`]). Reads, searches,
    /// `$coordinated-plan` and histories use it; writes, and the reads they are based on,
    /// use `store`.
    pub reads: Store,
    /// The mapping profile the FHIR API writes with.
    pub profile: Arc<Profile>,
    /// The configured sync targets' names (for `/metrics`).
    pub sync_targets: Arc<Vec<String>>,
    /// The sync engine running in this process, if any.
    pub sync: Option<Arc<Engine>>,
    /// Bulk export jobs and where their files go.
    pub exports: Arc<fhir::Exports>,
    /// How callers prove who they are.
    pub authentication: Arc<Authentication>,
    /// Per-client rate limits, if any.
    pub rate_limits: Option<Arc<RateLimits>>,
    /// How many requests each client may have in flight at once.
    pub client_slots: Arc<ClientSlots>,
    /// Where the guard writes the audit rows of requests (group commit).
    pub audit: crate::store::AuditLog,
    /// Serialized resources of stored versions, for repeated reads.
    pub read_cache: Arc<fhir::ReadCache>,
    /// The most entries one transaction or batch Bundle may carry.
    pub bundle_entries: usize,
    /// The largest answer the gateway gives, in bytes (see [`answer`]).
    pub answer_bytes: usize,
    /// Where Subscriptions may send notifications, with which headers, for whom.
    pub subscriptions: Arc<crate::sync::outbound::SubscriptionSettings>,
    /// What SMART discovery and the CapabilityStatement say about authorization.
    pub discovery: Arc<Discovery>,
    /// The origins browsers may call from (by default none).
    pub cors: Arc<Cors>,
    /// The fewest patients whose answers a samsyn report shows.
    pub samsyn_min_patients: usize,
    /// The templates per diagnosis group on offer.
    pub templates: Arc<crate::templates::Templates>,
    /// Requests counted as they are answered, for `/metrics`.
    pub request_metrics: Arc<metrics::RequestMetrics>,
    /// What `/metrics` read from the database last, and how often it reads it.
    pub database_figures: Arc<metrics::DatabaseFigures>,
    /// Where request spans go (see [`crate::trace`]); off by default.
    pub tracer: crate::trace::Tracer,
}

impl AppState {
    /// State over `store` with the gateway's own mapping profile, without sync.
    pub fn new(store: Store) -> Self {
        Self(Arc::new(Shared {
            audit: crate::store::AuditLog::start(store.clone()),
            reads: store.replica(),
            store,
            profile: Arc::new(Profile::default_profile()),
            sync_targets: Arc::default(),
            sync: None,
            exports: Arc::new(fhir::Exports::new(
                std::env::temp_dir().join(format!("pkgw-exports-{}", std::process::id())),
            )),
            authentication: Arc::new(Authentication::Off),
            read_cache: Arc::default(),
            rate_limits: None,
            client_slots: Arc::new(ClientSlots::new(64)),
            bundle_entries: 100,
            answer_bytes: 16 * 1024 * 1024,
            subscriptions: Arc::default(),
            discovery: Arc::new(Discovery::off()),
            cors: Arc::default(),
            samsyn_min_patients: crate::samsyn::MIN_PATIENT_ANSWERS,
            templates: Arc::default(),
            request_metrics: Arc::default(),
            database_figures: Arc::default(),
            tracer: crate::trace::Tracer::off(),
        }))
    }

    /// The parts, to set while the state is built (copied first if already shared).
    fn parts(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    /// Each request a server span, continuing the caller's `traceparent`.
    pub fn with_tracer(mut self, tracer: crate::trace::Tracer) -> Self {
        self.parts().tracer = tracer;
        self
    }

    /// Subscriptions may notify only as these settings allow (by default: nowhere).
    pub fn with_subscriptions(
        mut self,
        settings: crate::sync::outbound::SubscriptionSettings,
    ) -> Self {
        self.parts().subscriptions = Arc::new(settings);
        self
    }

    /// `/metrics` reads its figures from the database at most once per `every` (zero: at
    /// every scrape; by default once a second).
    pub fn with_metrics_database_interval(mut self, every: std::time::Duration) -> Self {
        self.parts().database_figures = Arc::new(metrics::DatabaseFigures::every(every));
        self
    }

    /// Transaction and batch Bundles carry at most this many entries.
    pub fn with_bundle_entries(mut self, most: usize) -> Self {
        self.parts().bundle_entries = most;
        self
    }

    /// Answers are at most `bytes` long; longer ones are refused (see [`answer`]).
    pub fn with_answer_limit(mut self, bytes: usize) -> Self {
        self.parts().answer_bytes = bytes;
        self
    }

    /// Callers must show a token the verifier accepts.
    pub fn with_verifier(mut self, verifier: crate::auth::Verifier) -> Self {
        self.parts().authentication = Arc::new(Authentication::Jwt(Box::new(verifier)));
        self
    }

    /// Samsyn reports show the patients' figures from this many patients on.
    /// Offers `templates` (see [`crate::templates`]).
    pub fn with_templates(mut self, templates: crate::templates::Templates) -> Self {
        self.parts().templates = Arc::new(templates);
        self
    }

    /// Writes and serves FHIR with `profile` (the gateway's own, with the region's
    /// reservnummer: [`crate::config::Settings::profile`]).
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.parts().profile = Arc::new(profile);
        self
    }

    pub fn with_samsyn_minimum(mut self, patients: usize) -> Self {
        self.parts().samsyn_min_patients = patients;
        self
    }

    /// Browsers may call from these origins (see [`cors`]).
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.parts().cors = Arc::new(cors);
        self
    }

    /// SMART discovery and the CapabilityStatement say what these settings say.
    pub fn with_discovery(mut self, settings: &crate::auth::AuthSettings) -> Self {
        self.parts().discovery = Arc::new(Discovery::from_settings(settings));
        self
    }

    /// Each client is held to this rate.
    pub fn with_rate_limits(mut self, limits: Option<RateLimits>) -> Self {
        self.parts().rate_limits = limits.map(Arc::new);
        self
    }

    /// Each client may have at most `most` requests in flight; more get 429.
    pub fn with_client_concurrency(mut self, most: usize) -> Self {
        self.parts().client_slots = Arc::new(ClientSlots::new(most));
        self
    }

    /// Bulk export files go to `dir`.
    pub fn with_export_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.parts().exports = Arc::new(fhir::Exports::new(dir));
        self
    }

    /// The write path, over this state's store, profile and sync targets.
    pub fn writer(&self) -> crate::write::Writer {
        crate::write::Writer::new(
            self.store.clone(),
            self.profile.clone(),
            self.sync_targets.clone(),
        )
    }

    /// With the sync targets (and the engine, when it runs in this process).
    pub fn with_sync(mut self, targets: Vec<String>, engine: Option<Arc<Engine>>) -> Self {
        let parts = self.parts();
        parts.sync_targets = Arc::new(targets);
        parts.sync = engine;
        self
    }
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: Duration,
    /// Requests handled at once; more wait. (Each client's own share is
    /// [`AppState::with_client_concurrency`].)
    pub max_concurrent: usize,
    /// The time a request's headers may take to arrive (also how long a kept-alive
    /// connection may stay idle).
    pub header_timeout: Duration,
    /// The time a request's body may take to arrive after its headers; later: 408.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Every route, with what its caller needs (see [`route`]).
fn routes() -> route::Routes {
    health::routes()
        .merge(smart::routes())
        .merge(contracts::routes())
        .merge(templates::routes())
        .merge(openapi::routes())
        .merge(portal::routes())
        .nest("/fhir", fhir::routes().merge(smart::routes()))
}

/// The whole HTTP application.
pub fn router(state: AppState, limits: Limits) -> Router {
    routes()
        .into_router()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            answer::cap,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tracer.clone(),
            trace_request,
        ))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limits.body_timeout,
            listen::body_deadline,
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent.max(1),
        ))
        .layer(axum::middleware::from_fn_with_state(
            (state.request_metrics.clone(), limits.request_timeout),
            deadline,
        ))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` resolves, then lets requests in
/// flight finish (see [`listen`] for the deadlines on headers and bodies).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state, limits), limits, shutdown).await
}

/// [`serve`] of a router built by [`router`] (and, say, wrapped by a test's own layer).
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::serve_app(listener, router, limits, shutdown).await
}

/// A request not answered within `limit` (a database that does not answer, say) is
/// answered 503 with the API's own error body — an OperationOutcome on the FHIR API —
/// and its handler is dropped. It is counted in `/metrics` under the route
/// `(timed out)`: its own route is known only inside the router it was cut off in.
async fn deadline(
    axum::extract::State((metrics, limit)): axum::extract::State<(
        Arc<metrics::RequestMetrics>,
        Duration,
    )>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let fhir = request.uri().path().starts_with("/fhir");
    let method = request.method().clone();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
            metrics.observe(&method, "(timed out)", status, limit);
            tracing::warn!(%method, route = "(timed out)", status = 503, limit_secs = limit.as_secs(), "request");
            if fhir {
                fhir::FhirError::Unavailable.into_response()
            } else {
                ApiError::Unavailable.into_response()
            }
        }
    }
}

/// Runs the request as a span of the caller's trace (W3C `traceparent`; a new trace when
/// it sends none or one that is not valid), so the change it stores carries the trace on
/// to the sync calls it causes (see [`crate::trace`]). With tracing off, the caller's own
/// `traceparent` is carried on as it came.
async fn trace_request(
    axum::extract::State(tracer): axum::extract::State<crate::trace::Tracer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::trace::{Kind, SpanContext};
    let parent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(SpanContext::parse);
    if !tracer.enabled() {
        return crate::trace::within(parent, next.run(request)).await;
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unmatched)", |p| p.as_str())
        .to_owned();
    let method = request.method().to_string();
    let span = tracer.start_span(format!("{method} {route}"), Kind::Server, parent);
    let context = span.as_ref().map(|s| s.context).or(parent);
    let response = crate::trace::within(context, next.run(request)).await;
    if let Some(mut span) = span {
        let status = response.status().as_u16();
        span.set("http.request.method", method);
        span.set("http.route", route);
        span.set("http.response.status_code", i64::from(status));
        if status >= 500 {
            span.fail();
        }
        tracer.finish(span);
    }
    response
}

/// On every response: no content-type sniffing and no referrer.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    use axum::http::header::{REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
