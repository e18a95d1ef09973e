//! `/portal`: the person's own view of their coordinated plan, in Swedish — *"Sammanhållen
//! planering på 1177 – digital vy för Patientkontrakt"* (seed 004) — served by the
//! gateway as one plain page, a script and a style sheet, with no build step.
//!
//! The page holds nobody's data: it is the same for every caller and open like
//! `/health`. In the browser it asks for the person's token (with `serve --demo`, the
//! printed `PATIENT_WRITE_TOKEN`), keeps it in the tab's `sessionStorage` (never in the
//! address, which holds no personal data either), and calls the gateway's own FHIR API
//! with it: `$coordinated-plan` by POST (the personnummer in the body, not the URL), then
//! the person's actions — `AppointmentResponse`, a commitment of their own added to the
//! CarePlan by JSON Patch, `CommunicationRequest`, `$confirm` — each through the same
//! write rules as an EHR's. The contract itself is shown as the CarePlan's narrative,
//! written by the gateway (the first page on top: unit, phone and phone hours, next step,
//! next agreed time, the fixed contacts).
//!
//! The codes and extension URLs the actions need come from the gateway's profile, in the
//! page's `data-` attributes. With the identity provider's endpoints and the portal's
//! client id configured (`auth.authorize_url`, `auth.token_url`,
//! `auth.portal_client_id`), the page offers the person a SMART standalone patient
//! launch: authorization code with PKCE (S256), `launch/patient`, back to `/portal`,
//! the token fetched from the token endpoint (the one address outside the gateway the
//! page may call). The answers forbid everything the page does not need
//! (Content-Security-Policy: scripts, styles and requests to this origin only, no frames,
//! no referrer).

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::route::{Needs, Routes};
use super::smart::PortalLogin;
use crate::fhir::narrative::escape;
use crate::fhir::{Code, Profile};

const PAGE: &str = include_str!("portal/portal.html");
const SCRIPT: &str = include_str!("portal/portal.js");
const STYLE: &str = include_str!("portal/portal.css");

/// Open to every caller: the page, its script and its style sheet hold no one's data.
pub(super) fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/portal", Needs::Open, page)
        .route(Method::GET, "/portal/portal.js", Needs::Open, script)
        .route(Method::GET, "/portal/portal.css", Needs::Open, style)
}

async fn page(State(state): State<AppState>) -> Response {
    let login = state.discovery.portal();
    // The page may call the identity provider's token endpoint, and nothing else outside.
    let token_origin = login.and_then(|l| origin(&l.token_url));
    asset(
        "text/html; charset=utf-8",
        render(&state.profile, login),
        token_origin,
    )
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT.to_owned(), None)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE.to_owned(), None)
}

/// `scheme://host[:port]` of an http(s) URL, when it is one a policy can name.
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    let named = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    named.then(|| &url[..url.len() - rest.len() + host.len()])
}

fn asset(content_type: &'static str, body: String, also_connect: Option<&str>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'{}; \
         img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        also_connect.map(|o| format!(" {o}")).unwrap_or_default()
    );
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page, with the profile's codes for the person's actions and, when configured,
/// how the person logs in (SMART standalone launch).
fn render(profile: &Profile, login: Option<&PortalLogin>) -> String {
    let code = |c: &Code| escape(&format!("{}|{}|{}", c.system, c.code, c.display));
    let a = &profile.activities;
    let e = &profile.extensions;
    let data = [
        ("staying-well", code(&a.staying_well)),
        ("getting-worse", code(&a.getting_worse)),
        ("warning-sign", code(&a.warning_sign)),
        ("where-to-turn", escape(&e.where_to_turn)),
        ("contact-reason", escape(&e.contact_reason)),
        ("initiated-by", escape(&e.initiated_by)),
        ("personnummer", escape(&profile.identifiers.personnummer)),
        (
            "samordningsnummer",
            escape(&profile.identifiers.samordningsnummer),
        ),
        ("category", code(&profile.category)),
    ]
    .into_iter()
    .chain(login.into_iter().flat_map(|l| {
        [
            ("authorize", escape(&l.authorize_url)),
            ("token-url", escape(&l.token_url)),
            ("client-id", escape(&l.client_id)),
        ]
    }))
    .map(|(k, v)| format!(" data-{k}=\"{v}\""))
    .collect::<String>();
    PAGE.replace(" data-profile=\"\"", &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_profiles_codes_escaped() {
        let page = render(&Profile::default_profile(), None);
        assert!(!page.contains("data-profile"), "every code is put in");
        let profile = Profile::default_profile();
        assert!(page.contains(&format!(
            "data-contact-reason=\"{}\"",
            profile.extensions.contact_reason
        )));
        assert!(page.contains(&format!(
            "data-staying-well=\"{}|{}|",
            profile.activities.staying_well.system, profile.activities.staying_well.code
        )));
        assert!(
            !page.contains("data-authorize"),
            "no login without an identity provider"
        );
    }

    #[test]
    fn the_policy_names_only_an_origin() {
        assert_eq!(
            origin("https://idp.region.example:8443/oauth/token"),
            Some("https://idp.region.example:8443")
        );
        assert_eq!(
            origin("http://127.0.0.1:9000"),
            Some("http://127.0.0.1:9000")
        );
        for bad in [
            "ftp://x/y",
            "https://",
            "https://a b/",
            "https://x;script-src *",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }
}
