//! The store's fixed tables; entity tables come from the organization's schema (entities.rs).

use rusqlite::Connection;

use super::{SqlResultExt, StoreError};

const SCHEMA_VERSION: i64 = 4;

/// Creates or upgrades the fixed tables, one version step per transaction.
pub fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .classified()?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    if version < 1 {
        create_v1(conn)?;
    }
    if version < 2 {
        // v2: the mutation id a queued edit was last sent as (frozen until the server answers,
        // so a retry after a lost answer is recognised as a duplicate).
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE outbox ADD COLUMN sent_as INTEGER;
             PRAGMA user_version = 2;
             COMMIT;",
        )
        .classified()?;
    }
    if version < 3 {
        migrate_v3(conn)?;
    }
    // v4: attachment content on this device (store/attachments.rs).
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS attachment_content (
             id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
             file TEXT NOT NULL, key BLOB NOT NULL, complete INTEGER NOT NULL,
             uploaded INTEGER NOT NULL, upload_offset INTEGER NOT NULL DEFAULT 0,
             last_access INTEGER NOT NULL) STRICT;
         PRAGMA user_version = 4;
         COMMIT;",
    )
    .classified()
}

/// v3: each entity row carries its sync state (`sync_state`, docs/mobile.md "Live data"), a
/// sync error keeps the server's rejection code, and the records waiting for the app are indexed.
fn migrate_v3(conn: &Connection) -> Result<(), StoreError> {
    let mut steps = String::from(
        "BEGIN;
         ALTER TABLE conflicts ADD COLUMN code TEXT;
         CREATE INDEX IF NOT EXISTS conflicts_waiting ON conflicts (entity, record_id)
             WHERE outcome IN ('pending', 'sync_error');",
    );
    let entities: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM entity_schema")
            .classified()?;
        let rows = stmt.query_map([], |r| r.get(0)).classified()?;
        rows.collect::<Result<_, _>>().classified()?
    };
    for name in entities.iter().filter(|n| super::entities::valid_name(n)) {
        steps.push_str(&format!(
            "ALTER TABLE e_{name} ADD COLUMN sync_state INTEGER;
             UPDATE e_{name} SET sync_state = {pending}
                 WHERE id IN (SELECT record_id FROM outbox WHERE entity = '{name}');
             UPDATE e_{name} SET sync_state = {conflict}
                 WHERE id IN (SELECT record_id FROM conflicts
                              WHERE entity = '{name}' AND outcome = 'pending');",
            pending = super::record_state::PENDING,
            conflict = super::record_state::CONFLICT,
        ));
    }
    steps.push_str("PRAGMA user_version = 3; COMMIT;");
    conn.execute_batch(&steps).classified()
}

fn create_v1(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
         CREATE TABLE IF NOT EXISTS tokens (
             kind TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER) STRICT;
         CREATE TABLE IF NOT EXISTS entity_schema (
             name TEXT PRIMARY KEY, definition TEXT NOT NULL) STRICT;
         CREATE TABLE IF NOT EXISTS outbox (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             entity TEXT NOT NULL,
             record_id TEXT NOT NULL,
             op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
             base_version INTEGER,
             fields TEXT NOT NULL,
             created_at INTEGER NOT NULL) STRICT;
         CREATE INDEX IF NOT EXISTS outbox_record ON outbox (entity, record_id);
         CREATE TABLE IF NOT EXISTS mirror (
             entity TEXT NOT NULL, record_id TEXT NOT NULL, version INTEGER NOT NULL,
             fields TEXT NOT NULL, PRIMARY KEY (entity, record_id)) STRICT;
         CREATE TABLE IF NOT EXISTS conflicts (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             entity TEXT NOT NULL, record_id TEXT NOT NULL,
             base TEXT, local TEXT, server TEXT,
             mode TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT,
             created_at INTEGER NOT NULL, resolved_at INTEGER) STRICT;
         CREATE TABLE IF NOT EXISTS sync_log (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             started_at INTEGER NOT NULL, finished_at INTEGER,
             outcome TEXT, downloaded INTEGER NOT NULL DEFAULT 0,
             uploaded INTEGER NOT NULL DEFAULT 0, conflicts INTEGER NOT NULL DEFAULT 0,
             error TEXT) STRICT;
         PRAGMA user_version = 1;
         COMMIT;",
    )
    .classified()
}
