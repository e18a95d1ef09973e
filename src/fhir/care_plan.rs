//! The contract as a `CarePlan`: status, the person, who initiated it, the agreement's
//! commitments and the next step as activities, the linked plans as `supportingInfo`,
//! and the record of which parts were discussed as an extension.

use serde_json::Value;

use super::actor::{actor_from, actor_reference, patient_from, patient_reference};
use super::json::{
    Json, MappingError, complex, concept, ext, ext_str, extension, extensions, has_coding,
    identifier, object, opt_string, parse_at, str_of, text_at,
};
use super::{Code, Profile};
use crate::domain::{
    Agreement, Commitment, CommitmentStatus, Confirmation, Contract, ContractId, Coordinator,
    Discussed, Discussion, HsaId, Initiator, KnowledgeLink, LinkedPlan, NextStep, Part,
    PhoneNumber, PlanKind, Situation, Status,
};

/// The CarePlan for a contract; `goals` and the CareTeam are referenced by id.
pub fn to_care_plan<'a>(
    id: &'a ContractId,
    contract: &'a Contract,
    goal_ids: &[String],
    profile: &'a Profile,
) -> Json<'a> {
    let patient = patient_reference(&contract.patient, profile);
    let mut plan = object! {
        "resourceType": "CarePlan",
        "id": id.as_str(),
        "identifier": vec![identifier(&profile.identifiers.contract, id.as_str())],
        "status": contract.status.as_str(),
        "intent": "plan",
        "category": vec![concept(&profile.category)],
        "title": "Patientkontrakt",
        "text": object! { "status": "generated", "div": super::narrative::care_plan_div(contract, profile) },
        "subject": patient.clone(),
        "careTeam": vec![object! { "reference": format!("CareTeam/{id}") }],
    };
    let mut extension = vec![ext(
        &profile.extensions.initiated_by,
        "valueCode",
        match contract.initiated_by {
            Initiator::Staff => "staff",
            Initiator::Patient => "patient",
        },
    )];
    extension.push(discussed_extension(
        &contract.discussed,
        &profile.extensions.parts_discussed,
    ));
    if let Some(confirmed) = &contract.confirmed {
        extension.push(ext(
            &profile.extensions.agreement_confirmed,
            "valueDateTime",
            confirmed.at.to_string(),
        ));
    }
    extension.extend(
        contract
            .agreement
            .knowledge
            .iter()
            .map(|k| knowledge_extension(k, profile)),
    );
    plan.put("extension", extension);
    let mut contributors = vec![patient];
    if let Some(unit) = &contract.responsible_unit {
        let unit = super::care_team::unit_reference(unit, profile);
        plan.put("author", unit.clone());
        contributors.push(unit);
    }
    plan.put("contributor", contributors);
    plan.put(
        "goal",
        goal_ids
            .iter()
            .map(|g| object! { "reference": format!("Goal/{g}") })
            .collect::<Vec<_>>(),
    );
    let plans: Vec<Json> = contract
        .linked_plans
        .iter()
        .map(|p| linked_plan_reference(p, profile))
        .collect();
    plan.put("supportingInfo", plans);
    let mut activities: Vec<Json> = Vec::new();
    if let Some(step) = &contract.next_step {
        activities.push(next_step_activity(step, contract, profile));
    }
    activities.extend(
        contract
            .agreement
            .commitments
            .iter()
            .map(|c| commitment_activity(c, contract, profile)),
    );
    plan.put("activity", activities);
    plan
}

