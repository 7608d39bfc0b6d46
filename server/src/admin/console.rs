//! The Admin Console's pages under `/admin`: server-rendered HTML from compile-checked askama
//! templates (`server/templates/admin/`, escaped everywhere), a small stylesheet, no JavaScript.
//! Sessions are tower-sessions cookies (HttpOnly, SameSite=Strict, Secure over https, a new id at
//! every sign-in); every form carries the session's CSRF token and every POST checks it. The
//! anonymous sign-in page never writes a session (a cross-site link would otherwise replace an
//! open tab's): its forms carry login_cookies.rs's double-submit token.
//!
//! The seed's steps: Settings > Organization (Connect..., Import Users), Resources > Users
//! (Domain Name, roles, disable), Devices (wipe, sign out, force full sync).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use super::directory::ImportAction;
use super::identity::SignInPolicy;
use super::login_cookies;
use super::oauth::Purpose;
use super::ops::{Admin, AdminError, DirectoryRow, Via};
use super::sessions::SqliteSessions;
use super::store::{Depth, DeviceCommand, OrgUser, Privilege, ProviderConnection, Role, UserEdit};
use crate::sync::schema::{FieldDef, Schema};

const USER_ID: &str = "user_id";
const VIA: &str = "via";
const CSRF: &str = "csrf";

/// What every page shows around its content.
struct Page {
    title: String,
    org_name: String,
    csrf: String,
    signed_in: bool,
    admin_email: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    page: Page,
    connected: bool,
    provider_name: String,
    /// The browser says it holds a session (a link from another site arrives without it).
    signed_in_elsewhere: bool,
}

#[derive(Template)]
#[template(path = "admin/organization.html")]
struct OrganizationPage {
    page: Page,
    org_url: String,
    user_modes: String,
    provider_name: String,
    /// The name the administrator gave the provider (empty: derived from its issuer).
    custom_provider_name: String,
    connection: Option<ProviderConnection>,
    policy: SignInPolicy,
}

/// "Are you sure?" for what cannot be undone, naming what it acts on.
#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    page: Page,
    question: String,
    detail: String,
    action: String,
    button: &'static str,
    back: &'static str,
}

#[derive(Template)]
#[template(path = "admin/import.html")]
struct ImportPage {
    page: Page,
    rows: Vec<DirectoryRow>,
    roles: Vec<String>,
    results: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    page: Page,
    users: Vec<OrgUser>,
    search: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    page: Page,
    user: OrgUser,
    directory: Vec<DirectoryRow>,
    unlisted: Option<String>,
    roles: Vec<String>,
}

/// A device as the Devices page shows it.
struct DeviceRow {
    client_id: String,
    name: String,
    user_email: String,
    app_version: String,
    last_seen: String,
    last_result: String,
    records_held: String,
    pending_edits: String,
    status: String,
    /// Wiped (or asked to be): nothing is left to command.
    wiped: bool,
}

