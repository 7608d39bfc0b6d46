//! The Admin Console's JSON API under `/admin/api`, for `syncvault admin ...` and tests: the same
//! operations as the pages (ops.rs), authenticated by a bearer token from `POST /session` (a
//! password, before the provider is connected) or from the provider's sign-in.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::identity::SignInPolicy;
use super::oauth::Purpose;
use super::ops::{Admin, AdminError, Via};
use super::store::{DeviceCommand, OrgUser, Privilege, Role, UserEdit};
use crate::sync::blobs::AttachmentPolicy;
use crate::sync::schema::{FieldDef, Schema};
use crate::sync::scope::SyncFilter;

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AdminError::NotSignedIn | AdminError::BadCredentials => {
                (StatusCode::UNAUTHORIZED, "not_signed_in")
            }
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AdminError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            AdminError::ProviderSignInRequired => {
                (StatusCode::FORBIDDEN, "provider_sign_in_required")
            }
            AdminError::Invalid(_) | AdminError::OAuth(_) => {
                (StatusCode::BAD_REQUEST, "invalid_request")
            }
            AdminError::Directory(_) => (StatusCode::BAD_GATEWAY, "directory_unavailable"),
            AdminError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        let body = Json(json!({"error": code, "error_description": self.to_string()}));
        match self {
            AdminError::TooManyAttempts(wait) => {
                (status, [(header::RETRY_AFTER, wait.to_string())], body).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

/// The administrator behind the request's bearer token.
fn caller(admin: &Admin, headers: &HeaderMap) -> Result<OrgUser, AdminError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AdminError::NotSignedIn)?;
    admin.api_token_user(token.trim())
}

type ApiResult = Result<Response, AdminError>;

pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/session", post(password_session).delete(end_session))
        .route("/session/provider", post(provider_session))
        .route("/organization", get(organization))
        .route("/sign-in-policy", put(set_sign_in_policy))
        .route("/connect", post(connect))
        .route("/disconnect", post(disconnect))
        .route("/directory", get(directory))
        .route("/import", post(import))
        .route("/users", get(users).post(create_user))
        .route("/users/{id}", get(user).put(save_user))
        .route("/roles", get(roles))
        .route("/roles/{name}", put(save_role))
        .route("/schema", get(schema))
        .route("/schema/entities", post(add_entity))
        .route("/schema/entities/{entity}/fields", post(add_field))
        .route(
            "/schema/entities/{entity}/fields/{field}",
            delete(retire_field),
        )
        .route(
            "/schema/entities/{entity}/fields/{field}/sortable",
            put(set_sortable),
        )
        .route("/schema/entities/{entity}/filter", put(set_filter))
        .route("/records/{entity}/assign", post(assign_records))
        .route(
            "/attachment-policy",
            get(attachment_policy).put(set_attachment_policy),
        )
        .route("/devices", get(devices))
        .route("/devices/{client_id}/{command}", post(command_device))
        .with_state(admin)
}

#[derive(Deserialize)]
struct PasswordSession {
    email: String,
    password: String,
}

async fn password_session(
    State(admin): State<Arc<Admin>>,
    Json(req): Json<PasswordSession>,
) -> ApiResult {
    let user = admin.password_login(&req.email, &req.password).await?;
    let token = admin.create_api_token(&user, Via::Password)?;
    Ok(Json(json!({"token": token, "user": user})).into_response())
}

async fn provider_session(State(admin): State<Arc<Admin>>) -> ApiResult {
    let url = admin.start_provider_sign_in(Purpose::ApiLogin).await?;
    Ok(Json(json!({"authorization_url": url})).into_response())
}

async fn end_session(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    admin.end_api_token(token.trim())?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The organization's settings: what Settings > Organization shows.
pub(super) fn organization_json(admin: &Admin) -> Result<serde_json::Value, AdminError> {
    let connection = admin.connection()?;
    Ok(json!({
        "name": admin.org.config.org_name,
        "url": admin.org.url,
        "issuer": admin.issuer(),
        "user_modes": admin.org.user_modes(),
        "connection": connection,
        "directory": admin.directory_source().is_some(),
        "sign_in_policy": admin.org.store.sign_in_policy()?,
    }))
}

async fn set_sign_in_policy(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Json(policy): Json<SignInPolicy>,
) -> ApiResult {
    caller(&admin, &headers)?;
    admin.set_sign_in_policy(policy)?;
    Ok(Json(organization_json(&admin)?).into_response())
}

async fn organization(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(organization_json(&admin)?).into_response())
}

async fn connect(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    let user = caller(&admin, &headers)?;
    let url = admin
        .start_provider_sign_in(Purpose::Connect {
            user_id: user.id,
            api: true,
        })
        .await?;
    Ok(Json(json!({"authorization_url": url})).into_response())
}

async fn disconnect(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    admin.disconnect()?;
    Ok(Json(organization_json(&admin)?).into_response())
}

