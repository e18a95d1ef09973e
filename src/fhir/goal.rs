//! What matters to the person ("Vad är viktigt för dig?") as `Goal`s, in their own words.

use serde_json::Value;

use super::Profile;
use super::actor::patient_reference;
use super::json::{Json, MappingError, object, text_at};
use crate::domain::{ContractId, Patient};

pub fn goal_id(contract: &ContractId, index: usize) -> String {
    format!("{contract}-mal-{}", index + 1)
}

pub fn to_goal<'a>(
    id: String,
    patient: &'a Patient,
    what_matters: &'a str,
    profile: &'a Profile,
) -> Json<'a> {
    let person = patient_reference(patient, profile);
    object! {
        "resourceType": "Goal",
        "id": id,
        "lifecycleStatus": "active",
        "description": object! { "text": what_matters },
        "subject": person.clone(),
        "expressedBy": person,
    }
}

pub fn from_goal(goal: &Value, path: &str) -> Result<String, MappingError> {
    let description = goal
        .get("description")
        .ok_or_else(|| MappingError::new(format!("{path}.description"), "is missing"))?;
    text_at(description, "text", &format!("{path}.description.text"))
}