#[derive(Template)]
#[template(path = "admin/devices.html")]
struct DevicesPage {
    page: Page,
    devices: Vec<DeviceRow>,
    commands: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
struct RolesPage {
    page: Page,
    roles: Vec<RoleRows>,
    depths: Vec<(&'static str, &'static str)>,
}

/// A role as its form shows it: one row per entity of the schema, granted or not.
struct RoleRows {
    name: String,
    rows: Vec<PrivilegeRow>,
}

/// One entity's privileges: `(read|create|write|delete, the depth's form value)`.
struct PrivilegeRow {
    entity: String,
    cells: [(&'static str, &'static str); 4],
}

/// One entity of the schema as the Schema page shows it.
struct SchemaEntity {
    name: String,
    fields: Vec<FieldDef>,
    /// The sync filter as JSON, empty when there is none.
    filter: String,
}

#[derive(Template)]
#[template(path = "admin/schema.html")]
struct SchemaPage {
    page: Page,
    version: i64,
    entities: Vec<SchemaEntity>,
    /// The attachment policy (the built-in attachment entity is not listed with the others).
    policy: crate::sync::blobs::AttachmentPolicy,
    /// `auto_download_entities` as typed: comma-separated.
    policy_entities: String,
}

const STYLE: &str = include_str!("../../templates/admin/style.css");

/// The console's routes with their session layer.
pub fn router(admin: Arc<Admin>) -> Router {
    let secure = admin.org.url.starts_with("https://");
    let sessions = SessionManagerLayer::new(SqliteSessions(Arc::clone(&admin.org.store)))
        .with_name("syncvault_admin")
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(secure)
        .with_path("/admin")
        .with_expiry(Expiry::OnInactivity(Duration::minutes(30)));
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin/settings") }))
        .route("/style.css", get(style))
        .route("/login", get(login_page).post(password_login))
        .route("/login/provider", post(provider_login))
        .route("/oauth/callback", get(callback))
        .route("/logout", post(logout))
        .route("/settings", get(organization))
        .route("/settings/connect", post(connect))
        .route(
            "/settings/disconnect",
            get(confirm_disconnect).post(disconnect),
        )
        .route("/settings/provider-name", post(save_provider_name))
        .route("/settings/sign-in", post(save_sign_in_policy))
        .route("/import", get(import_page).post(import))
        .route("/users", get(users).post(create_user))
        .route("/users/{id}", get(user_page).post(save_user))
        .route("/roles", get(roles))
        .route("/roles/{name}", post(save_role))
        .route("/schema", get(schema_page))
        .route("/schema/fields", post(add_field))
        .route("/schema/entities", post(add_entity))
        .route("/schema/retire", post(retire_field))
        .route("/schema/sortable", post(set_sortable))
        .route("/schema/filter", post(set_filter))
        .route("/schema/attachments", post(set_attachment_policy))
        .route("/devices", get(devices))
        .route(
            "/devices/{client_id}/{command}",
            get(confirm_command).post(command_device),
        )
        .with_state(admin)
        .layer(sessions)
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], STYLE).into_response()
}

/// A form's fields, repeated names included (checkboxes).
#[derive(Deserialize)]
#[serde(transparent)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The session's CSRF token, made on first use.
async fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF).await {
        return t;
    }
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let _ = session.insert(CSRF, &t).await;
    t
}

/// A POST whose CSRF token is missing or wrong is refused before anything happens.
async fn check_csrf(session: &Session, fields: &Fields) -> Result<(), Response> {
    let expected = session.get::<String>(CSRF).await.ok().flatten();
    match (expected, fields.get(CSRF)) {
        (Some(e), Some(got)) if constant_eq(e.as_bytes(), got.as_bytes()) => Ok(()),
        _ => Err(refused_form()),
    }
}

fn refused_form() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html("<!doctype html><title>Refused</title><p>This form is out of date or was not sent by the Admin Console. Reload the page and try again.</p>"),
    )
        .into_response()
}

pub(super) fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in administrator, or a redirect to the sign-in page.
async fn signed_in(admin: &Admin, session: &Session) -> Result<OrgUser, Response> {
    let user_id = session.get::<String>(USER_ID).await.ok().flatten();
    let via = session.get::<Via>(VIA).await.ok().flatten();
    match (user_id, via) {
        (Some(id), Some(via)) => admin
            .require_admin(&id, via)
            .map_err(|_| Redirect::to("/admin/login").into_response()),
        _ => Err(Redirect::to("/admin/login").into_response()),
    }
}

async fn page(admin: &Admin, session: &Session, title: &str, user: Option<&OrgUser>) -> Page {
    let notice = session.remove::<String>("notice").await.ok().flatten();
    Page {
        title: title.to_string(),
        org_name: admin.org.config.org_name.clone(),
        csrf: csrf_token(session).await,
        signed_in: user.is_some(),
        admin_email: user.map(|u| u.email.clone()).unwrap_or_default(),
        notice,
        error: None,
    }
}

