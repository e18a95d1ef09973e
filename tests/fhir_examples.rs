//! The official FHIR R4 examples (npm `hl7.fhir.r4.examples` 4.0.1, installed by
//! `scripts/test.sh` into `PKGW_FHIR_EXAMPLES`) grafted onto a contract's resources, on
//! SQLite and PostgreSQL: every element of an example that the contract's resource does
//! not have is added, and every item of an array both have is appended beside ours.
//! What the gateway takes, it gives back exactly — nested content included; what it
//! cannot keep, it refuses with an OperationOutcome naming the element. Never a 2xx that
//! lost or changed something.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::spawn_app;
use common::fhir::{fhir_get, send};
use common::{TestDb, fixture};
use pkgw::store::Change;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};

/// The examples of the types a contract maps to, by file name.
fn examples() -> Vec<(String, Value)> {
    let dir = std::env::var("PKGW_FHIR_EXAMPLES")
        .expect("PKGW_FHIR_EXAMPLES: run the tests with scripts/test.sh, which installs them");
    let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            ["CarePlan-", "CareTeam-", "Goal-", "Appointment-"]
                .iter()
                .any(|k| name.starts_with(k))
                && name.ends_with(".json")
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// What grafting adds: whole elements, and items appended to arrays ours has too.
#[derive(Debug, Default, Clone)]
struct Graft {
    elements: Map<String, Value>,
    items: Vec<(String, Value)>,
}

impl Graft {
    /// The example's elements that `ours` lacks, and the items of arrays both have.
    fn of(ours: &Value, example: &Value) -> Graft {
        let mut graft = Graft::default();
        for (key, value) in example.as_object().unwrap() {
            if matches!(key.as_str(), "resourceType" | "id" | "meta" | "text") {
                continue;
            }
            match (ours.get(key), value) {
                (None, _) => {
                    graft.elements.insert(key.clone(), value.clone());
                }
                (Some(Value::Array(_)), Value::Array(theirs)) => {
                    graft
                        .items
                        .extend(theirs.iter().map(|i| (key.clone(), i.clone())));
                }
                (Some(_), _) => {}
            }
        }
        graft
    }

    fn is_empty(&self) -> bool {
        self.elements.is_empty() && self.items.is_empty()
    }

    /// `ours` with the graft on.
    fn onto(&self, ours: &Value) -> Value {
        let mut resource = ours.clone();
        for (key, value) in &self.elements {
            resource[key] = value.clone();
        }
        for (key, item) in &self.items {
            resource[key].as_array_mut().unwrap().push(item.clone());
        }
        resource
    }

    /// Takes off what `expression` (e.g. `CarePlan.activity[5].detail`) names: the added
    /// element, or the appended item. False when the graft did not add it.
    fn peel(&mut self, expression: &str, ours: &Value) -> bool {
        let path = expression.split_once('.').map_or("", |(_, p)| p);
        let head = path.split('.').next().unwrap_or_default();
        let (key, index) = match head.split_once('[') {
            Some((key, i)) => (key, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (head, None),
        };
        if self.elements.remove(key).is_some() {
            return true;
        }
        let ours_len = ours[key].as_array().map_or(0, Vec::len);
        let Some(n) = index.and_then(|i| i.checked_sub(ours_len)) else {
            return false;
        };
        let at = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k == key)
            .nth(n)
            .map(|(at, _)| at);
        at.map(|at| self.items.remove(at)).is_some()
    }
}

async fn the_official_examples_are_kept_exactly_or_refused_by_name(db: &TestDb) {
    let app = spawn_app(db).await;
    let record = app
        .store
        .create(fixture("cancer-min-vardplan"), Change::from_source("test"))
        .await
        .unwrap();
    let id = record.id.to_string();
    let times = fhir_get(
        &app,
        &format!(
            "/fhir/Appointment?patient={}",
            record.revision.contract.patient.id
        ),
    )
    .await
    .body;
    let time = times["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let all = examples();
    assert_eq!(all.len(), 17, "the package's examples of these four types");
    let (mut kept, mut refused) = (0, Vec::new());
    for (name, example) in all {
        let path = match example["resourceType"].as_str().unwrap() {
            "CarePlan" => format!("/fhir/CarePlan/{id}"),
            "CareTeam" => format!("/fhir/CareTeam/{id}"),
            "Goal" => format!("/fhir/Goal/{id}-mal-1"),
            _ => format!("/fhir/Appointment/{time}"),
        };
        // Each refusal names an element; it is taken off the graft and the rest tried
        // again, until what is left is kept.
        let current = fhir_get(&app, &path).await;
        let ours = current.body.clone();
        let mut graft = Graft::of(&ours, &example);
        loop {
            let etag = fhir_get(&app, &path)
                .await
                .header("etag")
                .unwrap()
                .to_owned();
            let resource = graft.onto(&ours);
            let reply = send(
                &app,
                Method::PUT,
                &path,
                &[("If-Match", &etag)],
                Some(&resource),
            )
            .await;
            if reply.status.is_success() {
                let served = fhir_get(&app, &path).await.body;
                for (key, value) in &graft.elements {
                    assert_eq!(&served[key], value, "{name}: {key} came back changed");
                }
                for (key, item) in &graft.items {
                    assert!(
                        served[key].as_array().unwrap().contains(item),
                        "{name}: an item of {key} was lost: {item}"
                    );
                }
                kept += graft.elements.len() + graft.items.len();
                break;
            }
            assert!(
                reply.status == StatusCode::BAD_REQUEST
                    || reply.status == StatusCode::UNPROCESSABLE_ENTITY,
                "{name}: {} {}",
                reply.status,
                reply.body
            );
            let named: Vec<String> = reply.body["issue"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|i| i["expression"][0].as_str().map(str::to_owned))
                .collect();
            assert!(
                !named.is_empty(),
                "{name}: refused without naming: {}",
                reply.body
            );
            // Nothing of a refused write is stored.
            assert_eq!(
                fhir_get(&app, &path).await.header("etag"),
                Some(etag.as_str())
            );
            // What the graft added and is named comes off (an element of ours may be
            // named too, when the added ones change how the resource maps).
            let peeled = named.iter().filter(|n| graft.peel(n, &ours)).count();
            if peeled == 0 {
                // A rule of the contract the additions broke (named in the contract's
                // terms, e.g. an agreed time no longer accepted by both): the last
                // addition comes off.
                assert!(
                    !graft.is_empty(),
                    "{name}: refused with nothing grafted: {}",
                    reply.body
                );
                if graft.items.pop().is_none() {
                    let last = graft.elements.keys().next_back().cloned().unwrap();
                    graft.elements.remove(&last);
                }
            }
            refused.extend(named.iter().map(|n| format!("{name}: {n}")));
        }
    }
    eprintln!("elements and items kept exactly: {kept}\nrefused, naming: {refused:?}");
    assert!(kept >= 10, "kept {kept}; refused: {refused:?}");
}

on_both_backends!(the_official_examples_are_kept_exactly_or_refused_by_name);
