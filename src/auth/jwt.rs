//! Bearer JWTs: checked with the configured keys — an HS256 shared secret (development),
//! RS256 and ES256 public keys from a JWKS file or URL (production) — and their `iss`,
//! `aud`, `exp` and `nbf` with a small clock-skew leeway. The crypto is the
//! `jsonwebtoken` crate's (on `ring`).
//!
//! Claims read: `scope` (space-separated SMART scopes), `client_id` (else `azp`, else
//! `sub`) for the client, `sub` for the user, `patient` (the person a `patient/` scope
//! is about: personnummer or samordningsnummer) and `units` (HSA-ids an EHR's writes are
//! limited to).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AuthSettings, Principal, Scopes};
use crate::domain::{HsaId, PersonId};

/// Why a token is refused; the message is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is for another audience (aud)")]
    WrongAudience,
    #[error("the token is from another issuer (iss)")]
    WrongIssuer,
    #[error("the token is signed with {0}, which this server does not accept")]
    Algorithm(String),
    #[error("no key for the token's kid '{0}'")]
    UnknownKey(String),
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the patient claim is not a personnummer or samordningsnummer")]
    BadPatient,
    #[error("the units claim holds something that is not an HSA-id")]
    BadUnits,
}

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("auth: {0}")]
pub struct KeyError(pub String);

#[derive(Debug, Deserialize)]
struct Claims {
    /// Checked by `jsonwebtoken`; kept to check a remembered token again. Read as it
    /// reads them: a time is a whole number of seconds, anything else is no time (an
    /// `exp` that is none refuses the token, an `nbf` that is none is not checked).
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    patient: Option<String>,
    #[serde(default)]
    units: Option<Vec<String>>,
}

/// One public key from a JWKS.
struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Checks tokens. Cheap to share.
pub struct Verifier {
    secret: Option<DecodingKey>,
    keys: RwLock<Vec<PublicKey>>,
    jwks_url: Option<String>,
    last_fetch: RwLock<Option<Instant>>,
    issuer: String,
    audience: String,
    /// What is checked of a token's claims, per algorithm the gateway takes: built
    /// once, not for every request (each holds sets of the audience and issuer).
    checks: [(Algorithm, Validation); 3],
    leeway: u64,
    /// Tokens that verified, by their text, with who they speak for (see
    /// [`Verifier::remembered`]).
    verified: RwLock<HashMap<String, Verified>>,
}

/// A token that verified: who it speaks for, and the times it holds between.
#[derive(Debug, Clone)]
struct Verified {
    principal: Principal,
    exp: u64,
    nbf: Option<u64>,
}

/// The most tokens remembered; when one more verifies, they are all forgotten (each is
/// then checked in full once more). Only tokens that verified are remembered, so only
/// holders of that many valid tokens can make the gateway forget.
const MOST_REMEMBERED: usize = 4096;

/// A token longer than this (a usual one is well under 2 kB) is checked in full every
/// time, never remembered: the memory remembered tokens take stays bounded (at most
/// [`MOST_REMEMBERED`] of this length).
const LONGEST_REMEMBERED: usize = 8192;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.secret.is_some())
            .field(
                "public_keys",
                &self.keys.read().map(|k| k.len()).unwrap_or(0),
            )
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// A JWKS URL is fetched again for an unknown `kid` at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

