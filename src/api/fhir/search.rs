//! `search-type`: `GET /fhir/{type}?…`, answered with a `searchset` Bundle. Searches must
//! name the person (`patient`), a resource (`_id`) or a contract (`identifier`): there is
//! no listing of everyone's data. Unknown parameters are reported in the Bundle (lenient,
//! the default) or refused with 400 under `Prefer: handling=strict`.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::capability::{COMMON_SEARCH, served};
use super::date_param::DateParam;
use super::error::FhirError;
use super::locate::{Kind, provenance_of};
use super::patient::patient_of_plan;
use super::read_cache::{Cached, CachedResource};
use super::respond::{Format, base_url, fhir_bytes, prefer};
use super::shape::{Subset, sort, sort_keys};
use crate::api::AppState;
use crate::api::answer::{json_len, too_large};
use crate::api::guard::Given;
use crate::auth::Searched;
use crate::domain::{ContractId, PersonId, Status};
use crate::fhir::Profile;
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::fhir::profile::PersonError;
use crate::fhir::stored::resource_key;
use crate::percent::encode;
use crate::store::{Record, Store};

/// Parameters that shape the result rather than select it.
const CONTROL: &[&str] = &[
    "_count",
    "_offset",
    "_summary",
    "_format",
    "_pretty",
    "_include",
    "_revinclude",
    "_sort",
    "_elements",
];

/// Spellings that all mean "the person".
pub const PATIENT: &[&str] = &[
    "patient",
    "subject",
    "patient.identifier",
    "subject.identifier",
    "patient:identifier",
    "subject:identifier",
];

/// A person from a search value: `system|number` (a reservnummer by its region's
/// system), the bare number, or `Patient/{id}`.
pub fn person(value: &str, name: &str, profile: &Profile) -> Result<PersonId, FhirError> {
    let ids = &profile.identifiers;
    let bad = |e: &dyn std::fmt::Display| FhirError::bad_param(name, format!("{value}: {e}"));
    match value.split_once('|') {
        Some(("", number)) => PersonId::parse(number).map_err(|e| bad(&e)),
        Some((system, number)) => ids.person(system, number).map_err(|e| match e {
            PersonError::System(_) => FhirError::bad_param(name, e.to_string()),
            PersonError::Value(e) => bad(&e),
        }),
        None => match value.strip_prefix("Patient/") {
            Some(id) => ids
                .person_of_patient_id(id)
                .ok_or_else(|| bad(&"is not the id of a Patient here")),
            None => PersonId::parse(value).map_err(|e| bad(&e)),
        },
    }
}

