//! Bulk export, the FHIR Bulk Data pattern (https://hl7.org/fhir/uv/bulkdata/export.html):
//! `GET /fhir/$export` with `Prefer: respond-async` starts a job (202, `Content-Location`
//! of its status); `GET /fhir/$export-status/{job}` answers 202 with `X-Progress` while
//! it runs and 200 with the manifest when done; each file in the manifest is NDJSON of
//! one resource type (`application/fhir+ndjson`); `DELETE` on the status cancels the job
//! and removes its files. `_type` limits the types, `_since` the contracts to those
//! changed since an instant.
//!
//! Files are written under the export directory (`data/exports` for `pkgw serve`) while
//! the contracts stream from the store, so memory stays bounded however many there are.
//! Beside each file the export keeps the list of persons in it: each download of the
//! file leaves one audit row per person (`AuditEvent?patient=` shows it).
//! Jobs live as long as the process.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_LOCATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::error::FhirError;
use super::locate::{Kind, resources_of_kind};
use super::respond::base_url;
use crate::api::{AppState, AuditInfo};

/// The types an export can hold.
const TYPES: [Kind; 5] = [
    Kind::CarePlan,
    Kind::CareTeam,
    Kind::Goal,
    Kind::Appointment,
    Kind::CommunicationRequest,
];

/// The export jobs of this process, and where their files go.
#[derive(Debug)]
pub struct Exports {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Job>>,
}

#[derive(Debug, Clone)]
enum Job {
    Running { done: usize, total: u64 },
    Done { manifest: Value },
    Failed { message: String },
}

impl Exports {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            jobs: Mutex::default(),
        }
    }

    fn set(&self, id: &str, job: Job) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id.to_owned(), job);
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.jobs.lock().ok().and_then(|jobs| jobs.get(id).cloned())
    }
}

