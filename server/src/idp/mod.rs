//! A small built-in OpenID Connect provider for development and the demo, so nothing but cargo is
//! needed: authorization code with PKCE (S256 only), refresh tokens that rotate (reuse revokes the
//! family), the device authorization grant (RFC 8628), revocation (RFC 7009), and a login form.
//!
//! DEVELOPMENT ONLY: any well-formed email signs in with the password [`DEV_PASSWORD`].
//! Real deployments point the organization at a real provider (`--issuer`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod directory;
mod grants;
mod pages;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::keys::SigningKey;

/// The password every development account signs in with.
pub const DEV_PASSWORD: &str = "demo";
/// The public client the apps and the harness use.
pub const CLIENT_ID: &str = "syncvault-app";

/// Lifetimes of what the provider issues.
#[derive(Debug, Clone, Copy)]
pub struct IdpLifetimes {
    pub access_token: Duration,
    pub code: Duration,
    pub device_code: Duration,
}

impl Default for IdpLifetimes {
    fn default() -> Self {
        IdpLifetimes {
            access_token: Duration::from_secs(600),
            code: Duration::from_secs(60),
            device_code: Duration::from_secs(600),
        }
    }
}

struct PendingAuth {
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    challenge: String,
    scope: String,
}

struct Code {
    email: String,
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
    scope: String,
    expires: u64,
    used: bool,
    /// Refresh-token family issued from this code (revoked on replay).
    family: Option<String>,
}

struct Refresh {
    email: String,
    scope: String,
    family: String,
    used: bool,
}

struct Device {
    user_code: String,
    scope: String,
    expires: u64,
    approved_email: Option<String>,
    denied: bool,
    last_poll: Option<u64>,
    interval: u64,
}

#[derive(Default)]
struct IdpData {
    pending: HashMap<String, PendingAuth>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    revoked_families: std::collections::HashSet<String>,
    devices: HashMap<String, Device>,
    /// App-only directory tokens and when they expire.
    directory_tokens: HashMap<String, u64>,
}

/// How the development provider behaves beyond the defaults: tests make it misbehave, or behave
/// like Microsoft Entra ID.
#[derive(Debug, Clone)]
pub struct IdpBehaviour {
    pub lifetimes: IdpLifetimes,
    /// Deliberately broken ID tokens, for tests of the client's checks.
    pub id_token_fault: Option<IdTokenFault>,
    /// Behave like Entra ID's multi-tenant `common` endpoint: metadata at `{issuer}/common` names
    /// the issuer `{issuer}/{tenantid}`, and ID tokens carry `tid`, `oid` and the tenant issuer.
    pub tenant: Option<String>,
    /// Issue refresh tokens for `offline_access` (off: as oidc-provider without consent).
    pub refresh_tokens: bool,
    /// Access tokens shaped like Entra ID's for an organization's API: `oid`, `tid`,
    /// `preferred_username` and `upn` (in the case the person typed it), no `email`.
    pub entra_access_tokens: bool,
}

impl Default for IdpBehaviour {
    fn default() -> Self {
        IdpBehaviour {
            lifetimes: IdpLifetimes::default(),
            id_token_fault: None,
            tenant: None,
            refresh_tokens: true,
            entra_access_tokens: false,
        }
    }
}

/// The provider: its issuer URL, audience for access tokens, keys and state.
pub struct Idp {
    pub issuer: String,
    pub audience: String,
    /// The signing key; `rotate_keys` replaces it (and the published JWKS) without notice.
    key: std::sync::RwLock<SigningKey>,
    pub lifetimes: IdpLifetimes,
    pub id_token_fault: Option<IdTokenFault>,
    /// A key that is not in the JWKS (for `IdTokenFault::UnknownKey`).
    rogue_key: SigningKey,
    pub tenant: Option<String>,
    refresh_tokens: bool,
    entra_access_tokens: bool,
    /// Key rotations so far (names the next key id).
    rotations: std::sync::atomic::AtomicU64,
    /// Refresh-token grants served (tests count refreshes).
    pub refresh_grants: std::sync::atomic::AtomicU64,
    /// Authorization-code grants served (tests count sign-ins).
    pub code_grants: std::sync::atomic::AtomicU64,
    data: Mutex<IdpData>,
}

/// Ways the development provider can misbehave, so tests can prove the client refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenFault {
    WrongAudience,
    WrongNonce,
    WrongIssuer,
    /// Signed with a key that is not published in the JWKS.
    UnknownKey,
    /// Expired well beyond any clock leeway.
    Expired,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

