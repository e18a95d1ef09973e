//! Who is calling, and what they may see and change.
//!
//! Every request to `/fhir` and `/api` (but `/fhir/metadata`) carries a bearer JWT
//! ([`jwt`]) whose SMART scopes ([`scopes`]) grant it interactions on resource types. On
//! top of the scopes:
//! - a token with a `patient/` scope sees only the compartment of the person in its
//!   `patient` claim: another person's resources are "not found", searches are limited to
//!   the person, and writes may only touch their own contract;
//! - a token with a `units` claim (HSA-ids) may only write contracts one of its units is
//!   responsible for (a transfer is the responsible unit handing over).
//!
//! The API's guard ([`crate::api`]) checks the token and the scope a request needs, then
//! runs the handler [`acting_as`] the [`Principal`]; the places that find contracts for a
//! request ask [`acting`] who that is. Code outside a request (the sync engine, the CLI)
//! acts for the gateway itself, without restriction.

mod jwt;
mod scopes;

use std::future::Future;
use std::sync::Arc;

use serde::Deserialize;

pub use jwt::{KeyError, TokenClaims, TokenError, Verifier, mint};
pub use scopes::{Context, Grant, Letter, Scopes};

use crate::domain::{Contract, HsaId, PersonId};
use crate::secret::Secret;

/// `[auth]` in the settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `required` (the default) or `off` (every caller may do everything: only on a
    /// closed network, and for tests).
    pub mode: Mode,
    /// The `iss` tokens must carry; empty accepts any.
    pub issuer: String,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// HS256 shared secret, for development.
    pub hs256_secret: Secret,
    /// A JWKS file with the RS256/ES256 public keys of the token issuer.
    pub jwks_file: String,
    /// The issuer's JWKS URL, fetched at start and again for an unknown `kid`.
    pub jwks_url: String,
    /// The identity provider's authorization endpoint, for SMART discovery.
    #[serde(default)]
    pub authorize_url: String,
    /// The identity provider's token endpoint, for SMART discovery.
    #[serde(default)]
    pub token_url: String,
    /// The grant types the identity provider supports (`authorization_code`,
    /// `client_credentials`), as discovery lists them.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// The SMART capabilities of the identity provider and apps' launch
    /// (`launch-standalone`, `client-public`, `context-standalone-patient`, …); the
    /// gateway adds the `permission-*` ones it enforces itself.
    #[serde(default)]
    pub smart_capabilities: Vec<String>,
    /// The person's portal (`/portal`) as a public client of the identity provider: its
    /// `client_id` for a SMART standalone patient launch (authorization code with PKCE).
    /// Empty: the portal takes a token given to it (as `serve --demo` prints one).
    #[serde(default)]
    pub portal_client_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Required,
    Off,
}

impl AuthSettings {
    /// Tokens required, signed with the HS256 `secret` (development and tests), for
    /// `issuer` and `audience`; no public keys, and no identity provider to discover.
    pub fn hs256(issuer: &str, audience: &str, leeway_secs: u64, secret: &str) -> AuthSettings {
        AuthSettings {
            mode: Mode::Required,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs,
            hs256_secret: Secret::new(secret),
            jwks_file: String::new(),
            jwks_url: String::new(),
            authorize_url: String::new(),
            token_url: String::new(),
            grant_types: Vec::new(),
            smart_capabilities: Vec::new(),
            portal_client_id: String::new(),
        }
    }
}

/// The caller of one request, as its token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The client (`client_id`, `azp` or `sub`): the system that calls.
    pub client: String,
    /// The user or system the token was issued to (`sub`).
    pub subject: Option<String>,
    pub scopes: Scopes,
    /// The person of the `patient` claim.
    pub patient: Option<PersonId>,
    /// The units an EHR's writes are limited to (`units` claim).
    pub units: Option<Vec<HsaId>>,
}

/// Why a write is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The contract is another person's: as if it did not exist.
    NotVisible,
    /// The caller may not write this contract; the message says why.
    Forbidden(String),
}

impl Principal {
    /// The gateway itself, or any caller when authentication is off.
    pub fn unrestricted(client: impl Into<String>) -> Principal {
        Principal {
            client: client.into(),
            subject: None,
            scopes: Scopes::all(),
            patient: None,
            units: None,
        }
    }

    /// The person whose compartment limits this caller, if it is limited to one: a
    /// token with any `patient/` scope.
    pub fn compartment(&self) -> Option<&PersonId> {
        if self.scopes.has_patient_context() {
            self.patient.as_ref()
        } else {
            None
        }
    }

    /// Whether the caller may see this person's data.
    pub fn sees(&self, person: &PersonId) -> bool {
        self.compartment().is_none_or(|own| own == person)
    }

