//! CORS for browser apps (a patient portal on its own origin): only the origins in
//! `server.cors_origins` may call from a browser; by default none may.
//!
//! A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
//! answered here, before the guard, without a token (browsers send none with it): 204
//! with the methods and request headers the API takes. From any other origin it is
//! refused (403, no CORS headers, so the browser stops). An actual request from an
//! allowed origin gets `Access-Control-Allow-Origin` naming that origin and the response
//! headers a FHIR client reads (`ETag`, `Location`, …); it still needs its token like
//! any other. No credentials (cookies) are ever allowed: the API takes bearer tokens.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::fhir::FhirError;

const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
const REQUEST_HEADERS: &str = "Authorization, Content-Type, Accept, If-Match, If-None-Match, \
     If-Modified-Since, If-None-Exist, Prefer, X-Request-Id";
const EXPOSED: &str =
    "ETag, Location, Content-Location, Last-Modified, Retry-After, X-Request-Id, Warning";
/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The origins browsers may call from, exactly as they send them
/// (`scheme://host[:port]`, no path).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// Checks each origin's form; the error names the one that is not an origin.
    pub fn new(origins: &[String]) -> Result<Cors, String> {
        for origin in origins {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid = rest.is_some_and(|host| {
                !host.is_empty()
                    && host.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            });
            if !valid {
                return Err(format!(
                    "server.cors_origins: {origin:?} is not an origin (scheme://host[:port], no path, no wildcard)"
                ));
            }
        }
        Ok(Cors {
            origins: origins.to_vec(),
        })
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// The middleware: answers preflights, marks allowed origins' answers.
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| state.cors.allows(o));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if !allowed {
            return FhirError::Forbidden(
                "this origin may not call the gateway from a browser (server.cors_origins)".into(),
            )
            .into_response();
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        allow(headers, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(REQUEST_HEADERS),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        return response;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if allowed {
        allow(headers, origin);
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    } else if !state.cors.origins.is_empty() {
        // The answer differs by origin: caches must not give one origin's to another.
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// `origin` may read the answer, which differs by origin.
fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(VARY, HeaderValue::from_static("Origin"));
}