fn subject(email: &str) -> String {
    let digest = Sha256::digest(email.to_lowercase().as_bytes());
    format!("dev-{}", hex16(&digest))
}

fn hex16(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let mut chars = local.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// An address as a person might have typed it (each part capitalized): Entra ID keeps the case
/// of the directory's user principal name, which is not the case the organization stored.
fn as_typed(email: &str) -> String {
    email
        .split_inclusive(['@', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn valid_email(email: &str) -> bool {
    let mut parts = email.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.'))
}

/// Redirect URIs a public native client may use (RFC 8252): loopback http on any port, or a
/// private-use scheme.
fn allowed_redirect(uri: &str) -> bool {
    match url::Url::parse(uri) {
        Ok(u) if u.scheme() == "http" => {
            matches!(
                u.host_str(),
                Some("127.0.0.1") | Some("[::1]") | Some("localhost")
            )
        }
        Ok(u) => u.scheme().contains('.') && u.fragment().is_none(),
        Err(_) => false,
    }
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upn: Option<&'a str>,
    name: String,
    scope: &'a str,
    client_id: &'a str,
    /// A unique id, so two tokens issued in the same second differ (as real providers' do).
    jti: String,
    iat: u64,
    exp: u64,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    iss: &'a str,
    aud: &'a str,
    sub: String,
    email: &'a str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    iat: u64,
    exp: u64,
    auth_time: u64,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

impl Idp {
    pub fn new(issuer: String, audience: String, behaviour: IdpBehaviour) -> Arc<Idp> {
        Arc::new(Idp {
            issuer,
            audience,
            key: std::sync::RwLock::new(SigningKey::generate("dev-1")),
            lifetimes: behaviour.lifetimes,
            id_token_fault: behaviour.id_token_fault,
            rogue_key: SigningKey::generate("dev-1"),
            tenant: behaviour.tenant,
            refresh_tokens: behaviour.refresh_tokens,
            entra_access_tokens: behaviour.entra_access_tokens,
            rotations: Default::default(),
            refresh_grants: Default::default(),
            code_grants: Default::default(),
            data: Mutex::new(IdpData::default()),
        })
    }

    /// Rolls the signing key as providers do without notice: a new key with a new `kid` signs
    /// from now on, and the JWKS publishes only it.
    pub fn rotate_keys(&self) {
        let n = self
            .rotations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 2;
        *self.key.write().unwrap() = SigningKey::generate(&format!("dev-{n}"));
    }

    /// Verifies an access token this provider signed with its current key.
    pub fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        validation: &jsonwebtoken::Validation,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        self.key.read().unwrap().verify(token, validation)
    }

    /// Revokes every refresh token of one person (an administrator disabling a user, or
    /// signing a device out).
    pub fn revoke_user(&self, email: &str) {
        let email = email.trim().to_lowercase();
        let mut data = self.data.lock().unwrap();
        let families: Vec<String> = data
            .refresh
            .values()
            .filter(|r| r.email == email)
            .map(|r| r.family.clone())
            .collect();
        data.revoked_families.extend(families);
    }

    /// Ends every session, as an admin revoking a user's sessions does: every refresh token is
    /// refused from now on (tests of "sign in again").
    pub fn revoke_all_sessions(&self) {
        self.data.lock().unwrap().refresh.clear();
    }

    /// The routes, to be nested under the issuer's path.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(metadata))
            .route(
                "/common/.well-known/openid-configuration",
                get(common_metadata),
            )
            .route("/jwks", get(jwks))
            .route("/authorize", get(pages::authorize).post(pages::login))
            .route("/token", post(grants::token))
            .route("/revoke", post(revoke))
            .route("/device/authorize", post(device_authorize))
            .route("/v1.0/users", get(directory::users))
            .route(
                "/device",
                get(pages::device_page).post(pages::device_approve),
            )
            .with_state(Arc::clone(self))
    }

    fn issue_tokens(
        &self,
        data: &mut IdpData,
        email: &str,
        scope: &str,
        nonce: Option<&str>,
        family: Option<String>,
    ) -> (Value, String) {
        let now = now();
        let exp = now + self.lifetimes.access_token.as_secs();
        let typed = as_typed(email);
        let entra = self.entra_access_tokens;
        let access = self.key.read().unwrap().sign(&AccessClaims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: subject(email),
            email: (!entra).then_some(email),
            oid: entra.then(|| subject(email)),
            tid: entra.then(|| self.tenant.as_deref().unwrap_or("contoso-tenant")),
            preferred_username: entra.then_some(typed.as_str()),
            upn: entra.then_some(typed.as_str()),
            name: display_name(email),
            scope,
            client_id: CLIENT_ID,
            jti: random_token(12),
            iat: now,
            exp,
        });
        let fault = self.id_token_fault;
        let tenant_issuer = self.tenant.as_ref().map(|t| format!("{}/{t}", self.issuer));
        let claims = IdClaims {
            tid: self.tenant.as_deref(),
            oid: self.tenant.as_ref().map(|_| subject(email)),
            iss: if fault == Some(IdTokenFault::WrongIssuer) {
                "https://evil.example"
            } else {
                tenant_issuer.as_deref().unwrap_or(&self.issuer)
            },
            aud: if fault == Some(IdTokenFault::WrongAudience) {
                "another-app"
            } else {
                CLIENT_ID
            },
            sub: subject(email),
            email,
            name: display_name(email),
            nonce: if fault == Some(IdTokenFault::WrongNonce) {
                Some("not-your-nonce")
            } else {
                nonce
            },
            iat: now,
            exp: if fault == Some(IdTokenFault::Expired) {
                now - 3600
            } else {
                now + 600
            },
            auth_time: now,
        };
        let id_token = if fault == Some(IdTokenFault::UnknownKey) {
            self.rogue_key.sign(&claims)
        } else {
            self.key.read().unwrap().sign(&claims)
        };
        let family = family.unwrap_or_else(|| random_token(12));
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.lifetimes.access_token.as_secs(),
            "id_token": id_token,
            "scope": scope,
        });
        if self.refresh_tokens && scope.split(' ').any(|s| s == "offline_access") {
            let refresh = random_token(32);
            data.refresh.insert(
                refresh.clone(),
                Refresh {
                    email: email.into(),
                    scope: scope.into(),
                    family: family.clone(),
                    used: false,
                },
            );
            body["refresh_token"] = json!(refresh);
        }
        (body, family)
    }
}

