//! Templates per diagnosis group: a unit starts a person's contract from the region's
//! template (or its own) — natively (`/api/templates/{id}/draft`) and in FHIR
//! (`PlanDefinition/{id}/$apply`) — gets a draft with the template's commitments and
//! kunskapsstöd and nothing of the person's own, completes it, stores it like any
//! contract, and the printed page shows what came from the template. Over HTTP, on
//! SQLite and PostgreSQL.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app::{TestApp, spawn_state};
use common::fhir::{fhir_get, send};
use common::{TestDb, fixture};
use pkgw::api::{AppState, Limits};
use pkgw::templates::Templates;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PERSON: &str = "194003129865";
const DIABETES_UNIT: &str = "SE2321000016-BDM1";

async fn app(db: &TestDb) -> TestApp {
    let state = AppState::new(db.store().await).with_templates(Templates::examples().unwrap());
    spawn_state(state, Limits::default()).await
}

fn unit(hsa_id: &str) -> Value {
    let mut unit = serde_json::to_value(fixture("hjartsvikt-primarvard").responsible_unit).unwrap();
    unit["hsaId"] = json!(hsa_id);
    unit
}

async fn a_unit_starts_a_contract_from_a_template(db: &TestDb) {
    let app = app(db).await;
    // What a unit may choose from: the region's templates and its own.
    let all = fhir_get(&app, "/api/templates").await.body;
    assert_eq!(all["templates"].as_array().unwrap().len(), 3);
    let primary_care = fhir_get(&app, "/api/templates?unit=SE2321000016-1A2B")
        .await
        .body;
    let ids: Vec<&str> = primary_care["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hjartsvikt", "ra-psvf"]);
    let bad = fhir_get(&app, "/api/templates?unit=vardcentralen").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let template = fhir_get(&app, "/api/templates/ra-psvf").await.body;
    assert_eq!(template["diagnosisGroup"], "Reumatoid artrit (RA)");
    assert_eq!(
        fhir_get(&app, "/api/templates/finns-inte").await.status,
        StatusCode::NOT_FOUND
    );

    // The draft: the template's commitments and kunskapsstöd; the person's part open.
    let request = json!({ "patient": { "id": PERSON, "name": "Gunnar Lindqvist" }, "responsibleUnit": unit("SE2321000016-1A2B") });
    let draft = send(
        &app,
        Method::POST,
        "/api/templates/ra-psvf/draft",
        &[],
        Some(&request),
    )
    .await;
    assert_eq!(draft.status, StatusCode::OK, "{}", draft.body);
    let mut contract = draft.body;
    assert_eq!(contract["status"], "draft");
    assert_eq!(
        contract["agreement"]["commitments"],
        template["commitments"]
    );
    assert_eq!(contract["agreement"]["knowledge"], template["knowledge"]);
    assert_eq!(contract["agreement"]["whatMatters"], json!([]));
    assert_eq!(contract["discussed"]["agreement"]["discussed"], false);
    // Nothing was stored.
    let none = fhir_get(&app, &format!("/api/contracts?patient={PERSON}"))
        .await
        .body;
    assert_eq!(
        none["contracts"].as_array().map_or(0, Vec::len),
        0,
        "{none}"
    );

    // Completed with the person, and stored like any contract.
    contract["agreement"]["whatMatters"] = json!(["Att kunna plocka svamp i höst"]);
    let stored = send(&app, Method::POST, "/api/contracts", &[], Some(&contract)).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.body);
    let id = stored.body["id"].as_str().unwrap();
    let page = app
        .client
        .get(app.url(&format!("/contracts/{id}/print")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Kunskapsstöd för mig"), "{page}");
    assert!(
        page.contains("Ring reumatologmottagningen under telefontid"),
        "{page}"
    );

    // A unit's own template is that unit's: another unit is told so.
    let other =
        json!({ "patient": { "id": PERSON }, "responsibleUnit": unit("SE2321000016-1A2B") });
    let refused = send(
        &app,
        Method::POST,
        "/api/templates/diabetes-typ-1-barn/draft",
        &[],
        Some(&other),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["error"]["issues"][0]["field"],
        "responsibleUnit.hsaId"
    );
    let own = json!({ "patient": { "id": PERSON }, "responsibleUnit": unit(DIABETES_UNIT) });
    let allowed = send(
        &app,
        Method::POST,
        "/api/templates/diabetes-typ-1-barn/draft",
        &[],
        Some(&own),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    // A person this region cannot identify, or a body it does not know, is refused.
    let unknown = json!({ "patient": { "id": "19400312-0000" } });
    let bad = send(
        &app,
        Method::POST,
        "/api/templates/ra-psvf/draft",
        &[],
        Some(&unknown),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["error"]["issues"][0]["field"], "patient.id");
    let extra = json!({ "patient": { "id": PERSON }, "whatMatters": ["x"] });
    let bad = send(
        &app,
        Method::POST,
        "/api/templates/ra-psvf/draft",
        &[],
        Some(&extra),
    )
    .await;
    assert!(bad.status.is_client_error(), "{}", bad.body);
    assert!(bad.body.to_string().contains("whatMatters"), "{}", bad.body);
}

async fn fhir_clients_apply_a_plan_definition_and_create_the_care_plan(db: &TestDb) {
    let app = app(db).await;
    let found = fhir_get(&app, "/fhir/PlanDefinition?title=reumatoid")
        .await
        .body;
    assert_eq!(found["total"], 1, "{found}");
    let definition = &found["entry"][0]["resource"];
    assert_eq!(definition["id"], "ra-psvf");
    assert_eq!(definition["relatedArtifact"][0]["type"], "documentation");
    let diabetes = fhir_get(&app, "/fhir/PlanDefinition/diabetes-typ-1-barn")
        .await
        .body;
    assert_eq!(
        diabetes["useContext"][1]["valueCodeableConcept"]["coding"][0]["code"],
        DIABETES_UNIT
    );
    let unknown = fhir_get(&app, "/fhir/PlanDefinition?context=RA").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    let applied = fhir_get(
        &app,
        &format!("/fhir/PlanDefinition/ra-psvf/$apply?subject=Patient/{PERSON}"),
    )
    .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    let plan = applied.body;
    assert_eq!(plan["resourceType"], "CarePlan");
    assert_eq!(plan["status"], "draft");
    assert_eq!(plan["subject"]["identifier"]["value"], PERSON);
    assert!(plan.get("id").is_none(), "not stored: {plan}");
    let by_post = send(
        &app,
        Method::POST,
        "/fhir/PlanDefinition/ra-psvf/$apply",
        &[],
        Some(&json!({ "resourceType": "Parameters", "parameter": [
            { "name": "subject", "valueString": format!("Patient/{PERSON}") },
        ] })),
    )
    .await;
    assert_eq!(by_post.body, plan);
    for (query, field) in [
        ("", "subject"),
        ("?subject=Patient/19400312-0000", "subject"),
        (
            &format!("?subject=Patient/{PERSON}&practitioner=Practitioner/1") as &str,
            "practitioner",
        ),
    ] {
        let reply = fhir_get(&app, &format!("/fhir/PlanDefinition/ra-psvf/$apply{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["issue"][0]["expression"][0], field,
            "{}",
            reply.body
        );
    }

    // The client creates it: a draft contract with the template's commitments, which
    // names the template it came from when read back.
    let created = send(&app, Method::POST, "/fhir/CarePlan", &[], Some(&plan)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let record = fhir_get(&app, &format!("/api/contracts/{id}")).await.body;
    let template = fhir_get(&app, "/api/templates/ra-psvf").await.body;
    assert_eq!(record["contract"]["status"], "draft");
    assert_eq!(
        record["contract"]["agreement"]["commitments"],
        template["commitments"]
    );
    assert_eq!(
        record["contract"]["agreement"]["knowledge"],
        template["knowledge"]
    );
    let read = fhir_get(&app, &format!("/fhir/CarePlan/{id}")).await.body;
    assert_eq!(read["instantiatesCanonical"], plan["instantiatesCanonical"]);
}

on_both_backends!(
    a_unit_starts_a_contract_from_a_template,
    fhir_clients_apply_a_plan_definition_and_create_the_care_plan,
);