/// The contracts a search selects: each current version's resources, from the read
/// cache (a person's contracts are looked up by head, and read whole only when their
/// version is not cached).
async fn contracts(
    state: &AppState,
    params: &[(String, String)],
    kind: Kind,
) -> Result<Vec<(ContractId, Arc<Cached>)>, FhirError> {
    let (store, profile) = (&state.reads, &state.profile);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // The person, named once or more (repeated, they must all be the same one: a
    // resource is about one person).
    let named = params
        .iter()
        .filter(|(k, _)| PATIENT.contains(&k.as_str()))
        .map(|(name, value)| {
            if value.contains(',') {
                return Err(FhirError::bad_param(
                    name,
                    "one person per search: search each person on their own",
                ));
            }
            person(value, name, profile)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let named = match named.split_first() {
        None => None,
        Some((first, rest)) if rest.iter().all(|p| p == first) => Some(first.clone()),
        Some(_) => return Ok(Vec::new()),
    };
    match crate::auth::searched(named) {
        Searched::Nobody => return Ok(Vec::new()),
        Searched::Person(person) => {
            return persons_versions(state, &person, |_, deleted| !deleted).await;
        }
        Searched::Anyone => {}
    }
    let by_id = match (get("_id"), get("identifier")) {
        (Some(id), _) => kind.locate(id).map(|(c, _)| c),
        (None, Some(identifier)) => match identifier.split_once('|') {
            // Another system's identifier (an EHR's own): the contract whose CarePlan
            // carries it, from the store's index.
            Some((system, value))
                if !system.is_empty() && system != profile.identifiers.contract =>
            {
                store.contract_with_identifier(system, value).await?
            }
            Some((_, value)) => ContractId::parse(value).ok(),
            None => ContractId::parse(identifier).ok(),
        },
        (None, None) => {
            return Err(FhirError::bad_param(
                "patient",
                "a search must name the person (patient), a resource (_id) or a contract (identifier)",
            ));
        }
    };
    let Some(id) = by_id else {
        return Ok(Vec::new());
    };
    match store.get(&id).await {
        Ok(record) if record.revision.deleted => Ok(Vec::new()),
        Ok(record) => Ok(vec![(id, state.read_cache.get_or_map(&record, profile))]),
        Err(crate::store::StoreError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The current versions of a person's contracts that `keep` (given status and whether
/// deleted) selects, each with its resources from the read cache: looked up by head,
/// read whole and mapped only when the version is not cached (a version written since
/// the head was read is taken as it is).
pub(super) async fn persons_versions(
    state: &AppState,
    person: &PersonId,
    keep: impl Fn(Status, bool) -> bool,
) -> Result<Vec<(ContractId, Arc<Cached>)>, FhirError> {
    let heads = state.reads.heads_by_patient(person).await?;
    versions_of(state, heads, keep).await
}

/// The current versions of the contracts whose `heads` (of one person's contracts,
/// looked up already) `keep` takes (by status and whether deleted), from the read cache
/// where it has them.
pub(super) async fn versions_of(
    state: &AppState,
    heads: Vec<(ContractId, crate::store::Head)>,
    keep: impl Fn(Status, bool) -> bool,
) -> Result<Vec<(ContractId, Arc<Cached>)>, FhirError> {
    let mut found = Vec::new();
    for (id, head) in heads {
        if !keep(head.status, head.deleted) {
            continue;
        }
        if let Some(hit) = state.read_cache.get(id.as_str(), head.version.get()) {
            found.push((id, hit));
            continue;
        }
        let record = state.reads.get(&id).await?;
        if keep(record.revision.contract.status, record.revision.deleted) {
            found.push((id, state.read_cache.get_or_map(&record, &state.profile)));
        }
    }
    Ok(found)
}

/// A resource a search answers with: a contract's, serialized once in the read cache and
/// written into the page as it is, or a value (a Provenance, the person, or a match
/// sorted or cut to the elements asked for).
pub(super) enum Entry {
    Cached(Arc<Cached>, usize),
    Value(Value),
}

/// A cached resource as a value.
fn parsed(resource: &CachedResource) -> Value {
    serde_json::from_slice(&resource.bytes).unwrap_or(Value::Null)
}

/// What a search entry holds where it has no value.
static NULL: Value = Value::Null;

impl Entry {
    fn cached(&self) -> Option<(&Cached, &CachedResource)> {
        match self {
            Entry::Cached(cached, at) => Some((cached, &cached.resources[*at])),
            Entry::Value(_) => None,
        }
    }

    /// The resource as a value (parsed from its bytes when cached).
    pub(super) fn into_value(self) -> Value {
        match self {
            Entry::Cached(cached, at) => parsed(&cached.resources[at]),
            Entry::Value(value) => value,
        }
    }

    /// Parses a cached resource into a value in place (for the filters, a sort or a
    /// subset, which read values).
    fn parse(&mut self) {
        if let Entry::Cached(..) = self {
            let taken = std::mem::replace(self, Entry::Value(Value::Null));
            *self = Entry::Value(taken.into_value());
        }
    }

    /// The value, once [`Entry::parse`] has made one.
    fn value(&self) -> &Value {
        match self {
            Entry::Value(value) => value,
            Entry::Cached(..) => &NULL,
        }
    }

    /// What `f` gives for the resource as a value (a cached one parsed for it, and
    /// left cached).
    fn with_value<T>(&self, f: impl FnOnce(&Value) -> T) -> T {
        match self.cached() {
            Some((_, resource)) => f(&parsed(resource)),
            None => f(self.value()),
        }
    }

    /// `Type/id`.
    fn reference(&self) -> String {
        match self.cached() {
            Some((_, resource)) => resource.reference(),
            None => resource_key(self.value()),
        }
    }

    /// How many bytes it is serialized.
    pub(super) fn len(&self) -> usize {
        match self.cached() {
            Some((_, resource)) => resource.bytes.len(),
            None => json_len(self.value()),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self.cached() {
            Some((_, resource)) => out.extend_from_slice(&resource.bytes),
            // A value always serializes.
            None => {
                let _ = serde_json::to_writer(&mut *out, self.value());
            }
        }
    }
}

/// The resources of `kind` in a contract's current version, as the search sees them: a
/// contract's Provenances are those of all its versions.
pub(super) async fn of_kind(
    store: &Store,
    id: &ContractId,
    cached: &Arc<Cached>,
    kind: Kind,
) -> Result<Vec<Entry>, FhirError> {
    if kind != Kind::Provenance {
        return Ok((0..cached.resources.len())
            .filter(|&at| cached.resources[at].kind == kind.name())
            .map(|at| Entry::Cached(cached.clone(), at))
            .collect());
    }
    let history = store.history(id).await?;
    Ok(history
        .versions
        .into_iter()
        .map(|revision| {
            Entry::Value(provenance_of(&Record {
                id: id.clone(),
                revision,
            }))
        })
        .collect())
}

pub async fn search(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, FhirError> {
    run(&state, &kind, &headers, &params).await
}

/// `POST /fhir/{type}/_search`: the same search with its parameters in a form body
/// (`application/x-www-form-urlencoded`), together with any in the URL.
pub async fn search_post(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(mut params): Query<Vec<(String, String)>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, FhirError> {
    params.extend(form_params(form)?);
    run(&state, &kind, &headers, &params).await
}

/// The parameters of a search by `POST` (`application/x-www-form-urlencoded`).
pub(super) fn form_params(
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Vec<(String, String)>, FhirError> {
    let Form(form) = form.map_err(|e| match e {
        FormRejection::InvalidFormContentType(_) => FhirError::UnsupportedMediaType,
        other => FhirError::bad_param("body", other.body_text()),
    })?;
    Ok(form)
}

async fn run(
    state: &AppState,
    kind: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Response, FhirError> {
    let format = Format::negotiate(headers, params)?;
    let page = searchset(state, Kind::parse(kind)?, headers, params).await?;
    Ok(page.respond(format.pretty))
}

/// The page of a `searchset` Bundle a search answers with.
pub(super) async fn searchset(
    state: &AppState,
    kind: Kind,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Page, FhirError> {
    let (_, own) = served(kind);
    let known = |name: &str| {
        CONTROL.contains(&name)
            || PATIENT.contains(&name)
            || COMMON_SEARCH.iter().chain(own).any(|(n, _, _)| *n == name)
    };
    let mut unknown = unknown_params(headers, kind.name(), params, known)?;
    // A result-shaping parameter with a value the gateway does not do is ignored as
    // an unknown one is (named in the Bundle), or refused under handling=strict.
    let strict = prefer(headers, "handling") == Some("strict");
    for (name, value) in params {
        let supported = match name.as_str() {
            "_include" => INCLUDES.contains(&(kind, value.as_str())),
            "_revinclude" => REVINCLUDES.contains(&(kind, value.as_str())),
            "_sort" => sort_keys(kind, value).1.is_empty(),
            _ => true,
        };
        if supported {
            continue;
        }
        if strict {
            return Err(FhirError::bad_param(
                name,
                format!("{name}={value} is not supported for {}", kind.name()),
            ));
        }
        if !unknown.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    let has = |name: &str, value: &str| params.iter().any(|(k, v)| k == name && v == value);
    let filters = Filters::parse(params, own)?;
    let subset = Subset::from_params(kind, params)?;
    // What each match on the page brings along: the contract's resources of these kinds
    // (each is what the CarePlan references, or what references it: every version's
    // Provenance and every Appointment name the CarePlan).
    let included_kinds: Vec<Kind> = INCLUDES
        .iter()
        .filter(|(k, v)| *k == kind && has("_include", v))
        .chain(
            REVINCLUDES
                .iter()
                .filter(|(k, v)| *k == kind && has("_revinclude", v)),
        )
        .filter_map(|(_, v)| included_kind(v))
        .collect();
    let include_subject = kind == Kind::CarePlan && has("_include", "CarePlan:subject");
    let selected = contracts(state, params, kind).await?;
    // Each match, and the contract (in `selected`) it is from. A match stays the bytes
    // the read cache holds unless it is sorted or cut to a subset.
    let mut found = Vec::new();
    for (at, (id, cached)) in selected.iter().enumerate() {
        for resource in of_kind(&state.reads, id, cached, kind).await? {
            if filters.is_empty() || resource.with_value(|r| filters.matches(r)) {
                found.push((at, resource));
            }
        }
    }
    if let Some((_, value)) = params.iter().find(|(k, _)| k == "_sort")
        && !unknown.contains(&"_sort")
    {
        found.iter_mut().for_each(|(_, r)| r.parse());
        sort(&mut found, &sort_keys(kind, value).0, |(_, r)| r.value());
    }
    // Included: what the matches on this page reference, or what references them,
    // counted against the answer's size limit as they are gathered.
    let (count, offset) = window(params)?;
    if subset != Subset::Whole {
        for (_, resource) in found.iter_mut().skip(offset).take(count) {
            resource.parse();
            if let Entry::Value(value) = resource {
                subset.apply(kind, value);
            }
        }
    }
    let mut on_page: Vec<usize> = found
        .iter()
        .skip(offset)
        .take(count)
        .map(|(at, _)| *at)
        .collect();
    on_page.dedup();
    let mut included: Vec<Entry> = Vec::new();
    let mut size = 0;
    for at in on_page {
        let (id, cached) = &selected[at];
        let mut more = Vec::new();
        for &included_kind in &included_kinds {
            more.extend(of_kind(&state.reads, id, cached, included_kind).await?);
        }
        // The person, once however many of their plans are on the page.
        if include_subject
            && let Some(patient) = of_kind(&state.reads, id, cached, Kind::CarePlan)
                .await?
                .first()
                .and_then(|plan| plan.with_value(|plan| patient_of_plan(plan, &state.profile)))
            && !included.iter().chain(&more).any(|r| *r.value() == patient)
        {
            more.push(Entry::Value(patient));
        }
        size += more.iter().map(Entry::len).sum::<usize>();
        if size > state.answer_bytes {
            let asked = if params.iter().any(|(k, _)| k == "_revinclude") {
                "_revinclude"
            } else {
                "_include"
            };
            return Err(FhirError::TooCostly {
                message: too_large(size, state.answer_bytes),
                expression: Some(asked.into()),
            });
        }
        included.extend(more);
    }
    let found = found.into_iter().map(|(_, resource)| resource).collect();
    page(headers, kind.name(), params, found, included, &unknown)
}

/// The `_include`s served: on a type, its reference to include.
pub const INCLUDES: &[(Kind, &str)] = &[
    (Kind::CarePlan, "CarePlan:care-team"),
    (Kind::CarePlan, "CarePlan:goal"),
    (Kind::CarePlan, "CarePlan:subject"),
];

/// The `_revinclude`s served: on a type, the references to it to include.
pub const REVINCLUDES: &[(Kind, &str)] = &[
    (Kind::CarePlan, "Provenance:target"),
    (Kind::CarePlan, "Appointment:supporting-info"),
];

/// The kind of resource an `_include` or `_revinclude` value brings.
fn included_kind(value: &str) -> Option<Kind> {
    match value {
        "CarePlan:care-team" => Some(Kind::CareTeam),
        "CarePlan:goal" => Some(Kind::Goal),
        "Provenance:target" => Some(Kind::Provenance),
        "Appointment:supporting-info" => Some(Kind::Appointment),
        _ => None,
    }
}

/// The most entries one search page holds: a larger `_count` gets pages of this many
/// (as R4 allows), each with the link to the next.
const MOST_PER_PAGE: usize = 1000;

/// The page a search asks for: `_count` (default 50, at most [`MOST_PER_PAGE`]) and
/// `_offset`.
fn window(params: &[(String, String)]) -> Result<(usize, usize), FhirError> {
    let number = |name: &str, default: usize| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map_or(Ok(default), |(_, v)| {
                v.parse::<usize>()
                    .map_err(|_| FhirError::bad_param(name, "must be a whole number"))
            })
    };
    Ok((
        number("_count", 50)?.min(MOST_PER_PAGE),
        number("_offset", 0)?,
    ))
}

/// The parameters a search does not know: an error with `Prefer: handling=strict`,
/// otherwise ignored (and named in the Bundle, see [`page`]).
pub(super) fn unknown_params<'a>(
    headers: &HeaderMap,
    type_name: &str,
    params: &'a [(String, String)],
    known: impl Fn(&str) -> bool,
) -> Result<Vec<&'a str>, FhirError> {
    let unknown: Vec<&str> = params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !known(k))
        .collect();
    let strict = prefer(headers, "handling") == Some("strict");
    match unknown.first() {
        Some(first) if strict => Err(FhirError::bad_param(
            first,
            format!("unknown search parameter {first} for {type_name}"),
        )),
        _ => Ok(unknown),
    }
}

/// One page of a searchset Bundle of the `found` resources of `type_name` (and those
/// `included`), by `_count` (default 50) and `_offset`, with `self`, `next` and
/// `previous` links; `_summary=count` leaves the entries out. Unknown parameters
/// (ignored) are named in an outcome entry.
pub(super) fn page(
    headers: &HeaderMap,
    type_name: &str,
    params: &[(String, String)],
    found: Vec<Entry>,
    included: Vec<Entry>,
    unknown: &[&str],
) -> Result<Page, FhirError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (count, offset) = window(params)?;
    let base = base_url(headers);
    let total = found.len();
    // The page's own `_offset` and `_count` (the `_count` used, which may be less than
    // the one asked for) end every link.
    let counted = get("_count").is_some();
    // Links hold what the search did: not the parameters it ignored; each value
    // percent-encoded, so `|`, `+` and `:` come back as they were sent.
    let link = |relation: &str, at: usize| {
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k != "_offset" && k != "_count" && !unknown.contains(&k.as_str()))
            .map(|(k, v)| format!("{}={}", encode(k, &[]), encode(v, &[])))
            .chain(
                [format!("_offset={at}"), format!("_count={count}")]
                    .into_iter()
                    .filter(|_| relation != "self" || at > 0 || counted),
            )
            .collect();
        json!({ "relation": relation, "url": format!("{base}/{}?{}", type_name, query.join("&")) })
    };
    let mut links = vec![link("self", offset)];
    if count > 0 && offset + count < total {
        links.push(link("next", offset + count));
    }
    if offset > 0 {
        links.push(link("previous", offset.saturating_sub(count)));
    }
    let entries = (get("_summary") != Some("count") && count > 0).then(|| {
        let mut entries: Vec<(Entry, &str)> = found
            .into_iter()
            .skip(offset)
            .take(count)
            .map(|r| (r, "match"))
            .chain(included.into_iter().map(|r| (r, "include")))
            .collect();
        if !unknown.is_empty() {
            let warning = Issue {
                severity: "warning",
                code: "not-supported",
                diagnostics: format!("ignored unknown search parameters: {}", unknown.join(", ")),
                expression: None,
            };
            entries.push((Entry::Value(operation_outcome(&[warning])), "outcome"));
        }
        entries
    });
    Ok(Page {
        base,
        total,
        links,
        entries,
    })
}

/// One page of a searchset Bundle, written around the bytes of the resources the read
/// cache holds (as `$coordinated-plan` is).
pub(super) struct Page {
    base: String,
    total: usize,
    links: Vec<Value>,
    /// Each resource with its search mode; none under `_summary=count` or `_count=0`.
    entries: Option<Vec<(Entry, &'static str)>>,
}

impl Page {
    /// A page of matches, all of them, with only a `self` link (`$everything`).
    pub(super) fn of_matches(base: String, self_link: String, entries: Vec<Entry>) -> Page {
        Page {
            base,
            total: entries.len(),
            links: vec![serde_json::json!({ "relation": "self", "url": self_link })],
            entries: Some(entries.into_iter().map(|e| (e, "match")).collect()),
        }
    }

    /// The Bundle's JSON: `resourceType`, `type`, `total`, `link`, then `entry`, each
    /// entry `fullUrl` (but an outcome), `resource`, `search`.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let entries = self.entries.iter().flatten();
        let size: usize = entries.clone().map(|(r, _)| r.len() + 128).sum();
        let mut out = Vec::with_capacity(size + 1024);
        out.extend_from_slice(br#"{"resourceType":"Bundle","type":"searchset","total":"#);
        out.extend_from_slice(self.total.to_string().as_bytes());
        out.extend_from_slice(br#","link":"#);
        // Values always serialize.
        let _ = serde_json::to_writer(&mut out, &self.links);
        if self.entries.is_some() {
            out.extend_from_slice(br#","entry":["#);
            for (n, (resource, mode)) in entries.enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.push(b'{');
                if *mode != "outcome" {
                    out.extend_from_slice(br#""fullUrl":"#);
                    let url = format!("{}/{}", self.base, resource.reference());
                    let _ = serde_json::to_writer(&mut out, &url);
                    out.push(b',');
                }
                out.extend_from_slice(br#""resource":"#);
                resource.write(&mut out);
                out.extend_from_slice(br#","search":{"mode":""#);
                out.extend_from_slice(mode.as_bytes());
                out.extend_from_slice(br#""}}"#);
            }
            out.push(b']');
        }
        out.push(b'}');
        out
    }

    /// The Bundle as a value (a search inside a batch, a pretty answer).
    pub(super) fn into_value(self) -> Value {
        serde_json::from_slice(&self.to_bytes()).unwrap_or(Value::Null)
    }

    /// The answer to a search, with what its audit row needs: each resource's
    /// `Type/id` and, for a contract's, its person (as a read of it records).
    pub(super) fn respond(self, pretty: bool) -> Response {
        let mut given = Given::default();
        for (resource, _) in self.entries.iter().flatten() {
            match resource.cached() {
                Some((cached, one)) => given.resource_about(one.reference(), &cached.patient),
                None => given.collect(resource.value()),
            }
        }
        let mut response = fhir_bytes(StatusCode::OK, self.to_bytes(), pretty);
        response.extensions_mut().insert(given);
        response
    }
}

/// The filters a search applies to each resource of the selected contracts: only the
/// parameters the type declares (the others are reported as ignored, or refused).
#[derive(Default, PartialEq)]
struct Filters {
    /// `_id`: any of these.
    id: Option<Vec<String>>,
    /// `status`: any of these codes, each with the system it must be in (if given).
    status: Option<Vec<(Option<String>, String)>>,
    /// `identifier`: `system|value` or a bare value.
    identifier: Option<String>,
    /// `lifecycle-status` (Goal): any of these.
    lifecycle: Option<Vec<String>>,
    category: Option<String>,
    last_updated: Vec<DateParam>,
    date: Vec<DateParam>,
    /// `participant` (CareTeam) or `actor` (Appointment): `system|value`, `value` or a
    /// reference.
    participant: Option<String>,
}

impl Filters {
    fn parse(
        params: &[(String, String)],
        own: &[super::capability::SearchParam],
    ) -> Result<Filters, FhirError> {
        let declared = |name: &str| own.iter().any(|(n, _, _)| *n == name);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|_| declared(name) || name == "_id")
        };
        let dates = |name: &str| -> Result<Vec<DateParam>, FhirError> {
            params
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| DateParam::parse(name, v))
                .collect()
        };
        let status = get("status").map(|s| {
            s.split(',')
                .map(|one| match one.split_once('|') {
                    Some((system, code)) => (
                        Some(system.to_owned()).filter(|s| !s.is_empty()),
                        code.to_owned(),
                    ),
                    None => (None, one.to_owned()),
                })
                .collect()
        });
        Ok(Filters {
            id: get("_id").map(|ids| ids.split(',').map(str::to_owned).collect()),
            status,
            identifier: get("identifier"),
            lifecycle: get("lifecycle-status").map(|s| s.split(',').map(str::to_owned).collect()),
            category: get("category"),
            last_updated: dates("_lastUpdated")?,
            date: if declared("date") {
                dates("date")?
            } else {
                Vec::new()
            },
            participant: get("participant").or_else(|| get("actor")),
        })
    }

    /// Whether no filter is given: every resource matches.
    fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    fn matches(&self, r: &Value) -> bool {
        let instant = |v: &Value| v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok());
        let id_ok = self
            .id
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| r["id"] == id.as_str()));
        let status_system = r["resourceType"].as_str().and_then(status_system);
        let status_ok = self.status.as_ref().is_none_or(|wanted| {
            wanted.iter().any(|(system, code)| {
                r["status"] == code.as_str()
                    && system.as_deref().is_none_or(|s| Some(s) == status_system)
            })
        });
        let lifecycle_ok = self.lifecycle.as_ref().is_none_or(|wanted| {
            wanted.iter().any(|code| {
                let code = code.rsplit_once('|').map_or(code.as_str(), |(_, c)| c);
                r["lifecycleStatus"] == code
            })
        });
        let identifier_ok =
            self.identifier.as_ref().is_none_or(|wanted| {
                r["identifier"].as_array().into_iter().flatten().any(|i| {
                    match wanted.split_once('|') {
                        Some((system, value)) => {
                            i["value"] == value && (system.is_empty() || i["system"] == system)
                        }
                        None => i["value"] == wanted.as_str(),
                    }
                })
            });
        let category_ok = self.category.as_ref().is_none_or(|c| {
            let (system, code) = c
                .split_once('|')
                .map_or((None, c.as_str()), |(s, c)| (Some(s), c));
            r["category"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|cc| cc["coding"].as_array().into_iter().flatten())
                .any(|coding| {
                    coding["code"] == code
                        && system.is_none_or(|s| s.is_empty() || coding["system"] == s)
                })
        });
        let updated_ok = self
            .last_updated
            .iter()
            .all(|p| instant(&r["meta"]["lastUpdated"]).is_some_and(|t| p.matches(t)));
        let date_ok = self
            .date
            .iter()
            .all(|p| instant(&r["start"]).is_some_and(|t| p.matches(t)));
        let participant_ok = self.participant.as_ref().is_none_or(|p| {
            r["participant"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.get("member").or_else(|| x.get("actor")))
                .any(|who| names(who, p))
        });
        id_ok
            && status_ok
            && identifier_ok
            && lifecycle_ok
            && category_ok
            && updated_ok
            && date_ok
            && participant_ok
    }
}

/// The code system of a type's `status` (a token's `system|code` must name it).
fn status_system(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        "CarePlan" | "CommunicationRequest" => Some("http://hl7.org/fhir/request-status"),
        "CareTeam" => Some("http://hl7.org/fhir/care-team-status"),
        "Appointment" => Some("http://hl7.org/fhir/appointmentstatus"),
        _ => None,
    }
}

/// Whether a Reference is the one a search value names: by `reference`, or by
/// `identifier` as `system|value` or a bare value.
fn names(reference: &Value, wanted: &str) -> bool {
    if reference["reference"] == wanted {
        return true;
    }
    let identifier = &reference["identifier"];
    match wanted.split_once('|') {
        Some((system, value)) => {
            identifier["value"] == value && (system.is_empty() || identifier["system"] == system)
        }
        None => identifier["value"] == wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Version;

    /// A page writes a cached resource's bytes as they are (the read cache's, so a search
    /// gives what a read gives), and is the Bundle R4 describes, keys in their order.
    #[test]
    fn a_page_is_written_around_the_cached_bytes() {
        // A space no serializer here would write: only a copy keeps it.
        let plan = br#"{"resourceType":"CarePlan", "id":"k1","status":"active"}"#;
        let cached = Arc::new(Cached {
            patient: "194003129865".into(),
            resources: vec![CachedResource {
                kind: "CarePlan".into(),
                id: "k1".into(),
                bytes: axum::body::Bytes::from_static(plan),
                booked_start: None,
                version: Version::FIRST,
                at: jiff::Timestamp::UNIX_EPOCH,
            }],
        });
        let self_link = json!({ "relation": "self", "url": "http://h/fhir/CarePlan?patient=1" });
        let provenance = json!({ "resourceType": "Provenance", "id": "k1-v1" });
        let outcome = json!({ "resourceType": "OperationOutcome", "issue": [] });
        let page = Page {
            base: "http://h/fhir".into(),
            total: 3,
            links: vec![self_link.clone()],
            entries: Some(vec![
                (Entry::Cached(cached, 0), "match"),
                (Entry::Value(provenance.clone()), "include"),
                (Entry::Value(outcome.clone()), "outcome"),
            ]),
        };
        let written = page.to_bytes();
        assert!(
            written.windows(plan.len()).any(|w| w == plan),
            "{}",
            String::from_utf8_lossy(&written)
        );
        let expected = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 3,
            "link": [self_link],
            "entry": [
                {
                    "fullUrl": "http://h/fhir/CarePlan/k1",
                    "resource": { "resourceType": "CarePlan", "id": "k1", "status": "active" },
                    "search": { "mode": "match" },
                },
                {
                    "fullUrl": "http://h/fhir/Provenance/k1-v1",
                    "resource": provenance,
                    "search": { "mode": "include" },
                },
                { "resource": outcome, "search": { "mode": "outcome" } },
            ],
        });
        let value: Value = serde_json::from_slice(&written).unwrap();
        // Compared as text, so the keys' order counts too.
        assert_eq!(value.to_string(), expected.to_string());
        let counted = Page {
            entries: None,
            ..page
        };
        let value: Value = serde_json::from_slice(&counted.to_bytes()).unwrap();
        assert_eq!(value.get("entry"), None);
        assert_eq!(value["total"], 3);
    }
}
