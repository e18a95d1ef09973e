//! "7 frågor" as two FHIR `Questionnaire`s — the patient's and care's — from
//! `mappings/sju-fragor.toml`: the seven questions in the seeds' own words, linked item
//! by item (the same `linkId`), each answered from one coded scale (ja, delvis, nej, vet
//! inte), so a unit's answers can be set beside its patients'.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

/// The patient's questionnaire.
pub const PATIENT_ID: &str = "sju-fragor-patient";
/// Care's questionnaire (the care provider's wording, about "your patients").
pub const CARE_ID: &str = "sju-fragor-vardgivare";
const CANONICAL: &str = "https://pkgw.example/fhir/Questionnaire";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SevenQuestions {
    scale: Scale,
    questions: Vec<Question>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scale {
    system: String,
    answers: Vec<Answer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    code: String,
    display: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Question {
    link_id: String,
    patient: String,
    care: String,
}

fn definition() -> &'static SevenQuestions {
    static PARSED: OnceLock<SevenQuestions> = OnceLock::new();
    PARSED.get_or_init(|| {
        toml::from_str(include_str!("../../mappings/sju-fragor.toml"))
            .unwrap_or_else(|e| panic!("mappings/sju-fragor.toml is checked by tests: {e}"))
    })
}

/// Both questionnaires: the patient's, then care's.
pub fn questionnaires() -> [Value; 2] {
    [questionnaire(PATIENT_ID), questionnaire(CARE_ID)]
}

/// One questionnaire by id, if it is one of the two.
pub fn questionnaire_by_id(id: &str) -> Option<Value> {
    (id == PATIENT_ID || id == CARE_ID).then(|| questionnaire(id))
}

fn questionnaire(id: &str) -> Value {
    let d = definition();
    let for_patient = id == PATIENT_ID;
    let options: Vec<Value> = d
        .scale
        .answers
        .iter()
        .map(|a| json!({ "valueCoding": { "system": d.scale.system, "code": a.code, "display": a.display } }))
        .collect();
    let items: Vec<Value> = d
        .questions
        .iter()
        .map(|q| {
            json!({
                "linkId": q.link_id,
                "text": if for_patient { &q.patient } else { &q.care },
                "type": "choice",
                "required": true,
                "answerOption": options,
            })
        })
        .collect();
    json!({
        "resourceType": "Questionnaire",
        "id": id,
        "url": format!("{CANONICAL}/{id}"),
        "name": if for_patient { "SjuFragorPatient" } else { "SjuFragorVardgivare" },
        "title": if for_patient { "Sju frågor till patienten" } else { "Sju frågor till vårdgivaren" },
        "status": "active",
        "subjectType": [if for_patient { "Patient" } else { "Organization" }],
        "language": "sv",
        "item": items,
    })
}
