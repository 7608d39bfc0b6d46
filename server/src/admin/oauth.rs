//! The organization signing an administrator in at its identity provider: authorization code
//! with PKCE (S256), state and nonce, from the server itself (redirect `/admin/oauth/callback`).
//! Used to Connect the provider (the seed's "Connect..." signs in "with the account to
//! associate") and, once connected, for every Admin Console sign-in. The pending requests live
//! here, keyed by `state`, so the callback works without a cookie (a cross-site redirect back
//! from an external provider does not carry a SameSite=Strict one).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::Claims;

/// What a sign-in at the provider is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// The signed-in administrator `user_id` connects the provider with this account (from the
    /// console, or from `syncvault admin connect` when `api`).
    Connect { user_id: String, api: bool },
    /// An Admin Console sign-in (a session cookie follows).
    ConsoleLogin,
    /// A sign-in for `syncvault admin` (an API token follows).
    ApiLogin,
}

struct Pending {
    purpose: Purpose,
    verifier: String,
    nonce: String,
    started: Instant,
}

/// How long a started sign-in waits for its callback.
const PENDING_LIFETIME: Duration = Duration::from_secs(600);

/// Why a provider sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("this sign-in is unknown or expired; start again")]
    UnknownState,
    #[error("the identity provider could not be reached: {0}")]
    Provider(String),
    #[error("the identity provider refused the sign-in ({0})")]
    Refused(String),
    #[error("the identity provider's ID token was rejected: {0}")]
    IdToken(String),
}

fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    URL_SAFE_NO_PAD.encode(b)
}

/// The provider's endpoints, from its discovery document.
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
}

/// The organization as the provider's client: its client id and redirect URI.
pub struct ClientIdentity<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
}

/// Sign-ins waiting for their callback.
#[derive(Default)]
pub struct OAuthClient {
    pending: Mutex<HashMap<String, Pending>>,
}

impl OAuthClient {
    /// Discovers the provider's endpoints.
    pub async fn endpoints(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, OAuthError> {
        let meta: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| OAuthError::Provider(e.to_string()))?
            .json()
            .await
            .map_err(|e| OAuthError::Provider(e.to_string()))?;
        let get = |k: &str| {
            meta[k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| OAuthError::Provider(format!("the metadata has no {k}")))
        };
        Ok(Endpoints {
            authorization: get("authorization_endpoint")?,
            token: get("token_endpoint")?,
        })
    }

    /// The provider's login page URL for `purpose`.
    pub fn start(
        &self,
        endpoints: &Endpoints,
        client: &ClientIdentity<'_>,
        purpose: Purpose,
    ) -> String {
        let (state, verifier, nonce) = (random(24), random(32), random(24));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&endpoints.authorization).expect("checked endpoint");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client.client_id)
            .append_pair("redirect_uri", client.redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let mut pending = self.pending.lock().unwrap();
        pending.retain(|_, p| p.started.elapsed() < PENDING_LIFETIME);
        pending.insert(
            state,
            Pending {
                purpose,
                verifier,
                nonce,
                started: Instant::now(),
            },
        );
        url.to_string()
    }

    /// Exchanges the callback's code and returns the purpose and the verified ID token claims.
    /// `verify` checks the ID token's signature, issuer and audience.
    pub async fn finish<F, Fut>(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        client: &ClientIdentity<'_>,
        state: &str,
        code: &str,
        verify: F,
    ) -> Result<(Purpose, Claims), OAuthError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<Claims, String>>,
    {
        let pending = self
            .pending
            .lock()
            .unwrap()
            .remove(state)
            .filter(|p| p.started.elapsed() < PENDING_LIFETIME)
            .ok_or(OAuthError::UnknownState)?;
        let answer: Value = http
            .post(&endpoints.token)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", client.redirect_uri),
                ("client_id", client.client_id),
                ("code_verifier", &pending.verifier),
            ])
            .send()
            .await
            .map_err(|e| OAuthError::Provider(e.to_string()))?
            .json()
            .await
            .map_err(|e| OAuthError::Provider(e.to_string()))?;
        let Some(id_token) = answer["id_token"].as_str() else {
            return Err(OAuthError::Refused(
                answer["error"]
                    .as_str()
                    .unwrap_or("no ID token")
                    .to_string(),
            ));
        };
        let claims = verify(id_token.to_string())
            .await
            .map_err(OAuthError::IdToken)?;
        if claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
            return Err(OAuthError::IdToken("the nonce does not match".into()));
        }
        Ok((pending.purpose, claims))
    }
}
