//! Bundle entries: what one `Bundle.entry.request` asks ([`request_of`]), and `POST
//! /fhir` with a `batch` Bundle, where each entry is a request of its own (read, vread,
//! search, create, update, conditional update, delete), done in order and answered in a
//! `batch-response` entry at the same place. One entry failing does not undo another;
//! its response carries the status and the OperationOutcome.

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::error::FhirError;
use super::locate::Kind;
use super::locate::find;
use super::read::read_resource;
use super::respond::{base_url, prefer};
use super::search::searchset;
use super::write::{allowed, location_of, message_of, status_of};
use crate::api::AppState;
use crate::api::answer::{json_len, too_large};
use crate::domain::Version;
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::write::{Action, Caller, Done, Entry, Outcome};

/// What one entry's request asks.
pub(super) enum Request {
    Search {
        kind: Kind,
        query: String,
    },
    Read {
        kind: Kind,
        id: String,
        version: Option<Version>,
    },
    Write(Entry),
}

/// The request of entry `at`: its method and url (relative to the FHIR base, or
/// absolute), its conditions, and whether the caller's scopes allow it. In a
/// transaction a CareTeam or Goal may be created as part of its contract.
pub(super) fn request_of(
    caller: &Caller,
    entry: &Value,
    at: usize,
    in_transaction: bool,
) -> Result<Request, FhirError> {
    let path = format!("Bundle.entry[{at}].request");
    let request = entry
        .get("request")
        .ok_or_else(|| FhirError::bad_param(&path, "is missing"))?;
    let url = request["url"]
        .as_str()
        .ok_or_else(|| FhirError::bad_param(&format!("{path}.url"), "is missing"))?;
    let method = request["method"].as_str().unwrap_or_default();
    crate::api::entry_allowed(&caller.principal, method, url)?;
    // An absolute URL is read relative to the FHIR base.
    let url = url.split_once("/fhir/").map_or(url, |(_, rest)| rest);
    let (route, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    let if_match = request["ifMatch"]
        .as_str()
        .map(|tag| {
            Version::parse(tag)
                .map_err(|e| FhirError::bad_param(&format!("{path}.ifMatch"), e.to_string()))
        })
        .transpose()?;
    let resource = || {
        entry.get("resource").cloned().ok_or_else(|| {
            FhirError::bad_param(&format!("Bundle.entry[{at}].resource"), "is missing")
        })
    };
    let write = |action| {
        Ok(Request::Write(Entry {
            action,
            full_url: entry["fullUrl"].as_str().map(str::to_owned),
            at: Some(at),
        }))
    };
    match (method, &segments[..]) {
        ("GET", [kind]) => Ok(Request::Search {
            kind: Kind::parse(kind)?,
            query: query.to_owned(),
        }),
        ("GET", [kind, id]) => Ok(Request::Read {
            kind: Kind::parse(kind)?,
            id: (*id).to_owned(),
            version: None,
        }),
        ("GET", [kind, id, "_history", v]) => Ok(Request::Read {
            kind: Kind::parse(kind)?,
            id: (*id).to_owned(),
            version: Some(
                Version::parse(v)
                    .map_err(|e| FhirError::bad_param(&format!("{path}.url"), e.to_string()))?,
            ),
        }),
        ("PUT", [kind, id]) => write(Action::Update {
            kind: allowed(Kind::parse(kind)?, "update")?,
            id: (*id).to_owned(),
            resource: resource()?,
            if_match,
        }),
        ("PUT", [kind]) => {
            if allowed(Kind::parse(kind)?, "update")? != Kind::CarePlan {
                return Err(FhirError::MethodNotAllowed);
            }
            write(Action::Upsert {
                kind: Kind::CarePlan,
                condition: query.to_owned(),
                resource: resource()?,
                if_match,
            })
        }
        ("POST", [kind]) => {
            let kind = Kind::parse(kind)?;
            let part_of_contract = in_transaction && matches!(kind, Kind::CareTeam | Kind::Goal);
            if !part_of_contract {
                allowed(kind, "create")?;
            }
            write(Action::Create {
                kind,
                resource: resource()?,
                if_none_exist: request["ifNoneExist"].as_str().map(str::to_owned),
            })
        }
        ("DELETE", [kind, id]) => write(Action::Delete {
            kind: allowed(Kind::parse(kind)?, "delete")?,
            id: (*id).to_owned(),
            if_match,
        }),
        _ => Err(FhirError::bad_param(
            &path,
            "supported: GET, PUT, POST and DELETE of a type, a resource or a version (PATCH only as a request of its own)",
        )),
    }
}

/// The entries of a `batch-response` for a batch's entries.
pub(super) async fn batch(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    entries: &[Value],
) -> Value {
    let mut responses = Vec::with_capacity(entries.len());
    let mut budget = Budget::of(state);
    for (at, entry) in entries.iter().enumerate() {
        let answered = match request_of(caller, entry, at, false) {
            Ok(Request::Write(entry)) => match state.writer().apply_one(caller, entry).await {
                Ok(done) => budget.written(written(state, headers, &done)),
                Err(e) => failed(&e.into()),
            },
            Ok(read) => budget.read(state, headers, read).await,
            Err(e) => failed(&e),
        };
        responses.push(answered);
    }
    response_bundle("batch-response", responses)
}

/// The `batch-response` or `transaction-response` of these entries. An entry that
/// repeats another's resource version (the same resource written twice, unchanged the
/// second time) leaves out its `fullUrl`: R4's bdl-7 allows one entry per `fullUrl` and
/// version; its `response.location` still names it.
pub(super) fn response_bundle(kind: &str, mut entries: Vec<Value>) -> Value {
    let mut seen = std::collections::HashSet::new();
    for entry in &mut entries {
        let version = entry["resource"]["meta"]["versionId"].clone();
        if let Some(fields) = entry.as_object_mut()
            && let Some(url) = fields.get("fullUrl").cloned()
            && !seen.insert((url.to_string(), version.to_string()))
        {
            fields.remove("fullUrl");
        }
    }
    json!({ "resourceType": "Bundle", "type": kind, "entry": entries })
}

/// What is left of the answer's size limit (`server.answer_limit_bytes`) while a batch
/// or transaction answers entry by entry, so the whole answer stays under it: a read
/// that does not fit is not given (its entry says so), nor done once nothing is left; a
/// write is always done and answered, without its resource when that does not fit.
pub(super) struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    /// What the entries may take: the limit less room for the Bundle around them and
    /// the short answers of writes after the budget is spent.
    pub(super) fn of(state: &AppState) -> Budget {
        Budget {
            left: state.answer_bytes.saturating_sub(64 * 1024),
            limit: state.answer_bytes,
        }
    }

    /// The answer of a read, or why it is not given.
    pub(super) async fn read(
        &mut self,
        state: &AppState,
        headers: &HeaderMap,
        read: Request,
    ) -> Value {
        if self.left == 0 {
            return failed(&FhirError::TooCostly {
                message: "not done: the answer has reached the gateway's size limit (server.answer_limit_bytes); send this entry in another request".into(),
                expression: None,
            });
        }
        let entry = answer(state, headers, read)
            .await
            .unwrap_or_else(|e| failed(&e));
        let size = json_len(&entry);
        if size > self.left {
            self.left = 0;
            return failed(&FhirError::TooCostly {
                message: too_large(size, self.limit),
                expression: None,
            });
        }
        self.left -= size;
        entry
    }

    /// The answer of a write that was done; without the resource (and saying so) when
    /// it does not fit.
    pub(super) fn written(&mut self, mut entry: Value) -> Value {
        let mut size = json_len(&entry);
        if size > self.left
            && let Some(fields) = entry.as_object_mut()
            && fields.remove("resource").is_some()
        {
            fields.remove("fullUrl");
            let issue = Issue {
                severity: "warning",
                code: "too-costly",
                diagnostics: "done; the resource is left out of the answer, which has reached the gateway's size limit (server.answer_limit_bytes): read it".into(),
                expression: None,
            };
            entry["response"]["outcome"] = operation_outcome(&[issue]);
            size = json_len(&entry);
        }
        self.left = self.left.saturating_sub(size);
        entry
    }
}