impl Verifier {
    /// The keys the settings name; fails when there are none, or one cannot be read.
    pub async fn from_settings(s: &AuthSettings) -> Result<Verifier, KeyError> {
        let secret = s.hs256_secret.expose();
        let mut keys = Vec::new();
        if !s.jwks_file.is_empty() {
            let text = std::fs::read_to_string(&s.jwks_file)
                .map_err(|e| KeyError(format!("auth.jwks_file {}: {e}", s.jwks_file)))?;
            keys.extend(parse_jwks(&text).map_err(|e| KeyError(format!("auth.jwks_file: {e}")))?);
        }
        let jwks_url = (!s.jwks_url.is_empty()).then(|| s.jwks_url.clone());
        let verifier = Verifier {
            secret: (!secret.is_empty()).then(|| DecodingKey::from_secret(secret.as_bytes())),
            keys: RwLock::new(keys),
            jwks_url,
            last_fetch: RwLock::new(None),
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
            checks: [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
                .map(|alg| (alg, validation(alg, s))),
            leeway: s.leeway_secs,
            verified: RwLock::default(),
        };
        if verifier.jwks_url.is_some() {
            verifier.fetch().await?;
        }
        let has_keys = verifier.secret.is_some()
            || verifier.keys.read().map(|k| !k.is_empty()).unwrap_or(false);
        if !has_keys {
            return Err(KeyError(
                "no keys to check tokens with: set auth.hs256_secret (development), auth.jwks_file or auth.jwks_url, or auth.mode = \"off\" on a closed network".into(),
            ));
        }
        Ok(verifier)
    }

    /// Fetches the JWKS URL and replaces the keys it gave before.
    async fn fetch(&self) -> Result<(), KeyError> {
        let Some(url) = &self.jwks_url else {
            return Ok(());
        };
        if let Ok(mut at) = self.last_fetch.write() {
            *at = Some(Instant::now());
        }
        let text = crate::sync::outbound::operator_client(Duration::from_secs(10))
            .build()
            .map_err(|e| KeyError(format!("auth.jwks_url {url}: {e}")))?
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| KeyError(format!("auth.jwks_url {url}: {e}")))?;
        if text.status().is_redirection() {
            return Err(KeyError(format!(
                "auth.jwks_url {url}: redirects to another host are not followed (answered {})",
                text.status()
            )));
        }
        let text = text
            .text()
            .await
            .map_err(|e| KeyError(format!("auth.jwks_url {url}: {e}")))?;
        let fetched =
            parse_jwks(&text).map_err(|e| KeyError(format!("auth.jwks_url {url}: {e}")))?;
        if let Ok(mut keys) = self.keys.write() {
            *keys = fetched;
        }
        // A token verified with a key no longer published is checked again.
        if let Ok(mut verified) = self.verified.write() {
            verified.clear();
        }
        Ok(())
    }

    /// Checks a token and says who it speaks for.
    ///
    /// A token that verified before is not checked again (its signature, its claims)
    /// but for its times: the signature check and the claims' parsing were a fifth of
    /// the instructions of a read by id, for the same few tokens over and over.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        if let Some(principal) = self.remembered(token, jsonwebtoken::get_current_timestamp()) {
            return Ok(principal);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                let key = self
                    .secret
                    .as_ref()
                    .ok_or_else(|| TokenError::Algorithm("HS256".into()))?;
                self.decode(token, key, Algorithm::HS256)?
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let kid = header.kid.clone().unwrap_or_default();
                if self.key_for(&kid, header.alg).is_none() && self.may_refetch() {
                    let _ = self.fetch().await;
                }
                let keys = self
                    .keys
                    .read()
                    .map_err(|_| TokenError::UnknownKey(kid.clone()))?;
                let key = keys
                    .iter()
                    .find(|k| {
                        k.algorithm == header.alg
                            && (kid.is_empty() || k.kid.as_deref() == Some(kid.as_str()))
                    })
                    .ok_or(TokenError::UnknownKey(kid.clone()))?;
                self.decode(token, &key.key, header.alg)?
            }
            other => return Err(TokenError::Algorithm(format!("{other:?}"))),
        };
        let seconds = |time: &Option<Value>| time.as_ref().and_then(Value::as_u64);
        let (exp, nbf) = (seconds(&claims.exp), seconds(&claims.nbf));
        let principal = principal(claims)?;
        if let Some(exp) = exp.filter(|_| token.len() <= LONGEST_REMEMBERED)
            && let Ok(mut verified) = self.verified.write()
        {
            if verified.len() >= MOST_REMEMBERED {
                verified.clear();
            }
            let remember = Verified {
                principal: principal.clone(),
                exp,
                nbf,
            };
            verified.insert(token.to_owned(), remember);
        }
        Ok(principal)
    }

    /// Who `token` speaks for, if it verified before and is still within its times at
    /// `now` (seconds since 1970), as `jsonwebtoken` checks them: not after `exp`, not
    /// before `nbf`, each give or take the leeway.
    fn remembered(&self, token: &str, now: u64) -> Option<Principal> {
        let verified = self.verified.read().ok()?;
        let known = verified.get(token)?;
        let within = known.exp >= now.saturating_sub(self.leeway)
            && known
                .nbf
                .is_none_or(|nbf| nbf <= now.saturating_add(self.leeway));
        within.then(|| known.principal.clone())
    }

    fn key_for(&self, kid: &str, alg: Algorithm) -> Option<()> {
        let keys = self.keys.read().ok()?;
        keys.iter()
            .any(|k| k.algorithm == alg && (kid.is_empty() || k.kid.as_deref() == Some(kid)))
            .then_some(())
    }

    fn may_refetch(&self) -> bool {
        self.jwks_url.is_some()
            && self
                .last_fetch
                .read()
                .map(|at| at.is_none_or(|t| t.elapsed() > REFETCH_AFTER))
                .unwrap_or(false)
    }

    fn decode(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, TokenError> {
        let (_, validation) = self
            .checks
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or_else(|| TokenError::Algorithm(format!("{alg:?}")))?;
        jsonwebtoken::decode::<Claims>(token, key, validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAlgorithm => TokenError::Algorithm(format!("{alg:?}")),
                _ => TokenError::Malformed(e.to_string()),
            })
    }
}

