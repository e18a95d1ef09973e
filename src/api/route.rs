//! Routes declare what they need where they are registered: [`Routes::route`] takes the
//! method, the path, what the caller needs ([`Needs`]) and the handler, and keeps the
//! declaration beside the router it builds. The guard reads what a request needs from
//! those declarations ([`need`]), so there is no second table of paths to forget, and a
//! route cannot be added without saying who may call it. A path no route matches needs
//! a valid token (deny by default), and is then answered 404.

use std::sync::OnceLock;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};

use super::AppState;
use super::guard::{Need, Whom};
use crate::auth::Letter;

/// What a route needs from its caller, as declared where it is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: health, readiness, metrics, the CapabilityStatement.
    Open,
    /// Any valid token; the handler checks each part (transaction and batch Bundles).
    Entries,
    /// A scope letter on a resource type.
    Scope {
        on: On,
        letter: Letter,
        /// The interaction, as the audit row names it (`read`, `search-type`, …).
        interaction: &'static str,
        whom: Whom,
    },
}

/// The resource type a scope is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// This type (`*` for every type).
    Type(&'static str),
    /// The type the path names in its `{kind}` segment.
    PathKind,
}

impl Needs {
    /// `letter` on `on`, for any token with it.
    pub const fn scope(on: On, letter: Letter, interaction: &'static str) -> Needs {
        Needs::Scope {
            on,
            letter,
            interaction,
            whom: Whom::Any,
        }
    }

    /// `letter` on the type `{kind}` names.
    pub const fn kind(letter: Letter, interaction: &'static str) -> Needs {
        Needs::scope(On::PathKind, letter, interaction)
    }

    /// `letter` on `resource`.
    pub const fn on(resource: &'static str, letter: Letter, interaction: &'static str) -> Needs {
        Needs::scope(On::Type(resource), letter, interaction)
    }

    /// The same, for only the tokens `whom` says.
    pub const fn only(self, whom: Whom) -> Needs {
        match self {
            Needs::Scope {
                on,
                letter,
                interaction,
                ..
            } => Needs::Scope {
                on,
                letter,
                interaction,
                whom,
            },
            other => other,
        }
    }
}

/// One route as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub method: Method,
    /// The path template, `{name}` for a segment (axum's syntax), from the root.
    pub path: String,
    pub needs: Needs,
}

/// A router and the declarations of its routes, built together.
#[derive(Debug)]
pub(super) struct Routes {
    router: Router<AppState>,
    declared: Vec<Declared>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            declared: Vec::new(),
        }
    }

    /// `handler` answers `method` on `path`; callers need `needs`.
    pub fn route<H, T>(mut self, method: Method, path: &str, needs: Needs, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match method {
            Method::POST => MethodFilter::POST,
            Method::PUT => MethodFilter::PUT,
            Method::DELETE => MethodFilter::DELETE,
            Method::PATCH => MethodFilter::PATCH,
            _ => MethodFilter::GET,
        };
        self.router = self.router.route(path, on(filter, handler));
        self.declared.push(Declared {
            method,
            path: path.to_owned(),
            needs,
        });
        self
    }

    /// These routes and `other`'s.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.declared.extend(other.declared);
        self
    }

    /// The routes of `inner` under `prefix`.
    pub fn nest(mut self, prefix: &str, inner: Routes) -> Routes {
        self.router = self.router.nest(prefix, inner.router);
        self.declared
            .extend(inner.declared.into_iter().map(|d| Declared {
                path: match d.path.as_str() {
                    "/" => prefix.to_owned(),
                    path => format!("{prefix}{path}"),
                },
                ..d
            }));
        self
    }

    /// Changes the router (its fallbacks, say) without adding routes.
    pub fn finish(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Routes {
        self.router = f(self.router);
        self
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }

    pub fn declared(&self) -> &[Declared] {
        &self.declared
    }
}

/// Every route of the application, as declared.
pub fn declared() -> &'static [Declared] {
    static DECLARED: OnceLock<Vec<Declared>> = OnceLock::new();
    DECLARED.get_or_init(|| super::routes().declared().to_vec())
}

