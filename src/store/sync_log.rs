//! The sync log: one row per Synchronize (when it started and finished, how it ended, what it
//! moved), for support screens and for `AccountState.last_sync`. The outcome is `ok`,
//! `cancelled` or `failed`; the edge that maps a failure to the app's error records the error's
//! stable kind beside it (docs/architecture.md, "The error seam").

use rusqlite::{Connection, params};

use super::{SqlResultExt, StoreError, unix_now};

/// How a Synchronize ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Cancelled,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }
}

/// What a finished Synchronize moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub downloaded: u64,
    pub uploaded: u64,
    pub conflicts: u64,
}

/// Opens a log entry for a Synchronize starting now; returns its id.
pub fn start(conn: &Connection) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO sync_log (started_at) VALUES (?1)",
        [unix_now()],
    )
    .classified()?;
    Ok(conn.last_insert_rowid())
}

/// Closes the entry `id` with its outcome and totals.
pub fn finish(
    conn: &Connection,
    id: i64,
    outcome: Outcome,
    totals: Totals,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sync_log SET finished_at = ?2, outcome = ?3, downloaded = ?4, uploaded = ?5,
             conflicts = ?6 WHERE id = ?1",
        params![
            id,
            unix_now(),
            outcome.as_str(),
            totals.downloaded as i64,
            totals.uploaded as i64,
            totals.conflicts as i64
        ],
    )
    .classified()?;
    Ok(())
}

/// Records the stable kind of the error that ended the latest failed Synchronize.
pub fn record_error_kind(conn: &Connection, kind: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sync_log SET error = ?1
         WHERE id = (SELECT max(id) FROM sync_log) AND outcome = 'failed'",
        [kind],
    )
    .classified()?;
    Ok(())
}

/// Unix seconds of the last Synchronize that ended well, if any.
pub fn last_success(conn: &Connection) -> Result<Option<i64>, StoreError> {
    conn.query_row(
        "SELECT max(finished_at) FROM sync_log WHERE outcome = 'ok'",
        [],
        |r| r.get(0),
    )
    .classified()
}

/// The last finished Synchronize's outcome and error kind (support screens, the device report).
pub fn latest(conn: &Connection) -> Result<Option<(String, Option<String>)>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT outcome, error FROM sync_log WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .classified()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_record_outcomes_and_the_last_success() {
        let c = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&c).unwrap();
        assert_eq!(last_success(&c).unwrap(), None);
        let first = start(&c).unwrap();
        finish(&c, first, Outcome::Ok, Totals::default()).unwrap();
        assert!(last_success(&c).unwrap().is_some());
        let second = start(&c).unwrap();
        finish(&c, second, Outcome::Failed, Totals::default()).unwrap();
        record_error_kind(&c, "Network").unwrap();
        assert_eq!(
            latest(&c).unwrap(),
            Some(("failed".to_string(), Some("Network".to_string())))
        );
    }
}
