//! Who is calling: Bearer access tokens are JWTs, checked against the issuer's keys (the built-in
//! provider's, or an external issuer's JWKS fetched over HTTPS and cached, refetched when a token
//! names a key id the cache does not have), with the org as the audience; credentials-mode tokens
//! are signed by the org itself. Who the token's person is in the organization is decided by
//! admin/identity.rs.

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
    pub iss: String,
    pub sub: String,
    pub email: Option<String>,
    /// `false` when the provider says it did not verify `email`: then it matches nobody.
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// Entra ID: the user's object id and tenant.
    pub oid: Option<String>,
    pub tid: Option<String>,
    /// Entra ID: the sign-in name, usually the email, in the directory's case.
    pub preferred_username: Option<String>,
    pub upn: Option<String>,
    /// ID tokens: the nonce of the sign-in request.
    pub nonce: Option<String>,
}

/// An external issuer's keys, and when each unknown key id was last looked for: a token naming a
/// kid the cache lacks refetches the JWKS (keys roll without notice), at most once per kid per
/// [`KID_REFETCH_INTERVAL`], so a flood of forged kids cannot turn into a flood of fetches.
#[derive(Default)]
pub struct KeyCache {
    set: Mutex<Option<JwkSet>>,
    looked_for: Mutex<std::collections::HashMap<String, Instant>>,
}

/// How often one unknown key id may cause a JWKS fetch.
pub const KID_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

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
        keys: KeyCache,
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
    pub fn issue_org_token(&self, user: &crate::admin::store::OrgUser, ttl: Duration) -> String {
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
        // The token's own (unverified) issuer picks the one key to check it with: trying the
        // organization's key first cost every provider token a failed signature check (about 7%
        // of the server's CPU in an initial download). The check itself still requires that issuer.
        #[derive(serde::Deserialize)]
        struct Issuer {
            iss: String,
        }
        let named = jsonwebtoken::dangerous::insecure_decode_claims::<Issuer>(token);
        if named.is_ok_and(|n| n.iss == self.org_issuer) {
            let org_validation = validation(
                &self.org_issuer,
                &self.org_audience,
                jsonwebtoken::Algorithm::ES256,
            );
            return self
                .org_key
                .verify::<Claims>(token, &org_validation)
                .map_err(|e| AuthError::Invalid(e.to_string()));
        }
        let audience = match &self.issuer {
            TokenIssuer::Builtin(_) => self.org_audience.clone(),
            TokenIssuer::External { audience, .. } => audience.clone(),
        };
        self.provider_token(token, &audience).await
    }

    /// Verifies a JWT the organization's identity provider signed, for `audience` (the org for
    /// access tokens, the console's client id for the ID tokens of an administrator's sign-in).
    pub async fn provider_token(&self, token: &str, audience: &str) -> Result<Claims, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        match &self.issuer {
            TokenIssuer::Builtin(idp) => idp
                .verify::<Claims>(
                    token,
                    &validation(&idp.issuer, audience, jsonwebtoken::Algorithm::ES256),
                )
                .map_err(|e| AuthError::Invalid(e.to_string())),
            TokenIssuer::External {
                issuer, http, keys, ..
            } => {
                let kid = header
                    .kid
                    .ok_or_else(|| AuthError::Invalid("no kid".into()))?;
                let set = self.external_keys(issuer, http, keys, &kid).await?;
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

    /// The issuer's JWKS; refetched when `kid` is not in it, unless that kid was looked for
    /// within [`KID_REFETCH_INTERVAL`].
    async fn external_keys(
        &self,
        issuer: &str,
        http: &reqwest::Client,
        cache: &KeyCache,
        kid: &str,
    ) -> Result<JwkSet, AuthError> {
        if let Some(set) = cache.set.lock().unwrap().as_ref() {
            let recently = {
                let mut looked = cache.looked_for.lock().unwrap();
                let recent = looked
                    .get(kid)
                    .is_some_and(|at| at.elapsed() < KID_REFETCH_INTERVAL);
                if !recent && set.find(kid).is_none() {
                    looked.insert(kid.to_string(), Instant::now());
                }
                recent
            };
            if set.find(kid).is_some() || recently {
                return Ok(set.clone());
            }
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
        *cache.set.lock().unwrap() = Some(set.clone());
        Ok(set)
    }
}
