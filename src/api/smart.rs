//! SMART App Launch discovery (<https://hl7.org/fhir/smart-app-launch/conformance.html>):
//! `/.well-known/smart-configuration`, at the root and under `/fhir`, and the
//! `oauth-uris` extension of the CapabilityStatement's security, both from `[auth]`.
//!
//! The gateway is a resource server: it checks tokens, it does not issue them. So the
//! document says what the gateway itself honours (the scope forms and `permission-*`
//! capabilities of [`crate::auth::scopes`]) and, only where the operator configured
//! them, the identity provider's endpoints, grant types and launch capabilities. With
//! `auth.mode = "off"` there is no authorization to discover: 404.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::fhir::FhirError;
use super::route::{Needs, Routes};
use crate::auth::AuthSettings;

/// The scopes the gateway grants anything for, in SMART v2 and v1 form.
const SCOPES: &[&str] = &[
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
    "patient/*.read",
    "user/*.read",
    "user/*.write",
    "system/*.read",
    "system/*.write",
];

/// What the gateway enforces whatever the identity provider does.
const PERMISSIONS: &[&str] = &[
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
];

/// Open: discovery tells where to get a token, nothing about anyone's data.
pub(super) fn routes() -> Routes {
    Routes::new().route(
        Method::GET,
        "/.well-known/smart-configuration",
        Needs::Open,
        smart_configuration,
    )
}

/// What `[auth]` says about authorization, for discovery and the CapabilityStatement.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// The SMART configuration document; `None` when auth is off.
    document: Option<Value>,
    /// The `oauth-uris` extension, when the identity provider's endpoints are known.
    oauth_uris: Option<Value>,
    /// How the person's portal logs in, when it can.
    portal: Option<PortalLogin>,
}

/// The person's portal's SMART standalone launch: where it sends the person to log in,
/// where it then gets the token, and who it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalLogin {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
}

impl Discovery {
    /// Nothing to discover: auth is off.
    pub fn off() -> Self {
        Self::default()
    }

    /// From the settings of a gateway that checks tokens.
    pub fn from_settings(settings: &AuthSettings) -> Self {
        let mut document = serde_json::Map::new();
        let mut put = |key: &str, value: &str| {
            if !value.is_empty() {
                document.insert(key.into(), json!(value));
            }
        };
        put("issuer", &settings.issuer);
        put("jwks_uri", &settings.jwks_url);
        put("authorization_endpoint", &settings.authorize_url);
        put("token_endpoint", &settings.token_url);
        let mut capabilities: Vec<&str> = settings
            .smart_capabilities
            .iter()
            .map(String::as_str)
            .collect();
        capabilities.extend(PERMISSIONS);
        document.insert("capabilities".into(), json!(capabilities));
        document.insert("grant_types_supported".into(), json!(settings.grant_types));
        document.insert("scopes_supported".into(), json!(SCOPES));
        if !settings.authorize_url.is_empty() {
            document.insert("response_types_supported".into(), json!(["code"]));
            document.insert("code_challenge_methods_supported".into(), json!(["S256"]));
        }
        let mut uris = Vec::new();
        for (name, url) in [
            ("authorize", &settings.authorize_url),
            ("token", &settings.token_url),
        ] {
            if !url.is_empty() {
                uris.push(json!({ "url": name, "valueUri": url }));
            }
        }
        let portal = [
            &settings.authorize_url,
            &settings.token_url,
            &settings.portal_client_id,
        ]
        .iter()
        .all(|s| !s.is_empty())
        .then(|| PortalLogin {
            authorize_url: settings.authorize_url.clone(),
            token_url: settings.token_url.clone(),
            client_id: settings.portal_client_id.clone(),
        });
        Self {
            portal,
            document: Some(Value::Object(document)),
            oauth_uris: (!uris.is_empty()).then(|| {
                json!({
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": uris,
                })
            }),
        }
    }

    /// The `oauth-uris` extension for `rest.security`, if the endpoints are known.
    pub fn oauth_uris(&self) -> Option<&Value> {
        self.oauth_uris.as_ref()
    }

    /// How the person's portal logs in, when the identity provider and its client id are
    /// configured.
    pub fn portal(&self) -> Option<&PortalLogin> {
        self.portal.as_ref()
    }
}

async fn smart_configuration(State(state): State<AppState>) -> Result<Response, FhirError> {
    let Some(document) = &state.discovery.document else {
        return Err(FhirError::NotFound(
            "authorization is off (auth.mode = \"off\"): there is no SMART configuration".into(),
        ));
    };
    Ok((StatusCode::OK, axum::Json(document)).into_response())
}