/// What a CarePlan says of the contract; the CareTeam, Appointments and Goals add the rest.
pub fn from_care_plan(plan: &Value, profile: &Profile) -> Result<Contract, MappingError> {
    let status = parse_at(plan, "status", "CarePlan.status", |s| {
        Status::parse(s).ok_or_else(|| {
            format!("'{s}' is not a contract status (draft, active, on-hold, completed, revoked)")
        })
    })?;
    let subject = plan
        .get("subject")
        .ok_or_else(|| MappingError::new("CarePlan.subject", "is missing"))?;
    let patient = patient_from(subject, "CarePlan.subject", profile)?;
    let initiated_by = match ext_str(plan, &profile.extensions.initiated_by, "valueCode") {
        None | Some("staff") => Initiator::Staff,
        Some("patient") => Initiator::Patient,
        Some(other) => {
            return Err(MappingError::new(
                "CarePlan.extension",
                format!("initiated-by must be staff or patient, got '{other}'"),
            ));
        }
    };
    let discussed = match extension(plan, &profile.extensions.parts_discussed) {
        Some(e) => discussed_from(e)?,
        None => Discussed::default(),
    };
    let confirmed = match extension(plan, &profile.extensions.agreement_confirmed) {
        None => None,
        Some(e) => {
            let at = str_of(e, "valueDateTime")
                .and_then(|v| v.parse::<jiff::Timestamp>().ok())
                .ok_or_else(|| {
                    MappingError::new(
                        "CarePlan.extension",
                        "agreement-confirmed needs valueDateTime, an instant with a time zone",
                    )
                })?;
            Some(Confirmation { at })
        }
    };
    let mut next_step = None;
    let mut commitments = Vec::new();
    for (i, activity) in array(plan, "activity").iter().enumerate() {
        let path = format!("CarePlan.activity[{i}]");
        let detail = activity
            .get("detail")
            .ok_or_else(|| MappingError::new(format!("{path}.detail"), "is missing"))?;
        if has_coding(detail.get("code"), &profile.activities.next_step) {
            next_step = Some(next_step_from(detail, &path, profile)?);
        } else if is_commitment(detail, profile) {
            commitments.push(commitment_from(activity, detail, &path, profile)?);
        }
        // Other activities are the sender's own; they are kept as residue, not mapped.
    }
    let linked_plans = array(plan, "supportingInfo")
        .iter()
        .enumerate()
        .map(|(i, r)| linked_plan_from(r, &format!("CarePlan.supportingInfo[{i}]"), profile))
        .collect::<Result<_, _>>()?;
    Ok(Contract {
        status,
        patient,
        initiated_by,
        responsible_unit: None,
        next_step,
        agreement: Agreement {
            what_matters: Vec::new(),
            commitments,
            knowledge: knowledge_of(plan, "CarePlan", profile)?,
        },
        care_contacts: Vec::new(),
        agreed_times: Vec::new(),
        linked_plans,
        discussed,
        contact_requests: Vec::new(),
        confirmed,
    })
}

pub(super) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn next_step_activity<'a>(
    step: &'a NextStep,
    contract: &'a Contract,
    profile: &'a Profile,
) -> Json<'a> {
    let mut detail = object! {
        "code": concept(&profile.activities.next_step),
        "status": "not-started",
        "description": step.description.as_str(),
    };
    // A deadline ends the period; a fixed day is the period from that day to that day.
    if let Some(due) = step.due {
        detail.put("scheduledPeriod", object! { "end": due.to_string() });
    }
    if let Some(on) = step.on {
        detail.put(
            "scheduledPeriod",
            object! { "start": on.to_string(), "end": on.to_string() },
        );
    }
    if let Some(who) = &step.who {
        detail.put(
            "performer",
            vec![actor_reference(who, &contract.patient, profile)],
        );
    }
    object! { "detail": detail }
}

fn next_step_from(detail: &Value, path: &str, profile: &Profile) -> Result<NextStep, MappingError> {
    let description = text_at(detail, "description", &format!("{path}.detail.description"))?;
    let day = |key: &str| -> Result<Option<jiff::civil::Date>, MappingError> {
        match detail.get("scheduledPeriod").and_then(|p| str_of(p, key)) {
            Some(text) => Ok(Some(text.get(..10).unwrap_or(text).parse().map_err(
                |e| {
                    MappingError::new(
                        format!("{path}.detail.scheduledPeriod.{key}"),
                        format!("not a date: {e}"),
                    )
                },
            )?)),
            None => Ok(None),
        }
    };
    // Only an end: the deadline. The same start and end: the day it happens.
    let (due, on) = match (day("start")?, day("end")?) {
        (None, end) => (end, None),
        (Some(start), Some(end)) if start == end => (None, Some(start)),
        (Some(_), _) => {
            return Err(MappingError::new(
                format!("{path}.detail.scheduledPeriod"),
                "a next step has a deadline (only an end) or a day (the same start and end)",
            ));
        }
    };
    let who = match array(detail, "performer").first() {
        Some(r) => Some(actor_from(
            r,
            &format!("{path}.detail.performer[0]"),
            profile,
        )?),
        None => None,
    };
    Ok(NextStep {
        description,
        due,
        on,
        who,
    })
}

pub(super) fn situation_code(situation: Situation, profile: &Profile) -> &Code {
    match situation {
        Situation::StayingWell => &profile.activities.staying_well,
        Situation::GettingWorse => &profile.activities.getting_worse,
        Situation::WarningSign => &profile.activities.warning_sign,
    }
}

