//! The reference organization server: what an organization's admin set up, simulated for
//! development, the demo and tests. It serves discovery (`/.well-known/syncvault`), a Bearer
//! challenge at the API root, either a built-in development OpenID Connect provider (`/idp`) or
//! trust in an external issuer, credentials-mode sign-in, and the org's API.

pub mod admin;
pub mod auth;
pub mod faults;
pub mod idp;
pub mod keys;
pub mod layout;
pub mod metrics;
pub mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use admin::identity::ProviderIdentity;
use admin::store::{OrgStore, OrgUser, Refusal};
use auth::{TokenIssuer, Verifier};
use faults::{FaultSpec, Faults};
use idp::{Idp, IdpBehaviour, IdpLifetimes};
use keys::SigningKey;
use sync::store::DataStore;

/// Errors of starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server stopped: {0}")]
    Serve(std::io::Error),
    #[error("bad configuration: {0}")]
    Config(String),
}

/// Which identity provider the organization is connected to.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    /// The built-in development provider at `{org}/idp`.
    Builtin,
    /// An external OpenID Connect issuer whose JWT access tokens carry `audience`.
    External { issuer: String, audience: String },
}

/// How the organization is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub org_name: String,
    pub provider: ProviderConfig,
    /// Whether plain organization credentials are allowed besides OAuth.
    pub allow_credentials: bool,
    pub lifetimes: IdpLifetimes,
    /// Extra trusted CA (PEM) for reaching an external issuer over https (tests use their own CA).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Make the built-in provider issue broken ID tokens (tests only).
    pub id_token_fault: Option<idp::IdTokenFault>,
    /// Make the built-in provider multi-tenant like Entra ID's `common` endpoint, with this tenant.
    pub tenant: Option<String>,
    /// Whether the built-in provider issues refresh tokens (off: as providers that drop
    /// `offline_access`).
    pub refresh_tokens: bool,
    /// Make the built-in provider's access tokens look like Entra ID's (no `email`).
    pub entra_access_tokens: bool,
    /// The audience the built-in provider issues access tokens for, when not this organization
    /// (tests of an organization that refuses its provider's tokens).
    pub provider_audience: Option<String>,
    /// Where the org's records (`DIR/org.db`) and its own state (`DIR/admin.db`: users, roles,
    /// the connected provider, devices, console sessions) live; in memory when None.
    pub data_dir: Option<PathBuf>,
    /// Where an external provider's user list is (Import Users); the built-in provider serves
    /// its own.
    pub directory: Option<admin::directory::DirectorySource>,
    /// The System Administrator's console password on first start (None: a random one, which
    /// `Org::first_admin_password` holds for the caller to print once).
    pub admin_password: Option<String>,
    /// How many generated records an empty store starts with.
    pub records: u64,
    /// What a first sign-in may do, set on first start (None: email matching on for the
    /// built-in provider, off for an external one; nothing is created automatically). The
    /// Organization page changes it afterwards.
    pub sign_in_policy: Option<admin::identity::SignInPolicy>,
    /// Faults injected into the sync API.
    pub faults: FaultSpec,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            org_name: "Contoso Field Service".into(),
            provider: ProviderConfig::Builtin,
            allow_credentials: true,
            lifetimes: IdpLifetimes::default(),
            extra_ca_pem: None,
            id_token_fault: None,
            tenant: None,
            refresh_tokens: true,
            entra_access_tokens: false,
            provider_audience: None,
            data_dir: None,
            admin_password: None,
            directory: None,
            records: 1000,
            sign_in_policy: None,
            faults: FaultSpec::default(),
        }
    }
}

