//! A template per diagnosis group (see [`crate::domain::Template`]) in FHIR: as a
//! `PlanDefinition` to list and read (its title, the diagnosis group as the `focus` of
//! its use, the unit whose it is as its `venue`, the kunskapsstöd as `relatedArtifact`,
//! one `action` per commitment with the commitment's situation as its code), and as the
//! draft `CarePlan` its `$apply` makes for a person — the same CarePlan mapping every
//! contract has, with `instantiatesCanonical` naming the PlanDefinition. The
//! PlanDefinition is a view of configuration and is never written back; what a draft
//! holds comes back through the CarePlan.

use serde_json::{Value, json};

use super::Profile;
use super::care_plan::situation_code;
use super::json::concept;
use crate::domain::{ContractId, KnowledgeLink, Patient, Template};

/// The template as a PlanDefinition, its canonical URL under `base`.
pub fn to_plan_definition(t: &Template, base: &str, profile: &Profile) -> Value {
    let mut plan = json!({
        "resourceType": "PlanDefinition",
        "id": t.id,
        "url": format!("{base}/PlanDefinition/{}", t.id),
        "title": t.title,
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type", "code": "clinical-protocol", "display": "Clinical Protocol" }] },
        "status": "active",
        "description": format!("Mall för Patientkontrakt: {}", t.diagnosis_group),
        "useContext": [{
            "code": { "system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus" },
            "valueCodeableConcept": { "text": t.diagnosis_group },
        }],
    });
    if let (Some(unit), Some(contexts)) = (&t.unit, plan["useContext"].as_array_mut()) {
        contexts.push(json!({
            "code": { "system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "venue" },
            "valueCodeableConcept": { "coding": [{ "system": profile.identifiers.hsa_id, "code": unit.as_str() }] },
        }));
    }
    if !t.knowledge.is_empty() {
        plan["relatedArtifact"] = t.knowledge.iter().map(related_artifact).collect();
    }
    let actions: Vec<Value> = t
        .commitments
        .iter()
        .map(|c| {
            let mut action = json!({
                "id": c.id,
                "title": situation_code(c.situation, profile).display,
                "description": c.what,
                "code": [concept(situation_code(c.situation, profile))],
            });
            if let Some(turn) = &c.where_to_turn {
                action["textEquivalent"] = json!(format!("Vart jag vänder mig: {turn}"));
            }
            if !c.knowledge.is_empty() {
                action["documentation"] = c.knowledge.iter().map(related_artifact).collect();
            }
            action
        })
        .collect();
    if !actions.is_empty() {
        plan["action"] = Value::Array(actions);
    }
    plan
}

/// A kunskapsstöd link as a RelatedArtifact of type `documentation`.
fn related_artifact(k: &KnowledgeLink) -> Value {
    let mut artifact = json!({ "type": "documentation", "display": k.title, "url": k.url });
    let citation: Vec<&str> = [k.source.as_deref(), k.diagnosis_group.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !citation.is_empty() {
        artifact["citation"] = json!(citation.join(", "));
    }
    artifact
}

/// The draft CarePlan `$apply` makes of `t` for `patient`: the contract draft's CarePlan
/// (see [`Template::draft`]) without an id of its own — it is not stored until a client
/// creates it — naming the template it came from.
pub fn applied(t: &Template, patient: Patient, base: &str, profile: &Profile) -> Value {
    let draft = t.draft(patient, None);
    // Any id will do: what names it is removed below.
    let id = ContractId::parse("draft").unwrap_or_else(|_| unreachable!("a valid id"));
    let mut plan = super::to_fhir(&id, &draft, profile).care_plan;
    if let Some(o) = plan.as_object_mut() {
        for key in ["id", "identifier", "careTeam", "goal"] {
            o.remove(key);
        }
    }
    plan["instantiatesCanonical"] = json!([format!("{base}/PlanDefinition/{}", t.id)]);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PersonId;

    const BASE: &str = "https://pkgw.example/fhir";

    /// What a template holds comes back from the CarePlan its `$apply` makes, and the
    /// PlanDefinition of each example is its golden file (checked by both validators).
    #[test]
    fn a_template_round_trips_through_the_draft_it_makes() {
        let profile = Profile::default_profile();
        let update = std::env::var_os("PKGW_UPDATE_GOLDEN").is_some();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fhir/templates");
        for t in crate::templates::Templates::examples().unwrap().all() {
            let patient = Patient {
                id: PersonId::parse("191212121212").unwrap(),
                name: Some("Tolvan Tolvansson".into()),
            };
            let plan = applied(t, patient.clone(), BASE, &profile);
            assert_eq!(plan["status"], "draft");
            assert_eq!(
                plan["instantiatesCanonical"][0],
                format!("{BASE}/PlanDefinition/{}", t.id)
            );
            let mut resources = crate::fhir::to_fhir(
                &ContractId::parse("draft").unwrap(),
                &t.draft(patient.clone(), None),
                &profile,
            );
            resources.care_plan = plan.clone();
            resources.care_plan["id"] = json!("draft");
            let back = crate::fhir::from_fhir_checked(&resources, &profile).unwrap();
            assert_eq!(back, t.draft(patient, None), "{}", t.id);

            let definition = to_plan_definition(t, BASE, &profile);
            assert_eq!(
                definition["action"].as_array().map_or(0, Vec::len),
                t.commitments.len()
            );
            let bundle = json!({ "resourceType": "Bundle", "type": "collection", "entry": [
                { "fullUrl": format!("{BASE}/PlanDefinition/{}", t.id), "resource": definition },
                { "fullUrl": "urn:uuid:8f9a3c1e-0b6d-4d0f-9a51-3b2c7e4d5f61", "resource": plan },
            ] });
            let text = serde_json::to_string_pretty(&bundle).unwrap() + "\n";
            let path = dir.join(format!("{}.json", t.id));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else {
                let golden = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}; PKGW_UPDATE_GOLDEN=1", path.display()));
                assert_eq!(text, golden, "{}", t.id);
            }
        }
    }
}
