//! Security over real sockets: every endpoint × every kind of token — none, expired,
//! badly signed, for another audience, each scope kind, patient A, patient B, an EHR
//! limited to one unit, RS256 and ES256 from a JWKS — answers the status it should, and
//! no answer holds a byte of another person's data. Every access leaves an audit row,
//! readable as AuditEvents; a client over its rate gets 429 with Retry-After.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestDb;
use common::app::{TestApp, spawn_state};
use common::fhir::send_text;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pkgw::api::{AppState, Cors, Limits, RateLimits};
use pkgw::auth::{AuthSettings, Mode, TokenClaims, Verifier};
use pkgw::config::Secret;
use pkgw::store::Change;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-for-the-security-tests-only";
const ISSUER: &str = "https://idp.region.example";
const AUDIENCE: &str = "pkgw";

fn settings() -> AuthSettings {
    AuthSettings {
        mode: Mode::Required,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway_secs: 30,
        hs256_secret: Secret::new(SECRET),
        jwks_file: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/jwks.json").into(),
        jwks_url: String::new(),
        authorize_url: format!("{ISSUER}/authorize"),
        token_url: format!("{ISSUER}/token"),
        grant_types: vec!["authorization_code".into(), "client_credentials".into()],
        smart_capabilities: vec!["launch-standalone".into(), "client-public".into()],
        portal_client_id: String::new(),
    }
}

/// The one origin the world's gateway lets browsers call from.
const PORTAL: &str = "https://portal.region.example";

/// The two persons and what is stored about them.
struct World {
    app: TestApp,
    /// Patient A: contract id, personnummer, name, unit.
    a: Person,
    b: Person,
}

struct Person {
    contract: String,
    pnr: String,
    name: String,
    unit: String,
}

impl Person {
    /// What of this person must never reach another person's token; the contract's
    /// id only when the request did not name it itself.
    fn secrets(&self, request: &str) -> Vec<&str> {
        let mut secrets = vec![self.pnr.as_str(), self.name.as_str()];
        if !request.contains(&self.contract) {
            secrets.push(&self.contract);
        }
        secrets
    }
}

async fn world(db: &TestDb, rate: Option<RateLimits>) -> World {
    world_with(db, Limits::default(), |state| state.with_rate_limits(rate)).await
}

/// [`world`] with these limits and the state as `configure` leaves it.
async fn world_with(
    db: &TestDb,
    limits: Limits,
    configure: impl FnOnce(AppState) -> AppState,
) -> World {
    let store = db.store().await;
    let verifier = Verifier::from_settings(&settings()).await.unwrap();
    let state = configure(AppState::new(store))
        .with_templates(pkgw::templates::Templates::examples().unwrap())
        .with_verifier(verifier)
        .with_discovery(&settings())
        .with_cors(Cors::new(&[PORTAL.into()]).unwrap())
        .with_subscriptions(pkgw::sync::outbound::SubscriptionSettings {
            allowed_endpoints: vec!["http://127.0.0.1:9/".into()],
            ..Default::default()
        });
    let app = spawn_state(state, limits).await;
    let mut people = Vec::new();
    for fixture in ["hjartsvikt-primarvard", "cancer-min-vardplan"] {
        let contract = common::fixture(fixture);
        let record = app
            .store
            .create(contract, Change::from_source("test"))
            .await
            .unwrap();
        let c = &record.revision.contract;
        people.push(Person {
            contract: record.id.to_string(),
            pnr: c.patient.id.to_string(),
            name: c.patient.name.clone().unwrap(),
            unit: c.responsible_unit.as_ref().unwrap().hsa_id.to_string(),
        });
    }
    let b = people.pop().unwrap();
    let a = people.pop().unwrap();
    // Each person's 7 frågor answers.
    for p in [&a, &b] {
        let answers = sju_fragor(&p.contract, "ja");
        let reply = call(
            &app,
            Method::POST,
            "/fhir/QuestionnaireResponse",
            Some(&token(&Kind::System)),
            Some(&answers),
        )
        .await;
        assert_eq!(reply.0, StatusCode::CREATED, "{}", reply.1);
    }
    World { app, a, b }
}

/// The kinds of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NoToken,
    Expired,
    WrongSignature,
    WrongAudience,
    System,
    UserCarePlanRead,
    PatientA,
    PatientB,
    PatientAWrites,
    PatientV1,
    UnitEhr,
    SystemRs256,
    SystemEs256,
}

const KINDS: [Kind; 13] = [
    Kind::NoToken,
    Kind::Expired,
    Kind::WrongSignature,
    Kind::WrongAudience,
    Kind::System,
    Kind::UserCarePlanRead,
    Kind::PatientA,
    Kind::PatientB,
    Kind::PatientAWrites,
    Kind::PatientV1,
    Kind::UnitEhr,
    Kind::SystemRs256,
    Kind::SystemEs256,
];

const A_PNR: &str = "194003129865";
const B_PNR: &str = "195208239813";
const A_UNIT: &str = "SE2321000016-1A2B";

fn claims(scope: &str, patient: Option<&str>, units: Option<Vec<&str>>) -> TokenClaims {
    let now = jiff::Timestamp::now().as_second();
    TokenClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "caller".into(),
        client_id: "test-client".into(),
        scope: scope.into(),
        iat: now,
        nbf: now,
        exp: now + 600,
        patient: patient.map(str::to_owned),
        units: units.map(|u| u.into_iter().map(str::to_owned).collect()),
    }
}

