//! A full resync: when the server says the client's cursor is unusable (ahead of its sequence,
//! or past its change-tracking retention), the client downloads everything again without losing
//! unsent edits or waiting conflicts. A full download carries no tombstones, so the resync keeps
//! the keys it saw (`resync_seen`, in the store, so a crash mid-resync resumes) and its last page
//! removes every local record it did not see, except those with queued edits or a waiting
//! conflict.

use rusqlite::{Connection, params};

use super::entities::EntitySchema;
use super::{SqlResultExt, StoreError, meta};

const RESYNC_KEY: &str = "sync.resync";

/// Starts a full resync (in the caller's transaction).
pub fn begin(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS resync_seen (
             entity TEXT NOT NULL, record_id TEXT NOT NULL,
             PRIMARY KEY (entity, record_id)) WITHOUT ROWID;
         DELETE FROM resync_seen;",
    )
    .classified()?;
    meta::set(conn, RESYNC_KEY, "1")
}

/// Whether a full resync is under way.
pub fn in_progress(conn: &Connection) -> Result<bool, StoreError> {
    Ok(meta::get(conn, RESYNC_KEY)?.is_some())
}

/// Records that the resync saw these records.
pub fn saw<'a>(
    conn: &Connection,
    keys: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO resync_seen (entity, record_id) VALUES (?1, ?2)")
        .classified()?;
    for (entity, id) in keys {
        stmt.execute(params![entity, id]).classified()?;
    }
    Ok(())
}

/// Ends the resync: removes every record of `schemas` the server no longer has (not seen), except
/// those with queued edits or a conflict waiting for the app; returns how many left.
pub fn finish(conn: &Connection, schemas: &[&EntitySchema]) -> Result<u64, StoreError> {
    let mut removed = 0;
    for s in schemas {
        removed += conn
            .execute(
                &format!(
                    "DELETE FROM e_{n} WHERE id NOT IN
                         (SELECT record_id FROM resync_seen WHERE entity = ?1)
                     AND id NOT IN (SELECT record_id FROM outbox WHERE entity = ?1)
                     AND id NOT IN (SELECT record_id FROM conflicts
                                    WHERE entity = ?1 AND outcome = 'pending')",
                    n = s.name
                ),
                [&s.name],
            )
            .classified()? as u64;
    }
    conn.execute_batch("DROP TABLE IF EXISTS resync_seen;")
        .classified()?;
    meta::remove(conn, RESYNC_KEY)?;
    Ok(removed)
}