fn commitment_activity<'a>(
    c: &'a Commitment,
    contract: &'a Contract,
    profile: &'a Profile,
) -> Json<'a> {
    let mut detail = object! {
        "code": concept(situation_code(c.situation, profile)),
        "status": match c.status {
            CommitmentStatus::Active => "in-progress",
            CommitmentStatus::Completed => "completed",
            CommitmentStatus::Cancelled => "cancelled",
        },
        "description": c.what.as_str(),
        "performer": vec![actor_reference(&c.who, &contract.patient, profile)],
    };
    if let Some(when) = &c.when {
        detail.put("scheduledString", when.as_str());
    }
    let mut extension: Vec<Json> = c
        .where_to_turn
        .iter()
        .map(|turn| {
            ext(
                &profile.extensions.where_to_turn,
                "valueString",
                turn.as_str(),
            )
        })
        .collect();
    extension.extend(c.knowledge.iter().map(|k| knowledge_extension(k, profile)));
    detail.put("extension", extension);
    object! { "id": c.id.as_str(), "detail": detail }
}

/// A kunskapsstöd link as a complex extension: title, url, and where known the diagnosis
/// group, the source and when it was reviewed.
fn knowledge_extension<'a>(k: &'a KnowledgeLink, profile: &'a Profile) -> Json<'a> {
    let mut parts = vec![
        ext("title", "valueString", k.title.as_str()),
        ext("url", "valueUrl", k.url.as_str()),
    ];
    parts.extend(opt_string("diagnosisGroup", k.diagnosis_group.as_deref()));
    parts.extend(opt_string("source", k.source.as_deref()));
    if let Some(reviewed) = k.reviewed {
        parts.push(ext("reviewed", "valueDate", reviewed.to_string()));
    }
    complex(&profile.extensions.knowledge_support, parts)
}

/// The kunskapsstöd links among `element`'s extensions (`path` names it in errors).
fn knowledge_of(
    element: &Value,
    path: &str,
    profile: &Profile,
) -> Result<Vec<KnowledgeLink>, MappingError> {
    extensions(element, &profile.extensions.knowledge_support)
        .map(|e| {
            let at = format!("{path}.extension({})", profile.extensions.knowledge_support);
            let text = |name: &str, key: &str| ext_str(e, name, key).map(str::to_owned);
            let reviewed = match ext_str(e, "reviewed", "valueDate") {
                Some(d) => Some(d.parse().map_err(|err| {
                    MappingError::new(format!("{at}.reviewed"), format!("not a date: {err}"))
                })?),
                None => None,
            };
            Ok(KnowledgeLink {
                title: text("title", "valueString")
                    .ok_or_else(|| MappingError::new(format!("{at}.title"), "is missing"))?,
                url: text("url", "valueUrl")
                    .ok_or_else(|| MappingError::new(format!("{at}.url"), "is missing"))?,
                diagnosis_group: text("diagnosisGroup", "valueString"),
                source: text("source", "valueString"),
                reviewed,
            })
        })
        .collect()
}

/// Whether an activity is one of the profile's commitment kinds (or the next step).
pub(super) fn is_ours(activity: &Value, profile: &Profile) -> bool {
    activity.get("detail").is_some_and(|d| {
        is_commitment(d, profile) || has_coding(d.get("code"), &profile.activities.next_step)
    })
}

fn is_commitment(detail: &Value, profile: &Profile) -> bool {
    let a = &profile.activities;
    [&a.staying_well, &a.getting_worse, &a.warning_sign]
        .into_iter()
        .any(|c| has_coding(detail.get("code"), c))
}

fn commitment_from(
    activity: &Value,
    detail: &Value,
    path: &str,
    profile: &Profile,
) -> Result<Commitment, MappingError> {
    let a = &profile.activities;
    let code = detail.get("code");
    let situation = [
        (Situation::StayingWell, &a.staying_well),
        (Situation::GettingWorse, &a.getting_worse),
        (Situation::WarningSign, &a.warning_sign),
    ]
    .into_iter()
    .find(|(_, c)| has_coding(code, c))
    .map(|(s, _)| s)
    .ok_or_else(|| {
        MappingError::new(
            format!("{path}.detail.code"),
            "is not a commitment situation or next step of this profile",
        )
    })?;
    let status = match str_of(detail, "status") {
        Some("completed") => CommitmentStatus::Completed,
        Some("cancelled" | "stopped" | "entered-in-error") => CommitmentStatus::Cancelled,
        _ => CommitmentStatus::Active,
    };
    let who = array(detail, "performer").first().ok_or_else(|| {
        MappingError::new(format!("{path}.detail.performer"), "must say who does it")
    })?;
    Ok(Commitment {
        id: str_of(activity, "id")
            .map(str::to_owned)
            .unwrap_or_else(|| path.to_owned()),
        who: actor_from(who, &format!("{path}.detail.performer[0]"), profile)?,
        what: text_at(detail, "description", &format!("{path}.detail.description"))?,
        when: str_of(detail, "scheduledString").map(str::to_owned),
        situation,
        where_to_turn: ext_str(detail, &profile.extensions.where_to_turn, "valueString")
            .map(str::to_owned),
        knowledge: knowledge_of(detail, &format!("{path}.detail"), profile)?,
        status,
    })
}

