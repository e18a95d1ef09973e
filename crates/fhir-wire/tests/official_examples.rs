//! Every official FHIR R4 (4.0.1) example CarePlan, CareTeam, Appointment and Goal parses
//! through the typed model and is written back as the same JSON: nothing dropped, nothing
//! changed (decimals compare by value, see [`same`]). The examples come from the npm package `hl7.fhir.r4.examples@4.0.1`, which
//! `scripts/test.sh` fetches into `target/fhir-examples` (not committed); point
//! `PKGW_FHIR_EXAMPLES` at another copy of its `package/` folder if needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;

fn examples_dir() -> PathBuf {
    std::env::var_os("PKGW_FHIR_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fhir-examples/package")
        })
}

/// JSON equality up to two normalisations the model makes, both to equal values: it holds
/// decimals as `f64` (`180` comes back as `180.0`) and writes the UTC offset `+00:00` as
/// `Z`. (The gateway keeps the JSON it received, so what it passes on is unchanged.)
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) if x != y => {
            let instant = |s: &str| {
                fhir_wire::time::OffsetDateTime::parse(
                    s,
                    &fhir_wire::time::format_description::well_known::Rfc3339,
                )
                .ok()
            };
            instant(x).is_some() && instant(x) == instant(y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn official_examples_round_trip_through_the_typed_model() {
    let dir = examples_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!("{}: {e}\nRun scripts/test.sh, which fetches the R4 examples (npm pack hl7.fhir.r4.examples@4.0.1).", dir.display())
    });
    let mut checked = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(kind) = ["CarePlan", "CareTeam", "Appointment", "Goal"]
            .into_iter()
            .find(|k| name.starts_with(&format!("{k}-")))
        else {
            continue;
        };
        let original: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let rewritten = match kind {
            "CarePlan" => {
                fhir_wire::write_care_plan(&fhir_wire::parse_care_plan(&original).unwrap())
            }
            "CareTeam" => {
                fhir_wire::write_care_team(&fhir_wire::parse_care_team(&original).unwrap())
            }
            "Appointment" => {
                fhir_wire::write_appointment(&fhir_wire::parse_appointment(&original).unwrap())
            }
            _ => fhir_wire::write_goal(&fhir_wire::parse_goal(&original).unwrap()),
        }
        .unwrap();
        assert!(
            same(&rewritten, &original),
            "{name} changed through the typed model:\n{rewritten}\n{original}"
        );
        checked.push(name);
    }
    checked.sort();
    // The 4.0.1 package has 11 CarePlans, 1 CareTeam, 3 Appointments and 2 Goals.
    assert_eq!(checked.len(), 17, "{checked:?}");
}