async fn directory(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.directory().await?).into_response())
}

#[derive(Deserialize)]
struct ImportRequest {
    ids: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

async fn import(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Json(req): Json<ImportRequest>,
) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.import(&req.ids, &req.roles).await?).into_response())
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    search: String,
}

async fn users(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<Search>,
) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.org.store.users(&q.search)?).into_response())
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    name: String,
}

async fn create_user(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Json(req): Json<NewUser>,
) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.create_user(&req.email, &req.name)?).into_response())
}

async fn user(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    caller(&admin, &headers)?;
    match admin.org.store.user(&id)? {
        Some(u) => Ok(Json(u).into_response()),
        None => Err(AdminError::Invalid("no such user".into())),
    }
}

async fn save_user(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(edit): Json<UserEdit>,
) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.save_user(&id, &edit)?).into_response())
}

async fn roles(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.org.store.roles()?).into_response())
}

async fn save_role(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(privileges): Json<Vec<Privilege>>,
) -> ApiResult {
    caller(&admin, &headers)?;
    let role = Role { name, privileges };
    admin.org.store.set_role(&role)?;
    Ok(Json(role).into_response())
}

async fn schema(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.org.data.schema()).into_response())
}

/// Applies a schema change, or says why it was refused (nothing changed).
fn evolve(admin: &Admin, change: impl FnOnce(&mut Schema) -> Result<(), String>) -> ApiResult {
    let schema = admin
        .org
        .data
        .evolve_schema(change)
        .map_err(AdminError::Invalid)?;
    tracing::info!(version = schema.version, "schema changed");
    Ok(Json(schema).into_response())
}

#[derive(Deserialize)]
struct NewEntity {
    name: String,
    fields: Vec<FieldDef>,
}

async fn add_entity(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Json(e): Json<NewEntity>,
) -> ApiResult {
    caller(&admin, &headers)?;
    evolve(&admin, |s| s.add_entity(&e.name, e.fields))
}

async fn add_field(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Json(field): Json<FieldDef>,
) -> ApiResult {
    caller(&admin, &headers)?;
    evolve(&admin, |s| s.add_field(&entity, field))
}

async fn retire_field(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((entity, field)): Path<(String, String)>,
) -> ApiResult {
    caller(&admin, &headers)?;
    evolve(&admin, |s| s.retire_field(&entity, &field))
}

/// Body: `true` or `false`.
async fn set_sortable(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((entity, field)): Path<(String, String)>,
    Json(on): Json<bool>,
) -> ApiResult {
    caller(&admin, &headers)?;
    evolve(&admin, |s| s.set_sortable(&entity, &field, on))
}

async fn set_filter(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Json(filter): Json<Option<SyncFilter>>,
) -> ApiResult {
    caller(&admin, &headers)?;
    evolve(&admin, |s| s.set_filter(&entity, filter))
}

async fn attachment_policy(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.org.data.attachment_policy()).into_response())
}

/// Sets what devices upload, download automatically and keep (docs/protocol.md, "Attachments");
/// an entity that is not in the schema is refused.
async fn set_attachment_policy(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Json(policy): Json<AttachmentPolicy>,
) -> ApiResult {
    caller(&admin, &headers)?;
    admin
        .org
        .data
        .set_attachment_policy(&policy)
        .map_err(AdminError::Invalid)?;
    Ok(Json(policy).into_response())
}

#[derive(Deserialize)]
struct Assign {
    ids: Vec<String>,
    /// The new owner's email; the records move to their business unit.
    owner: String,
}

async fn assign_records(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Json(req): Json<Assign>,
) -> ApiResult {
    caller(&admin, &headers)?;
    let owner = admin
        .org
        .store
        .user_by_email(&req.owner)?
        .ok_or_else(|| AdminError::Invalid(format!("no user {:?}", req.owner)))?;
    let moved = admin
        .org
        .data
        .assign(&entity, &req.ids, &owner.id, &owner.business_unit)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(Json(json!({"moved": moved})).into_response())
}

async fn devices(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> ApiResult {
    caller(&admin, &headers)?;
    Ok(Json(admin.org.store.devices()?).into_response())
}

/// `wipe`, `sign-out` or `full-sync`.
pub(super) fn parse_command(command: &str) -> Result<DeviceCommand, AdminError> {
    match command {
        "wipe" => Ok(DeviceCommand::Wipe),
        "sign-out" => Ok(DeviceCommand::SignOut),
        "full-sync" => Ok(DeviceCommand::FullSync),
        other => Err(AdminError::Invalid(format!(
            "unknown device command {other:?}"
        ))),
    }
}

async fn command_device(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((client_id, command)): Path<(String, String)>,
) -> ApiResult {
    caller(&admin, &headers)?;
    admin.command_device(&client_id, parse_command(&command)?)?;
    Ok(Json(json!({"client_id": client_id, "command": command})).into_response())
}