async fn metadata(State(idp): State<Arc<Idp>>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "revocation_endpoint": format!("{i}/revoke"),
        "device_authorization_endpoint": format!("{i}/device/authorize"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// Entra-style multi-tenant metadata: the same endpoints, an issuer with `{tenantid}`.
async fn common_metadata(State(idp): State<Arc<Idp>>) -> Json<Value> {
    let Json(mut m) = metadata(State(Arc::clone(&idp))).await;
    m["issuer"] = json!(format!("{}/{{tenantid}}", idp.issuer));
    m.as_object_mut()
        .expect("object")
        .remove("authorization_response_iss_parameter_supported");
    Json(m)
}

async fn jwks(State(idp): State<Arc<Idp>>) -> Json<Value> {
    Json(idp.key.read().unwrap().jwks())
}

#[derive(Deserialize)]
struct RevokeForm {
    token: String,
    client_id: Option<String>,
}

async fn revoke(State(idp): State<Arc<Idp>>, Form(f): Form<RevokeForm>) -> StatusCode {
    if f.client_id.as_deref() != Some(CLIENT_ID) {
        return StatusCode::UNAUTHORIZED;
    }
    let mut data = idp.data.lock().unwrap();
    if let Some(family) = data.refresh.get(&f.token).map(|r| r.family.clone()) {
        data.revoked_families.insert(family);
    }
    StatusCode::OK // RFC 7009 §2.2: unknown tokens are not an error.
}

#[derive(Deserialize)]
struct DeviceAuthForm {
    client_id: Option<String>,
    scope: Option<String>,
}

async fn device_authorize(State(idp): State<Arc<Idp>>, Form(f): Form<DeviceAuthForm>) -> Response {
    if f.client_id.as_deref() != Some(CLIENT_ID) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let device_code = random_token(32);
    let letters: Vec<u8> = (0..8)
        .map(|_| b"BCDFGHJKLMNPQRSTVWXZ"[rand::random_range(0..20)])
        .collect();
    let user_code = format!(
        "{}-{}",
        String::from_utf8_lossy(&letters[..4]),
        String::from_utf8_lossy(&letters[4..])
    );
    let expires_in = idp.lifetimes.device_code.as_secs();
    idp.data.lock().unwrap().devices.insert(
        device_code.clone(),
        Device {
            user_code: user_code.clone(),
            scope: f.scope.unwrap_or_else(|| "openid".into()),
            expires: now() + expires_in,
            approved_email: None,
            denied: false,
            last_poll: None,
            interval: 1,
        },
    );
    let verification_uri = format!("{}/device", idp.issuer);
    Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "expires_in": expires_in,
        "interval": 1,
    }))
    .into_response()
}
