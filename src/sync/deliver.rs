//! Delivering one contract to one target: its current version, mapped with the target's
//! profile, written resource by resource (`PUT {type}/{id}`) or as one transaction
//! Bundle; resources the contract no longer has (an agreed time removed) are deleted
//! there.
//!
//! Every write is idempotent: the ids are the gateway's own, so a retry after a lost
//! answer writes the same resource again and never makes a second one. `If-Match`
//! carries the target's version when it is known, so a copy someone changed at the
//! target is not overwritten unseen: a 412 whose copy already equals what is sent (an
//! earlier write went through though its answer was lost) is taken as success; one whose
//! copy is one of the gateway's own earlier versions (written, but not recorded) is
//! written over; one whose copy is a newer version of the gateway's own (another worker
//! delivered it while this delivery was slow) is left as it is; any other is a conflict
//! for a person to resolve.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::client::{Answer, TargetClient};
use super::retry::Failure;
use super::settings::{Mode, RESOURCE_TYPES, Target, WriteBy};
use crate::domain::{ContractId, Version};
use crate::fhir::stored::resources_of;
use crate::percent::encode;
use crate::store::{Remote, Store, StoreError};

/// What a delivery sent, and what the target then holds.
#[derive(Debug)]
pub struct Delivered {
    pub version: Version,
    /// When the version sent was committed here.
    pub committed_at: jiff::Timestamp,
    pub remote: Remote,
}

/// Sends the contract as it is now. `lease_until` is when the claim on the contract may
/// pass to another worker: no write without `If-Match` is still on its way then (see
/// [`Fenced`]).
pub async fn deliver(
    store: &Store,
    target: &Target,
    client: &TargetClient,
    contract: &ContractId,
    lease_until: Instant,
) -> Result<Delivered, Failure> {
    let client = &Fenced {
        client,
        lease_until,
    };
    // What the target holds is read before the contract: read after, it could be what
    // another worker recorded for a newer version than the one read, and this older
    // one would then be sent with that newer one's `If-Match`, and overwrite it.
    let known = store
        .remote(&target.name, contract)
        .await
        .map_err(store_failure)?
        .map(|(_, remote)| remote)
        .unwrap_or_default();
    let record = store.get(contract).await.map_err(store_failure)?;
    let own = OwnVersions {
        store,
        target,
        contract,
        sent: record.revision.version,
        around: tokio::sync::OnceCell::new(),
    };
    let resources = resources_of(&record, &target.profile);
    let mut ours: Vec<(String, Value)> = Vec::new();
    for kind in RESOURCE_TYPES.into_iter().filter(|k| target.accepts(k)) {
        let of_kind: Vec<&Value> = match kind {
            "Goal" => resources.goals.iter().collect(),
            "CareTeam" => vec![&resources.care_team],
            "CarePlan" => vec![&resources.care_plan],
            "CommunicationRequest" => resources.communication_requests.iter().collect(),
            _ => resources.appointments.iter().collect(),
        };
        for r in of_kind {
            let id = r["id"].as_str().unwrap_or_default();
            ours.push((format!("{kind}/{id}"), r.clone()));
        }
    }
    if target.journal_note && !record.revision.deleted {
        let note = journal_note(store, &record, target).await?;
        let id = note["id"].as_str().unwrap_or_default().to_owned();
        ours.push((format!("{NOTE}/{id}"), note));
    }
    let known = match (target.mode, target.write_by) {
        (Mode::Push, WriteBy::Identifier) => known,
        _ => learn_versions(client, &ours, known, &own).await?,
    };
    let remote = match target.mode {
        Mode::Push => push(target, client, contract, &ours, &known, &own).await?,
        Mode::Transaction => transaction(client, &ours, &known, &own).await?,
    };
    Ok(Delivered {
        version: record.revision.version,
        committed_at: record.revision.recorded_at,
        remote,
    })
}

/// The target's client, for one delivery under a lease. A write that names the version
/// it replaces (`If-Match`) is fenced by the target itself: once another worker has
/// written, it is refused there, however late it arrives. A write without one (the
/// first to a target, a delete, a transaction Bundle) is not: it is sent only while the
/// lease has time left, and given up when the lease runs out, so it cannot reach the
/// target after another worker has taken the contract over — provided the target
/// applies a request before the gateway gives up on it, or never (docs/sync-model.md,
/// assumption A1).
struct Fenced<'a> {
    client: &'a TargetClient,
    lease_until: Instant,
}

impl Fenced<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
        accept: &[StatusCode],
    ) -> Result<Answer, Failure> {
        let send = self
            .client
            .send(method.clone(), path, body, if_match, accept);
        if if_match.is_some() || method == Method::GET {
            return send.await;
        }
        let left = self.lease_until.saturating_duration_since(Instant::now());
        let over = || Failure::Transient {
            error: format!(
                "the lease ran out before {method} {path} was answered; not sent without If-Match after it"
            ),
            after: None,
            down: false,
        };
        if left.is_zero() {
            return Err(over());
        }
        tokio::time::timeout(left, send).await.map_err(|_| over())?
    }
}

