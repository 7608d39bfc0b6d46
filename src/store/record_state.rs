//! Each record's sync state, kept in its row (`sync_state`): synced, pending upload, a conflict
//! waiting for the app, or a sync error waiting for the person. The truth is in the outbox and the
//! conflict log; the column is derived from them by [`refresh`] after every change of either, so
//! a query returns the state without a join and a watched query sees a state change as a write
//! to the entity's own table (docs/mobile.md, "Live data").

use rusqlite::{Connection, OptionalExtension, params};

use super::conflicts::LocalChange;
use super::entities::{EntityError, valid_name};
use super::{SqlResultExt, StoreError, outbox};

/// Stored codes (NULL is synced).
pub(crate) const PENDING: i64 = 1;
pub(crate) const CONFLICT: i64 = 2;
pub(crate) const ERROR: i64 = 3;

/// Where a local record stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordState {
    /// The server has exactly this.
    #[default]
    Synced,
    /// Local edits wait for the next Synchronize.
    Pending,
    /// A conflict waits for the app's decision (`conflicts()`).
    Conflict,
    /// The server refused the person's change; it waits for retry or discard (`sync_errors`).
    Error,
}

impl RecordState {
    fn code(self) -> Option<i64> {
        match self {
            RecordState::Synced => None,
            RecordState::Pending => Some(PENDING),
            RecordState::Conflict => Some(CONFLICT),
            RecordState::Error => Some(ERROR),
        }
    }

    /// The state a stored code stands for (an unknown code reads as pending: never "synced" for a
    /// row whose state this version does not understand).
    pub(crate) fn from_code(code: Option<i64>) -> RecordState {
        match code {
            None => RecordState::Synced,
            Some(CONFLICT) => RecordState::Conflict,
            Some(ERROR) => RecordState::Error,
            Some(_) => RecordState::Pending,
        }
    }
}

/// What the state of one record derives from: the outbox and the conflict log.
pub(crate) fn derive(conn: &Connection, entity: &str, id: &str) -> Result<RecordState, StoreError> {
    let waiting: Option<String> = conn
        .prepare_cached(
            "SELECT outcome FROM conflicts WHERE entity = ?1 AND record_id = ?2
                 AND outcome IN ('pending', 'sync_error')
             ORDER BY outcome = 'sync_error' DESC LIMIT 1",
        )
        .classified()?
        .query_row(params![entity, id], |r| r.get(0))
        .optional()
        .classified()?;
    Ok(match waiting.as_deref() {
        Some("sync_error") => RecordState::Error,
        Some(_) => RecordState::Conflict,
        None if outbox::has_entries(conn, entity, id)? => RecordState::Pending,
        None => RecordState::Synced,
    })
}

/// Brings the record's stored state in line with the outbox and the conflict log (in the caller's
/// transaction); a record that is not stored (deleted locally) has nothing to update.
pub fn refresh(conn: &Connection, entity: &str, id: &str) -> Result<RecordState, EntityError> {
    if !valid_name(entity) {
        return Err(EntityError::UnknownEntity(entity.to_string()));
    }
    let state = derive(conn, entity, id)?;
    conn.prepare_cached(&format!(
        "UPDATE e_{entity} SET sync_state = ?2 WHERE id = ?1 AND sync_state IS NOT ?2"
    ))?
    .execute(params![id, state.code()])?;
    Ok(state)
}

/// What waits to go up or for a decision, in numbers (reports, the sync status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Queued local edits.
    pub pending_changes: u64,
    /// Conflicts waiting for the app.
    pub conflicts: u64,
    /// Sync errors waiting for the person.
    pub sync_errors: u64,
}

impl Waiting {
    pub fn count(conn: &Connection) -> Result<Waiting, StoreError> {
        conn.prepare_cached(
            "SELECT (SELECT count(*) FROM outbox),
                    (SELECT count(*) FROM conflicts WHERE outcome = 'pending'),
                    (SELECT count(*) FROM conflicts WHERE outcome = 'sync_error')",
        )
        .classified()?
        .query_row([], |r| {
            Ok(Waiting {
                pending_changes: r.get::<_, i64>(0)? as u64,
                conflicts: r.get::<_, i64>(1)? as u64,
                sync_errors: r.get::<_, i64>(2)? as u64,
            })
        })
        .classified()
    }
}

/// What a pending record's queued edits amount to (the fields that will go up).
pub fn pending_change(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<LocalChange, StoreError> {
    Ok(LocalChange::of(&outbox::entries_for(conn, entity, id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_never_synced() {
        for s in [
            RecordState::Synced,
            RecordState::Pending,
            RecordState::Conflict,
            RecordState::Error,
        ] {
            assert_eq!(RecordState::from_code(s.code()), s);
        }
        assert_eq!(RecordState::from_code(Some(99)), RecordState::Pending);
    }
}