pub async fn kick_off(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    let asynchronous = headers
        .get_all("prefer")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("respond-async")));
    if !asynchronous {
        return Err(FhirError::bad_param(
            "Prefer",
            "a bulk export runs asynchronously: send Prefer: respond-async",
        ));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let types: Vec<Kind> = match get("_type") {
        None => TYPES.to_vec(),
        Some(list) => list
            .split(',')
            .map(|t| {
                Kind::parse(t.trim())
                    .ok()
                    .filter(|k| TYPES.contains(k))
                    .ok_or_else(|| {
                        FhirError::bad_param("_type", format!("{t} cannot be exported; types: CarePlan, CareTeam, Goal, Appointment"))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let since = get("_since")
        .map(|s| {
            s.parse::<jiff::Timestamp>()
                .map_err(|e| FhirError::bad_param("_since", format!("must be an instant: {e}")))
        })
        .transpose()?;
    if let Some(format) = get("_outputFormat")
        && !matches!(
            format,
            "application/fhir+ndjson" | "application/ndjson" | "ndjson"
        )
    {
        return Err(FhirError::bad_param(
            "_outputFormat",
            "only application/fhir+ndjson",
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let base = base_url(&headers);
    let total = state.store.count().await?;
    state.exports.set(&id, Job::Running { done: 0, total });
    let request = format!(
        "{base}/$export?{}",
        params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    tokio::spawn(run(
        state.clone(),
        id.clone(),
        types,
        since,
        base.clone(),
        request,
    ));
    let mut response = StatusCode::ACCEPTED.into_response();
    if let Ok(location) = format!("{base}/$export-status/{id}").parse() {
        response.headers_mut().insert(CONTENT_LOCATION, location);
    }
    Ok(response)
}

/// Writes the files and, at the end, the manifest.
async fn run(
    state: AppState,
    id: String,
    types: Vec<Kind>,
    since: Option<jiff::Timestamp>,
    base: String,
    request: String,
) {
    let started = jiff::Timestamp::now();
    let outcome = write_files(&state, &id, &types, since).await;
    let job = match outcome {
        Ok(counts) => {
            let output: Vec<Value> = counts
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| json!({ "type": kind, "url": format!("{base}/$export-file/{id}/{kind}.ndjson"), "count": n }))
                .collect();
            Job::Done {
                manifest: json!({
                    "transactionTime": started.to_string(),
                    "request": request,
                    // The files need the same bearer token as the rest of the API.
                    "requiresAccessToken": matches!(*state.authentication, crate::api::Authentication::Jwt(_)),
                    "output": output,
                    "error": [],
                }),
            }
        }
        Err(message) => {
            tracing::error!(job = %id, error = %message, "bulk export failed");
            Job::Failed { message }
        }
    };
    // A job cancelled meanwhile stays cancelled.
    if state.exports.get(&id).is_some() {
        state.exports.set(&id, job);
    }
}

async fn write_files(
    state: &AppState,
    id: &str,
    types: &[Kind],
    since: Option<jiff::Timestamp>,
) -> Result<BTreeMap<&'static str, usize>, String> {
    let dir = state.exports.dir.join(id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| e.to_string())?;
    let mut files = BTreeMap::new();
    for kind in types {
        let create = |extension: &str| {
            tokio::fs::File::create(dir.join(format!("{}.{extension}", kind.name())))
        };
        let file = create("ndjson").await.map_err(|e| e.to_string())?;
        let persons = create("persons").await.map_err(|e| e.to_string())?;
        let file = ExportFile {
            lines: tokio::io::BufWriter::new(file),
            persons: tokio::io::BufWriter::new(persons),
            count: 0,
        };
        files.insert(kind.name(), file);
    }
    let mut records = state.store.current();
    let mut done = 0;
    while let Some(record) = records.try_next().await.map_err(|e| e.to_string())? {
        done += 1;
        if done % 500 == 0 {
            let Some(Job::Running { total, .. }) = state.exports.get(id) else {
                return Err("cancelled".into());
            };
            state.exports.set(id, Job::Running { done, total });
        }
        if record.revision.deleted || since.is_some_and(|s| record.revision.recorded_at < s) {
            continue;
        }
        for kind in types {
            let Some(file) = files.get_mut(kind.name()) else {
                continue;
            };
            let before = file.count;
            for resource in resources_of_kind(&record, *kind, &state.profile) {
                let mut line = serde_json::to_vec(&resource).map_err(|e| e.to_string())?;
                line.push(b'\n');
                file.lines
                    .write_all(&line)
                    .await
                    .map_err(|e| e.to_string())?;
                file.count += 1;
            }
            if file.count > before {
                let person = format!("{}\n", record.revision.contract.patient.id);
                file.persons
                    .write_all(person.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let mut counts = BTreeMap::new();
    for (name, mut file) in files {
        file.lines.flush().await.map_err(|e| e.to_string())?;
        file.persons.flush().await.map_err(|e| e.to_string())?;
        counts.insert(name, file.count);
    }
    Ok(counts)
}

/// One file of an export being written: its NDJSON lines, and beside them (in
/// `{type}.persons`) the persons whose data is in it, for the audit rows of its
/// downloads.
struct ExportFile {
    lines: tokio::io::BufWriter<tokio::fs::File>,
    persons: tokio::io::BufWriter<tokio::fs::File>,
    count: usize,
}

pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, FhirError> {
    match state.exports.get(&id) {
        None => Err(FhirError::NotFound(format!("no export job {id}"))),
        Some(Job::Running { done, total }) => {
            let mut response = StatusCode::ACCEPTED.into_response();
            if let Ok(progress) = format!("{done} of {total} contracts").parse() {
                response.headers_mut().insert("x-progress", progress);
            }
            if let Ok(after) = "1".parse() {
                response.headers_mut().insert("retry-after", after);
            }
            Ok(response)
        }
        Some(Job::Done { manifest }) => {
            let mut response = axum::Json(manifest).into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        Some(Job::Failed { message }) => Err(FhirError::Export(message)),
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, FhirError> {
    let removed = state
        .exports
        .jobs
        .lock()
        .ok()
        .and_then(|mut jobs| jobs.remove(&id));
    if removed.is_none() {
        return Err(FhirError::NotFound(format!("no export job {id}")));
    }
    let _ = tokio::fs::remove_dir_all(state.exports.dir.join(&id)).await;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn file(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, FhirError> {
    let known = matches!(state.exports.get(&id), Some(Job::Done { .. }));
    let kind = name
        .strip_suffix(".ndjson")
        .and_then(|k| Kind::parse(k).ok());
    let (true, Some(kind)) = (known, kind) else {
        return Err(FhirError::NotFound(format!("no export file {id}/{name}")));
    };
    let path = state
        .exports
        .dir
        .join(&id)
        .join(format!("{}.ndjson", kind.name()));
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| FhirError::NotFound(format!("no export file {id}/{name}")))?;
    // Every download leaves one audit row per person whose data is in the file.
    let persons = tokio::fs::read_to_string(path.with_extension("persons"))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the export file's persons cannot be read");
            FhirError::Internal
        })?;
    let given = AuditInfo {
        resources: Vec::new(),
        patients: persons.lines().map(str::to_owned).collect(),
    };
    let body = Body::from_stream(tokio_util_stream(file));
    let mut response = ([(CONTENT_TYPE, "application/fhir+ndjson")], body).into_response();
    response.extensions_mut().insert(given);
    Ok(response)
}

/// A file as a stream of chunks.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut chunk = vec![0; 64 * 1024];
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        chunk.truncate(n);
        Ok(Some((chunk, file)))
    })
}