    /// Whether the caller may store `after` in place of `before` (none for a new
    /// contract). A caller limited to units writes only contracts one of its units is
    /// responsible for (before the change, and after it, unless the change is that
    /// unit handing the contract over in a transfer): a receiving unit cannot take a
    /// contract, the sending unit hands it over.
    pub fn may_write(&self, before: Option<&Contract>, after: &Contract) -> Result<(), Refusal> {
        if before.is_some_and(|b| !self.sees(&b.patient.id)) {
            return Err(Refusal::NotVisible);
        }
        if !self.sees(&after.patient.id) {
            return Err(Refusal::Forbidden(
                "a patient token may only write the contract of its own patient".into(),
            ));
        }
        // The person writes the parts that are theirs, never care's.
        if self.compartment().is_some() {
            crate::domain::person_may_change(before, after).map_err(Refusal::Forbidden)?;
        }
        let Some(units) = &self.units else {
            return Ok(());
        };
        let unit_of = |c: &Contract| c.responsible_unit.as_ref().map(|u| u.hsa_id.clone());
        let ours = |c: &Contract| unit_of(c).is_some_and(|u| units.contains(&u));
        let allowed = match before {
            Some(b) => ours(b),
            None => ours(after),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "this client may only write contracts its units ({}) are responsible for",
                units
                    .iter()
                    .map(HsaId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Whether the caller may choose the id of a new contract (a PUT to an id that does
    /// not exist, a conditional create): not a caller limited to a patient or to units,
    /// whose "not there" must read as "not yours" — a new id would tell them apart.
    pub fn may_choose_ids(&self) -> bool {
        self.compartment().is_none() && self.units.is_none()
    }
}

impl AuthSettings {
    /// Whether any key to check tokens with is configured.
    pub fn has_keys(&self) -> bool {
        !self.hs256_secret.expose().is_empty()
            || !self.jwks_file.is_empty()
            || !self.jwks_url.is_empty()
    }
}

/// What a development token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevToken {
    pub client: String,
    pub subject: String,
    pub scope: String,
    pub patient: Option<String>,
    pub units: Option<Vec<String>>,
    pub valid_for: std::time::Duration,
}

/// Signs a development token with the settings' HS256 secret, for their issuer and
/// audience.
pub fn dev_token(settings: &AuthSettings, token: &DevToken) -> Result<String, String> {
    let secret = settings.hs256_secret.expose();
    if secret.is_empty() {
        return Err("auth.hs256_secret is not set: development tokens are signed with it".into());
    }
    let now = jiff::Timestamp::now().as_second();
    let claims = TokenClaims {
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        sub: token.subject.clone(),
        client_id: token.client.clone(),
        scope: token.scope.clone(),
        iat: now,
        nbf: now,
        exp: now + token.valid_for.as_secs() as i64,
        patient: token.patient.clone(),
        units: token.units.clone(),
    };
    mint(secret, &claims)
}

/// A fresh random secret for development (`pkgw serve --demo`).
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

tokio::task_local! {
    static ACTING: Arc<Principal>;
}

/// Runs `f` (a request's handler) on behalf of `principal`.
pub async fn acting_as<T>(principal: Arc<Principal>, f: impl Future<Output = T>) -> T {
    ACTING.scope(principal, f).await
}

/// The caller of the request being handled; `None` outside a request (the gateway's
/// own work, which is unrestricted).
pub fn acting() -> Option<Arc<Principal>> {
    ACTING.try_with(Arc::clone).ok()
}

/// Whether the current caller may see this person's data.
pub fn sees(person: &PersonId) -> bool {
    acting().is_none_or(|p| p.sees(person))
}

/// Whom a search may find for the current caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Searched {
    /// Whoever the other parameters select.
    Anyone,
    /// This person only.
    Person(PersonId),
    /// No one: the search names a person outside the caller's compartment.
    Nobody,
}

impl Searched {
    /// The one person, if the search is limited to one.
    pub fn person(self) -> Option<PersonId> {
        match self {
            Searched::Person(p) => Some(p),
            Searched::Anyone | Searched::Nobody => None,
        }
    }
}

/// Whom a search that names `named` (or no one) may find: a patient's token finds its
/// own person, whatever else the search names.
pub fn searched(named: Option<PersonId>) -> Searched {
    match (named, compartment()) {
        (Some(n), Some(own)) if n != own => Searched::Nobody,
        (Some(p), _) | (None, Some(p)) => Searched::Person(p),
        (None, None) => Searched::Anyone,
    }
}

/// The person the current caller is limited to, if any.
pub fn compartment() -> Option<PersonId> {
    acting().and_then(|p| p.compartment().cloned())
}
