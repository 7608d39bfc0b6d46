//! The wire types of sync protocol v2 (docs/protocol.md). Unknown JSON fields are ignored (a
//! newer server may add some); a wrong type anywhere fails the whole response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::entities::EntitySchema;

/// `GET schema`.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaResponse {
    pub schema_version: i64,
    pub entities: Vec<EntitySchema>,
    /// Absent from a server without attachments.
    #[serde(default)]
    pub attachment_policy: Option<AttachmentPolicy>,
}

/// What the organization allows for attachments (docs/protocol.md, "Attachments").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AttachmentPolicy {
    pub max_upload_bytes: u64,
    pub auto_download_max_bytes: u64,
    /// Empty: every entity's attachments download automatically (within the size).
    #[serde(default)]
    pub auto_download_entities: Vec<String>,
    pub device_quota_bytes: u64,
}

/// `POST attachments/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UploadState {
    pub upload_id: String,
    /// Bytes the server holds.
    pub offset: u64,
    /// The server holds the whole content already.
    pub complete: bool,
}

/// `POST pull`.
#[derive(Debug, Clone, Serialize)]
pub struct PullRequest {
    pub client_id: String,
    pub schema_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    pub limit: u32,
    /// What the device says about itself, for the organization's device list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
    /// The entities the app syncs (absent: all the user may read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<String>>,
}

/// A device's report with each pull (docs/protocol.md, "Devices").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    pub records_held: u64,
    pub pending_edits: u64,
    /// The previous Synchronize: `ok`, `cancelled` or `failed: Kind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
}

/// One page of changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    /// Present while more pages follow.
    pub page_token: Option<String>,
    /// Present on the last page: where the next pull starts.
    pub cursor: Option<i64>,
    pub estimated_total: Option<u64>,
}

/// What a change does to the device's copy of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Upsert,
    /// The record was deleted on the server.
    Delete,
    /// The record left the user's scope (owner, role, business unit, sync filter): it goes
    /// from the device, but nobody deleted it.
    Remove,
}

/// One record's new server state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub entity: String,
    pub id: String,
    pub version: i64,
    pub op: ChangeOp,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// `POST push`.
#[derive(Debug, Clone, Serialize)]
pub struct PushRequest {
    pub client_id: String,
    pub mutations: Vec<Mutation>,
}

/// One queued local change, as sent.
#[derive(Debug, Clone, Serialize)]
pub struct Mutation {
    pub mutation_id: i64,
    pub entity: String,
    pub id: String,
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_version: Option<i64>,
    pub fields: Map<String, Value>,
}

/// The answer to a push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
}

/// What happened to one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationStatus {
    Applied,
    /// Applied by an earlier push whose answer was lost.
    Duplicate,
    Conflict,
    Rejected,
}

/// The server's state of a record, sent with a conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRow {
    pub version: i64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// One result of a push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MutationResult {
    pub mutation_id: i64,
    pub status: MutationStatus,
    /// The record's version after an applied (or duplicate) mutation.
    pub version: Option<i64>,
    pub server: Option<ServerRow>,
    pub reason: Option<String>,
    /// Why a mutation was rejected, from the protocol's list (docs/protocol.md).
    #[serde(default)]
    pub code: Option<String>,
}