fn sign(claims: &TokenClaims, alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(claims: &TokenClaims) -> String {
    sign(
        claims,
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
    )
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn token(kind: &Kind) -> String {
    let all = "system/*.cruds";
    match kind {
        Kind::NoToken => String::new(),
        Kind::Expired => {
            let mut c = claims(all, None, None);
            c.exp -= 3600;
            c.nbf -= 7200;
            c.iat -= 7200;
            hs256(&c)
        }
        Kind::WrongSignature => sign(
            &claims(all, None, None),
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another secret"),
            None,
        ),
        Kind::WrongAudience => {
            let mut c = claims(all, None, None);
            c.aud = "another-service".into();
            hs256(&c)
        }
        Kind::System => hs256(&claims(all, None, None)),
        Kind::UserCarePlanRead => hs256(&claims("user/CarePlan.rs", None, None)),
        Kind::PatientA => hs256(&claims("patient/*.rs", Some(A_PNR), None)),
        Kind::PatientB => hs256(&claims("patient/*.rs", Some(B_PNR), None)),
        Kind::PatientAWrites => hs256(&claims("patient/*.cruds", Some(A_PNR), None)),
        Kind::PatientV1 => hs256(&claims(
            "launch/patient openid patient/*.read",
            Some(A_PNR),
            None,
        )),
        Kind::UnitEhr => hs256(&claims(all, None, Some(vec![A_UNIT]))),
        Kind::SystemRs256 => sign(
            &claims(all, None, None),
            Algorithm::RS256,
            &EncodingKey::from_rsa_der(&key_file("rsa-private.der")),
            Some("test-rsa"),
        ),
        Kind::SystemEs256 => sign(
            &claims(all, None, None),
            Algorithm::ES256,
            &EncodingKey::from_ec_der(&key_file("ec-private.der")),
            Some("test-ec"),
        ),
    }
}

/// One request with a bearer token (none when empty): status, text, headers.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    call_with(app, method, path, token, &[], body).await
}

/// [`call`] with more headers (`If-Match`, `Prefer`, …).
async fn call_with(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    more: &[(&str, &str)],
    body: Option<&Value>,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let auth = token
        .filter(|t| !t.is_empty())
        .map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> =
        auth.iter().map(|a| ("authorization", a.as_str())).collect();
    headers.extend_from_slice(more);
    let (status, headers, text) = send_text(app, method, path, &headers, body).await;
    (status, text, headers)
}

/// The audit rows about a person.
async fn rows_about(w: &World, pnr: &str) -> Vec<pkgw::store::AuditRow> {
    w.app
        .store
        .audit(&pkgw::store::AuditQuery {
            patient: Some(pnr.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// A person's "7 frågor" answers on `plan`, every question answered `code`.
fn sju_fragor(plan: &str, code: &str) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://pkgw.example/fhir/Questionnaire/sju-fragor-patient",
        "status": "completed",
        "basedOn": [{ "reference": format!("CarePlan/{plan}") }],
        "item": (1..=7).map(|i| json!({ "linkId": i.to_string(), "answer": [{ "valueCoding": { "system": "https://pkgw.example/fhir/CodeSystem/sju-fragor-svar", "code": code } }] })).collect::<Vec<_>>(),
    })
}

/// One endpoint: how to call it, and the status for each kind, in [`KINDS`]' order.
struct Endpoint {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    expected: [u16; 13],
}

/// The current CarePlan of a contract, as a body to PUT back, and its version.
async fn care_plan(app: &TestApp, id: &str) -> (Value, String) {
    let (status, text, headers) = call(
        app,
        Method::GET,
        &format!("/fhir/CarePlan/{id}"),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    (
        serde_json::from_str(&text).unwrap(),
        headers["etag"].to_str().unwrap().to_owned(),
    )
}

async fn endpoints(w: &World) -> Vec<(Endpoint, Option<String>)> {
    let (a, b) = (&w.a, &w.b);
    let (plan_a, etag_a) = care_plan(&w.app, &a.contract).await;
    let (plan_b, etag_b) = care_plan(&w.app, &b.contract).await;
    //                          none exp sig aud  sys  user pA   pB   pAw  pV1  unit rs   es
    let e = |what,
             method,
             path: String,
             body: Option<Value>,
             expected: [u16; 13],
             if_match: Option<&str>| {
        (
            Endpoint {
                what,
                method,
                path,
                body,
                expected,
            },
            if_match.map(str::to_owned),
        )
    };
    let string = |name: &str, value: &str| json!({ "name": name, "valueString": value });
    // B's contract handed over to A's unit: the unit-limited EHR receives it.
    let transfer_to_a_unit = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "unit", "part": [
            string("hsaId", A_UNIT), string("name", "Vårdcentralen Björkhagen"), string("phone", "08-123 456 00"),
            string("phoneHours", "mon-fri 08:00-10:00"),
        ] },
        { "name": "fastVardkontakt", "part": [string("name", "Anna Berg"), string("title", "Distriktssköterska"), string("phone", "08-123 456 10")] },
        { "name": "handover", "valueInstant": "2026-11-01T08:00:00Z" },
        { "name": "kind", "valueCode": "hospital-to-primary-care" },
    ] });
    let b_fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/contracts/cancer-min-vardplan.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let answers_b = sju_fragor(&b.contract, "nej");
    // B's agreed time (accepted by B), and an answer to it.
    let time_b = pkgw::fhir::appointment_id(
        &pkgw::domain::ContractId::parse(&b.contract).unwrap(),
        "behandling-3",
    );
    let ask_about_b = json!({
        "resourceType": "CommunicationRequest",
        "status": "active",
        "about": [{ "reference": format!("CarePlan/{}", b.contract) }],
        "reasonCode": [{ "coding": [{
            "system": pkgw::fhir::Profile::default_profile().extensions.contact_reason,
            "code": "kontakt",
        }] }],
        "payload": [{ "contentString": "Ring mig" }],
    });
    let answer_time_b = json!({
        "resourceType": "AppointmentResponse",
        "appointment": { "reference": format!("Appointment/{time_b}") },
        "participantStatus": "accepted",
    });
    let (_, answered, _) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/QuestionnaireResponse?patient={}", b.pnr),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    let answered: Value = serde_json::from_str(&answered).unwrap();
    let answer_b = answered["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_identifier = plan_b["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["value"] == b.contract.as_str())
        .map(|i| format!("{}|{}", i["system"].as_str().unwrap(), b.contract))
        .unwrap();
    // Another contract for B, a draft: B's plan without its id, identifier and goals.
    let mut new_plan_b = plan_b.clone();
    new_plan_b["status"] = "draft".into();
    for field in ["id", "identifier", "goal"] {
        new_plan_b.as_object_mut().unwrap().remove(field);
    }
    let subscribe_b = json!({
        "resourceType": "Subscription", "status": "requested", "reason": "portal",
        "criteria": format!("CarePlan?patient={}", b.pnr),
        "channel": { "type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "payload": "application/fhir+json" },
    });
    let batch = json!({ "resourceType": "Bundle", "type": "batch", "entry": [
        { "request": { "method": "GET", "url": format!("CarePlan/{}", b.contract) } },
    ] });
    vec![
        e(
            "metadata",
            Method::GET,
            "/fhir/metadata".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the operations' definitions",
            Method::GET,
            "/fhir/OperationDefinition".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "$transfer's definition",
            Method::GET,
            "/fhir/OperationDefinition/CarePlan-transfer".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the native API's OpenAPI document",
            Method::GET,
            "/api/openapi.json".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "SMART discovery",
            Method::GET,
            "/.well-known/smart-configuration".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "SMART discovery at the FHIR base",
            Method::GET,
            "/fhir/.well-known/smart-configuration".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "health",
            Method::GET,
            "/health".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the portal page",
            Method::GET,
            "/portal".into(),
            None,
            // The same for everyone, and no one's data: the page asks for the token.
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the portal's script",
            Method::GET,
            "/portal/portal.js".into(),
            None,
            // The same for everyone, and no one's data: the page asks for the token.
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the portal's style sheet",
            Method::GET,
            "/portal/portal.css".into(),
            None,
            // The same for everyone, and no one's data: the page asks for the token.
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "read A's CarePlan",
            Method::GET,
            format!("/fhir/CarePlan/{}", a.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 404, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "read B's CarePlan",
            Method::GET,
            format!("/fhir/CarePlan/{}", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's history",
            Method::GET,
            format!("/fhir/CarePlan/{}/_history", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's first version",
            Method::GET,
            format!("/fhir/CarePlan/{}/_history/1", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's CareTeam",
            Method::GET,
            format!("/fhir/CareTeam/{}", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 403, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "search CarePlan by B",
            Method::GET,
            format!("/fhir/CarePlan?patient={}", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "search CarePlan by A",
            Method::GET,
            format!("/fhir/CarePlan?patient={}", a.pnr),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "search CarePlan without a person",
            Method::GET,
            "/fhir/CarePlan?status=active".into(),
            None,
            [
                401, 401, 401, 401, 400, 400, 200, 200, 200, 200, 400, 400, 400,
            ],
            None,
        ),
        e(
            "search Appointments of B",
            Method::GET,
            format!("/fhir/Appointment?patient={}", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's Patient",
            Method::GET,
            format!("/fhir/Patient/{}", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 403, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's compartment ($everything)",
            Method::GET,
            format!("/fhir/Patient/{}/$everything", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 403, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "search B's Patient",
            Method::GET,
            format!("/fhir/Patient?identifier={}", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "search B's Patient by POST",
            Method::POST,
            "/fhir/Patient/_search".into(),
            Some(Value::String(format!("identifier={}", b.pnr))),
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's coordinated plan",
            Method::GET,
            format!("/fhir/CarePlan/$coordinated-plan?patient={}", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's coordinated plan by POST",
            Method::POST,
            "/fhir/CarePlan/$coordinated-plan".into(),
            Some(json!({ "resourceType": "Parameters", "parameter": [
                { "name": "patient", "valueIdentifier": { "system": "http://electronichealth.se/identifier/personnummer", "value": b.pnr } },
            ] })),
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "A's coordinated plan",
            Method::GET,
            format!("/fhir/CarePlan/$coordinated-plan?patient={}", a.pnr),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 404, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "CarePlan history of all",
            Method::GET,
            "/fhir/CarePlan/_history".into(),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "native read of B",
            Method::GET,
            format!("/api/contracts/{}", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "native search of B",
            Method::GET,
            format!("/api/contracts?patient={}", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B printed",
            Method::GET,
            format!("/contracts/{}/print", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's 7 frågor answers",
            Method::GET,
            format!("/fhir/QuestionnaireResponse?patient={}", b.pnr),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the templates",
            Method::GET,
            "/api/templates".into(),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "a template",
            Method::GET,
            "/api/templates/hjartsvikt".into(),
            None,
            [
                401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "a draft for B from a template",
            Method::POST,
            "/api/templates/hjartsvikt/draft".into(),
            Some(json!({ "patient": { "id": b.pnr } })),
            // Only who may create, and a patient's token only for its own patient.
            [
                401, 401, 401, 401, 200, 403, 403, 403, 403, 403, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the templates in FHIR",
            Method::GET,
            "/fhir/PlanDefinition".into(),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "a template in FHIR",
            Method::GET,
            "/fhir/PlanDefinition/hjartsvikt".into(),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "a template applied for B",
            Method::GET,
            format!(
                "/fhir/PlanDefinition/hjartsvikt/$apply?subject=Patient/{}",
                b.pnr
            ),
            None,
            [
                401, 401, 401, 401, 200, 403, 403, 200, 403, 403, 200, 200, 200,
            ],
            None,
        ),
        e(
            "a template applied for B, by POST",
            Method::POST,
            "/fhir/PlanDefinition/hjartsvikt/$apply".into(),
            Some(json!({ "resourceType": "Parameters", "parameter": [
                { "name": "subject", "valueString": format!("Patient/{}", b.pnr) },
            ] })),
            [
                401, 401, 401, 401, 200, 403, 403, 200, 403, 403, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the questionnaire",
            Method::GET,
            "/fhir/Questionnaire/sju-fragor-patient".into(),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "samsyn of B's unit",
            Method::GET,
            format!("/fhir/$samsyn?unit={}", b.unit),
            None,
            [
                401, 401, 401, 401, 200, 403, 403, 403, 403, 403, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the audit trail",
            Method::GET,
            "/fhir/AuditEvent".into(),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "bulk export",
            Method::GET,
            "/fhir/$export".into(),
            None,
            [
                401, 401, 401, 401, 202, 403, 403, 403, 403, 403, 202, 202, 202,
            ],
            None,
        ),
        e(
            "subscriptions",
            Method::GET,
            "/fhir/Subscription".into(),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "a batch reading B",
            Method::POST,
            "/fhir".into(),
            Some(batch),
            [
                401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "ready",
            Method::GET,
            "/ready".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "metrics",
            Method::GET,
            "/metrics".into(),
            None,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "native history of B",
            Method::GET,
            format!("/api/contracts/{}/history", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "native first version of B",
            Method::GET,
            format!("/api/contracts/{}/versions/1", b.contract),
            None,
            [
                401, 401, 401, 401, 200, 200, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "an export's status",
            Method::GET,
            "/fhir/$export-status/no-such-job".into(),
            None,
            [
                401, 401, 401, 401, 404, 403, 403, 403, 403, 403, 404, 404, 404,
            ],
            None,
        ),
        e(
            "cancel an export",
            Method::DELETE,
            "/fhir/$export-status/no-such-job".into(),
            None,
            [
                401, 401, 401, 401, 404, 403, 403, 403, 403, 403, 404, 404, 404,
            ],
            None,
        ),
        e(
            "an export's file",
            Method::GET,
            "/fhir/$export-file/no-such-job/CarePlan.ndjson".into(),
            None,
            [
                401, 401, 401, 401, 404, 403, 403, 403, 403, 403, 404, 404, 404,
            ],
            None,
        ),
        e(
            "the first audit row (A's contract created)",
            Method::GET,
            "/fhir/AuditEvent/1".into(),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 404, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "the questionnaires",
            Method::GET,
            "/fhir/Questionnaire".into(),
            None,
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's 7 frågor answer",
            Method::GET,
            format!("/fhir/QuestionnaireResponse/{answer_b}"),
            None,
            [
                401, 401, 401, 401, 200, 403, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "a subscription",
            Method::GET,
            "/fhir/Subscription/no-such-subscription".into(),
            None,
            [
                401, 401, 401, 401, 404, 403, 404, 404, 404, 404, 404, 404, 404,
            ],
            None,
        ),
        e(
            "a scheduled transfer of B",
            Method::GET,
            format!("/fhir/CarePlan/{}/$transfer/no-such-transfer", b.contract),
            None,
            [
                401, 401, 401, 401, 404, 404, 404, 404, 404, 404, 404, 404, 404,
            ],
            None,
        ),
        e(
            "update A's CarePlan",
            Method::PUT,
            format!("/fhir/CarePlan/{}", a.contract),
            Some(plan_a),
            [
                401, 401, 401, 401, 200, 403, 403, 403, 200, 403, 200, 200, 200,
            ],
            Some(&etag_a),
        ),
        e(
            "update B's CarePlan",
            Method::PUT,
            format!("/fhir/CarePlan/{}", b.contract),
            Some(plan_b.clone()),
            [
                401, 401, 401, 401, 200, 403, 403, 403, 404, 403, 403, 200, 200,
            ],
            Some(&etag_b),
        ),
        e(
            "delete B's CarePlan (stale If-Match)",
            Method::DELETE,
            format!("/fhir/CarePlan/{}", b.contract),
            None,
            [
                401, 401, 401, 401, 412, 403, 403, 403, 404, 403, 412, 412, 412,
            ],
            Some("W/\"99\""),
        ),
        e(
            "search B's Goals by POST",
            Method::POST,
            "/fhir/Goal/_search".into(),
            Some(Value::String(format!("patient={}", b.pnr))),
            [
                401, 401, 401, 401, 200, 403, 200, 200, 200, 200, 200, 200, 200,
            ],
            None,
        ),
        e(
            "answer 7 frågor for B",
            Method::POST,
            "/fhir/QuestionnaireResponse".into(),
            Some(answers_b),
            // Person A's writing token: B's plan is "not known", as a plan that is not.
            [
                401, 401, 401, 401, 201, 403, 403, 403, 422, 403, 201, 201, 201,
            ],
            None,
        ),
        e(
            "answer B's agreed time",
            Method::POST,
            "/fhir/AppointmentResponse".into(),
            Some(answer_time_b),
            // Only a person's own token answers; A's does not see B's time.
            [
                401, 401, 401, 401, 403, 403, 403, 403, 404, 403, 403, 403, 403,
            ],
            None,
        ),
        e(
            "confirm B's agreement",
            Method::POST,
            format!("/fhir/CarePlan/{}/$confirm", b.contract),
            None,
            // Only a person's own token confirms; A's does not see B's contract.
            [
                401, 401, 401, 401, 403, 403, 403, 403, 404, 403, 403, 403, 403,
            ],
            None,
        ),
        e(
            "B's answer to an agreed time",
            Method::GET,
            format!("/fhir/AppointmentResponse/{time_b}-svar"),
            None,
            [
                401, 401, 401, 401, 200, 403, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "B's answer to an agreed time, version 1",
            Method::GET,
            format!("/fhir/AppointmentResponse/{time_b}-svar/_history/1"),
            None,
            [
                401, 401, 401, 401, 200, 403, 404, 200, 404, 404, 200, 200, 200,
            ],
            None,
        ),
        e(
            "subscribe to B",
            Method::POST,
            "/fhir/Subscription".into(),
            Some(subscribe_b),
            [
                401, 401, 401, 401, 201, 403, 403, 403, 403, 403, 201, 201, 201,
            ],
            None,
        ),
        e(
            "native create for B",
            Method::POST,
            "/api/contracts".into(),
            Some(b_fixture.clone()),
            [
                401, 401, 401, 401, 201, 403, 403, 403, 403, 403, 403, 201, 201,
            ],
            None,
        ),
        e(
            "native update of B",
            Method::PUT,
            format!("/api/contracts/{}", b.contract),
            Some(b_fixture.clone()),
            [
                401, 401, 401, 401, 200, 403, 403, 403, 404, 403, 403, 200, 200,
            ],
            Some("W/\"1\""),
        ),
        e(
            "conditional update of B's CarePlan",
            Method::PUT,
            format!("/fhir/CarePlan?identifier={b_identifier}"),
            Some(plan_b.clone()),
            // A patient's token writes by no condition (what it finds may be anyone's).
            [
                401, 401, 401, 401, 200, 403, 403, 403, 403, 403, 403, 200, 200,
            ],
            Some(&etag_b),
        ),
        e(
            "patch B's CarePlan (as it is: no new version)",
            Method::PATCH,
            format!("/fhir/CarePlan/{}", b.contract),
            Some(
                json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": [
                { "name": "type", "valueCode": "replace" },
                { "name": "path", "valueString": "CarePlan.status" },
                { "name": "value", "valueCode": plan_b["status"] },
            ] }] }),
            ),
            [
                401, 401, 401, 401, 200, 403, 403, 403, 404, 403, 403, 200, 200,
            ],
            None,
        ),
        e(
            "check a new CarePlan for B",
            Method::POST,
            "/fhir/CarePlan/$validate".into(),
            Some(new_plan_b.clone()),
            [
                401, 401, 401, 401, 200, 403, 403, 403, 403, 403, 403, 200, 200,
            ],
            None,
        ),
        e(
            "check an update of B's CarePlan",
            Method::POST,
            format!("/fhir/CarePlan/{}/$validate", b.contract),
            Some(plan_b.clone()),
            [
                401, 401, 401, 401, 200, 403, 403, 403, 404, 403, 403, 200, 200,
            ],
            None,
        ),
        e(
            "create a CarePlan for B",
            Method::POST,
            "/fhir/CarePlan".into(),
            Some(new_plan_b),
            [
                401, 401, 401, 401, 201, 403, 403, 403, 403, 403, 403, 201, 201,
            ],
            None,
        ),
        e(
            "cancel a scheduled transfer of B",
            Method::DELETE,
            format!("/fhir/CarePlan/{}/$transfer/no-such-transfer", b.contract),
            None,
            [
                401, 401, 401, 401, 404, 403, 403, 403, 404, 403, 404, 404, 404,
            ],
            None,
        ),
        e(
            "unsubscribe",
            Method::DELETE,
            "/fhir/Subscription/no-such-subscription".into(),
            None,
            [
                401, 401, 401, 401, 404, 403, 403, 403, 404, 403, 404, 404, 404,
            ],
            None,
        ),
        e(
            "transfer B to A's unit",
            Method::POST,
            format!("/fhir/CarePlan/{}/$transfer", b.contract),
            Some(transfer_to_a_unit),
            // The sending unit hands over; a receiving unit cannot take (A's unit's EHR).
            [
                401, 401, 401, 401, 200, 403, 403, 403, 404, 403, 403, 200, 200,
            ],
            None,
        ),
        e(
            "merge a person without contracts onto B's number",
            Method::POST,
            "/fhir/Patient/$merge".into(),
            Some(json!({ "resourceType": "Parameters", "parameter": [
                { "name": "source-patient", "valueReference": { "reference": "Patient/199001012385" } },
                { "name": "target-patient", "valueReference": { "reference": format!("Patient/{}", b.pnr) } },
            ] })),
            // Only a client for every unit and person; a unit's EHR is not one.
            [
                401, 401, 401, 401, 404, 403, 403, 403, 403, 403, 403, 404, 404,
            ],
            None,
        ),
        e(
            "ask to be contacted about B's contract",
            Method::POST,
            "/fhir/CommunicationRequest".into(),
            Some(ask_about_b),
            // Care may record a request the person made by phone (a unit's EHR for its
            // own contracts); A does not see B's. Late: it changes B's version.
            [
                401, 401, 401, 401, 201, 403, 403, 403, 404, 403, 403, 201, 201,
            ],
            None,
        ),
        e(
            "conditional delete of B's contract",
            Method::DELETE,
            format!("/fhir/CarePlan?identifier={b_identifier}"),
            None,
            [
                401, 401, 401, 401, 204, 403, 403, 403, 404, 403, 403, 204, 204,
            ],
            None,
        ),
    ]
}

/// Whose data each kind may be given: `None` for anyone's.
fn may_see(kind: Kind) -> Option<char> {
    match kind {
        Kind::PatientA | Kind::PatientAWrites | Kind::PatientV1 => Some('A'),
        Kind::PatientB => Some('B'),
        Kind::NoToken | Kind::Expired | Kind::WrongSignature | Kind::WrongAudience => Some('-'),
        _ => None,
    }
}

/// The answer without the links that echo the request's own query.
fn without_links(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("link");
            }
            v.to_string()
        }
        Err(_) => text.to_owned(),
    }
}

async fn every_endpoint_answers_every_kind_of_token_as_it_should(db: &TestDb) {
    let mut failures = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        // A world of its own for each kind, so one kind's writes do not change another's.
        let fresh = db.another().await;
        let w = world(&fresh, None).await;
        let t = token(kind);
        for (endpoint, if_match) in endpoints(&w).await {
            let mut request = w
                .app
                .client
                .request(endpoint.method.clone(), w.app.url(&endpoint.path));
            if !t.is_empty() {
                request = request.bearer_auth(&t);
            }
            if let Some(tag) = &if_match {
                request = request.header("if-match", tag);
            }
            match &endpoint.body {
                Some(Value::String(form)) => {
                    request = request
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(form.clone());
                }
                Some(body) => {
                    request = request
                        .header("content-type", "application/fhir+json")
                        .body(body.to_string());
                }
                None => {}
            }
            if endpoint.what == "bulk export" {
                request = request.header("prefer", "respond-async");
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response.headers().get("www-authenticate").is_some();
            let text = without_links(&response.text().await.unwrap());
            let expected = endpoint.expected[k];
            if status != expected {
                failures.push(format!(
                    "{kind:?} {}: {status}, expected {expected}: {}",
                    endpoint.what,
                    text.chars().take(300).collect::<String>()
                ));
            }
            if status == 401 && !challenge {
                failures.push(format!(
                    "{kind:?} {}: 401 without WWW-Authenticate",
                    endpoint.what
                ));
            }
            let request = format!(
                "{} {}",
                endpoint.path,
                endpoint
                    .body
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            );
            let forbidden: Vec<&str> = match may_see(*kind) {
                None => Vec::new(),
                Some('A') => w.b.secrets(&request),
                Some('B') => w.a.secrets(&request),
                Some(_) => {
                    w.a.secrets(&request)
                        .into_iter()
                        .chain(w.b.secrets(&request))
                        .collect()
                }
            };
            for secret in forbidden {
                if text.contains(secret) {
                    failures.push(format!(
                        "{kind:?} {}: the answer holds another person's data ({secret})",
                        endpoint.what
                    ));
                }
            }
            if *kind == Kind::PatientA && endpoint.what == "a batch reading B" {
                let bundle: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    bundle["entry"][0]["response"]["status"], "404 Not Found",
                    "{bundle}"
                );
            }
        }
        fresh.cleanup().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The matrix above tries every route the gateway has, as the router declares them: a
/// route added without a line in the matrix fails here.
async fn the_matrix_tries_every_route(db: &TestDb) {
    let w = world(db, None).await;
    let tried: Vec<&pkgw::api::Declared> = endpoints(&w)
        .await
        .iter()
        .filter_map(|(e, _)| {
            let path = e.path.split('?').next().unwrap_or_default();
            pkgw::api::route_of(&e.method, path)
        })
        .collect();
    let missing: Vec<String> = pkgw::api::declared()
        .iter()
        .filter(|d| !tried.contains(d))
        .map(|d| format!("{} {}", d.method, d.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes the security matrix does not try: {missing:#?}"
    );
}

async fn every_access_leaves_an_audit_row(db: &TestDb) {
    let w = world(db, None).await;
    let auditor = hs256(&claims("system/AuditEvent.rs", None, None));
    // A system reads B; patient A tries to read B and is told it does not exist.
    let read = call(
        &w.app,
        Method::GET,
        &format!("/fhir/CarePlan/{}", w.b.contract),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert_eq!(read.0, StatusCode::OK);
    let tried = call(
        &w.app,
        Method::GET,
        &format!("/fhir/CarePlan/{}", w.b.contract),
        Some(&token(&Kind::PatientA)),
        None,
    )
    .await;
    assert_eq!(tried.0, StatusCode::NOT_FOUND);
    let (mut plan, etag) = care_plan(&w.app, &w.a.contract).await;
    // A change: a write that changes nothing makes no version.
    plan["note"] = serde_json::json!([{ "text": "Ringer på fredag" }]);
    let mut request = w
        .app
        .client
        .put(w.app.url(&format!("/fhir/CarePlan/{}", w.a.contract)));
    request = request
        .bearer_auth(token(&Kind::UnitEhr))
        .header("if-match", etag)
        .header("content-type", "application/fhir+json")
        .body(plan.to_string());
    assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
    // An answer without a body still names the person in the request's row.
    let (plan, etag) = care_plan(&w.app, &w.a.contract).await;
    let minimal = w
        .app
        .client
        .put(w.app.url(&format!("/fhir/CarePlan/{}", w.a.contract)))
        .bearer_auth(token(&Kind::UnitEhr))
        .header("if-match", etag)
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(plan.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(minimal.status(), StatusCode::OK);
    assert_eq!(minimal.bytes().await.unwrap().len(), 0);

    let (status, text, _) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/AuditEvent?patient={}", w.b.pnr),
        Some(&auditor),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let bundle: Value = serde_json::from_str(&text).unwrap();
    let events: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let reads: Vec<&&Value> = events
        .iter()
        .filter(|e| e["subtype"][0]["code"] == "read" && e["outcome"] == "0")
        .collect();
    assert!(
        reads.iter().any(|e| e["entity"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["what"]["reference"] == format!("CarePlan/{}", w.b.contract))),
        "the system's read of B is in the trail: {text}"
    );
    let read = reads[0];
    assert_eq!(
        read["agent"][0]["who"]["identifier"]["value"],
        "test-client"
    );
    assert_eq!(read["agent"][0]["network"]["address"], "127.0.0.1");
    assert!(read["recorded"].is_string());

    // A search's row names each resource given and the person whose they are.
    let (status, text, _) = call(
        &w.app,
        Method::GET,
        &format!(
            "/fhir/CarePlan?patient={}&_revinclude=Provenance:target",
            w.b.pnr
        ),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let found: Value = serde_json::from_str(&text).unwrap();
    let given: Vec<String> = found["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    assert!(!given.is_empty(), "{text}");
    let rows = rows_about(&w, &w.b.pnr).await;
    let searched = rows
        .iter()
        .rfind(|r| r.action == "search-type")
        .unwrap_or_else(|| panic!("the search is in B's trail: {rows:?}"));
    assert_eq!(
        searched.resources.as_deref(),
        Some(given.join(" ").as_str())
    );
    // $everything (written around the read cache's bytes): its row names the Patient and
    // the CarePlan, under B.
    let (status, text, _) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/Patient/{}/$everything", w.b.pnr),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let rows = rows_about(&w, &w.b.pnr).await;
    let compartment = format!("Patient/{} CarePlan/{}", w.b.pnr, w.b.contract);
    assert!(
        rows.iter()
            .any(|r| r.resources.as_deref() == Some(compartment.as_str())),
        "$everything is in B's trail as {compartment}: {rows:?}"
    );

    // A write is in the trail once: the stored version's row, written in the write's
    // transaction, is the request's row too (its address and status), so an update
    // costs one commit.
    let rows = rows_about(&w, &w.a.pnr).await;
    assert!(
        rows.iter().any(|r| r.action == "update"
            && r.version == Some(2)
            && r.origin == "test-client"
            && r.status == Some(200)
            && r.remote.as_deref() == Some("127.0.0.1")),
        "{rows:?}"
    );
    // The second PUT changed nothing: no version, so its row is the guard's.
    let updates: Vec<_> = rows.iter().filter(|r| r.action == "update").collect();
    assert_eq!(
        updates.iter().map(|r| r.version).collect::<Vec<_>>(),
        [Some(2), None],
        "one row per update request, none twice: {rows:?}"
    );
    let requests: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.action == "update"
                && r.status == Some(200)
                && r.remote.as_deref() == Some("127.0.0.1")
        })
        .collect();
    assert_eq!(
        requests.len(),
        2,
        "both updates' requests, under A: {rows:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.resources.as_deref() == Some(&format!("CarePlan/{}", w.a.contract))),
        "{requests:?}"
    );
    // Patient A's failed attempt is recorded (no data was given, so under no person).
    let all = w
        .app
        .store
        .audit(&pkgw::store::AuditQuery::default())
        .await
        .unwrap();
    assert!(
        all.iter().any(|r| r.status == Some(404)
            && r.outcome == "failure"
            && r.client.as_deref() == Some("test-client")),
        "{all:?}"
    );

    // A patient's token sees the rows about its own person only.
    let own = call(
        &w.app,
        Method::GET,
        "/fhir/AuditEvent",
        Some(&hs256(&claims("patient/AuditEvent.rs", Some(A_PNR), None))),
        None,
    )
    .await;
    assert_eq!(own.0, StatusCode::OK);
    assert!(
        own.1.contains(&w.a.pnr) && !own.1.contains(&w.b.pnr),
        "{}",
        own.1
    );

    // The trail is valid R4, and read only.
    common::assert_valid_r4(&[&bundle]);
    let id = events[0]["id"].as_str().unwrap();
    for method in [Method::PUT, Method::DELETE] {
        let (status, _, _) = call(
            &w.app,
            method,
            &format!("/fhir/AuditEvent/{id}"),
            Some(&token(&Kind::System)),
            Some(&json!({ "resourceType": "AuditEvent" })),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
    let before = all.len();
    let after = w
        .app
        .store
        .audit(&pkgw::store::AuditQuery::default())
        .await
        .unwrap();
    assert!(
        after.len() >= before && after[..before] == all[..],
        "rows are never changed"
    );
}

async fn a_client_over_its_rate_is_told_when_to_come_back(db: &TestDb) {
    let w = world(db, RateLimits::new(1, 3)).await;
    let path = format!("/fhir/CarePlan/{}", w.a.contract);
    let mine = hs256(&TokenClaims {
        client_id: "busy-client".into(),
        ..claims("system/*.cruds", None, None)
    });
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let (status, _, headers) = call(&w.app, Method::GET, &path, Some(&mine), None).await;
        statuses.push(status.as_u16());
        if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 3,
        "the burst is allowed: {statuses:?}"
    );
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    // Another client is not held back by this one.
    let other = hs256(&TokenClaims {
        client_id: "another-client".into(),
        ..claims("system/*.cruds", None, None)
    });
    assert_eq!(
        call(&w.app, Method::GET, &path, Some(&other), None).await.0,
        StatusCode::OK
    );
    // Requests without a valid token are held to the rate by their address.
    let mut anonymous = Vec::new();
    for _ in 0..6 {
        anonymous.push(
            call(&w.app, Method::GET, &path, None, None)
                .await
                .0
                .as_u16(),
        );
    }
    assert!(
        anonymous.contains(&401) && anonymous.contains(&429),
        "{anonymous:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        call(&w.app, Method::GET, &path, Some(&mine), None).await.0,
        StatusCode::OK
    );
}

/// Keys from the issuer's JWKS URL: fetched at start, over HTTP (a small server here).
async fn keys_come_from_a_jwks_url(db: &TestDb) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let port = listener.local_addr().unwrap().port();
    let jwks = String::from_utf8(key_file("jwks.json")).unwrap();
    let moved = |to: String| move || async move { (StatusCode::FOUND, [("location", to)]) };
    let app = axum::Router::new()
        .route(
            "/jwks.json",
            axum::routing::get(move || async move { jwks }),
        )
        .route("/here", axum::routing::get(moved("/jwks.json".into())))
        .route(
            "/elsewhere",
            axum::routing::get(moved(format!("http://localhost:{port}/jwks.json"))),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    // Redirects are followed only to the same scheme, host and port.
    let from = |path: &str| AuthSettings {
        hs256_secret: Secret::new(""),
        jwks_file: String::new(),
        jwks_url: format!("http://127.0.0.1:{port}{path}"),
        ..settings()
    };
    assert!(Verifier::from_settings(&from("/here")).await.is_ok());
    let refused = Verifier::from_settings(&from("/elsewhere"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not followed"), "{refused}");
    let verifier = Verifier::from_settings(&AuthSettings {
        hs256_secret: Secret::new(""),
        jwks_file: String::new(),
        jwks_url: url,
        ..settings()
    })
    .await
    .unwrap();
    let state = AppState::new(db.store().await).with_verifier(verifier);
    let app = spawn_state(state, Limits::default()).await;
    for kind in [Kind::SystemEs256, Kind::SystemRs256] {
        let (status, text, _) = call(
            &app,
            Method::GET,
            "/fhir/CarePlan?patient=194003129865",
            Some(&token(&kind)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{kind:?}: {text}");
    }
    // The HS256 secret is not configured here: such tokens are refused.
    let (status, text, _) = call(
        &app,
        Method::GET,
        "/fhir/CarePlan?patient=194003129865",
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("HS256"), "{text}");
    // No keys at all: the gateway does not start.
    let none = Verifier::from_settings(&AuthSettings {
        hs256_secret: Secret::new(""),
        jwks_file: String::new(),
        ..settings()
    })
    .await;
    assert!(none.unwrap_err().to_string().contains("no keys"));
}

/// The report's first bug, tried with the tokens the gateway hands out: a transaction
/// that changes A's CarePlan and B's CareTeam. Person A's token (and an EHR limited to
/// A's unit) gets B's contract "not found" or "forbidden", and nothing of either
/// contract changes; a system token writes each entry to the contract its url names.
async fn a_transaction_reaches_only_the_contracts_its_caller_may_write(db: &TestDb) {
    let w = world(db, None).await;
    let (plan_a, etag_a) = care_plan(&w.app, &w.a.contract).await;
    let (_, text, _) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/CareTeam/{}", w.b.contract),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    let team_b: Value = serde_json::from_str(&text).unwrap();
    let mut plan = plan_a.clone();
    plan["note"] = json!([{ "text": "för A" }]);
    let mut team = team_b.clone();
    team["note"] = json!([{ "text": "för B" }]);
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "resource": plan, "request": { "method": "PUT", "url": format!("CarePlan/{}", w.a.contract), "ifMatch": etag_a } },
            { "resource": team, "request": { "method": "PUT", "url": format!("CareTeam/{}", w.b.contract) } },
        ],
    });
    for (kind, expected) in [
        (Kind::PatientAWrites, StatusCode::NOT_FOUND),
        (Kind::UnitEhr, StatusCode::FORBIDDEN),
    ] {
        let (status, text, _) = call(
            &w.app,
            Method::POST,
            "/fhir",
            Some(&token(&kind)),
            Some(&bundle),
        )
        .await;
        assert_eq!(status, expected, "{text}");
        for secret in w.b.secrets(&bundle.to_string()) {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(
            care_plan(&w.app, &w.a.contract).await.1,
            "W/\"1\"",
            "A unchanged"
        );
        assert_eq!(
            care_plan(&w.app, &w.b.contract).await.1,
            "W/\"1\"",
            "B unchanged"
        );
    }
    let (status, text, _) = call(
        &w.app,
        Method::POST,
        "/fhir",
        Some(&token(&Kind::System)),
        Some(&bundle),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, text, _) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/CareTeam/{}", w.a.contract),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    let team_a: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(team_a["note"], Value::Null, "{text}");
    assert!(!team_a["participant"].as_array().unwrap().is_empty());
    let (_, text, _) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/CareTeam/{}", w.b.contract),
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert!(text.contains("för B"), "{text}");
}

/// A token limited to a person (or to units) cannot tell "not yours" from "not there"
/// by writing: a PUT to another person's contract and to an id that does not exist
/// answer the same 404 (and create nothing), a stale `If-Match` on another person's
/// contract is 404 too, and choosing a new contract's id is refused before any lookup.
async fn limited_tokens_cannot_tell_not_yours_from_not_there(db: &TestDb) {
    let w = world(db, None).await;
    let (plan_b, _) = care_plan(&w.app, &w.b.contract).await;
    let writer = token(&Kind::PatientAWrites);
    let mut mine = plan_b.clone();
    mine["subject"] = care_plan(&w.app, &w.a.contract).await.0["subject"].clone();
    let new_id = "ett-id-som-inte-finns";
    let mut fresh = mine.clone();
    fresh["id"] = json!(new_id);
    fresh.as_object_mut().unwrap().remove("identifier");
    let answers = [
        call(
            &w.app,
            Method::PUT,
            &format!("/fhir/CarePlan/{}", w.b.contract),
            Some(&writer),
            Some(&mine),
        )
        .await,
        call(
            &w.app,
            Method::PUT,
            &format!("/fhir/CarePlan/{new_id}"),
            Some(&writer),
            Some(&fresh),
        )
        .await,
    ];
    for (status, text, _) in &answers {
        assert_eq!(*status, StatusCode::NOT_FOUND, "{text}");
    }
    let shape = |text: &str, id: &str| text.replace(id, "ID");
    assert_eq!(
        shape(&answers[0].1, &w.b.contract),
        shape(&answers[1].1, new_id)
    );
    assert_eq!(w.app.store.count().await.unwrap(), 2, "nothing was created");

    let stale = call_with(
        &w.app,
        Method::PUT,
        &format!("/fhir/CarePlan/{}", w.b.contract),
        Some(&writer),
        &[("if-match", "W/\"7\"")],
        Some(&mine),
    )
    .await;
    assert_eq!(stale.0, StatusCode::NOT_FOUND);
    let condition = format!(
        "identifier=https://pkgw.example/fhir/sid/patientkontrakt|{}",
        w.b.contract
    );
    let chosen = call_with(
        &w.app,
        Method::POST,
        "/fhir/CarePlan",
        Some(&writer),
        &[("if-none-exist", &condition)],
        Some(&fresh),
    )
    .await;
    assert_eq!(chosen.0, StatusCode::FORBIDDEN);
    assert_eq!(w.app.store.count().await.unwrap(), 2);

    // 7 frågor answers based on another person's plan read as based on none.
    let answers = |plan: &str| sju_fragor(plan, "ja");
    let based = [
        call(
            &w.app,
            Method::POST,
            "/fhir/QuestionnaireResponse",
            Some(&writer),
            Some(&answers(&w.b.contract)),
        )
        .await,
        call(
            &w.app,
            Method::POST,
            "/fhir/QuestionnaireResponse",
            Some(&writer),
            Some(&answers(new_id)),
        )
        .await,
    ];
    assert_eq!(based[0].0, based[1].0, "{} / {}", based[0].1, based[1].1);
    assert_eq!(
        shape(&based[0].1, &w.b.contract),
        shape(&based[1].1, new_id)
    );
}

/// With `auth.issuer` set, a token must name it: one without `iss` is refused. And the
/// route table is deny-by-default: a path no route declares open needs a valid token.
async fn a_token_must_name_the_issuer_and_unknown_paths_are_closed(db: &TestDb) {
    let w = world(db, None).await;
    let now = jiff::Timestamp::now().as_second();
    let mut without = serde_json::to_value(claims("system/*.cruds", None, None)).unwrap();
    without.as_object_mut().unwrap().remove("iss");
    let no_iss = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &without,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert!(without["exp"].as_i64().unwrap() > now);
    let path = format!("/fhir/CarePlan/{}", w.a.contract);
    let (status, text, _) = call(&w.app, Method::GET, &path, Some(&no_iss), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    let (status, _, _) = call(
        &w.app,
        Method::GET,
        &path,
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A route the table does not list as open (say one added tomorrow) needs a token.
    for path in ["/admin", "/openapi.json", "/contracts/x/other"] {
        assert_ne!(
            pkgw::api::need(&Method::GET, path),
            pkgw::api::Need::Open,
            "{path}"
        );
    }
    for open in ["/health", "/fhir/metadata"] {
        assert_eq!(
            call(&w.app, Method::GET, open, None, None).await.0,
            StatusCode::OK,
            "{open}"
        );
    }

    // Everyone's contracts leave only to a system: a practitioner's user/*.rs may not
    // run $export.
    let practitioner = hs256(&claims("user/*.rs", None, None));
    let (status, text, _) = call(
        &w.app,
        Method::GET,
        "/fhir/$export",
        Some(&practitioner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");

    // The printed page leaves an audit row with the person.
    let print = format!("/contracts/{}/print", w.a.contract);
    let (status, _, _) = call(
        &w.app,
        Method::GET,
        &print,
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let id = pkgw::domain::ContractId::parse(&w.a.contract).unwrap();
    let rows = rows_about(&w, &w.a.pnr).await;
    assert!(
        rows.iter().any(
            |r| r.resources.as_deref() == Some(&format!("CarePlan/{id}"))
                && r.status == Some(200)
                && r.origin == "request"
        ),
        "{rows:?}"
    );

    // The token's client is the source of its changes, exactly (any UTF-8), whatever
    // X-Source the request says.
    let mut named = claims("system/*.cruds", None, None);
    named.client_id = "Journalsystem Åre".into();
    let (mut plan, etag) = care_plan(&w.app, &w.a.contract).await;
    plan["note"] = json!([{ "text": "Ändrad av Åre" }]);
    let reply = call_with(
        &w.app,
        Method::PUT,
        &path,
        Some(&hs256(&named)),
        &[("if-match", &etag), ("x-source", "en-annan-journal")],
        Some(&plan),
    )
    .await;
    assert_eq!(reply.0, StatusCode::OK);
    let stored = w.app.store.get(&id).await.unwrap();
    assert_eq!(stored.revision.change.source, "Journalsystem Åre");
    // Served as R4 has it: meta.source is a uri, so the name is percent-encoded; the
    // origin tag's code keeps it as written.
    let written: Value = serde_json::from_str(&reply.1).unwrap();
    assert_eq!(written["meta"]["source"], "Journalsystem%20%C3%85re");
    assert_eq!(written["meta"]["tag"][0]["code"], "Journalsystem Åre");
    common::assert_valid_r4(&[&written]);
}

/// A person's audit trail names only that person's resources: a system's batch that
/// read A's and B's plans leaves a row about A, but A's token does not learn B's ids.
async fn a_persons_audit_trail_names_only_their_resources(db: &TestDb) {
    let w = world(db, None).await;
    let batch = json!({ "resourceType": "Bundle", "type": "batch", "entry": [
        { "request": { "method": "GET", "url": format!("CarePlan/{}", w.a.contract) } },
        { "request": { "method": "GET", "url": format!("CarePlan/{}", w.b.contract) } },
    ] });
    let (status, _, _) = call(
        &w.app,
        Method::POST,
        "/fhir",
        Some(&token(&Kind::System)),
        Some(&batch),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The system's own view of A's trail names both (it may see everyone).
    let path = format!("/fhir/AuditEvent?patient={}", w.a.pnr);
    let (_, all, _) = call(
        &w.app,
        Method::GET,
        &path,
        Some(&token(&Kind::System)),
        None,
    )
    .await;
    assert!(all.contains(&w.b.contract), "the row names both: {all}");
    let (status, text, _) = call(
        &w.app,
        Method::GET,
        &path,
        Some(&token(&Kind::PatientA)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(&w.a.contract), "{text}");
    assert!(!text.contains(&w.b.contract), "{text}");
}

/// Limits whose request timeout is far beyond what the slow-client tests wait for, so
/// only the limit each test is about can answer.
fn tolerant_limits() -> Limits {
    Limits {
        request_timeout: Duration::from_secs(120),
        ..Limits::default()
    }
}

/// A raw connection to the gateway that has sent `head` (and nothing more).
async fn raw(app: &TestApp, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Whether the gateway closes `stream` within `within` (whatever it sends first).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut ignored = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut ignored))
        .await
        .is_ok()
}

/// One whole response (head and a `Content-Length` body) from `stream`, or `None` when
/// it has not come within `within`.
async fn response_on(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut received = Vec::new();
        let mut buffer = vec![0; 4096];
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|n| n.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return Some(text);
                }
            }
            match stream.read(&mut buffer).await {
                Ok(n) if n > 0 => received.extend_from_slice(&buffer[..n]),
                _ => return None,
            }
        }
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

/// The head of a POST whose body says it is `length` bytes long, and its first byte.
fn slow_post(token: &str, length: usize) -> String {
    format!(
        "POST /fhir/CarePlan HTTP/1.1\r\nHost: pkgw\r\nAuthorization: Bearer {token}\r\nContent-Type: application/fhir+json\r\nContent-Length: {length}\r\n\r\n{{"
    )
}

/// One client holding many requests whose bodies never come takes only its own share
/// of the places: its other requests are turned away at once (429), and everyone else,
/// `/health` included, is answered as usual.
async fn one_client_holding_slow_bodies_does_not_stall_others(db: &TestDb) {
    let limits = Limits {
        max_concurrent: 32,
        body_timeout: Duration::from_secs(120),
        ..tolerant_limits()
    };
    let w = world_with(db, limits, |state| state.with_client_concurrency(8)).await;
    let hog = hs256(&TokenClaims {
        client_id: "hog".into(),
        ..claims("system/*.cruds", None, None)
    });
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(raw(&w.app, &slow_post(&hog, 100_000)).await);
    }
    // All but the client's 8 places are answered 429 at once; the 8 wait for bodies.
    let mut waiting: Vec<usize> = (0..held.len()).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while waiting.len() > 8 && std::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for i in waiting {
            match response_on(&mut held[i], Duration::from_millis(100)).await {
                Some(answer) => assert!(answer.starts_with("HTTP/1.1 429"), "{answer}"),
                None => still.push(i),
            }
        }
        waiting = still;
    }
    assert_eq!(waiting.len(), 8, "the client's own share is 8");
    let health = tokio::time::timeout(
        Duration::from_secs(1),
        w.app.client.get(w.app.url("/health")).send(),
    )
    .await;
    assert!(
        health.is_ok_and(|r| r.unwrap().status() == StatusCode::OK),
        "/health answers while the client holds its places"
    );
    let (status, _, _) = tokio::time::timeout(
        Duration::from_secs(5),
        call(
            &w.app,
            Method::GET,
            &format!("/fhir/CarePlan/{}", w.a.contract),
            Some(&token(&Kind::System)),
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK, "another client is served");
    drop(held);
}

/// A body that does not arrive within `server.body_timeout_secs` is answered 408 with
/// an OperationOutcome, and nothing is written.
async fn a_body_that_does_not_arrive_gets_408(db: &TestDb) {
    let limits = Limits {
        body_timeout: Duration::from_secs(1),
        ..tolerant_limits()
    };
    let w = world_with(db, limits, |state| state).await;
    let before = w.app.store.count().await.unwrap();
    let mut stream = raw(&w.app, &slow_post(&token(&Kind::System), 100_000)).await;
    let answer = response_on(&mut stream, Duration::from_secs(20))
        .await
        .expect("an answer long before the request timeout");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("OperationOutcome") && answer.contains("did not arrive within 1 s"),
        "{answer}"
    );
    assert_eq!(w.app.store.count().await.unwrap(), before);
}

/// Headers that do not finish arriving within `server.header_timeout_secs` lose their
/// connection.
async fn headers_that_do_not_arrive_lose_the_connection(db: &TestDb) {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        ..tolerant_limits()
    };
    let w = world_with(db, limits, |state| state).await;
    let mut stream = raw(
        &w.app,
        "GET /health HTTP/1.1\r\nHost: pkgw\r\nX-Slow: 1\r\n",
    )
    .await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(20)).await,
        "the connection is closed long before the request timeout"
    );
    // An idle kept-alive connection is closed after the same time.
    let mut idle = raw(&w.app, "GET /health HTTP/1.1\r\nHost: pkgw\r\n\r\n").await;
    let answer = response_on(&mut idle, Duration::from_secs(20)).await;
    assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)).await,
        "closed once idle for the header timeout"
    );
}

/// No answer is larger than `server.answer_limit_bytes`: a search whose `_revinclude`
/// would pass it is refused, naming the parameter; a batch stops giving reads once its
/// answer is full (each such entry says so) and still answers each write it did;
/// `_count` pages at 1000.
async fn answers_stay_under_the_size_limit(db: &TestDb) {
    const LIMIT: usize = 128 * 1024;
    let w = world_with(db, Limits::default(), |state| {
        state.with_answer_limit(LIMIT)
    })
    .await;
    let system = token(&Kind::System);
    // B's contract with many versions: a Provenance each.
    let mut record = w
        .app
        .store
        .get(&pkgw::domain::ContractId::parse(&w.b.contract).unwrap())
        .await
        .unwrap();
    for n in 0..150 {
        let mut next = record.revision.contract.clone();
        next.next_step = Some(pkgw::domain::NextStep {
            description: format!("Steg {n}: ring mottagningen"),
            due: None,
            on: None,
            who: None,
        });
        record = common::next_version(&w.app.store, &record, next).await;
    }
    let path = format!(
        "/fhir/CarePlan?patient={}&_revinclude=Provenance:target",
        w.b.pnr
    );
    let refused = |path: String| {
        let (app, system) = (&w.app, &system);
        async move {
            let (status, text, _) = call(app, Method::GET, &path, Some(system), None).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{}",
                &text[..text.len().min(300)]
            );
            text
        }
    };
    let text = refused(path).await;
    let outcome: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(outcome["issue"][0]["code"], "too-costly", "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "_revinclude");
    // Any other answer over the limit (here a history of 150 versions) is refused too.
    let path = format!("/fhir/CarePlan/{}/_history?_count=1000", w.b.contract);
    let text = refused(path).await;
    assert!(
        text.contains("too-costly") && text.contains("answer_limit_bytes"),
        "{text}"
    );
    // A batch of reads: the first ones answered, the rest not, the whole under the limit.
    let read_a =
        json!({ "request": { "method": "GET", "url": format!("CarePlan/{}", w.a.contract) } });
    let batch = json!({ "resourceType": "Bundle", "type": "batch", "entry": vec![read_a; 100] });
    let (status, text, _) = call(&w.app, Method::POST, "/fhir", Some(&system), Some(&batch)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.len() <= LIMIT, "{} bytes", text.len());
    let answered: Value = serde_json::from_str(&text).unwrap();
    let statuses: Vec<&str> = answered["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    let given = statuses.iter().take_while(|s| s.starts_with("200")).count();
    assert!(given >= 1, "{statuses:?}");
    assert!(
        statuses[given..].iter().all(|s| s.starts_with("400")),
        "{statuses:?}"
    );
    assert_eq!(
        answered["entry"][99]["response"]["outcome"]["issue"][0]["code"],
        "too-costly"
    );
    // A batch of writes: each done and answered, the resources left out once full.
    let (plan_a, _) = care_plan(&w.app, &w.a.contract).await;
    let write_a = json!({ "resource": plan_a, "request": { "method": "PUT", "url": format!("CarePlan/{}", w.a.contract) } });
    let batch = json!({ "resourceType": "Bundle", "type": "batch", "entry": vec![write_a; 60] });
    let (status, text, _) = call(&w.app, Method::POST, "/fhir", Some(&system), Some(&batch)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.len() <= LIMIT, "{} bytes", text.len());
    let answered: Value = serde_json::from_str(&text).unwrap();
    let entries = answered["entry"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["response"]["status"] == "200 OK"));
    assert!(entries[0].get("resource").is_some());
    let last = &entries[59];
    assert!(last.get("resource").is_none(), "{last}");
    assert_eq!(
        last["response"]["outcome"]["issue"][0]["severity"],
        "warning"
    );
    // `_count` beyond 1000 gets pages of 1000, and the self link says so.
    let path = format!("/fhir/Goal?patient={}&_count=5000", w.a.pnr);
    let (status, text, _) = call(&w.app, Method::GET, &path, Some(&system), None).await;
    assert_eq!(status, StatusCode::OK);
    let page: Value = serde_json::from_str(&text).unwrap();
    let this = page["link"][0]["url"].as_str().unwrap();
    assert!(this.ends_with("_count=1000"), "{this}");
}

/// SMART discovery says what `[auth]` says, to anyone, at the root and the FHIR base;
/// the CapabilityStatement names the same endpoints; with auth off there is none.
async fn smart_discovery_comes_from_the_auth_settings(db: &TestDb) {
    let w = world(db, None).await;
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ] {
        let (status, text, headers) = call(&w.app, Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let smart: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(smart["issuer"], ISSUER);
        assert_eq!(
            smart["authorization_endpoint"],
            format!("{ISSUER}/authorize")
        );
        assert_eq!(smart["token_endpoint"], format!("{ISSUER}/token"));
        assert_eq!(
            smart["grant_types_supported"],
            json!(["authorization_code", "client_credentials"])
        );
        assert_eq!(smart["code_challenge_methods_supported"], json!(["S256"]));
        let capabilities = smart["capabilities"].as_array().unwrap();
        for wanted in [
            "launch-standalone",
            "client-public",
            "permission-v2",
            "permission-patient",
        ] {
            assert!(capabilities.contains(&json!(wanted)), "{wanted}: {text}");
        }
        let scopes = smart["scopes_supported"].as_array().unwrap();
        assert!(scopes.contains(&json!("patient/*.rs")), "{text}");
        // The scopes listed are the ones the gateway grants something for.
        for scope in scopes {
            assert!(
                pkgw::auth::Grant::parse(scope.as_str().unwrap()).is_some(),
                "{scope} grants nothing"
            );
        }
    }
    let (_, text, _) = call(&w.app, Method::GET, "/fhir/metadata", None, None).await;
    let statement: Value = serde_json::from_str(&text).unwrap();
    let security = &statement["rest"][0]["security"];
    assert_eq!(
        security["service"][0]["coding"][0]["code"], "SMART-on-FHIR",
        "{security}"
    );
    let uris = &security["extension"][0];
    assert_eq!(
        uris["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
    assert_eq!(
        uris["extension"],
        json!([
            { "url": "authorize", "valueUri": format!("{ISSUER}/authorize") },
            { "url": "token", "valueUri": format!("{ISSUER}/token") },
        ])
    );

    // Auth off: nothing to discover, and the statement does not claim SMART.
    let open = spawn_state(AppState::new(db.store().await), Limits::default()).await;
    let (status, text, _) = call(
        &open,
        Method::GET,
        "/.well-known/smart-configuration",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(
        text.contains("OperationOutcome") && text.contains("auth.mode"),
        "{text}"
    );
    let (_, text, _) = call(&open, Method::GET, "/fhir/metadata", None, None).await;
    assert!(!text.contains("SMART-on-FHIR"), "{text}");
}

/// Browsers may call only from the configured origins: their preflight is answered
/// without a token, any other origin's is refused, and a real request still needs its
/// token.
async fn browsers_may_call_only_from_allowed_origins(db: &TestDb) {
    let w = world(db, None).await;
    let preflight = |origin: &'static str| {
        let app = &w.app;
        async move {
            app.client
                .request(Method::OPTIONS, app.url("/fhir/CarePlan"))
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header(
                    "access-control-request-headers",
                    "authorization, if-none-match",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let allowed = preflight(PORTAL).await;
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(&allowed, "access-control-allow-origin"), PORTAL);
    let allowed_headers = header(&allowed, "access-control-allow-headers").to_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("if-none-match"));
    assert!(header(&allowed, "access-control-allow-methods").contains("PUT"));
    assert!(header(&allowed, "access-control-allow-credentials").is_empty());

    let other = preflight("https://evil.example").await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert!(header(&other, "access-control-allow-origin").is_empty());

    // The real request from the portal: readable by the page, and still needs a token.
    let search = format!("/fhir/CarePlan?patient={}", w.a.pnr);
    let (status, _, headers) = call_with(
        &w.app,
        Method::GET,
        &search,
        Some(&token(&Kind::PatientA)),
        &[("origin", PORTAL)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], PORTAL);
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("ETag")
    );
    let (status, _, headers) = call_with(
        &w.app,
        Method::GET,
        &search,
        None,
        &[("origin", PORTAL)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["access-control-allow-origin"], PORTAL);
    let (status, _, headers) = call_with(
        &w.app,
        Method::GET,
        &search,
        Some(&token(&Kind::PatientA)),
        &[("origin", "https://evil.example")],
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a server-side caller is not a browser"
    );
    assert!(!headers.contains_key("access-control-allow-origin"));
    assert_eq!(headers["vary"], "Origin");

    // By default no origin is allowed.
    let closed = spawn_state(AppState::new(db.store().await), Limits::default()).await;
    let refused = closed
        .client
        .request(Method::OPTIONS, closed.url("/fhir/CarePlan"))
        .header("origin", PORTAL)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // And what is not an origin is refused when configured.
    for bad in ["*", "https://portal.example/app", "portal.example"] {
        let error = Cors::new(&[bad.into()]).unwrap_err();
        assert!(
            error.contains("server.cors_origins") && error.contains(bad),
            "{error}"
        );
    }
}

/// What a condition finds may be another person's contract: a patient's token writes by
/// no condition, not even by an EHR's identifier, so nothing of B's leaks to A.
async fn a_patients_token_writes_by_no_condition(db: &TestDb) {
    let w = world(db, None).await;
    const EHR: &str = "http://journal.example/sid/vardplan";
    // B's contract carries an EHR identifier.
    let (mut plan_b, etag) = care_plan(&w.app, &w.b.contract).await;
    plan_b["identifier"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "system": EHR, "value": "vp-b" }));
    let (status, text, _) = call_with(
        &w.app,
        Method::PUT,
        &format!("/fhir/CarePlan/{}", w.b.contract),
        Some(&token(&Kind::System)),
        &[("if-match", &etag)],
        Some(&plan_b),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (mut mine, _) = care_plan(&w.app, &w.a.contract).await;
    for field in ["id", "goal"] {
        mine.as_object_mut().unwrap().remove(field);
    }
    mine["status"] = "draft".into();
    mine["identifier"] = json!([{ "system": EHR, "value": "vp-b" }]);
    let condition = format!("identifier={EHR}|vp-b");
    let created = call_with(
        &w.app,
        Method::POST,
        "/fhir/CarePlan",
        Some(&token(&Kind::PatientAWrites)),
        &[("if-none-exist", &condition)],
        Some(&mine),
    )
    .await;
    let updated = call_with(
        &w.app,
        Method::PUT,
        &format!("/fhir/CarePlan?{condition}"),
        Some(&token(&Kind::PatientAWrites)),
        &[],
        Some(&mine),
    )
    .await;
    for (status, text, _) in [created, updated] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        assert!(
            !text.contains(w.b.contract.as_str()) && !text.contains(&w.b.pnr),
            "{text}"
        );
    }
}

/// A person's own token (a portal) writes the parts of their contract that are theirs —
/// what matters to them, as a Goal — and never care's: the contacts (CareTeam) and the
/// contract's status (CarePlan) are 403 naming the part, and nothing is stored for them.
async fn a_persons_token_writes_their_parts_and_never_cares(db: &TestDb) {
    let w = world(db, None).await;
    let person = token(&Kind::PatientAWrites);
    let id = &w.a.contract;
    let versions = || async {
        w.app
            .store
            .history(&pkgw::domain::ContractId::parse(id).unwrap())
            .await
            .unwrap()
            .versions
            .len()
    };
    let (status, text, headers) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/CareTeam/{id}"),
        Some(&person),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let mut team: Value = serde_json::from_str(&text).unwrap();
    team["participant"].as_array_mut().unwrap().truncate(1);
    let (status, text, _) = call_with(
        &w.app,
        Method::PUT,
        &format!("/fhir/CareTeam/{id}"),
        Some(&person),
        &[("if-match", &etag)],
        Some(&team),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(
        text.contains("the care contacts is care's to change"),
        "{text}"
    );

    let (mut plan, etag) = care_plan(&w.app, id).await;
    plan["status"] = json!("on-hold");
    let (status, text, _) = call_with(
        &w.app,
        Method::PUT,
        &format!("/fhir/CarePlan/{id}"),
        Some(&person),
        &[("if-match", &etag)],
        Some(&plan),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("the status is care's to change"), "{text}");
    assert_eq!(versions().await, 1, "nothing stored");

    let patch = json!([{ "op": "replace", "path": "/description/text", "value": "Att orka leka med barnbarnen" }]);
    let (status, text, _) = call_with(
        &w.app,
        Method::PATCH,
        &format!("/fhir/Goal/{id}-mal-1"),
        Some(&person),
        &[
            ("content-type", "application/json-patch+json"),
            ("if-match", &etag),
        ],
        Some(&patch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(versions().await, 2);
    let stored = w
        .app
        .store
        .get(&pkgw::domain::ContractId::parse(id).unwrap())
        .await
        .unwrap();
    assert!(
        stored
            .revision
            .contract
            .agreement
            .what_matters
            .contains(&"Att orka leka med barnbarnen".to_owned())
    );
    // The person is the change's author in its Provenance; the portal its source.
    let (status, text, _) = call(
        &w.app,
        Method::GET,
        &format!("/fhir/Provenance/{id}-v2"),
        Some(&person),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let provenance: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        provenance["agent"][0]["type"]["coding"][0]["code"],
        "author"
    );
    assert_eq!(
        provenance["agent"][0]["who"]["reference"],
        format!("Patient/{}", w.a.pnr)
    );
}

/// A person starts a contract of their own from the portal: a draft they initiated, for
/// the unit to complete. One that is not a draft, or that writes care's commitments, is
/// 403 naming why, and nothing is stored.
async fn a_person_starts_their_own_draft(db: &TestDb) {
    let w = world(db, None).await;
    let person = token(&Kind::PatientAWrites);
    let (plan, _) = care_plan(&w.app, &w.a.contract).await;
    let mut draft = plan.clone();
    for element in ["id", "meta", "identifier", "careTeam", "goal", "text"] {
        draft.as_object_mut().unwrap().remove(element);
    }
    draft["status"] = json!("draft");
    // Only who started it; the record of what was discussed is care's.
    let extensions = draft["extension"].as_array_mut().unwrap();
    extensions.retain(|e| e["valueCode"] == "staff");
    assert_eq!(extensions.len(), 1, "the initiated-by extension: {plan}");
    extensions[0]["valueCode"] = json!("patient");
    let post = |body: Value| {
        let (app, person) = (&w.app, &person);
        async move {
            call(
                app,
                Method::POST,
                "/fhir/CarePlan",
                Some(person),
                Some(&body),
            )
            .await
        }
    };
    let before = w.app.store.count().await.unwrap();
    let (status, text, _) = post(draft.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "care's activities: {text}");
    assert!(text.contains("care's commitments"), "{text}");
    let mut active = draft.clone();
    active.as_object_mut().unwrap().remove("activity");
    active["status"] = json!("active");
    let (status, text, _) = post(active).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("draft"), "{text}");
    assert_eq!(w.app.store.count().await.unwrap(), before, "nothing stored");

    draft.as_object_mut().unwrap().remove("activity");
    let (status, text, headers) = post(draft).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let location = headers["location"].to_str().unwrap();
    let (_, path) = location.split_once("/CarePlan/").unwrap();
    let id = path.split('/').next().unwrap().to_owned();
    let stored = w
        .app
        .store
        .get(&pkgw::domain::ContractId::parse(&id).unwrap())
        .await
        .unwrap();
    let contract = &stored.revision.contract;
    assert_eq!(contract.status, pkgw::domain::Status::Draft);
    assert_eq!(contract.initiated_by, pkgw::domain::Initiator::Patient);
    assert_eq!(contract.patient.id.to_string(), w.a.pnr);
    assert_eq!(
        stored.revision.change.author,
        Some(format!("Patient/{}", w.a.pnr))
    );
}

on_both_backends!(
    a_person_starts_their_own_draft,
    a_persons_token_writes_their_parts_and_never_cares,
    a_patients_token_writes_by_no_condition,
    smart_discovery_comes_from_the_auth_settings,
    browsers_may_call_only_from_allowed_origins,
    answers_stay_under_the_size_limit,
    one_client_holding_slow_bodies_does_not_stall_others,
    a_body_that_does_not_arrive_gets_408,
    headers_that_do_not_arrive_lose_the_connection,
    keys_come_from_a_jwks_url,
    every_endpoint_answers_every_kind_of_token_as_it_should,
    the_matrix_tries_every_route,
    every_access_leaves_an_audit_row,
    a_client_over_its_rate_is_told_when_to_come_back,
    a_transaction_reaches_only_the_contracts_its_caller_may_write,
    limited_tokens_cannot_tell_not_yours_from_not_there,
    a_token_must_name_the_issuer_and_unknown_paths_are_closed,
    a_persons_audit_trail_names_only_their_resources,
);
