//! "7 frågor" as two FHIR `Questionnaire`s — the patient's and care's — from
//! `mappings/sju-fragor.toml`: the seven questions in the seeds' own words, linked item
//! by item (the same `linkId`), each answered from one coded scale (ja, delvis, nej, vet
//! inte), so a unit's answers can be set beside its patients'.
//!
//! A `QuestionnaireResponse` is read with [`read_response`]: every question answered once
//! from the scale, nothing else. A patient's answers are about one unit: the one the
//! extension [`UNIT_EXTENSION`] names, or else the unit responsible for the CarePlan the
//! response is `basedOn`. Care's answers are a unit's own (`subject`, by HSA-id), about
//! all its patients.

use std::sync::OnceLock;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Profile;
use super::actor::patient_from;
use super::json::{MappingError, str_of};
use crate::domain::samsyn::Answer;
use crate::domain::{HsaId, PersonId};

/// The patient's questionnaire.
pub const PATIENT_ID: &str = "sju-fragor-patient";
/// Care's questionnaire (the care provider's wording, about "your patients").
pub const CARE_ID: &str = "sju-fragor-vardgivare";
const CANONICAL: &str = "https://pkgw.example/fhir/Questionnaire";
/// On a patient's `QuestionnaireResponse`: the unit the answers are about
/// (`valueReference` to an Organization by HSA-id).
pub const UNIT_EXTENSION: &str = "https://pkgw.example/fhir/StructureDefinition/sju-fragor-enhet";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SevenQuestions {
    scale: Scale,
    /// Care's free-text question, after the seven.
    to_renew: FreeText,
    questions: Vec<Question>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeText {
    link_id: String,
    care: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scale {
    system: String,
    answers: Vec<ScaleAnswer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleAnswer {
    code: String,
    display: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Question {
    link_id: String,
    patient: String,
    care: String,
    /// Asked "vid behov": "inte aktuellt för mig" is an answer to it.
    #[serde(default)]
    when_needed: bool,
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
    let options = |q: &Question| -> Vec<Value> {
        d.scale
            .answers
            .iter()
            .filter(|a| q.when_needed || a.code != Answer::InteAktuellt.code())
            .map(|a| json!({ "valueCoding": { "system": d.scale.system, "code": a.code, "display": a.display } }))
            .collect()
    };
    let mut items: Vec<Value> = d
        .questions
        .iter()
        .map(|q| {
            json!({
                "linkId": q.link_id,
                "text": if for_patient { &q.patient } else { &q.care },
                "type": "choice",
                "required": true,
                "answerOption": options(q),
            })
        })
        .collect();
    if !for_patient {
        items.push(json!({
            "linkId": d.to_renew.link_id,
            "text": d.to_renew.care,
            "type": "text",
            "required": false,
        }));
    }
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

/// Whose questionnaire a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Respondent {
    /// The patient's version.
    Patient,
    /// Care's version, answered by a unit.
    Care,
}

impl Respondent {
    pub fn questionnaire_id(self) -> &'static str {
        match self {
            Respondent::Patient => PATIENT_ID,
            Respondent::Care => CARE_ID,
        }
    }

    /// How the store names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Respondent::Patient => "patient",
            Respondent::Care => "care",
        }
    }

    pub fn parse(s: &str) -> Option<Respondent> {
        match s {
            "patient" => Some(Respondent::Patient),
            "care" => Some(Respondent::Care),
            _ => None,
        }
    }
}

/// What a valid `QuestionnaireResponse` says.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFacts {
    pub respondent: Respondent,
    /// The person who answered (patient's version), if `subject` names them.
    pub patient: Option<PersonId>,
    /// The unit the answers are about (care's: the unit that answered), if named.
    pub unit: Option<HsaId>,
    /// The contract of `basedOn` (`CarePlan/{id}`), if any.
    pub care_plan: Option<String>,
    pub authored: Option<Timestamp>,
    /// One answer per question, in the questionnaire's order.
    pub answers: Vec<Answer>,
    /// Care's answer to "Vad behöver ni förnya och utveckla?", if given.
    pub to_renew: Option<String>,
}

/// The questionnaire's canonical URL.
pub fn canonical(respondent: Respondent) -> String {
    format!("{CANONICAL}/{}", respondent.questionnaire_id())
}

/// The question texts, in order (`respondent`'s wording).
pub fn question_texts(respondent: Respondent) -> Vec<&'static str> {
    definition()
        .questions
        .iter()
        .map(|q| match respondent {
            Respondent::Patient => q.patient.as_str(),
            Respondent::Care => q.care.as_str(),
        })
        .collect()
}

/// The questions' link ids, in order.
pub fn link_ids() -> Vec<&'static str> {
    definition()
        .questions
        .iter()
        .map(|q| q.link_id.as_str())
        .collect()
}

/// The answer as a Coding of the scale.
pub fn answer_coding(answer: Answer) -> Value {
    let scale = &definition().scale;
    let display = scale
        .answers
        .iter()
        .find(|a| a.code == answer.code())
        .map_or_else(|| answer.to_string(), |a| a.display.clone());
    json!({ "system": scale.system, "code": answer.code(), "display": display })
}