/// A response entry for an entry that failed: its status and OperationOutcome.
pub(super) fn failed(e: &FhirError) -> Value {
    let (status, outcome) = e.outcome();
    json!({ "response": { "status": status_line(status), "outcome": outcome } })
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

/// The response entry of a read or search.
pub(super) async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    request: Request,
) -> Result<Value, FhirError> {
    match request {
        Request::Search { kind, query } => {
            let params = form_urlencoded(&query)?;
            let bundle = searchset(state, kind, headers, &params).await?.into_value();
            Ok(json!({ "resource": bundle, "response": { "status": "200 OK" } }))
        }
        Request::Read { kind, id, version } => {
            let found = read_resource(state, kind, &id, version).await?;
            Ok(json!({
                "resource": found.body,
                "response": { "status": "200 OK", "etag": found.version.etag(), "lastModified": found.recorded_at.to_string() },
            }))
        }
        Request::Write(_) => Err(FhirError::Internal),
    }
}

/// The response entry of a write: status, location, ETag and last modified, and as
/// `Prefer: return=` asks, the resource (the default), nothing, or an OperationOutcome.
pub(super) fn written(state: &AppState, headers: &HeaderMap, done: &Done) -> Value {
    let deleted = matches!(done.outcome, Outcome::Deleted | Outcome::AlreadyDeleted);
    let mut response = if deleted {
        json!({ "status": "204 No Content" })
    } else {
        json!({
            "status": status_line(status_of(done)),
            "location": location_of(done),
            "lastModified": done.version().at.to_string(),
        })
    };
    if done.outcome != Outcome::AlreadyDeleted {
        response["etag"] = json!(done.version().version.etag());
    }
    let resource = if deleted {
        None
    } else {
        find(&done.record, done.kind, &done.id, &state.profile)
    };
    if done.outcome == Outcome::Existing && resource.is_none() {
        // A resource of a contract the CarePlan's condition found: nothing of the
        // contract was written, so this resource was not made either.
        let issue = Issue {
            severity: "information",
            code: "informational",
            diagnostics: format!(
                "{}/{} was not written: the CarePlan's condition found the contract, so nothing of it was created",
                done.kind.name(),
                done.id
            ),
            expression: None,
        };
        return json!({ "response": { "status": "200 OK", "outcome": operation_outcome(&[issue]) } });
    }
    let mut entry = json!({});
    match prefer(headers, "return") {
        Some("OperationOutcome") => {
            let issue = Issue {
                severity: "information",
                code: "informational",
                diagnostics: message_of(done),
                expression: None,
            };
            response["outcome"] = operation_outcome(&[issue]);
        }
        Some("minimal") => {}
        _ => {
            if let Some(resource) = resource {
                entry["fullUrl"] = json!(format!(
                    "{}/{}/{}",
                    base_url(headers),
                    done.kind.name(),
                    done.id
                ));
                entry["resource"] = resource;
            }
        }
    }
    entry["response"] = response;
    entry
}

/// `a=1&b=2`, decoded.
fn form_urlencoded(query: &str) -> Result<Vec<(String, String)>, FhirError> {
    let uri: axum::http::Uri = format!("/?{query}")
        .parse()
        .map_err(|_| FhirError::bad_param("url", "not a valid query"))?;
    Query::try_from_uri(&uri)
        .map(|Query(params)| params)
        .map_err(|e| FhirError::bad_param("url", e.body_text()))
}
