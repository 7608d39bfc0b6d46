//! Where the person's data stands with the server, record by record: each record's sync state,
//! the list of queued changes, and the sync errors the person fixes (retry) or drops (discard)
//! instead of seeing their edit vanish.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::ffi::records::{FieldValue, fields_from_json};
use crate::ffi::{SyncClient, SyncError};
use crate::store::conflicts::{self, Conflict};
use crate::store::outbox;
use crate::store::record_state::{self, RecordState};
use crate::store::sync_errors;

/// Why the server refused a change (docs/protocol.md, "Rejections").
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RejectionCode {
    /// A field the organization does not have, or a value of the wrong type.
    InvalidField,
    /// A value that breaks one of the organization's rules (e.g. not an email address).
    InvalidValue,
    /// The record is gone from the server.
    NotFound,
    /// The person may not make this change.
    Forbidden,
    /// The entity is not (or no longer) part of the organization's data.
    UnknownEntity,
    /// The change was malformed (a defect of the app or of syncvault).
    InvalidMutation,
    /// Not the server's refusal: the record left what the person may hold (its owner, their
    /// roles or a sync filter changed) while the change waited. Retry sends it anyway (the
    /// server decides); discard removes the record.
    OutOfScope,
    /// An attachment whose content the server does not hold: too large for the organization
    /// (`attachment_too_large` on its upload), or unreadable on this device. Discard it, or
    /// replace its content and retry.
    AttachmentContentMissing,
    /// A code this version does not know, or none.
    Other,
}

impl RejectionCode {
    fn parse(code: Option<&str>) -> RejectionCode {
        match code {
            Some("invalid_field") => RejectionCode::InvalidField,
            Some("invalid_value") => RejectionCode::InvalidValue,
            Some("not_found") => RejectionCode::NotFound,
            Some("forbidden") => RejectionCode::Forbidden,
            Some("unknown_entity") => RejectionCode::UnknownEntity,
            Some("invalid_mutation") => RejectionCode::InvalidMutation,
            Some("out_of_scope") => RejectionCode::OutOfScope,
            Some("attachment_content_missing") => RejectionCode::AttachmentContentMissing,
            _ => RejectionCode::Other,
        }
    }
}

/// Where one record stands with the server; every record the API returns carries it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum RecordSyncState {
    /// The server has exactly this.
    Synced,
    /// Local edits wait for the next Synchronize: the fields they set (`created`: the record
    /// was created on this device).
    Pending { fields: Vec<String>, created: bool },
    /// A conflict waits for the app (`conflicts()`, `resolveConflict`).
    Conflict { conflict_id: i64 },
    /// The server refused the person's change (`syncErrors()`, `retrySyncError`,
    /// `discardSyncError`); the record shows the person's values.
    Error {
        sync_error_id: i64,
        code: RejectionCode,
    },
}

/// How a queued change will reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

/// One record's queued changes, as a "waiting to upload" list shows them.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PendingChange {
    pub entity: String,
    pub record_id: String,
    pub kind: ChangeKind,
    /// The fields the edits set (empty for a delete).
    pub fields: Vec<String>,
    /// How many edits were made (they go up as one change).
    pub edits: u32,
    /// When the oldest of them was made.
    pub queued_at: SystemTime,
}

/// A change the server refused, kept with the person's values until they act.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncErrorInfo {
    pub id: i64,
    pub entity: String,
    pub record_id: String,
    pub code: RejectionCode,
    /// The server's explanation, for the person (control characters removed, at most 500
    /// characters). It is the server's text: show it, never log it.
    pub server_message: String,
    /// The fields the person's change sets, including edits made since the refusal.
    pub local_fields: HashMap<String, FieldValue>,
    pub local_deleted: bool,
    /// The record was created on this device (discarding removes it).
    pub created_offline: bool,
    /// The server's version a discard restores (None: the server has no such record).
    pub server_fields: Option<HashMap<String, FieldValue>>,
    pub server_version: i64,
    pub occurred_at: SystemTime,
}

fn time(unix_seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds.max(0) as u64)
}