/// Shared state of the running server.
pub struct Org {
    pub url: String,
    pub config: ServerConfig,
    /// Users, roles, the connected provider, devices, console sessions.
    pub store: Arc<OrgStore>,
    /// The System Administrator's password when this start created it at random.
    pub first_admin_password: Option<String>,
    pub verifier: Verifier,
    /// OIDC issuer and client id advertised in discovery.
    pub issuer: String,
    /// Bodies served in place of discovery, for tests of hostile servers.
    pub discovery_override: Mutex<Option<(StatusCode, String)>>,
    /// The organization's records.
    pub data: Arc<DataStore>,
    /// Attachment content and upload sessions.
    pub blobs: Arc<sync::blobs::BlobStore>,
    /// Faults injected into the sync API (tests change them while the server runs).
    pub faults: Arc<Faults>,
    /// Pulls still answered before every session ends (-1: never); `/api/dev/end-sessions`.
    end_sessions_after_pulls: AtomicI64,
    /// Requests, latencies and the change feed, for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

/// The OAuth client id the apps use with this org's provider.
pub const CLIENT_ID: &str = idp::CLIENT_ID;

fn http_client(extra_ca_pem: Option<&[u8]>) -> Result<reqwest::Client, ServerError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(pem) = extra_ca_pem {
        let cert =
            reqwest::Certificate::from_pem(pem).map_err(|e| ServerError::Config(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| ServerError::Config(e.to_string()))
}

impl Org {
    fn new(url: String, config: ServerConfig) -> Result<(Arc<Org>, Option<Arc<Idp>>), ServerError> {
        let audience = url.clone();
        let (issuer, token_issuer, idp) = match &config.provider {
            ProviderConfig::Builtin => {
                let idp = Idp::new(
                    format!("{url}/idp"),
                    config.provider_audience.clone().unwrap_or(audience.clone()),
                    IdpBehaviour {
                        lifetimes: config.lifetimes,
                        id_token_fault: config.id_token_fault,
                        tenant: config.tenant.clone(),
                        refresh_tokens: config.refresh_tokens,
                        entra_access_tokens: config.entra_access_tokens,
                    },
                );
                // A multi-tenant org advertises the `common` issuer, as Entra ID apps do.
                let advertised = match &config.tenant {
                    Some(_) => format!("{}/common", idp.issuer),
                    None => idp.issuer.clone(),
                };
                (
                    advertised,
                    TokenIssuer::Builtin(Arc::clone(&idp)),
                    Some(idp),
                )
            }
            ProviderConfig::External { issuer, audience } => (
                issuer.clone(),
                TokenIssuer::External {
                    issuer: issuer.clone(),
                    audience: audience.clone(),
                    http: http_client(config.extra_ca_pem.as_deref())?,
                    keys: auth::KeyCache::default(),
                },
                None,
            ),
        };
        if let Some(dir) = config.data_dir.as_deref() {
            layout::check(dir).map_err(ServerError::Config)?;
        }
        let store = OrgStore::open(config.data_dir.as_deref())
            .map_err(|e| ServerError::Config(e.to_string()))?;
        let first_start = store
            .is_empty()
            .map_err(|e| ServerError::Config(e.to_string()))?;
        let first_admin_password = seed_users(&store, config.admin_password.as_deref())
            .map_err(|e| ServerError::Config(e.to_string()))?;
        let owners = seed_technicians(&store, config.records, first_start)
            .map_err(|e| ServerError::Config(e.to_string()))?;
        if first_start {
            // The built-in provider's people are the seeded users, who have no Domain Name yet:
            // their first sign-in links them by email. An external provider's users are imported.
            let policy = config
                .sign_in_policy
                .unwrap_or(admin::identity::SignInPolicy {
                    match_email: matches!(config.provider, ProviderConfig::Builtin),
                    provision_unknown: false,
                });
            store
                .set_sign_in_policy(policy)
                .map_err(|e| ServerError::Config(e.to_string()))?;
        }
        let data = DataStore::open(config.data_dir.as_deref(), config.records, &owners)
            .map_err(|e| ServerError::Config(format!("the record store: {e}")))?;
        let blobs = sync::blobs::BlobStore::open(config.data_dir.as_deref())
            .map_err(|e| ServerError::Config(format!("the attachment store: {e}")))?;
        let faults = Arc::new(Faults::new(config.faults.clone()));
        let verifier = Verifier {
            issuer: token_issuer,
            org_key: SigningKey::generate("org-1"),
            org_issuer: url.clone(),
            org_audience: audience,
            seen: Mutex::default(),
            expired: Mutex::default(),
        };
        let org = Arc::new(Org {
            url,
            config,
            store: Arc::new(store),
            first_admin_password,
            verifier,
            issuer,
            discovery_override: Mutex::new(None),
            data: Arc::new(data),
            blobs: Arc::new(blobs),
            faults,
            end_sessions_after_pulls: AtomicI64::new(-1),
            metrics: Arc::default(),
        });
        Ok((org, idp))
    }

    /// Ends every session now, as an administrator revoking all sign-ins does: the provider
    /// refuses every refresh token and the org every access token seen so far.
    pub fn end_all_sessions(&self) {
        if let TokenIssuer::Builtin(idp) = &self.verifier.issuer {
            idp.revoke_all_sessions();
        }
        self.verifier.expire_seen_tokens();
    }

    /// Revokes one person's sessions at the built-in provider (disabled user, device signed
    /// out); an external provider's sessions end when its tokens expire.
    pub fn revoke_user_sessions(&self, email: &str) {
        if let TokenIssuer::Builtin(idp) = &self.verifier.issuer {
            idp.revoke_user(email);
        }
    }

    /// Ends every session once `pulls` more pulls have been answered.
    pub fn end_sessions_after(&self, pulls: u32) {
        if pulls == 0 {
            self.end_all_sessions();
        } else {
            self.end_sessions_after_pulls
                .store(pulls as i64, Ordering::SeqCst);
        }
    }

    /// Counts a pull toward a scheduled end of sessions.
    fn count_pull(&self) {
        let left = self.end_sessions_after_pulls.load(Ordering::SeqCst);
        if left == 0 {
            self.end_sessions_after_pulls.store(-1, Ordering::SeqCst);
            self.end_all_sessions();
        } else if left > 0 {
            self.end_sessions_after_pulls.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// What the development provider served (tests count sign-ins and refreshes).
    pub fn stats(&self) -> serde_json::Value {
        match &self.verifier.issuer {
            TokenIssuer::Builtin(idp) => json!({
                "code_grants": idp.code_grants.load(Ordering::Relaxed),
                "refresh_grants": idp.refresh_grants.load(Ordering::Relaxed),
            }),
            TokenIssuer::External { .. } => json!({}),
        }
    }

    /// The user modes discovery lists: once the identity provider is connected every login goes
    /// through it, so only `oauth`.
    pub fn user_modes(&self) -> Vec<&'static str> {
        let connected = self.store.connection().ok().flatten().is_some();
        if self.config.allow_credentials && !connected {
            vec!["oauth", "credentials"]
        } else {
            vec!["oauth"]
        }
    }

    /// The org user behind the request's access token: the org's own credentials-mode token
    /// (refused once a provider is connected: Connect ends those sessions at once), or a provider
    /// token, whose person the identity rule picks (admin/identity.rs).
    pub async fn caller(&self, headers: &HeaderMap) -> Result<OrgUser, Response> {
        let invalid_token = |status: StatusCode, description: String| {
            let challenge = format!(
                "Bearer authorization_uri=\"{}/authorize\", resource_id=\"{}\", error=\"invalid_token\"",
                self.issuer, self.url
            );
            (
                status,
                [(header::WWW_AUTHENTICATE, challenge)],
                Json(json!({"error": "invalid_token", "error_description": description})),
            )
                .into_response()
        };
        let claims = self
            .verifier
            .verify(headers)
            .await
            .map_err(|e| invalid_token(e.status(), e.to_string()))?;
        let connection = self.store.connection().ok().flatten();
        let resolved = if claims.iss == self.url {
            if connection.is_some() {
                return Err(invalid_token(
                    StatusCode::UNAUTHORIZED,
                    "the organization signs in through its identity provider now".into(),
                ));
            }
            self.store
                .user(&claims.sub)
                .ok()
                .flatten()
                .filter(|u| u.enabled)
                .ok_or(Refusal::Disabled)
        } else {
            let policy = self.store.sign_in_policy().unwrap_or_default();
            let tenant = connection.and_then(|c| c.tenant);
            self.store.sign_in(
                &ProviderIdentity::from_claims(&claims),
                tenant.as_deref(),
                policy,
            )
        };
        resolved.map_err(refusal_response)
    }
}

/// How the API answers a refused sign-in (docs/protocol.md, "Errors").
fn refusal_response(refusal: Refusal) -> Response {
    let (status, body) = match refusal {
        Refusal::Disabled => (
            StatusCode::FORBIDDEN,
            json!({"error": "user_disabled", "error_description": "the organization disabled this user"}),
        ),
        Refusal::NotAMember(why) => (
            StatusCode::FORBIDDEN,
            json!({"error": "not_a_member", "reason": why.code(),
                   "error_description": "this provider account is not a user of the organization; an administrator imports or assigns it"}),
        ),
        Refusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "temporarily_unavailable", "error_description": "the organization's users cannot be read now"}),
        ),
    };
    (status, Json(body)).into_response()
}