/// The journal note's resource type. A note stays in the journal when the agreement
/// changes again: the next one is a note of its own, and earlier ones are never deleted.
const NOTE: &str = "DocumentReference";

fn is_note(key: &str) -> bool {
    key.strip_prefix(NOTE)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The journal note of the agreement the contract records now: that of the version
/// which last changed it (several changes while the target was away are one note, of
/// the latest; the note holds the whole agreement).
async fn journal_note(
    store: &Store,
    record: &crate::store::Record,
    target: &Target,
) -> Result<Value, Failure> {
    let now = &record.revision.contract;
    let mut since = record.revision.clone();
    while let Some(earlier) = since
        .version
        .get()
        .checked_sub(1)
        .and_then(|n| Version::try_from(n).ok())
    {
        let earlier = store
            .get_version(&record.id, earlier)
            .await
            .map_err(store_failure)?;
        if earlier.revision.deleted || !earlier.revision.contract.agreed_parts_eq(now) {
            break;
        }
        since = earlier.revision;
    }
    Ok(crate::fhir::journal_note::to_journal_note(
        crate::fhir::journal_note::NoteOf {
            id: &record.id,
            contract: &since.contract,
            version: since.version,
            recorded: since.recorded_at,
            author: since.change.author.as_deref(),
        },
        &target.profile,
    ))
}

fn store_failure(e: StoreError) -> Failure {
    Failure::Transient {
        error: format!("reading the contract: {e}"),
        after: None,
        down: false,
    }
}

/// Before writing a resource the gateway knows no version of at the target, its copy
/// there is read: an earlier attempt may have written it though its answer was lost, or
/// someone may have edited it there since. A copy that is one of the gateway's own
/// versions is written over with `If-Match` on its version; any other is a conflict, as
/// after a 412; none (404) is written without. (A version the gateway forgot on purpose —
/// a replay, a change the target itself made — is in `known` without one, and is written
/// over.)
async fn learn_versions(
    client: &Fenced<'_>,
    ours: &[(String, Value)],
    mut known: Remote,
    own: &OwnVersions<'_>,
) -> Result<Remote, Failure> {
    for (key, body) in ours {
        if known.contains_key(key) {
            continue;
        }
        let theirs = client
            .send(
                Method::GET,
                key,
                None,
                None,
                &[StatusCode::NOT_FOUND, StatusCode::GONE],
            )
            .await?;
        let Some(copy) = theirs.body.as_ref().filter(|_| theirs.status.is_success()) else {
            continue;
        };
        if !same_content(body, copy) {
            match own.version_of_copy(body, copy).await? {
                Some(v) if v > own.sent => {
                    // Another worker's, newer: this delivery is behind, and tries again.
                    return Err(Failure::Transient {
                        error: format!(
                            "the target holds a newer version of {key} than the one read"
                        ),
                        after: None,
                        down: false,
                    });
                }
                Some(_) => {}
                None => return Err(changed_there(key)),
            }
        }
        known.insert(key.clone(), version_of(&theirs));
    }
    Ok(known)
}

/// One request per resource, then deletes of what is gone.
async fn push(
    target: &Target,
    client: &Fenced<'_>,
    contract: &ContractId,
    ours: &[(String, Value)],
    known: &Remote,
    own: &OwnVersions<'_>,
) -> Result<Remote, Failure> {
    let mut remote = Remote::new();
    for (key, body) in ours {
        let if_match = known.get(key).cloned().flatten();
        let path = match target.write_by {
            WriteBy::Id => key.clone(),
            WriteBy::Identifier => by_identifier(target, contract, key, body),
        };
        let etag = put(client, &path, key, body, if_match.as_deref(), own).await?;
        remote.insert(key.clone(), etag);
    }
    for key in known
        .keys()
        .filter(|k| !remote.contains_key(*k) && !is_note(k))
    {
        let gone = [StatusCode::NOT_FOUND, StatusCode::GONE];
        client.send(Method::DELETE, key, None, None, &gone).await?;
    }
    Ok(remote)
}

/// The conditional update URL of a resource by the gateway's business identifier: the
/// contract's for a CarePlan and CareTeam, the agreed time's (within its CarePlan) for an
/// Appointment; a Goal, which has none, by its id.
fn by_identifier(target: &Target, contract: &ContractId, key: &str, body: &Value) -> String {
    let ids = &target.profile.identifiers;
    let kind = key.split('/').next().unwrap_or_default();
    let system = match kind {
        "CarePlan" | "CareTeam" => &ids.contract,
        "Appointment" => &ids.agreed_time,
        _ => return key.to_owned(),
    };
    let value = body["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == system.as_str())
        .and_then(|i| i["value"].as_str());
    let Some(value) = value else {
        return key.to_owned();
    };
    let mut path = format!(
        "{kind}?identifier={}",
        encode(&format!("{system}|{value}"), b"/:")
    );
    if kind == "Appointment" {
        // An agreed time's identifier is unique only within its contract.
        path.push_str(&format!(
            "&supporting-info={}",
            encode(&format!("CarePlan/{contract}"), b"/:")
        ));
    }
    path
}

/// Writes one resource (to `path`: its own, or a conditional update's); its version at
/// the target.
async fn put(
    client: &Fenced<'_>,
    path: &str,
    key: &str,
    body: &Value,
    if_match: Option<&str>,
    own: &OwnVersions<'_>,
) -> Result<Option<String>, Failure> {
    let handled = [StatusCode::PRECONDITION_FAILED, StatusCode::NOT_FOUND];
    let answer = client
        .send(
            Method::PUT,
            path,
            Some(body),
            if_match,
            if if_match.is_some() { &handled } else { &[] },
        )
        .await?;
    match answer.status {
        StatusCode::PRECONDITION_FAILED => {
            match settle_conflict(client, &[(key.to_owned(), body.clone())], own)
                .await?
                .pop()
            {
                Some(Settled::Ours(version) | Settled::Newer(version)) => Ok(version),
                // Our own earlier write, unrecorded: written again on top of it.
                Some(Settled::Earlier(version)) => {
                    let again = client
                        .send(Method::PUT, path, Some(body), version.as_deref(), &[])
                        .await?;
                    Ok(version_of(&again))
                }
                None => Ok(None),
            }
        }
        // Deleted at the target since: written again.
        StatusCode::NOT_FOUND => {
            let again = client
                .send(Method::PUT, path, Some(body), None, &[])
                .await?;
            Ok(version_of(&again))
        }
        _ => Ok(version_of(&answer)),
    }
}

/// How far back, and forward, a write of ours is looked for.
const OWN_VERSIONS: u64 = 20;

/// The gateway's own versions of the contract being delivered, beside the one sent: a
/// copy at the target that equals one of them was written by the gateway. They are read
/// from the store once per delivery, when a copy first needs them.
struct OwnVersions<'a> {
    store: &'a Store,
    target: &'a Target,
    contract: &'a ContractId,
    sent: Version,
    around: tokio::sync::OnceCell<Vec<(Version, Value)>>,
}

impl OwnVersions<'_> {
    /// Which of the gateway's other versions the target's `copy` of the resource `body`
    /// is exactly, if any.
    async fn version_of_copy(
        &self,
        body: &Value,
        copy: &Value,
    ) -> Result<Option<Version>, Failure> {
        let around = self.around.get_or_try_init(|| self.read_around()).await?;
        Ok(around
            .iter()
            .filter(|(_, e)| e["resourceType"] == body["resourceType"] && e["id"] == body["id"])
            .find(|(_, e)| same_copy(e, copy))
            .map(|(v, _)| *v))
    }

    /// The resources of the versions before the one sent (the latest [`OWN_VERSIONS`])
    /// and after it (as many, up to the current one), each with its version.
    async fn read_around(&self) -> Result<Vec<(Version, Value)>, Failure> {
        let sent = self.sent.get();
        let head = self
            .store
            .head(self.contract)
            .await
            .map_err(store_failure)?
            .map_or(sent, |h| h.version.get());
        let mut resources = Vec::new();
        let around = sent.saturating_sub(OWN_VERSIONS).max(1)..=head.min(sent + OWN_VERSIONS);
        for version in around
            .filter(|&n| n != sent)
            .filter_map(|n| Version::try_from(n).ok())
        {
            if let Ok(old) = self.store.get_version(self.contract, version).await {
                let of = resources_of(&old, &self.target.profile);
                resources.extend(of.all().map(|r| (version, r.clone())));
            }
        }
        Ok(resources)
    }
}