fn sync_error_info(e: Conflict) -> SyncErrorInfo {
    let server = e.server.as_ref().filter(|s| !s.deleted);
    SyncErrorInfo {
        id: e.id,
        code: RejectionCode::parse(e.code.as_deref()),
        server_message: e.reason.clone().unwrap_or_default(),
        local_fields: fields_from_json(&e.local.fields),
        local_deleted: e.local.deleted,
        created_offline: e.local.created,
        server_fields: server.map(|s| fields_from_json(&s.fields)),
        server_version: server.map_or(0, |s| s.version),
        occurred_at: time(e.created_at),
        entity: e.entity,
        record_id: e.record_id,
    }
}

/// The details of a record's stored state.
pub(crate) fn describe(
    conn: &Connection,
    entity: &str,
    id: &str,
    state: RecordState,
) -> Result<RecordSyncState, SyncError> {
    Ok(match state {
        RecordState::Synced => RecordSyncState::Synced,
        RecordState::Pending => {
            let change = record_state::pending_change(conn, entity, id)?;
            let mut fields: Vec<String> = change.fields.keys().cloned().collect();
            fields.sort();
            RecordSyncState::Pending {
                fields,
                created: change.created,
            }
        }
        RecordState::Conflict | RecordState::Error => {
            match conflicts::waiting_for(conn, entity, id)? {
                Some(e) if e.outcome == conflicts::ConflictOutcome::SyncError => {
                    RecordSyncState::Error {
                        sync_error_id: e.id,
                        code: RejectionCode::parse(e.code.as_deref()),
                    }
                }
                Some(c) => RecordSyncState::Conflict { conflict_id: c.id },
                // Nothing waits after all (the row is behind the log): show what is true.
                None if outbox::has_entries(conn, entity, id)? => {
                    describe(conn, entity, id, RecordState::Pending)?
                }
                None => RecordSyncState::Synced,
            }
        }
    })
}

impl From<outbox::PendingRecord> for PendingChange {
    fn from(p: outbox::PendingRecord) -> Self {
        let kind = if p.change.deleted {
            ChangeKind::Delete
        } else if p.change.created {
            ChangeKind::Create
        } else {
            ChangeKind::Update
        };
        let mut fields: Vec<String> = p.change.fields.keys().cloned().collect();
        fields.sort();
        PendingChange {
            entity: p.entity,
            record_id: p.record_id,
            kind,
            fields,
            edits: p.edits,
            queued_at: time(p.queued_at),
        }
    }
}

#[uniffi::export]
impl SyncClient {
    /// The records whose local changes wait for the next Synchronize, in the order they were
    /// first edited.
    pub async fn pending_changes(&self) -> Result<Vec<PendingChange>, SyncError> {
        self.with_account(|a| {
            Ok(outbox::pending_records(a.store()?.conn())?
                .into_iter()
                .map(PendingChange::from)
                .collect())
        })
        .await
    }

    /// How many local edits wait for the next Synchronize.
    pub async fn pending_change_count(&self) -> Result<u64, SyncError> {
        self.with_account(|a| Ok(outbox::pending_count(a.store()?.conn())?))
            .await
    }

    /// Changes the server refused, oldest first; each stays until retried or discarded (and
    /// across restarts).
    pub async fn sync_errors(&self) -> Result<Vec<SyncErrorInfo>, SyncError> {
        self.with_account(|a| {
            Ok(sync_errors::open(a.store()?.conn())?
                .into_iter()
                .map(sync_error_info)
                .collect())
        })
        .await
    }

    /// Queues the refused change again (as the record is now: edit it first to fix what the
    /// server refused); it goes up with the next Synchronize.
    pub async fn retry_sync_error(&self, sync_error_id: i64) -> Result<(), SyncError> {
        self.in_transaction(move |c| Ok(sync_errors::retry(c, sync_error_id)?))
            .await
    }

    /// Drops the refused change and shows the server's version again.
    pub async fn discard_sync_error(&self, sync_error_id: i64) -> Result<(), SyncError> {
        self.in_transaction(move |c| Ok(sync_errors::discard(c, sync_error_id)?))
            .await
    }
}