async fn discovery(State(org): State<Arc<Org>>) -> Response {
    if let Some((status, body)) = org.discovery_override.lock().unwrap().clone() {
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    Json(json!({
        "protocol_version": sync::PROTOCOL_VERSION,
        "organization_id": "contoso",
        "name": org.config.org_name,
        "user_modes": org.user_modes(),
        "oidc": {
            "issuer": org.issuer,
            "client_id": CLIENT_ID,
            "scopes": ["openid", "email", "profile", "offline_access"],
        },
        "sync_api": format!("{}/api/sync/v{}", org.url, sync::PROTOCOL_VERSION),
        "credentials_endpoint": format!("{}/api/auth/credentials", org.url),
    }))
    .into_response()
}

/// The API root answers like a Dataverse-style server: 401 with a Bearer challenge naming the
/// authority and the resource.
async fn api_root(State(org): State<Arc<Org>>, headers: HeaderMap) -> Response {
    match org.caller(&headers).await {
        Ok(user) => {
            Json(json!({"organization": org.config.org_name, "user": user})).into_response()
        }
        Err(resp) => resp,
    }
}

async fn me(State(org): State<Arc<Org>>, headers: HeaderMap) -> Response {
    match org.caller(&headers).await {
        Ok(user) => Json(user).into_response(),
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
struct CredentialsRequest {
    username: String,
    password: String,
}

async fn credentials(State(org): State<Arc<Org>>, Json(req): Json<CredentialsRequest>) -> Response {
    if !org.user_modes().contains(&"credentials") {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "user_mode_not_allowed", "error_description": "this organization allows OAuth only"}))).into_response();
    }
    let store = Arc::clone(&org.store);
    let checked =
        tokio::task::spawn_blocking(move || store.check_password(&req.username, &req.password))
            .await
            .ok()
            .flatten();
    match checked {
        Some(user) => {
            let ttl = org.config.lifetimes.access_token;
            Json(json!({
                "access_token": org.verifier.issue_org_token(&user, ttl),
                "token_type": "Bearer",
                "expires_in": ttl.as_secs(),
            }))
            .into_response()
        }
        None => (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_credentials", "error_description": "wrong user name or password"}))).into_response(),
    }
}