/// What a target's copy turned out to be after a 412.
enum Settled {
    /// Already what is sent (an earlier attempt went through): its version there.
    Ours(Option<String>),
    /// One of the gateway's own earlier versions, written but not recorded before the
    /// process stopped (or by a slow delivery whose lease ran out): its version there,
    /// to write the current one on top.
    Earlier(Option<String>),
    /// One of the gateway's own newer versions, delivered by another worker while this
    /// delivery was slow: left as it is (its version there), never written over with an
    /// older one.
    Newer(Option<String>),
}

/// After a 412: the target's copies, if each is what is sent or one of the gateway's own
/// earlier or newer versions; otherwise someone changed the target's copy, and that is
/// not overwritten.
async fn settle_conflict(
    client: &Fenced<'_>,
    sent: &[(String, Value)],
    own: &OwnVersions<'_>,
) -> Result<Vec<Settled>, Failure> {
    let mut settled = Vec::new();
    for (key, body) in sent {
        let theirs = client
            .send(Method::GET, key, None, None, &[StatusCode::NOT_FOUND])
            .await?;
        let copy = theirs.body.as_ref().filter(|_| theirs.status.is_success());
        match copy {
            Some(t) if same_content(body, t) => settled.push(Settled::Ours(version_of(&theirs))),
            Some(t) => match own.version_of_copy(body, t).await? {
                Some(v) if v > own.sent => settled.push(Settled::Newer(version_of(&theirs))),
                Some(_) => settled.push(Settled::Earlier(version_of(&theirs))),
                None => return Err(changed_there(key)),
            },
            None => return Err(changed_there(key)),
        }
    }
    Ok(settled)
}