/// What is checked of a token signed with `alg`: the audience, the issuer (when one is
/// configured: then a token without `iss` is refused), `exp` and `nbf` with the leeway.
fn validation(alg: Algorithm, s: &AuthSettings) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = s.leeway_secs;
    validation.validate_nbf = true;
    validation.set_audience(&[&s.audience]);
    if s.issuer.is_empty() {
        validation.set_required_spec_claims(&["exp", "aud"]);
    } else {
        validation.set_issuer(&[&s.issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    }
    validation
}

fn principal(claims: Claims) -> Result<Principal, TokenError> {
    let patient = claims
        .patient
        .as_deref()
        .map(|p| {
            PersonId::parse(p.trim_start_matches("Patient/")).map_err(|_| TokenError::BadPatient)
        })
        .transpose()?;
    let units = claims
        .units
        .map(|units| {
            units
                .iter()
                .map(|u| HsaId::parse(u).map_err(|_| TokenError::BadUnits))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let client = claims
        .client_id
        .or(claims.azp)
        .or_else(|| claims.sub.clone())
        .unwrap_or_else(|| "unnamed-client".into());
    Ok(Principal {
        client,
        subject: claims.sub,
        scopes: Scopes::parse(&claims.scope),
        patient,
        units,
    })
}

/// The RS256 and ES256 (P-256) keys of a JWKS document.
fn parse_jwks(text: &str) -> Result<Vec<PublicKey>, String> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("a key cannot be used: {e}"))?;
        keys.push(PublicKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err("no RS256 or ES256 (P-256) key in it".into());
    }
    Ok(keys)
}

/// What a development token says.
#[derive(Debug, Clone, Serialize)]
pub struct TokenClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<String>>,
}