/// The demo organization's people on first start: Ada and Grace (credentials-mode passwords
/// `ada-credentials`, `grace-credentials`) and the System Administrator. Returns the
/// administrator's password when it was made up here.
/// Business units of the generated organization: twenty field offices.
pub const FIELD_OFFICES: &[&str] = &[
    "Seattle", "Prague", "Lisbon", "Oslo", "Austin", "Lyon", "Porto", "Brno", "Denver", "Turin",
    "Dublin", "Gdansk", "Malmo", "Tampere", "Graz", "Ghent", "Bilbao", "Leeds", "Aarhus", "Basel",
];

/// The generated organization's field technicians (`tech-UU-K@contoso.example`, Field
/// Technician role, in field office UU), one per office per 50,000 records (1 to 10), created on
/// the first start (later starts only look them up): they own the generated accounts
/// round-robin, so each reads 1-5% of the organization. Returns the owners in the order the
/// generator deals accounts to them.
fn seed_technicians(
    store: &OrgStore,
    records: u64,
    first_start: bool,
) -> Result<sync::store::Owners, admin::store::StoreError> {
    if records == 0 {
        return Ok(vec![]);
    }
    let per_office = (records / 50_000).clamp(1, 10);
    let mut owners = vec![];
    for k in 1..=per_office {
        for (u, office) in FIELD_OFFICES.iter().enumerate() {
            let unit = format!("{office} Field Office");
            let email = format!("tech-{:02}-{k}@contoso.example", u + 1);
            if !first_start {
                if let Some(user) = store.user_by_email(&email)? {
                    owners.push((user.id, user.business_unit));
                }
                continue;
            }
            let user = store.create_user(&email, &format!("Technician {office} {k}"), None)?;
            {
                store.update_user(
                    &user.id,
                    &admin::store::UserEdit {
                        roles: vec!["Field Technician".into()],
                        business_unit: Some(unit.clone()),
                        ..admin::store::UserEdit::from(&user)
                    },
                )?;
            }
            owners.push((user.id, unit));
        }
    }
    Ok(owners)
}

