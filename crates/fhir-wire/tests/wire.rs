//! The wire functions against hand-written JSON. (Kept out of the library's own test
//! build, which would instantiate the model's serde code a second time.)

#![allow(clippy::unwrap_used)]

use fhir_wire::*;
use serde_json::{Value, json};

fn minimal_care_plan() -> Value {
    json!({
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": { "reference": "Patient/p1" }
    })
}

#[test]
fn parses_and_writes_back_the_same_json() {
    let value = minimal_care_plan();
    let plan = parse_care_plan(&value).unwrap();
    assert_eq!(write_care_plan(&plan).unwrap(), value);
}

#[test]
fn checks_the_resource_type() {
    let mut value = minimal_care_plan();
    value["resourceType"] = json!("Appointment");
    let err = parse_care_plan(&value).unwrap_err();
    assert_eq!(
        err,
        WireError::WrongType {
            expected: "CarePlan",
            found: "Appointment".into()
        }
    );
    assert_eq!(err.path(), "resourceType");
    assert!(parse_appointment(&json!({})).is_err());
}

#[test]
fn names_the_bad_element() {
    let mut value = minimal_care_plan();
    value["status"] = json!("aktiv");
    let err = parse_care_plan(&value).unwrap_err();
    assert_eq!(err.path(), "status", "{err}");
}