/// Signs a development token with the HS256 secret.
pub fn mint(secret: &str, claims: &TokenClaims) -> Result<String, String> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-secret-for-the-tests-only";

    async fn verifier() -> Verifier {
        Verifier::from_settings(&AuthSettings::hs256(
            "https://idp.example",
            "pkgw",
            30,
            SECRET,
        ))
        .await
        .unwrap()
    }

    /// A token for `client`, valid from `nbf` to `exp` (seconds from now), signed with
    /// `secret`.
    fn token(secret: &str, client: &str, nbf: i64, exp: i64) -> (String, u64) {
        let now = jsonwebtoken::get_current_timestamp();
        let now_i = i64::try_from(now).unwrap();
        let claims = TokenClaims {
            iss: "https://idp.example".into(),
            aud: "pkgw".into(),
            sub: client.into(),
            client_id: client.into(),
            scope: "system/*.rs".into(),
            iat: now_i,
            nbf: now_i + nbf,
            exp: now_i + exp,
            patient: None,
            units: None,
        };
        (mint(secret, &claims).unwrap(), now)
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_only_within_its_times() {
        let verifier = verifier().await;
        let (token, now) = token(SECRET, "ehr", -10, 100);
        assert_eq!(verifier.remembered(&token, now), None, "not verified yet");
        let principal = verifier.verify(&token).await.unwrap();
        assert_eq!(principal.client, "ehr");
        assert_eq!(verifier.remembered(&token, now), Some(principal.clone()));
        assert_eq!(verifier.verify(&token).await, Ok(principal.clone()));
        // `exp` and `nbf` give or take the leeway (30 s), as jsonwebtoken checks them.
        let at = |s: i64| verifier.remembered(&token, now.checked_add_signed(s).unwrap());
        assert_eq!(at(130), Some(principal.clone()));
        assert_eq!(at(131), None, "expired");
        assert_eq!(at(-40), Some(principal));
        assert_eq!(at(-41), None, "not valid yet");
    }

    #[tokio::test]
    async fn a_token_that_fails_is_not_remembered() {
        let verifier = verifier().await;
        let (forged, now) = token("another-secret", "ehr", -10, 100);
        let (expired, _) = token(SECRET, "ehr", -200, -100);
        for _ in 0..2 {
            assert_eq!(
                verifier.verify(&forged).await,
                Err(TokenError::BadSignature)
            );
            assert_eq!(verifier.verify(&expired).await, Err(TokenError::Expired));
        }
        assert_eq!(verifier.remembered(&forged, now), None);
        assert_eq!(verifier.remembered(&expired, now - 150), None);
    }

    #[tokio::test]
    async fn times_are_read_as_jsonwebtoken_reads_them() {
        // An `nbf` that is not a whole number of seconds is not checked, remembered or
        // not (as before tokens were remembered); an `exp` that is not one refuses.
        let verifier = verifier().await;
        let now = jsonwebtoken::get_current_timestamp();
        let signed = |claims: Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap()
        };
        let base = serde_json::json!({
            "iss": "https://idp.example", "aud": "pkgw", "sub": "ehr", "scope": "system/*.rs",
        });
        let mut odd_nbf = base.clone();
        odd_nbf["nbf"] = "tomorrow".into();
        odd_nbf["exp"] = (now + 100).into();
        let token = signed(odd_nbf);
        let principal = verifier.verify(&token).await.unwrap();
        assert_eq!(verifier.remembered(&token, now), Some(principal));
        let mut odd_exp = base;
        odd_exp["exp"] = "later".into();
        assert!(verifier.verify(&signed(odd_exp)).await.is_err());
    }

    #[tokio::test]
    async fn a_very_long_token_is_not_remembered() {
        let verifier = verifier().await;
        let long = "x".repeat(LONGEST_REMEMBERED);
        let (token, now) = token(SECRET, &long, -10, 100);
        assert!(token.len() > LONGEST_REMEMBERED);
        assert_eq!(verifier.verify(&token).await.unwrap().client, long);
        assert_eq!(verifier.remembered(&token, now), None);
    }

    #[tokio::test]
    async fn at_most_so_many_tokens_are_remembered() {
        let verifier = verifier().await;
        for n in 0..=MOST_REMEMBERED {
            let (token, _) = token(SECRET, &format!("client-{n}"), -10, 100);
            verifier.verify(&token).await.unwrap();
            let remembered = verifier.verified.read().unwrap().len();
            assert!(remembered <= MOST_REMEMBERED, "{remembered} after {n}");
        }
    }
}
