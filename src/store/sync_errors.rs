//! Sync errors: a change the server refused stays on the device, with the person's values in the
//! record and the server's reason beside them, until the person acts: retry (as it is, or after
//! editing the record) or discard (take the server's version). Kept in the conflict log (outcome
//! `sync_error`, then `retried` or `discarded`), so the log holds the history; the record is
//! protected from downloads meanwhile, which only refresh the server side.
//!
//! Edits of a record in error go into its sync error, not the outbox: sending them alone would
//! upload part of the person's change over a server state that refused the whole of it.

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use super::conflicts::{
    self, AppDecision, COLUMNS, Conflict, ConflictOutcome, LocalChange, LogEntry,
};
use super::entities::EntityError;
use super::outbox;
use super::{StoreError, record_state};

/// What the server said when it refused a change.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// The protocol's rejection code, when the server gave one.
    pub code: Option<&'a str>,
    /// The server's explanation (already trimmed to what may be shown).
    pub reason: &'a str,
}

/// Keeps a refused change as a sync error (in the caller's transaction): the record keeps the
/// person's values, the outbox forgets the change, the last known server state is the version a
/// discard restores.
pub fn record(
    conn: &Connection,
    entity: &str,
    id: &str,
    local: &LocalChange,
    refusal: Refusal<'_>,
) -> Result<(), EntityError> {
    let server = outbox::mirror(conn, entity, id)?;
    conflicts::log(
        conn,
        &LogEntry {
            entity,
            record_id: id,
            base: server.as_ref(),
            local,
            server: server.as_ref(),
            mode: None,
            outcome: ConflictOutcome::SyncError,
            reason: Some(refusal.reason),
            code: refusal.code,
        },
    )?;
    outbox::remove_record(conn, entity, id)?;
    record_state::refresh(conn, entity, id)?;
    Ok(())
}

/// Sync errors waiting for the person, oldest first.
pub fn open(conn: &Connection) -> Result<Vec<Conflict>, StoreError> {
    conflicts::read(
        conn,
        &format!("{COLUMNS} WHERE outcome = 'sync_error' ORDER BY id"),
        [],
    )
}

/// The open sync error of one record, if any.
pub fn open_for(conn: &Connection, entity: &str, id: &str) -> Result<Option<Conflict>, StoreError> {
    Ok(conflicts::read(
        conn,
        &format!("{COLUMNS} WHERE entity = ?1 AND record_id = ?2 AND outcome = 'sync_error'"),
        params![entity, id],
    )?
    .pop())
}

/// Folds a further local edit of a record in error into its sync error.
pub(crate) fn fold_edit(
    conn: &Connection,
    error: &Conflict,
    fields: &Map<String, Value>,
    deleted: bool,
) -> Result<(), StoreError> {
    let mut local = error.local.clone();
    local.fields.extend(fields.clone());
    local.deleted |= deleted;
    conflicts::set_local(conn, error.id, &local)
}

fn require(conn: &Connection, error_id: i64) -> Result<Conflict, EntityError> {
    conflicts::waiting(conn, error_id, ConflictOutcome::SyncError)?
        .ok_or(EntityError::NoSuchSyncError(error_id))
}

/// Sends the person's change again with the next Synchronize, over the server's latest version
/// (the record as it is now, including edits made since the refusal).
pub fn retry(conn: &Connection, error_id: i64) -> Result<(), EntityError> {
    let error = require(conn, error_id)?;
    // The mirror (the server side, kept current by downloads) stays the resent change's base.
    conflicts::settle_waiting(
        conn,
        &error,
        AppDecision::KeepLocal,
        ConflictOutcome::Retried,
    )
}

/// Drops the person's change and shows the server's version again (a record created offline is
/// removed).
pub fn discard(conn: &Connection, error_id: i64) -> Result<(), EntityError> {
    let error = require(conn, error_id)?;
    conflicts::settle_waiting(
        conn,
        &error,
        AppDecision::KeepServer,
        ConflictOutcome::Discarded,
    )
}
