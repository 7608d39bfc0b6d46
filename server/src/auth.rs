//! Who is calling: Bearer access tokens are JWTs, checked against the issuer's keys (the built-in
//! provider's, or an external issuer's JWKS fetched over HTTPS and cached), with the org as the
//! audience; credentials-mode tokens are signed by the org itself. The token's email picks the org
//! user (users.rs).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::idp::Idp;
use crate::keys::SigningKey;

/// Claims the server needs from an access token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the identity provider's keys could not be fetched: {0}")]
    Jwks(String),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Jwks(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Which issuer's tokens the org accepts.
pub enum TokenIssuer {
    Builtin(Arc<Idp>),
    External {
        issuer: String,
        audience: String,
        http: reqwest::Client,
        jwks: Mutex<Option<(Instant, JwkSet)>>,
    },
}

/// Checks access tokens.
pub struct Verifier {
    pub issuer: TokenIssuer,
    /// The org's own key for credentials-mode tokens.
    pub org_key: SigningKey,
    pub org_issuer: String,
    pub org_audience: String,
    /// Tokens seen so far, and those declared expired (tests of expiry in the middle of a sync).
    pub seen: Mutex<std::collections::HashSet<String>>,
    pub expired: Mutex<std::collections::HashSet<String>>,
}

#[derive(Serialize, Deserialize)]
struct OrgClaims {
    iss: String,
    aud: String,
    sub: String,
    email: String,
    name: String,
    iat: u64,
    exp: u64,
}

fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)
}

fn validation(issuer: &str, audience: &str, alg: jsonwebtoken::Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.leeway = 60;
    v
}

impl Verifier {
    /// Issues a credentials-mode access token for an org user.
    pub fn issue_org_token(&self, user: &crate::users::OrgUser, ttl: Duration) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        self.org_key.sign(&OrgClaims {
            iss: self.org_issuer.clone(),
            aud: self.org_audience.clone(),
            sub: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            iat: now,
            exp: now + ttl.as_secs(),
        })
    }

    /// Treats every access token seen so far as expired, as if their lifetime ran out now.
    pub fn expire_seen_tokens(&self) {
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        self.expired.lock().unwrap().extend(seen);
    }

    /// The verified claims of the request's bearer token.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<Claims, AuthError> {
        let token = bearer(headers)?;
        if self.expired.lock().unwrap().contains(token) {
            return Err(AuthError::Invalid("the token expired".into()));
        }
        self.seen.lock().unwrap().insert(token.to_string());
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let org_validation = validation(
            &self.org_issuer,
            &self.org_audience,
            jsonwebtoken::Algorithm::ES256,
        );
        if let Ok(c) = self.org_key.verify::<Claims>(token, &org_validation) {
            return Ok(c);
        }
        match &self.issuer {
            TokenIssuer::Builtin(idp) => idp
                .key
                .verify::<Claims>(
                    token,
                    &validation(&idp.issuer, &idp.audience, jsonwebtoken::Algorithm::ES256),
                )
                .map_err(|e| AuthError::Invalid(e.to_string())),
            TokenIssuer::External {
                issuer,
                audience,
                http,
                jwks,
            } => {
                let kid = header
                    .kid
                    .ok_or_else(|| AuthError::Invalid("no kid".into()))?;
                let set = self.external_keys(issuer, http, jwks, &kid).await?;
                let jwk = set
                    .find(&kid)
                    .ok_or_else(|| AuthError::Invalid("unknown kid".into()))?;
                let key =
                    DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Invalid(e.to_string()))?;
                jsonwebtoken::decode::<Claims>(
                    token,
                    &key,
                    &validation(issuer, audience, header.alg),
                )
                .map(|d| d.claims)
                .map_err(|e| AuthError::Invalid(e.to_string()))
            }
        }
    }

    /// The issuer's JWKS, refetched when a kid is unknown (key rotation) at most every 30 s.
    async fn external_keys(
        &self,
        issuer: &str,
        http: &reqwest::Client,
        cache: &Mutex<Option<(Instant, JwkSet)>>,
        kid: &str,
    ) -> Result<JwkSet, AuthError> {
        if let Some((at, set)) = cache.lock().unwrap().as_ref()
            && (set.find(kid).is_some() || at.elapsed() < Duration::from_secs(30))
        {
            return Ok(set.clone());
        }
        let meta: serde_json::Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Jwks(e.to_string()))?
            .json()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        let uri = meta["jwks_uri"]
            .as_str()
            .ok_or_else(|| AuthError::Jwks("no jwks_uri".into()))?;
        let set: JwkSet = http
            .get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Jwks(e.to_string()))?
            .json()
            .await
            .map_err(|e| AuthError::Jwks(e.to_string()))?;
        *cache.lock().unwrap() = Some((Instant::now(), set.clone()));
        Ok(set)
    }
}