fn discussed_extension<'a>(d: &'a Discussed, url: &'a str) -> Json<'a> {
    let parts = Part::ALL
        .iter()
        .map(|&part| {
            let x: &Discussion = d.get(part);
            let mut sub = vec![ext("discussed", "valueBoolean", x.discussed)];
            if let Some(date) = x.date {
                sub.push(ext("date", "valueDate", date.to_string()));
            }
            sub.extend(opt_string("notApplicable", x.not_applicable.as_deref()));
            complex(part.key(), sub)
        })
        .collect();
    complex(url, parts)
}

fn discussed_from(e: &Value) -> Result<Discussed, MappingError> {
    let mut d = Discussed::default();
    for part in Part::ALL {
        let Some(x) = extension(e, part.key()) else {
            continue;
        };
        let path = format!("CarePlan.extension('{}')", part.key());
        let date = match ext_str(x, "date", "valueDate") {
            Some(s) => Some(s.parse().map_err(|e| {
                MappingError::new(format!("{path}.date"), format!("not a date: {e}"))
            })?),
            None => None,
        };
        *d.get_mut(part) = Discussion {
            discussed: extension(x, "discussed")
                .and_then(|v| v.get("valueBoolean"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            date,
            not_applicable: ext_str(x, "notApplicable", "valueString").map(str::to_owned),
        };
    }
    Ok(d)
}

fn linked_plan_reference<'a>(p: &'a LinkedPlan, profile: &'a Profile) -> Json<'a> {
    let mut sub = vec![ext(
        "kind",
        "valueCode",
        match p.kind {
            PlanKind::Sip => "sip",
            PlanKind::MinVardplan => "minVardplan",
            PlanKind::Vardforlopp => "vardforlopp",
            PlanKind::Other => "other",
        },
    )];
    if let Some(c) = &p.coordinator {
        let parts: Vec<Json> = [
            opt_string("name", Some(&c.name)),
            opt_string("role", c.role.as_deref()),
            opt_string("organization", c.organization.as_deref()),
            opt_string("hsaId", c.hsa_id.as_ref().map(HsaId::as_str)),
            opt_string("phone", c.phone.as_ref().map(PhoneNumber::as_str)),
        ]
        .into_iter()
        .flatten()
        .collect();
        sub.push(complex("coordinator", parts));
    }
    let mut r = object! {
        "identifier": identifier(&profile.identifiers.linked_plan, p.id.as_str()),
        "display": p.title.as_str(),
        "extension": vec![complex(&profile.extensions.linked_plan, sub)],
    };
    if let Some(reference) = &p.reference {
        r.put("reference", reference.as_str());
    }
    r
}

fn linked_plan_from(r: &Value, path: &str, profile: &Profile) -> Result<LinkedPlan, MappingError> {
    let detail = extension(r, &profile.extensions.linked_plan);
    let kind = match detail.and_then(|d| ext_str(d, "kind", "valueCode")) {
        Some("sip") => PlanKind::Sip,
        Some("minVardplan") => PlanKind::MinVardplan,
        Some("vardforlopp") => PlanKind::Vardforlopp,
        _ => PlanKind::Other,
    };
    let coordinator = match detail.and_then(|d| extension(d, "coordinator")) {
        None => None,
        Some(c) => {
            let s = |k: &str| ext_str(c, k, "valueString").map(str::to_owned);
            let bad = |field: &str, e: crate::domain::IdentifierError| {
                MappingError::new(format!("{path}.extension.coordinator.{field}"), e)
            };
            Some(Coordinator {
                name: s("name").ok_or_else(|| {
                    MappingError::new(format!("{path}.extension.coordinator.name"), "is missing")
                })?,
                role: s("role"),
                organization: s("organization"),
                hsa_id: s("hsaId")
                    .map(|h| HsaId::parse(&h))
                    .transpose()
                    .map_err(|e| bad("hsaId", e))?,
                phone: s("phone")
                    .map(|p| PhoneNumber::parse(&p))
                    .transpose()
                    .map_err(|e| bad("phone", e))?,
            })
        }
    };
    let id = r
        .get("identifier")
        .and_then(|i| str_of(i, "value"))
        .map(str::to_owned)
        .unwrap_or_else(|| path.to_owned());
    Ok(LinkedPlan {
        id,
        kind,
        title: text_at(r, "display", &format!("{path}.display"))?,
        coordinator,
        reference: str_of(r, "reference").map(str::to_owned),
    })
}