/// A 412 whose copy is not the gateway's: someone changed it at the target.
fn changed_there(key: &str) -> Failure {
    Failure::Permanent {
        status: Some(412),
        error: format!(
            "the target's copy of {key} was changed there since the gateway last wrote it; \
             merge the change in, or replay this dead letter to overwrite it"
        ),
        outcome: None,
    }
}

/// Whether the target's copy holds everything sent (servers add `meta` of their own).
pub(super) fn same_content(sent: &Value, theirs: &Value) -> bool {
    sent.as_object().is_some_and(|fields| {
        fields
            .iter()
            .filter(|(k, _)| k.as_str() != "meta")
            .all(|(k, v)| theirs.get(k) == Some(v))
    })
}

/// Whether the target's copy is exactly `ours` (but for the `meta` servers add): a copy
/// with anything more is not taken for one of the gateway's other versions, since
/// someone may have added it there.
fn same_copy(ours: &Value, theirs: &Value) -> bool {
    let extra =
        |t: &serde_json::Map<String, Value>| t.keys().any(|k| k != "meta" && ours.get(k).is_none());
    same_content(ours, theirs) && !theirs.as_object().is_some_and(extra)
}

/// The version an answer names: its `ETag`, or the body's `meta.versionId`.
fn version_of(answer: &Answer) -> Option<String> {
    answer.etag.clone().or_else(|| {
        answer
            .body
            .as_ref()
            .and_then(|b| b["meta"]["versionId"].as_str())
            .map(|v| format!("W/\"{v}\""))
    })
}

/// All resources in one transaction Bundle.
async fn transaction(
    client: &Fenced<'_>,
    ours: &[(String, Value)],
    known: &Remote,
    own: &OwnVersions<'_>,
) -> Result<Remote, Failure> {
    let mut entries: Vec<Value> = ours
        .iter()
        .map(|(key, body)| {
            let mut request = json!({ "method": "PUT", "url": key });
            if let Some(Some(tag)) = known.get(key) {
                request["ifMatch"] = json!(tag);
            }
            json!({ "resource": body, "request": request })
        })
        .collect();
    let gone: Vec<&String> = known
        .keys()
        .filter(|k| !ours.iter().any(|(key, _)| key == *k) && !is_note(k))
        .collect();
    entries.extend(
        gone.iter()
            .map(|key| json!({ "request": { "method": "DELETE", "url": key } })),
    );
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries });
    let answer = client
        .send(
            Method::POST,
            "",
            Some(&bundle),
            None,
            &[StatusCode::PRECONDITION_FAILED],
        )
        .await?;
    let versions: Vec<Option<String>> = if answer.status == StatusCode::PRECONDITION_FAILED {
        // One of the copies changed: the same question as for a single resource, and our
        // own earlier copies are written over one by one.
        let settled = settle_conflict(client, ours, own).await?;
        let mut versions = Vec::new();
        for ((key, body), s) in ours.iter().zip(settled) {
            versions.push(match s {
                Settled::Ours(version) | Settled::Newer(version) => version,
                Settled::Earlier(version) => {
                    let again = client
                        .send(Method::PUT, key, Some(body), version.as_deref(), &[])
                        .await?;
                    version_of(&again)
                }
            });
        }
        for key in &gone {
            let gone = [StatusCode::NOT_FOUND, StatusCode::GONE];
            client.send(Method::DELETE, key, None, None, &gone).await?;
        }
        versions
    } else {
        let responses = answer
            .body
            .as_ref()
            .and_then(|b| b["entry"].as_array())
            .cloned()
            .unwrap_or_default();
        (0..ours.len())
            .map(|i| {
                responses
                    .get(i)
                    .and_then(|e| e["response"]["etag"].as_str())
                    .map(str::to_owned)
            })
            .collect()
    };
    Ok(ours
        .iter()
        .map(|(key, _)| key.clone())
        .zip(versions)
        .collect())
}