/// A completed `QuestionnaireResponse`: `answers` in question order, by `subject` (a
/// Patient or, for care, the unit's Organization), about `unit` (patient's only).
pub fn response(
    respondent: Respondent,
    subject: Value,
    unit: Option<Value>,
    authored: Timestamp,
    answers: &[Answer],
) -> Value {
    let items: Vec<Value> = link_ids()
        .into_iter()
        .zip(answers)
        .map(|(link_id, a)| json!({ "linkId": link_id, "answer": [{ "valueCoding": answer_coding(*a) }] }))
        .collect();
    let mut r = json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical(respondent),
        "status": "completed",
        "subject": subject,
        "authored": authored.to_string(),
        "item": items,
    });
    if let Some(unit) = unit {
        r["extension"] = json!([{ "url": UNIT_EXTENSION, "valueReference": unit }]);
    }
    r
}

/// Checks a `QuestionnaireResponse` against its questionnaire and reads it; every
/// problem found is reported, each naming its element.
pub fn read_response(r: &Value, profile: &Profile) -> Result<ResponseFacts, Vec<MappingError>> {
    let mut errors = Vec::new();
    let mut fail = |expression: &str, message: String| {
        errors.push(MappingError::new(
            format!("QuestionnaireResponse.{expression}"),
            message,
        ));
    };
    let named = str_of(r, "questionnaire").unwrap_or_default();
    let named_id = named
        .split('|')
        .next()
        .unwrap_or_default()
        .trim_start_matches(CANONICAL)
        .trim_start_matches("Questionnaire")
        .trim_start_matches('/');
    let respondent = [Respondent::Patient, Respondent::Care]
        .into_iter()
        .find(|r| r.questionnaire_id() == named_id);
    let Some(respondent) = respondent else {
        fail(
            "questionnaire",
            format!(
                "'{named}' is neither {} nor {}",
                canonical(Respondent::Patient),
                canonical(Respondent::Care)
            ),
        );
        return Err(errors);
    };
    match str_of(r, "status") {
        Some("completed" | "amended") => {}
        Some("in-progress" | "stopped" | "entered-in-error") => fail(
            "status",
            "only completed answers are collected (status completed or amended)".into(),
        ),
        other => fail(
            "status",
            format!(
                "'{}' is not a QuestionnaireResponse status; send completed",
                other.unwrap_or("")
            ),
        ),
    }
    let authored = match str_of(r, "authored") {
        None => None,
        Some(s) => match s.parse::<Timestamp>() {
            Ok(t) => Some(t),
            Err(_) => {
                fail(
                    "authored",
                    format!("'{s}' is not a dateTime with a time zone"),
                );
                None
            }
        },
    };
    let based_on: Vec<&Value> = r["basedOn"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let care_plan = match (respondent, based_on.as_slice()) {
        (_, []) => None,
        (Respondent::Patient, [one]) => {
            let reference = str_of(one, "reference").unwrap_or_default();
            let id = reference
                .strip_prefix("CarePlan/")
                .filter(|id| !id.is_empty() && !id.contains('/'));
            if id.is_none() {
                fail(
                    "basedOn[0].reference",
                    format!("'{reference}' is not CarePlan/{{id}}"),
                );
            }
            id.map(str::to_owned)
        }
        (Respondent::Patient, _) => {
            fail(
                "basedOn",
                "name at most one CarePlan: the person's Patientkontrakt".into(),
            );
            None
        }
        (Respondent::Care, _) => {
            fail(
                "basedOn",
                "care's answers are about all the unit's patients, not one CarePlan".into(),
            );
            None
        }
    };
    let (patient, unit) = match respondent {
        Respondent::Patient => {
            let patient = match r.get("subject") {
                None => None,
                Some(s) => patient_from(s, "QuestionnaireResponse.subject", profile)
                    .map_err(|e| errors.push(e))
                    .ok()
                    .map(|p| p.id),
            };
            let unit = r["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["url"] == UNIT_EXTENSION)
                .and_then(|e| {
                    unit_of(
                        &e["valueReference"],
                        "QuestionnaireResponse.extension.valueReference",
                        profile,
                    )
                    .map_err(|e| errors.push(e))
                    .ok()
                });
            (patient, unit)
        }
        Respondent::Care => {
            let unit = match r.get("subject") {
                Some(s) => unit_of(s, "QuestionnaireResponse.subject", profile)
                    .map_err(|e| errors.push(e))
                    .ok(),
                None => {
                    errors.push(MappingError::new(
                        "QuestionnaireResponse.subject",
                        "name the unit that answers: an Organization by HSA-id",
                    ));
                    None
                }
            };
            (None, unit)
        }
    };
    let (answers, to_renew) = read_items(r, respondent, &mut errors);
    if errors.is_empty() {
        Ok(ResponseFacts {
            respondent,
            patient,
            unit,
            care_plan,
            authored,
            answers: answers.into_iter().flatten().collect(),
            to_renew,
        })
    } else {
        Err(errors)
    }
}

/// A unit from an Organization reference by HSA-id.
fn unit_of(reference: &Value, expression: &str, profile: &Profile) -> Result<HsaId, MappingError> {
    let ids = &profile.identifiers;
    let ident = &reference["identifier"];
    let system = str_of(ident, "system").unwrap_or_default();
    if !std::iter::once(&ids.hsa_id)
        .chain(&ids.hsa_id_aliases)
        .any(|s| s == system)
    {
        return Err(MappingError::new(
            format!("{expression}.identifier.system"),
            format!("'{system}' is not the HSA-id system ({})", ids.hsa_id),
        ));
    }
    HsaId::parse(str_of(ident, "value").unwrap_or_default())
        .map_err(|e| MappingError::new(format!("{expression}.identifier.value"), e))
}

/// Each question's answer, in order (`None` where unanswered, which is an error), and
/// care's free text.
fn read_items(
    r: &Value,
    respondent: Respondent,
    errors: &mut Vec<MappingError>,
) -> (Vec<Option<Answer>>, Option<String>) {
    let d = definition();
    let mut answers: Vec<Option<Answer>> = vec![None; d.questions.len()];
    let mut to_renew = None;
    let items = r["item"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("QuestionnaireResponse.item[{i}]{field}");
        let link_id = str_of(item, "linkId").unwrap_or_default();
        if link_id == d.to_renew.link_id && respondent == Respondent::Care {
            match item["answer"].as_array().map(Vec::as_slice) {
                Some([one])
                    if one["valueString"]
                        .as_str()
                        .is_some_and(|t| !t.trim().is_empty()) =>
                {
                    to_renew = one["valueString"].as_str().map(str::to_owned);
                }
                _ => errors.push(MappingError::new(
                    at(".answer"),
                    format!("'{}' is answered with one valueString", d.to_renew.care),
                )),
            }
            continue;
        }
        let Some(q) = d.questions.iter().position(|q| q.link_id == link_id) else {
            errors.push(MappingError::new(
                at(".linkId"),
                format!(
                    "'{link_id}' is not a question of 7 frågor (1 to {})",
                    d.questions.len()
                ),
            ));
            continue;
        };
        if item.get("item").is_some() {
            errors.push(MappingError::new(
                at(".item"),
                "the questions have no sub-questions",
            ));
        }
        let given = item["answer"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let answer = match given {
            [one] => {
                let coding = &one["valueCoding"];
                let from_scale = (str_of(coding, "system") == Some(d.scale.system.as_str()))
                    .then(|| str_of(coding, "code").and_then(Answer::from_code))
                    .flatten();
                if from_scale == Some(Answer::InteAktuellt) && !d.questions[q].when_needed {
                    errors.push(MappingError::new(
                        at(".answer[0]"),
                        format!(
                            "'{}' is only an answer to the questions asked \"vid behov\" ({})",
                            Answer::InteAktuellt.code(),
                            d.questions
                                .iter()
                                .filter(|q| q.when_needed)
                                .map(|q| q.link_id.as_str())
                                .collect::<Vec<_>>()
                                .join(" and ")
                        ),
                    ));
                }
                if from_scale.is_none() {
                    let codes: Vec<&str> = Answer::ALL.iter().map(|a| a.code()).collect();
                    errors.push(MappingError::new(
                        at(".answer[0]"),
                        format!(
                            "must be a valueCoding from {} ({})",
                            d.scale.system,
                            codes.join(", ")
                        ),
                    ));
                }
                from_scale
            }
            [] => None,
            _ => {
                errors.push(MappingError::new(
                    at(".answer"),
                    "give one answer per question",
                ));
                None
            }
        };
        if answers[q].is_some() {
            errors.push(MappingError::new(
                at(".linkId"),
                format!("question {link_id} is answered twice"),
            ));
        }
        answers[q] = answers[q].or(answer);
    }
    let missing: Vec<&str> = d
        .questions
        .iter()
        .zip(&answers)
        .filter(|(_, a)| a.is_none())
        .map(|(q, _)| q.link_id.as_str())
        .collect();
    let already_named = errors
        .iter()
        .any(|e| e.expression.starts_with("QuestionnaireResponse.item"));
    if !missing.is_empty() && !already_named {
        errors.push(MappingError::new(
            "QuestionnaireResponse.item",
            format!(
                "question {} is not answered; every question is required ('vet-inte' when unsure)",
                missing.join(", ")
            ),
        ));
    }
    (answers, to_renew)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_domains_answers_in_order() {
        let codes: Vec<&str> = definition()
            .scale
            .answers
            .iter()
            .map(|a| a.code.as_str())
            .collect();
        let domain: Vec<&str> = Answer::ALL.iter().map(|a| a.code()).collect();
        assert_eq!(codes, domain);
        for a in Answer::ALL {
            assert_eq!(answer_coding(a)["display"], a.to_string());
        }
    }
}