fn render(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("template: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Shown on the next page (after a redirect).
async fn notice(session: &Session, text: impl Into<String>) {
    let _ = session.insert("notice", text.into()).await;
}

async fn login_page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    sign_in_page(&admin, &headers, StatusCode::OK, None)
}

/// The sign-in page, with `error`: it never touches the session (login_cookies.rs says why).
fn sign_in_page(
    admin: &Admin,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let secure = admin.org.url.starts_with("https://");
    let (csrf, set_cookie) = login_cookies::login_token(headers, secure);
    let body = render(LoginPage {
        page: Page {
            title: "Sign in".into(),
            org_name: admin.org.config.org_name.clone(),
            csrf,
            signed_in: false,
            admin_email: String::new(),
            notice: None,
            error,
        },
        connected: admin.connection().ok().flatten().is_some(),
        provider_name: admin.provider_label(),
        signed_in_elsewhere: login_cookies::signed_in_hint(headers),
    });
    let mut response = (status, body).into_response();
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A response that signs the browser in: the session (start_session) and the hint cookie.
fn with_signed_in_hint(admin: &Admin, on: bool, response: impl IntoResponse) -> Response {
    let secure = admin.org.url.starts_with("https://");
    let mut response = response.into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        login_cookies::set_signed_in_hint(on, secure),
    );
    response
}

/// Signs `user` in: a new session id (no fixation), the user and how they proved it.
async fn start_session(session: &Session, user: &OrgUser, via: Via) {
    let _ = session.cycle_id().await;
    let _ = session.remove::<String>(CSRF).await;
    let _ = session.insert(USER_ID, &user.id).await;
    let _ = session.insert(VIA, via).await;
}

async fn password_login(
    State(admin): State<Arc<Admin>>,
    session: Session,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    // A sign-in form whose token is not the browser's is refused before anything happens.
    if !login_cookies::login_token_matches(&headers, fields.get(CSRF)) {
        return refused_form();
    }
    let (email, password) = (
        fields.get("email").unwrap_or_default(),
        fields.get("password").unwrap_or_default(),
    );
    match admin.password_login(email, password).await {
        Ok(user) => {
            start_session(&session, &user, Via::Password).await;
            with_signed_in_hint(&admin, true, Redirect::to("/admin/settings"))
        }
        Err(e) => {
            let status = match e {
                AdminError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            sign_in_page(&admin, &headers, status, Some(e.to_string()))
        }
    }
}

async fn provider_login(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    // A sign-in form whose token is not the browser's is refused before anything happens.
    if !login_cookies::login_token_matches(&headers, fields.get(CSRF)) {
        return refused_form();
    }
    match admin.start_provider_sign_in(Purpose::ConsoleLogin).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => sign_in_page(&admin, &headers, e.clone_status(), Some(e.to_string())),
    }
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider's answer to a Connect or a sign-in (console or `syncvault admin`).
async fn callback(
    State(admin): State<Arc<Admin>>,
    session: Session,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let (Some(code), Some(state)) = (q.code, q.state) else {
        let e = AdminError::Invalid(format!(
            "the identity provider did not sign you in ({})",
            q.error
                .as_deref()
                .filter(|c| c.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or("no code")
        ));
        return sign_in_page(&admin, &headers, e.clone_status(), Some(e.to_string()));
    };
    match admin.finish_provider_sign_in(&state, &code).await {
        Ok((Purpose::ApiLogin, user)) => match admin.create_api_token(&user, Via::Provider) {
            Ok(token) => {
                axum::Json(serde_json::json!({"token": token, "user": user})).into_response()
            }
            Err(e) => e.into_response(),
        },
        Ok((Purpose::Connect { api: true, .. }, _)) => {
            axum::Json(super::api::organization_json(&admin).unwrap_or_default()).into_response()
        }
        Ok((Purpose::Connect { .. }, user)) => {
            // The administrator just signed in at the provider: the session now counts as that.
            start_session(&session, &user, Via::Provider).await;
            notice(
                &session,
                "Connected. From now on every login goes through the provider.",
            )
            .await;
            with_signed_in_hint(&admin, true, Redirect::to("/admin/settings"))
        }
        Ok((Purpose::ConsoleLogin, user)) => {
            start_session(&session, &user, Via::Provider).await;
            with_signed_in_hint(&admin, true, Redirect::to("/admin/settings"))
        }
        Err(e) => sign_in_page(&admin, &headers, e.clone_status(), Some(e.to_string())),
    }
}

/// The error page for a signed-in administrator's operation.
async fn failed(
    admin: &Admin,
    session: &Session,
    title: &str,
    user: Option<&OrgUser>,
    error: AdminError,
) -> Response {
    let status = error.clone_status();
    let mut p = page(admin, session, title, user).await;
    p.error = Some(error.to_string());
    let body = render(LoginPage {
        page: p,
        connected: admin.connection().ok().flatten().is_some(),
        provider_name: admin.provider_label(),
        signed_in_elsewhere: false,
    });
    (status, body).into_response()
}

impl AdminError {
    fn clone_status(&self) -> StatusCode {
        match self {
            AdminError::NotSignedIn | AdminError::BadCredentials => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) | AdminError::ProviderSignInRequired => StatusCode::FORBIDDEN,
            AdminError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

async fn logout(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    let _ = session.flush().await;
    with_signed_in_hint(&admin, false, Redirect::to("/admin/login"))
}

/// Runs a signed-in page handler; an operation's error is shown on that page.
macro_rules! signed_in_or_redirect {
    ($admin:expr, $session:expr) => {
        match signed_in(&$admin, &$session).await {
            Ok(user) => user,
            Err(redirect) => return redirect,
        }
    };
}

async fn organization(State(admin): State<Arc<Admin>>, session: Session) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    render(OrganizationPage {
        page: page(&admin, &session, "Settings > Organization", Some(&user)).await,
        org_url: admin.org.url.clone(),
        user_modes: admin.org.user_modes().join(", "),
        provider_name: admin.provider_label(),
        custom_provider_name: admin
            .org
            .store
            .provider_label()
            .ok()
            .flatten()
            .unwrap_or_default(),
        connection: admin.connection().ok().flatten(),
        policy: admin.org.store.sign_in_policy().unwrap_or_default(),
    })
}

async fn confirm_disconnect(State(admin): State<Arc<Admin>>, session: Session) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    let Some(connection) = admin.connection().ok().flatten() else {
        return Redirect::to("/admin/settings").into_response();
    };
    render(ConfirmPage {
        page: page(&admin, &session, "Settings > Organization", Some(&user)).await,
        question: format!(
            "Disconnect the organization from {} ({})?",
            admin.provider_label(),
            connection.issuer
        ),
        detail: "Password sign-in (the console's and credentials mode) works again; signing in \
                 through the provider keeps working, and users keep their Domain Names."
            .into(),
        action: "/admin/settings/disconnect".into(),
        button: "Disconnect",
        back: "/admin/settings",
    })
}

async fn save_provider_name(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    let saved = admin.set_provider_label(fields.get("provider_name").unwrap_or_default());
    back_to_settings(&admin, &session, &user, saved, "Saved the provider's name.").await
}

/// Back to Settings > Organization with `done` as the notice, or the page with the error.
async fn back_to_settings(
    admin: &Admin,
    session: &Session,
    user: &OrgUser,
    result: Result<(), AdminError>,
    done: &str,
) -> Response {
    match result {
        Ok(()) => {
            notice(session, done).await;
            Redirect::to("/admin/settings").into_response()
        }
        Err(e) => failed(admin, session, "Settings > Organization", Some(user), e).await,
    }
}

async fn save_sign_in_policy(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    let policy = SignInPolicy {
        match_email: fields.get("match_email") == Some("on"),
        provision_unknown: fields.get("provision_unknown") == Some("on"),
    };
    let saved = admin.set_sign_in_policy(policy);
    back_to_settings(&admin, &session, &user, saved, "Saved who may sign in.").await
}

async fn connect(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    match admin
        .start_provider_sign_in(Purpose::Connect {
            user_id: user.id.clone(),
            api: false,
        })
        .await
    {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => failed(&admin, &session, "Settings > Organization", Some(&user), e).await,
    }
}

async fn disconnect(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let _user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    match admin.disconnect() {
        Ok(()) => {
            notice(&session, "Disconnected: password sign-in works again.").await;
            Redirect::to("/admin/settings").into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn role_names(admin: &Admin) -> Vec<String> {
    admin
        .org
        .store
        .roles()
        .map(|r| r.into_iter().map(|r| r.name).collect())
        .unwrap_or_default()
}

/// One line of an import's result, for the page.
fn describe(action: &ImportAction) -> String {
    match action {
        ImportAction::Associate { entry, .. } => {
            format!(
                "{}: associated with the existing user of that email",
                entry.email
            )
        }
        ImportAction::Create { entry, .. } => format!("{}: created", entry.email),
        ImportAction::AlreadyLinked { entry, .. } => {
            format!("{}: already linked (roles added)", entry.email)
        }
        ImportAction::LinkedElsewhere { entry, .. } => format!(
            "{}: not imported, that user is linked to another provider account",
            entry.email
        ),
        ImportAction::Duplicate { email, entries } => format!(
            "{email}: not imported, {} provider users share this email",
            entries.len()
        ),
    }
}

async fn import_view(
    admin: &Admin,
    session: &Session,
    user: &OrgUser,
    results: Vec<String>,
) -> Response {
    let mut p = page(admin, session, "Import Users", Some(user)).await;
    let rows = match admin.directory().await {
        Ok(rows) => rows,
        Err(e) => {
            p.error = Some(e.to_string());
            Vec::new()
        }
    };
    render(ImportPage {
        page: p,
        rows,
        roles: role_names(admin),
        results,
    })
}

async fn import_page(State(admin): State<Arc<Admin>>, session: Session) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    import_view(&admin, &session, &user, Vec::new()).await
}

async fn import(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    match admin.import(&fields.all("id"), &fields.all("role")).await {
        Ok(plan) => {
            let results = plan.iter().map(describe).collect();
            import_view(&admin, &session, &user, results).await
        }
        Err(e) => failed(&admin, &session, "Import Users", Some(&user), e).await,
    }
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    search: String,
}

async fn users(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Query(q): Query<Search>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    render(UsersPage {
        page: page(&admin, &session, "Resources > Users", Some(&user)).await,
        users: admin.org.store.users(&q.search).unwrap_or_default(),
        search: q.search,
    })
}

async fn create_user(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    match admin.create_user(
        fields.get("email").unwrap_or_default(),
        fields.get("name").unwrap_or_default(),
    ) {
        Ok(created) => Redirect::to(&format!("/admin/users/{}", created.id)).into_response(),
        Err(e) => failed(&admin, &session, "Resources > Users", Some(&user), e).await,
    }
}

async fn user_page(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let me = signed_in_or_redirect!(admin, session);
    let Some(user) = admin.org.store.user(&id).ok().flatten() else {
        return (StatusCode::NOT_FOUND, "no such user").into_response();
    };
    let mut p = page(&admin, &session, "Resources > Users", Some(&me)).await;
    let directory = admin.directory().await.unwrap_or_else(|e| {
        p.error = Some(e.to_string());
        Vec::new()
    });
    let unlisted = user
        .domain_name
        .clone()
        .filter(|d| !directory.iter().any(|r| &r.domain_name == d));
    render(UserPage {
        page: p,
        user,
        directory,
        unlisted,
        roles: role_names(&admin),
    })
}

async fn save_user(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let me = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    let edit = UserEdit {
        name: fields.get("name").unwrap_or_default().to_string(),
        domain_name: fields.get("domain_name").map(str::to_string),
        enabled: fields.get("enabled") == Some("on"),
        roles: fields.all("role"),
        business_unit: fields.get("business_unit").map(str::to_string),
    };
    match admin.save_user(&id, &edit) {
        Ok(saved) => {
            notice(&session, format!("Saved {}.", saved.email)).await;
            Redirect::to("/admin/users").into_response()
        }
        Err(e) => failed(&admin, &session, "Resources > Users", Some(&me), e).await,
    }
}

const DEPTHS: [(Depth, &str, &str); 4] = [
    (Depth::None, "none", "None"),
    (Depth::Own, "own", "User"),
    (Depth::Unit, "unit", "Business Unit"),
    (Depth::Organization, "organization", "Organization"),
];

fn depth_value(d: Depth) -> &'static str {
    DEPTHS
        .iter()
        .find(|(x, ..)| *x == d)
        .map_or("none", |(_, v, _)| v)
}

async fn roles(State(admin): State<Arc<Admin>>, session: Session) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    let schema = admin.org.data.schema();
    let entities: Vec<String> = schema.role_entities().map(|e| e.name.clone()).collect();
    let roles = admin
        .org
        .store
        .roles()
        .unwrap_or_default()
        .into_iter()
        .map(|r| RoleRows {
            rows: entities
                .iter()
                .map(|e| {
                    let granted = r.privileges.iter().find(|p| &p.entity == e);
                    let depth =
                        |d: fn(&Privilege) -> Depth| depth_value(granted.map_or(Depth::None, d));
                    PrivilegeRow {
                        entity: e.clone(),
                        cells: [
                            ("read", depth(|p| p.read)),
                            ("create", depth(|p| p.create)),
                            ("write", depth(|p| p.write)),
                            ("delete", depth(|p| p.delete)),
                        ],
                    }
                })
                .collect(),
            name: r.name,
        })
        .collect();
    render(RolesPage {
        page: page(&admin, &session, "Resources > Roles", Some(&user)).await,
        roles,
        depths: DEPTHS.iter().map(|(_, v, l)| (*v, *l)).collect(),
    })
}

/// Saves a role's privileges from its form: `{entity}.{read|create|write|delete}` = a depth.
async fn save_role(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Path(name): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let _user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    let depth = |entity: &str, what: &str| -> Result<Depth, AdminError> {
        let key = format!("{entity}.{what}");
        let value = fields.get(&key).unwrap_or("none");
        DEPTHS
            .iter()
            .find(|(_, v, _)| *v == value)
            .map(|(d, ..)| *d)
            .ok_or_else(|| AdminError::Invalid(format!("{key}: no depth {value:?}")))
    };
    let schema = admin.org.data.schema();
    let privileges: Result<Vec<Privilege>, AdminError> = schema
        .role_entities()
        .map(|e| {
            Ok(Privilege {
                read: depth(&e.name, "read")?,
                create: depth(&e.name, "create")?,
                write: depth(&e.name, "write")?,
                delete: depth(&e.name, "delete")?,
                entity: e.name.clone(),
            })
        })
        .collect();
    let saved = privileges.and_then(|privileges| {
        let privileges = privileges
            .into_iter()
            .filter(|p| [p.read, p.create, p.write, p.delete] != [Depth::None; 4])
            .collect();
        Ok(admin.org.store.set_role(&Role {
            name: name.clone(),
            privileges,
        })?)
    });
    match saved {
        Ok(()) => {
            notice(
                &session,
                format!(
                    "Saved the role {name}: devices get what it changes at their next Synchronize."
                ),
            )
            .await;
            Redirect::to("/admin/roles").into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn schema_view(
    admin: &Admin,
    session: &Session,
    user: &OrgUser,
    error: Option<String>,
) -> Response {
    let schema = admin.org.data.schema();
    let mut page = page(admin, session, "Settings > Schema", Some(user)).await;
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page.error = error;
    let entities = schema
        .role_entities()
        .map(|e| SchemaEntity {
            filter: e
                .sync_filter
                .as_ref()
                .map(|f| serde_json::to_string(f).expect("json"))
                .unwrap_or_default(),
            name: e.name.clone(),
            fields: e.fields.clone(),
        })
        .collect();
    let policy = admin.org.data.attachment_policy();
    let body = render(SchemaPage {
        page,
        version: schema.version,
        entities,
        policy_entities: policy.auto_download_entities.join(", "),
        policy,
    });
    (status, body).into_response()
}

async fn schema_page(State(admin): State<Arc<Admin>>, session: Session) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    schema_view(&admin, &session, &user, None).await
}

/// Applies one schema change from a form: the schema page again with a notice, or with the
/// reason it was refused (nothing changed).
async fn change_schema(
    admin: &Admin,
    session: &Session,
    fields: &Fields,
    change: impl FnOnce(&mut Schema) -> Result<String, String>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(session, fields).await {
        return refused;
    }
    let mut done = String::new();
    match admin
        .org
        .data
        .evolve_schema(|s| change(s).map(|d| done = d))
    {
        Ok(schema) => {
            tracing::info!(version = schema.version, "schema changed in the console");
            notice(session, done).await;
            Redirect::to("/admin/schema").into_response()
        }
        Err(why) => schema_view(admin, session, &user, Some(why)).await,
    }
}

async fn add_field(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let entity = fields.get("entity").unwrap_or_default().to_string();
    let spec = fields.get("spec").unwrap_or_default().to_string();
    change_schema(&admin, &session, &fields, |s| {
        let field = FieldDef::parse_spec(&spec)?;
        let name = field.name.clone();
        s.add_field(&entity, field)?;
        Ok(format!(
            "Added {entity}.{name}: devices download its values at their next Synchronize."
        ))
    })
    .await
}

async fn add_entity(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let name = fields.get("name").unwrap_or_default().trim().to_string();
    let specs = fields.get("fields").unwrap_or_default().to_string();
    change_schema(&admin, &session, &fields, |s| {
        let defs = specs
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(FieldDef::parse_spec)
            .collect::<Result<Vec<_>, _>>()?;
        s.add_entity(&name, defs)?;
        Ok(format!(
            "Added the entity {name}: give roles privileges on it to sync it."
        ))
    })
    .await
}

async fn retire_field(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let entity = fields.get("entity").unwrap_or_default().to_string();
    let field = fields.get("field").unwrap_or_default().to_string();
    change_schema(&admin, &session, &fields, |s| {
        s.retire_field(&entity, &field)?;
        Ok(format!("Retired {entity}.{field}: it takes no new values."))
    })
    .await
}

/// The per-field toggle: `on` is "true" to make the field sortable, anything else to stop.
async fn set_sortable(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let entity = fields.get("entity").unwrap_or_default().to_string();
    let field = fields.get("field").unwrap_or_default().to_string();
    let on = fields.get("on") == Some("true");
    change_schema(&admin, &session, &fields, |s| {
        s.set_sortable(&entity, &field, on)?;
        Ok(if on {
            format!("{entity}.{field} is sortable: devices index it at their next Synchronize.")
        } else {
            format!("{entity}.{field} is no longer sortable.")
        })
    })
    .await
}

/// The attachment policy form: sizes in bytes, entities comma-separated (empty: all).
async fn set_attachment_policy(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    let size = |name: &str| {
        fields
            .get(name)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{name} is a number of bytes"))
    };
    let entities: Vec<String> = fields
        .get("auto_download_entities")
        .unwrap_or_default()
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    let saved = (|| {
        admin
            .org
            .data
            .set_attachment_policy(&crate::sync::blobs::AttachmentPolicy {
                max_upload_bytes: size("max_upload_bytes")?,
                auto_download_max_bytes: size("auto_download_max_bytes")?,
                auto_download_entities: entities,
                device_quota_bytes: size("device_quota_bytes")?,
            })
    })();
    match saved {
        Ok(()) => {
            notice(
                &session,
                "Saved the attachment policy: devices follow it at their next Synchronize.",
            )
            .await;
            Redirect::to("/admin/schema").into_response()
        }
        Err(why) => schema_view(&admin, &session, &user, Some(why)).await,
    }
}

async fn set_filter(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let entity = fields.get("entity").unwrap_or_default().to_string();
    let text = fields.get("filter").unwrap_or_default().trim().to_string();
    change_schema(&admin, &session, &fields, |s| {
        let filter = match text.as_str() {
            "" => None,
            t => Some(serde_json::from_str(t).map_err(|e| format!("the filter is not valid JSON of a sync filter: {e}"))?),
        };
        let cleared = filter.is_none();
        s.set_filter(&entity, filter)?;
        Ok(if cleared {
            format!("Cleared the sync filter of {entity}.")
        } else {
            format!("Saved the sync filter of {entity}: devices get what entered and lose what left at their next Synchronize.")
        })
    })
    .await
}

/// A unix time as the Devices page shows it (UTC).
fn when(unix: i64) -> String {
    tower_sessions::cookie::time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_default()
}

async fn devices(State(admin): State<Arc<Admin>>, session: Session) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    let rows = admin
        .org
        .store
        .devices()
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let wiped = d.pending_command == Some(DeviceCommand::Wipe)
                || d.delivered_command == Some(DeviceCommand::Wipe);
            let status = match (d.pending_command, d.delivered_command) {
                (Some(c), _) => format!("{} requested", command_label(c)),
                (None, Some(c)) => format!(
                    "{} done {}",
                    command_label(c),
                    d.delivered_at.map(when).unwrap_or_default()
                ),
                (None, None) => "Active".into(),
            };
            let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
            DeviceRow {
                name: d.report.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                user_email: d.user_email.clone(),
                app_version: d.report.app_version.clone().unwrap_or_default(),
                last_seen: when(d.last_seen),
                last_result: d.report.last_result.clone().unwrap_or_default(),
                records_held: number(d.report.records_held),
                pending_edits: number(d.report.pending_edits),
                status,
                wiped,
                client_id: d.client_id,
            }
        })
        .collect();
    render(DevicesPage {
        page: page(&admin, &session, "Devices", Some(&user)).await,
        devices: rows,
        commands: vec![("sign-out", "Sign out"), ("full-sync", "Force full sync")],
    })
}

fn command_label(c: DeviceCommand) -> &'static str {
    match c {
        DeviceCommand::Wipe => "Wipe",
        DeviceCommand::SignOut => "Sign out",
        DeviceCommand::FullSync => "Full sync",
    }
}

/// Wipe asks first, naming the device and its user; the other commands need no confirmation.
async fn confirm_command(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Path((client_id, command)): Path<(String, String)>,
) -> Response {
    let user = signed_in_or_redirect!(admin, session);
    let device = admin
        .org
        .store
        .devices()
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.client_id == client_id);
    let (Some(device), "wipe") = (device, command.as_str()) else {
        return Redirect::to("/admin/devices").into_response();
    };
    let name = device.report.name.unwrap_or_else(|| "(unnamed)".into());
    render(ConfirmPage {
        page: page(&admin, &session, "Devices", Some(&user)).await,
        question: format!("Wipe {name} of {}?", device.user_email),
        detail: format!(
            "At its next contact the device {client_id} erases its offline data, unsent edits \
             included. This cannot be undone; the person sets the app up again."
        ),
        action: format!("/admin/devices/{client_id}/wipe"),
        button: "Wipe",
        back: "/admin/devices",
    })
}

async fn command_device(
    State(admin): State<Arc<Admin>>,
    session: Session,
    Path((client_id, command)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let _user = signed_in_or_redirect!(admin, session);
    if let Err(refused) = check_csrf(&session, &fields).await {
        return refused;
    }
    let done = super::api::parse_command(&command)
        .and_then(|c| admin.command_device(&client_id, c).map(|()| c));
    match done {
        Ok(c) => {
            notice(
                &session,
                format!(
                    "{}: the device does it at its next contact.",
                    command_label(c)
                ),
            )
            .await;
            Redirect::to("/admin/devices").into_response()
        }
        Err(e) => e.into_response(),
    }
}
