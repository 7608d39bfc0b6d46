//! A small built-in OpenID Connect provider for development and the demo, so nothing but cargo is
//! needed: authorization code with PKCE (S256 only), refresh tokens that rotate (reuse revokes the
//! family), the device authorization grant (RFC 8628), revocation (RFC 7009), and a login form.
//!
//! DEVELOPMENT ONLY: any well-formed email signs in with the password [`DEV_PASSWORD`].
//! Real deployments point the organization at a real provider (`--issuer`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
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
}

/// The provider: its issuer URL, audience for access tokens, keys and state.
pub struct Idp {
    pub issuer: String,
    pub audience: String,
    pub key: SigningKey,
    pub lifetimes: IdpLifetimes,
    /// Deliberately broken ID tokens, for tests of the client's checks.
    pub id_token_fault: Option<IdTokenFault>,
    /// A key that is not in the JWKS (for `IdTokenFault::UnknownKey`).
    rogue_key: SigningKey,
    /// Behave like Entra ID's multi-tenant `common` endpoint: metadata at `{issuer}/common` names
    /// the issuer `{issuer}/{tenantid}`, and ID tokens carry `tid`, `oid` and the tenant issuer.
    pub tenant: Option<String>,
    /// Refresh-token grants served (tests count refreshes).
    pub refresh_grants: std::sync::atomic::AtomicU64,
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
    email: &'a str,
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
    pub fn new(
        issuer: String,
        audience: String,
        lifetimes: IdpLifetimes,
        id_token_fault: Option<IdTokenFault>,
        tenant: Option<String>,
    ) -> Arc<Idp> {
        Arc::new(Idp {
            issuer,
            audience,
            key: SigningKey::generate("dev-1"),
            lifetimes,
            id_token_fault,
            rogue_key: SigningKey::generate("dev-1"),
            tenant,
            refresh_grants: Default::default(),
            data: Mutex::new(IdpData::default()),
        })
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
            .route("/authorize", get(authorize).post(login))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/device/authorize", post(device_authorize))
            .route("/device", get(device_page).post(device_approve))
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
        let access = self.key.sign(&AccessClaims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: subject(email),
            email,
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
        let signer = if fault == Some(IdTokenFault::UnknownKey) {
            &self.rogue_key
        } else {
            &self.key
        };
        let id_token = signer.sign(&claims);
        let family = family.unwrap_or_else(|| random_token(12));
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.lifetimes.access_token.as_secs(),
            "id_token": id_token,
            "scope": scope,
        });
        if scope.split(' ').any(|s| s == "offline_access") {
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
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
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
    Json(idp.key.jwks())
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = url::Url::parse(uri).expect("checked redirect URI");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

async fn authorize(State(idp): State<Arc<Idp>>, Query(q): Query<AuthorizeQuery>) -> Response {
    // Errors about the client or redirect URI are shown here, never redirected (RFC 6749 §4.1.2.1).
    if q.client_id.as_deref() != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, Html("unknown client_id")).into_response();
    }
    let Some(redirect_uri) = q.redirect_uri.filter(|r| allowed_redirect(r)) else {
        return (StatusCode::BAD_REQUEST, Html("redirect_uri not allowed")).into_response();
    };
    let state = q.state.clone();
    let err = |e: &str, d: &str| {
        let mut p = vec![
            ("error", e),
            ("error_description", d),
            ("iss", idp.issuer.as_str()),
        ];
        if let Some(s) = state.as_deref() {
            p.push(("state", s));
        }
        redirect_with(&redirect_uri, &p)
    };
    if q.response_type.as_deref() != Some("code") {
        return err("unsupported_response_type", "only code");
    }
    let (Some(challenge), Some("S256")) =
        (q.code_challenge.clone(), q.code_challenge_method.as_deref())
    else {
        return err("invalid_request", "PKCE with S256 is required");
    };
    let scope = q.scope.unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return err("invalid_scope", "openid is required");
    }
    let id = random_token(16);
    idp.data.lock().unwrap().pending.insert(
        id.clone(),
        PendingAuth {
            redirect_uri: redirect_uri.clone(),
            state: q.state,
            nonce: q.nonce,
            challenge,
            scope,
        },
    );
    login_form(&id, None).into_response()
}

fn login_form(request_id: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"error\">{e}</p>"))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><title>Sign in — syncvault development provider</title></head><body>\
         <h1>Sign in</h1><p>Development provider: any email, password <code>{DEV_PASSWORD}</code>.</p>{error}\
         <form method=\"post\" action=\"authorize\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
         <label>Email <input name=\"username\" type=\"email\" autocomplete=\"username\"></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
         <button name=\"action\" value=\"login\">Sign in</button>\
         <button name=\"action\" value=\"cancel\">Cancel</button></form></body></html>"
    ))
}

#[derive(Deserialize)]
struct LoginForm {
    request_id: String,
    username: Option<String>,
    password: Option<String>,
    action: Option<String>,
}