/// The route that answers `method` on `path`, as the router picks it: the path template
/// that matches (a literal segment before a `{…}` one), then the method (`HEAD` as `GET`).
/// `None` when no template matches, or the template does not take the method.
pub fn route_of(method: &Method, path: &str) -> Option<&'static Declared> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let template = templates()
        .iter()
        .filter_map(|(parts, d)| rank(parts, &segments).map(|rank| (rank, d.path.as_str())))
        .max_by_key(|(rank, _)| *rank)?
        .1;
    declared()
        .iter()
        .find(|d| d.path == template && d.method == method)
}

/// Each declared route with its path template's segments, split once (every request
/// is matched against them all).
fn templates() -> &'static [(Vec<&'static str>, &'static Declared)] {
    static TEMPLATES: OnceLock<Vec<(Vec<&'static str>, &'static Declared)>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        declared()
            .iter()
            .map(|d| (d.path.trim_matches('/').split('/').collect(), d))
            .collect()
    })
}

/// How well a template (its segments, `parts`) matches the path's segments: `None` when
/// it does not; otherwise one bit per segment that matched literally, the first segment
/// the highest, so that the more literal, the earlier, ranks higher.
fn rank(parts: &[&str], segments: &[&str]) -> Option<u64> {
    if parts.len() != segments.len() || parts.len() > 64 {
        return None;
    }
    let mut literal = 0u64;
    for (i, (part, segment)) in parts.iter().zip(segments).enumerate() {
        if !part.starts_with('{') {
            if part != segment {
                return None;
            }
            literal |= 1 << (63 - i);
        }
    }
    Some(literal)
}

/// What `method` on `path` needs: what its route declares; a valid token when no route
/// answers it (deny by default).
pub fn need(method: &Method, path: &str) -> Need {
    let Some(route) = route_of(method, path) else {
        return Need::Entries;
    };
    match route.needs {
        Needs::Open => Need::Open,
        Needs::Entries => Need::Entries,
        Needs::Scope {
            on,
            letter,
            interaction,
            whom,
        } => {
            let resource = match on {
                On::Type(resource) => resource.to_owned(),
                On::PathKind => kind_in(&route.path, path).to_owned(),
            };
            Need::Scope {
                resource,
                letter,
                interaction,
                whom,
            }
        }
    }
}

/// The segment of `path` where `template` has `{kind}`.
fn kind_in<'a>(template: &str, path: &'a str) -> &'a str {
    let at = template
        .trim_matches('/')
        .split('/')
        .position(|part| part == "{kind}");
    at.and_then(|at| path.trim_matches('/').split('/').nth(at))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(method: Method, path: &str) -> Option<&'static str> {
        route_of(&method, path).map(|d| d.path.as_str())
    }

    #[test]
    fn the_most_literal_template_answers_and_earlier_literals_rank_higher() {
        let expected = [
            (
                Method::GET,
                "/fhir/Patient/194003129865",
                "/fhir/Patient/{id}",
            ),
            (Method::GET, "/fhir/CarePlan/k1", "/fhir/{kind}/{id}"),
            (
                Method::GET,
                "/fhir/CarePlan/_history",
                "/fhir/{kind}/_history",
            ),
            // `Patient` (the second segment) outranks `_history` (the third).
            (Method::GET, "/fhir/Patient/_history", "/fhir/Patient/{id}"),
            (
                Method::HEAD,
                "/fhir/CarePlan/k1/_history/2",
                "/fhir/{kind}/{id}/_history/{vid}",
            ),
            (
                Method::POST,
                "/fhir/CarePlan/k1/$transfer",
                "/fhir/CarePlan/{id}/$transfer",
            ),
        ];
        for (method, path, answering) in expected {
            assert_eq!(template(method, path), Some(answering), "{path}");
        }
    }

    #[test]
    fn no_template_no_method_no_route() {
        assert_eq!(template(Method::GET, "/fhir/CarePlan/k1/x/y/z/w"), None);
        assert_eq!(
            template(Method::DELETE, "/fhir/Patient/194003129865/$everything"),
            None
        );
        let deep = format!("/fhir{}", "/a".repeat(100));
        assert_eq!(template(Method::GET, &deep), None);
    }
}
