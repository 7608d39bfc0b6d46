//! Sync protocol v2 (docs/protocol.md): `GET schema`, `POST pull`, `POST push`, each for a signed-in
//! org user, over the server's record store, within what the user's roles let them read and
//! change.

mod attachment_api;
pub mod blobs;
pub mod generate;
pub mod schema;
pub mod scope;
pub mod store;

/// The protocol version this server speaks (discovery's `protocol_version`, the path's `vN`).
pub const PROTOCOL_VERSION: u32 = 2;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Org;
use crate::admin::store::{Depth, DeviceCommand, DeviceReport, OrgUser};
use scope::{Access, Grant, Reach};
use store::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            // The description names the failing store step, never a record's values or a token.
            tracing::error!(code = self.code, description = %self.description, "sync request failed");
        }
        (
            status,
            Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response()
    }
}

/// The routes under `/api/sync/v2`.
pub fn router(org: Arc<Org>) -> Router {
    Router::new()
        .route("/schema", get(get_schema))
        .route("/pull", post(pull))
        .route("/push", post(push))
        .route("/attachments/uploads", post(attachment_api::create_upload))
        .route("/attachments/uploads/{id}", put(attachment_api::append))
        .route(
            "/attachments/uploads/{id}/finish",
            post(attachment_api::finish),
        )
        .route("/attachments/{id}/content", get(attachment_api::download))
        .layer(DefaultBodyLimit::max(16 << 20))
        .with_state(org)
}

/// `/api/sync/v1`: an app that speaks only protocol v1 (no `remove` changes, no scope) is
/// refused with a code it shows as "update the app", never served data it would misapply.
pub fn retired_router() -> Router {
    Router::new().fallback(|| async {
        ApiError {
            status: 410,
            code: "protocol_version_unsupported",
            description: format!(
                "this organization speaks sync protocol v{PROTOCOL_VERSION}: update the app"
            ),
        }
        .into_response()
    })
}

fn reach(depth: Depth) -> Option<Reach> {
    match depth {
        Depth::None => None,
        Depth::Own => Some(Reach::Own),
        Depth::Unit => Some(Reach::Unit),
        Depth::Organization => Some(Reach::Organization),
    }
}

impl Org {
    /// The live records the user with `email` may hold on a device now (all entities, no app
    /// narrowing): the server's own answer, which tests compare devices with.
    pub fn readable_records(&self, email: &str) -> Vec<store::ServerRecord> {
        let Some(user) = self.store.user_by_email(email).ok().flatten() else {
            return vec![];
        };
        match self.access(&user) {
            Ok(access) => self.data.records_in(&self.data.scope(&access, None)),
            Err(_) => vec![],
        }
    }

    /// What `user`'s roles let them do with each entity of the schema.
    pub fn access(&self, user: &OrgUser) -> Result<Access, ApiError> {
        let schema = self.data.schema();
        let grants = self
            .store
            .privileges(user, schema.role_entities().map(|e| e.name.as_str()))
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|p| {
                let grant = Grant {
                    read: reach(p.read),
                    create: reach(p.create),
                    write: reach(p.write),
                    delete: reach(p.delete),
                };
                (p.entity, grant)
            })
            .collect();
        Ok(Access {
            user: user.id.clone(),
            unit: user.business_unit.clone(),
            grants,
        })
    }
}

/// Development routes under `/api/dev` (reference server only): simulate other users' edits
/// (benchmarks, manual tests), end every session after some pulls (tests of a refresh token that
/// dies in the middle of a sync, from another process), and count sign-ins.
pub fn dev_router(org: Arc<Org>) -> Router {
    Router::new()
        .route("/simulate-edits", post(simulate_edits))
        .route("/end-sessions", post(end_sessions))
        .route("/stats", get(stats))
        .route("/advance-clock", post(advance_clock))
        .with_state(org)
}

#[derive(Deserialize)]
struct AdvanceClock {
    days: i64,
}

/// Moves the sync filters' clock by some days (tests of a window that moves with time).
async fn advance_clock(State(org): State<Arc<Org>>, Json(req): Json<AdvanceClock>) -> Response {
    org.data.advance_days(req.days);
    Json(json!({"today": org.data.today()})).into_response()
}

#[derive(Deserialize)]
struct EndSessions {
    /// Pulls still answered before every session ends (0: now).
    #[serde(default)]
    after_pulls: u32,
}

async fn end_sessions(State(org): State<Arc<Org>>, Json(req): Json<EndSessions>) -> Response {
    org.end_sessions_after(req.after_pulls);
    Json(json!({"after_pulls": req.after_pulls})).into_response()
}

async fn stats(State(org): State<Arc<Org>>) -> Response {
    Json(org.stats()).into_response()
}

#[derive(Deserialize)]
struct SimulateEdits {
    count: u32,
    #[serde(default)]
    label: Option<String>,
}