fn seed_users(
    store: &OrgStore,
    admin_password: Option<&str>,
) -> Result<Option<String>, admin::store::StoreError> {
    if !store.is_empty()? {
        return Ok(None);
    }
    for (email, name, password) in [
        ("ada@contoso.example", "Ada Lovelace", "ada-credentials"),
        ("grace@contoso.example", "Grace Hopper", "grace-credentials"),
    ] {
        let user = store.create_user(email, name, Some(password))?;
        store.add_roles(&user.id, &[admin::store::SALES_MANAGER.to_string()])?;
    }
    let generated = admin_password
        .is_none()
        .then(admin::passwords::random_password);
    let password = admin_password
        .or(generated.as_deref())
        .expect("one of them");
    let admin = store.create_user(
        admin::store::ADMIN_EMAIL,
        "System Administrator",
        Some(password),
    )?;
    store.add_roles(&admin.id, &[admin::store::SYSTEM_ADMINISTRATOR.to_string()])?;
    Ok(generated)
}

/// The org, its built-in provider (if any) and the routes.
type App = (Arc<Org>, Option<Arc<Idp>>, Router);

/// A bound listener, so callers learn the real port (for `127.0.0.1:0`) before serving.
pub struct BoundServer {
    listener: TcpListener,
}

/// A server running on the current tokio runtime.
pub struct RunningServer {
    pub url: String,
    pub org: Arc<Org>,
    /// The built-in provider, when the org uses it.
    pub idp: Option<Arc<Idp>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// The organization's routes over `url`'s organization, without a listener.
fn build_app(url: String, config: ServerConfig) -> Result<App, ServerError> {
    let (org, idp) = Org::new(url, config)?;
    let mut router = Router::new()
        .route("/.well-known/syncvault", get(discovery))
        .route("/api", get(api_root))
        .route("/api/me", get(me))
        .route("/api/auth/credentials", post(credentials))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(metrics::ready))
        .route("/metrics", get(metrics::render))
        .with_state(Arc::clone(&org))
        .nest("/api/dev", sync::dev_router(Arc::clone(&org)))
        .nest("/api/sync/v1", sync::retired_router())
        .nest(
            "/api/sync/v2",
            sync::router(Arc::clone(&org)).layer(axum::middleware::from_fn_with_state(
                Arc::clone(&org.faults),
                faults::inject,
            )),
        );
    if let Some(idp) = &idp {
        router = router.nest("/idp", idp.router());
    }
    let admin = Arc::new(admin::ops::Admin::new(
        Arc::clone(&org),
        http_client(org.config.extra_ca_pem.as_deref())?,
    ));
    router = router.nest("/admin", admin::router(admin));
    let router = router.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&org.metrics),
        metrics::track,
    ));
    Ok((org, idp, router))
}

/// The organization answered in process, without a socket: the simulator (`sim/`) sends each
/// request through the router itself, so one seed decides every interleaving and fault.
pub fn in_process(url: &str, config: ServerConfig) -> Result<(Arc<Org>, Router), ServerError> {
    let (org, _idp, router) = build_app(url.to_string(), config)?;
    Ok((org, router))
}

impl BoundServer {
    /// Binds `addr` ("127.0.0.1:0" picks a free port).
    pub async fn bind(addr: &str) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Ok(BoundServer { listener })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The organization URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr())
    }

    fn app(&self, config: ServerConfig) -> Result<App, ServerError> {
        build_app(self.url(), config)
    }

    /// Serves until the process ends; `ready` sees the organization before the first request
    /// (`syncvault serve` prints its URL and a first administrator password there).
    pub async fn serve(
        self,
        config: ServerConfig,
        ready: impl FnOnce(&Org),
    ) -> Result<(), ServerError> {
        let (org, _idp, router) = self.app(config)?;
        ready(&org);
        axum::serve(self.listener, router)
            .await
            .map_err(ServerError::Serve)
    }

    /// Serves in the background; stops when the returned handle is dropped.
    pub fn spawn(self, config: ServerConfig) -> Result<RunningServer, ServerError> {
        let url = self.url();
        let (org, idp, router) = self.app(config)?;
        let handle = tokio::spawn(async move {
            let _ = axum::serve(self.listener, router).await;
        });
        Ok(RunningServer {
            url,
            org,
            idp,
            handle,
        })
    }
}