async fn login(State(idp): State<Arc<Idp>>, Form(f): Form<LoginForm>) -> Response {
    let mut data = idp.data.lock().unwrap();
    let Some(pending) = data.pending.get(&f.request_id) else {
        return (
            StatusCode::BAD_REQUEST,
            Html("this sign-in request expired; start again"),
        )
            .into_response();
    };
    let mut params: Vec<(&str, String)> = vec![("iss", idp.issuer.clone())];
    if let Some(s) = &pending.state {
        params.push(("state", s.clone()));
    }
    if f.action.as_deref() == Some("cancel") {
        let pending = data.pending.remove(&f.request_id).expect("present");
        params.push(("error", "access_denied".into()));
        params.push(("error_description", "the user cancelled".into()));
        let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return redirect_with(&pending.redirect_uri, &p);
    }
    let email = f.username.unwrap_or_default().trim().to_lowercase();
    if !valid_email(&email) || f.password.as_deref() != Some(DEV_PASSWORD) {
        return login_form(&f.request_id, Some("Wrong email or password.")).into_response();
    }
    let pending = data.pending.remove(&f.request_id).expect("present");
    let code = random_token(32);
    data.codes.insert(
        code.clone(),
        Code {
            email,
            redirect_uri: pending.redirect_uri.clone(),
            nonce: pending.nonce,
            challenge: pending.challenge,
            scope: pending.scope,
            expires: now() + idp.lifetimes.code.as_secs(),
            used: false,
            family: None,
        },
    );
    params.push(("code", code));
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    redirect_with(&pending.redirect_uri, &p)
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    device_code: Option<String>,
}

async fn token(State(idp): State<Arc<Idp>>, Form(f): Form<TokenForm>) -> Response {
    if f.client_id.as_deref() != Some(CLIENT_ID) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let mut data = idp.data.lock().unwrap();
    let data = &mut *data;
    match f.grant_type.as_str() {
        "authorization_code" => {
            let Some(code) = f.code.as_deref().and_then(|c| data.codes.get_mut(c)) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
            };
            if code.used {
                // Replay: revoke what the code produced (RFC 6749 §4.1.2).
                if let Some(family) = code.family.clone() {
                    data.revoked_families.insert(family);
                }
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code already used",
                );
            }
            code.used = true;
            if code.expires < now() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code expired");
            }
            if f.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri mismatch",
                );
            }
            let Some(verifier) = f.code_verifier.as_deref() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code_verifier required",
                );
            };
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != code.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            let (email, scope, nonce) =
                (code.email.clone(), code.scope.clone(), code.nonce.clone());
            let (body, family) = idp.issue_tokens(data, &email, &scope, nonce.as_deref(), None);
            if let Some(c) = f.code.as_deref().and_then(|c| data.codes.get_mut(c)) {
                c.family = Some(family);
            }
            Json(body).into_response()
        }
        "refresh_token" => {
            let Some(old) = f
                .refresh_token
                .as_deref()
                .and_then(|t| data.refresh.get_mut(t))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown refresh token",
                );
            };
            if old.used || data.revoked_families.contains(&old.family) {
                // Reuse of a rotated token: someone has a copy. Revoke the whole family.
                let family = old.family.clone();
                data.revoked_families.insert(family);
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token revoked",
                );
            }
            old.used = true;
            idp.refresh_grants
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (email, scope, family) = (old.email.clone(), old.scope.clone(), old.family.clone());
            let (body, _) = idp.issue_tokens(data, &email, &scope, None, Some(family));
            Json(body).into_response()
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let Some(device) = f
                .device_code
                .as_deref()
                .and_then(|d| data.devices.get_mut(d))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown device code",
                );
            };
            let t = now();
            if device.expires < t {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "expired_token",
                    "the device code expired",
                );
            }
            if device.denied {
                return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "the user denied");
            }
            let too_fast = device.last_poll.is_some_and(|p| t < p + device.interval);
            device.last_poll = Some(t);
            let Some(email) = device.approved_email.clone() else {
                if too_fast {
                    device.interval += 5;
                    return oauth_error(StatusCode::BAD_REQUEST, "slow_down", "poll more slowly");
                }
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "authorization_pending",
                    "waiting for the user",
                );
            };
            let scope = device.scope.clone();
            data.devices
                .remove(f.device_code.as_deref().expect("present"));
            let (body, _) = idp.issue_tokens(data, &email, &scope, None, None);
            Json(body).into_response()
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant type",
        ),
    }
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

#[derive(Deserialize)]
struct DevicePageQuery {
    user_code: Option<String>,
}

async fn device_page(Query(q): Query<DevicePageQuery>) -> Html<String> {
    let code = q
        .user_code
        .unwrap_or_default()
        .replace(['"', '<', '>', '&'], "");
    Html(format!(
        "<!doctype html><html><body><h1>Connect a device</h1><form method=\"post\" action=\"device\">\
         <label>Code <input name=\"user_code\" value=\"{code}\"></label>\
         <label>Email <input name=\"username\" type=\"email\"></label>\
         <label>Password <input name=\"password\" type=\"password\"></label>\
         <button name=\"action\" value=\"approve\">Approve</button>\
         <button name=\"action\" value=\"deny\">Deny</button></form></body></html>"
    ))
}

#[derive(Deserialize)]
struct DeviceApproveForm {
    user_code: String,
    username: Option<String>,
    password: Option<String>,
    action: Option<String>,
}

async fn device_approve(
    State(idp): State<Arc<Idp>>,
    _h: HeaderMap,
    Form(f): Form<DeviceApproveForm>,
) -> Response {
    let mut data = idp.data.lock().unwrap();
    let wanted = f.user_code.trim().to_uppercase();
    let Some(device) = data.devices.values_mut().find(|d| d.user_code == wanted) else {
        return (StatusCode::BAD_REQUEST, Html("unknown or expired code")).into_response();
    };
    if f.action.as_deref() == Some("deny") {
        device.denied = true;
        return Html("Denied. You can close this page.").into_response();
    }
    let email = f.username.unwrap_or_default().trim().to_lowercase();
    if !valid_email(&email) || f.password.as_deref() != Some(DEV_PASSWORD) {
        return (StatusCode::UNAUTHORIZED, Html("Wrong email or password.")).into_response();
    }
    device.approved_email = Some(email);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html("Approved. Return to your device."),
    )
        .into_response()
}