async fn simulate_edits(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    Json(req): Json<SimulateEdits>,
) -> Response {
    if let Err(resp) = org.caller(&headers).await {
        return resp;
    }
    let data = Arc::clone(&org.data);
    let label = req.label.unwrap_or_else(|| "edited by another user".into());
    match blocking(move || Ok(data.simulate_edits(req.count, &label)?)).await {
        Ok(edited) => Json(json!({ "edited": edited })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_schema(State(org): State<Arc<Org>>, headers: HeaderMap) -> Response {
    if let Err(resp) = org.caller(&headers).await {
        return resp;
    }
    let mut body = org.data.schema().to_json();
    body["attachment_policy"] = json!(org.data.attachment_policy());
    Json(body).into_response()
}

#[derive(Deserialize)]
struct PullRequest {
    client_id: String,
    schema_version: i64,
    cursor: Option<i64>,
    page_token: Option<String>,
    limit: Option<u32>,
    /// What the device says about itself (name, app version, records held, pending edits).
    #[serde(default)]
    device: Option<DeviceReport>,
    /// The entities the app syncs (absent: all the user may read).
    #[serde(default)]
    entities: Option<Vec<String>>,
}

/// Records the device's contact and delivers a command the administrator queued for it, when
/// this call can carry it (`deliverable`): a wipe or a sign-out on any call, a full sync on a
/// pull with a cursor.
fn deliver(
    org: &Org,
    user: &OrgUser,
    client_id: &str,
    report: Option<&DeviceReport>,
    deliverable: &[DeviceCommand],
) -> Result<(), ApiError> {
    let command = org
        .store
        .device_contact(client_id, &user.id, report, deliverable)
        .map_err(ApiError::internal)?;
    let refuse = |status: u16, code: &'static str, description: &str| {
        Err(ApiError {
            status,
            code,
            description: description.into(),
        })
    };
    match command {
        Some(DeviceCommand::Wipe) => refuse(
            403,
            "device_wiped",
            "the organization wiped this device: erase its offline data",
        ),
        Some(DeviceCommand::SignOut) => {
            org.revoke_user_sessions(&user.email);
            refuse(
                403,
                "device_signed_out",
                "the organization signed this device out: sign in again",
            )
        }
        Some(DeviceCommand::FullSync) => refuse(
            400,
            "invalid_cursor",
            "the organization asked this device to download everything again",
        ),
        None => Ok(()),
    }
}

/// What every sync call checks first: a signed-in caller, a body of the call's shape, and a
/// client id of 1 to 64 characters.
async fn accept<T>(
    org: &Org,
    headers: &HeaderMap,
    body: Result<Json<T>, JsonRejection>,
    call: &str,
    client_id: impl Fn(&T) -> &String,
) -> Result<(OrgUser, T), Response> {
    let user = org.caller(headers).await?;
    let Ok(Json(req)) = body else {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("the body is not a {call} request"),
        )
        .into_response());
    };
    let id = client_id(&req);
    if id.is_empty() || id.len() > 64 {
        return Err(
            ApiError::bad_request("invalid_request", "client_id is 1 to 64 characters")
                .into_response(),
        );
    }
    Ok((user, req))
}

/// Runs store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(e)))
}

async fn pull(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    body: Result<Json<PullRequest>, JsonRejection>,
) -> Response {
    org.count_pull();
    let (user, req) =
        match accept(&org, &headers, body, "pull", |r: &PullRequest| &r.client_id).await {
            Ok(accepted) => accepted,
            Err(resp) => return resp,
        };
    let deliverable: &[DeviceCommand] = if req.cursor.is_some() && req.page_token.is_none() {
        &[
            DeviceCommand::Wipe,
            DeviceCommand::SignOut,
            DeviceCommand::FullSync,
        ]
    } else {
        &[DeviceCommand::Wipe, DeviceCommand::SignOut]
    };
    if let Err(resp) = deliver(
        &org,
        &user,
        &req.client_id,
        req.device.as_ref(),
        deliverable,
    ) {
        return resp.into_response();
    }
    if req.schema_version != org.data.schema().version {
        return ApiError {
            status: 409,
            code: "schema_changed",
            description: "fetch the schema again".into(),
        }
        .into_response();
    }
    let access = match org.access(&user) {
        Ok(access) => access,
        Err(e) => return e.into_response(),
    };
    let data = Arc::clone(&org.data);
    let limit = req.limit.unwrap_or(1000);
    let pulled = blocking(move || {
        let scope = data.scope(&access, req.entities.as_deref());
        data.pull(
            &req.client_id,
            &scope,
            req.cursor,
            req.page_token.as_deref(),
            limit,
        )
    });
    match pulled.await {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct PushRequest {
    client_id: String,
    mutations: Vec<Value>,
}

async fn push(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    body: Result<Json<PushRequest>, JsonRejection>,
) -> Response {
    let (user, req) =
        match accept(&org, &headers, body, "push", |r: &PushRequest| &r.client_id).await {
            Ok(accepted) => accepted,
            Err(resp) => return resp,
        };
    let deliverable = [DeviceCommand::Wipe, DeviceCommand::SignOut];
    if let Err(refused) = deliver(&org, &user, &req.client_id, None, &deliverable) {
        return refused.into_response();
    }
    let access = match org.access(&user) {
        Ok(access) => access,
        Err(e) => return e.into_response(),
    };
    let data = Arc::clone(&org.data);
    let blobs = Arc::clone(&org.blobs);
    match blocking(move || data.push(&req.client_id, &access, &req.mutations, &blobs)).await {
        Ok(results) => Json(json!({ "results": results })).into_response(),
        Err(e) => e.into_response(),
    }
}
