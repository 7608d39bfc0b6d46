//! DDL for entity tables: one STRICT table per entity with a typed column per field and the row's
//! sync state (`store::record_state`), an index per reference field and per sortable field, an
//! FTS5 index over the searchable text fields with the triggers that keep it in step, schema
//! growth in place, and the bulk-load mode of an initial download.

use rusqlite::Connection;

use super::EntityError;
use super::schema::{self, EntitySchema, FieldSchema, FieldType, load_schema, load_schemas};

fn sql_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Text | FieldType::Timestamp | FieldType::Reference => "TEXT",
        FieldType::Integer | FieldType::Boolean => "INTEGER",
        FieldType::Real => "REAL",
    }
}

/// Creates or extends the tables for `schemas` and records them; fields the server added later
/// become new columns. Runs in the caller's transaction if there is one.
pub fn apply_schema(conn: &Connection, schemas: &[EntitySchema]) -> Result<(), EntityError> {
    for s in schemas {
        s.validate()?;
    }
    for s in schemas {
        let old = load_schema(conn, &s.name)?;
        match &old {
            None => create_tables(conn, s)?,
            Some(old) if old == s => continue,
            Some(old) => extend_tables(conn, old, s)?,
        }
        schema::save(conn, s)?;
    }
    Ok(())
}

fn create_tables(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    let columns: String = s
        .fields
        .iter()
        .map(|f| format!(", f_{} {}", f.name, sql_type(f.kind)))
        .collect();
    conn.execute_batch(&format!(
        "CREATE TABLE e_{n} (id TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL,
             sync_state INTEGER{columns}) STRICT;",
        n = s.name
    ))?;
    create_indexes(conn, s)?;
    create_fts(conn, s)
}

fn references(s: &EntitySchema) -> impl Iterator<Item = &FieldSchema> {
    s.fields.iter().filter(|f| f.kind == FieldType::Reference)
}

fn sortables(s: &EntitySchema) -> impl Iterator<Item = &FieldSchema> {
    s.fields.iter().filter(|f| f.sortable)
}

/// One index per reference field (lookups of an account's contacts, a contact's activities), and
/// one per sortable field with the id after it, the order `query` lists by.
fn create_indexes(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    for f in references(s) {
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS e_{n}_{f} ON e_{n} (f_{f});",
            n = s.name,
            f = f.name
        ))?;
    }
    for f in sortables(s) {
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {index} ON e_{n} (f_{f}, id);",
            index = order_index(s, f),
            n = s.name,
            f = f.name
        ))?;
    }
    Ok(())
}

fn order_index(s: &EntitySchema, f: &FieldSchema) -> String {
    format!("e_{}_{}_order", s.name, f.name)
}

fn drop_order_index(
    conn: &Connection,
    s: &EntitySchema,
    f: &FieldSchema,
) -> Result<(), EntityError> {
    conn.execute_batch(&format!("DROP INDEX IF EXISTS {};", order_index(s, f)))?;
    Ok(())
}

fn drop_indexes(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    for f in references(s) {
        conn.execute_batch(&format!(
            "DROP INDEX IF EXISTS e_{n}_{f};",
            n = s.name,
            f = f.name
        ))?;
    }
    for f in sortables(s) {
        drop_order_index(conn, s, f)?;
    }
    Ok(())
}

/// The characters of each searchable field that go into the full-text index. FTS5 holds a
/// field's distinct terms in memory while it indexes it: a cap keeps a 50 MB note of random words
/// from costing a gigabyte (the whole value is still stored and returned; search finds words of
/// its first 256 Ki characters).
pub const FTS_INDEXED_CHARS: u32 = 256 * 1024;

/// Prefix lengths FTS5 indexes on their own, for search as the person types. Without one, the
/// first letter of a search merges the doclists of every word starting with it: p99 26 ms at 1M
/// contacts, 9 ms with it (sync bench `--screens`), for 16% more store and ~3% more initial-sync
/// time. Two letters as well would bring p99 to 3 ms but cost 46% more sync time. Full-text
/// indexes made before keep working without it, until their searchable fields change.
pub const FTS_PREFIX_INDEX: &str = "1";

/// The full-text index reads its content through a view that caps each field (`fts_src_*`), so
/// the triggers and a `rebuild` index the same text. Indexes made before the cap read the table
/// itself and keep doing so.
fn create_fts(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    let searchable = s.searchable();
    if searchable.is_empty() {
        return Ok(());
    }
    let cols: Vec<String> = searchable.iter().map(|f| format!("f_{}", f.name)).collect();
    let capped: Vec<String> = searchable
        .iter()
        .map(|f| format!("substr(f_{0}, 1, {FTS_INDEXED_CHARS}) AS f_{0}", f.name))
        .collect();
    let n = &s.name;
    conn.execute_batch(&format!(
        "CREATE VIEW fts_src_{n} AS SELECT rowid AS fts_rowid, {} FROM e_{n};
         CREATE VIRTUAL TABLE fts_{n} USING fts5({}, content='fts_src_{n}',
             content_rowid='fts_rowid', prefix='{FTS_PREFIX_INDEX}');",
        capped.join(", "),
        cols.join(", ")
    ))?;
    create_fts_triggers(conn, s)
}

/// Whether the entity's full-text index reads through the capping view.
fn fts_capped(conn: &Connection, entity: &str) -> Result<bool, EntityError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND name = ?1",
        [format!("fts_src_{entity}")],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// The triggers that keep the full-text index in step with the entity table.
fn create_fts_triggers(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    let searchable = s.searchable();
    if searchable.is_empty() {
        return Ok(());
    }
    let cols: Vec<String> = searchable.iter().map(|f| format!("f_{}", f.name)).collect();
    let cols = cols.join(", ");
    let capped = fts_capped(conn, &s.name)?;
    let value = |row: &str, field: &str| {
        if capped {
            format!(", substr({row}.f_{field}, 1, {FTS_INDEXED_CHARS})")
        } else {
            format!(", {row}.f_{field}")
        }
    };
    let new_cols: String = searchable.iter().map(|f| value("new", &f.name)).collect();
    let old_cols: String = searchable.iter().map(|f| value("old", &f.name)).collect();
    let n = &s.name;
    conn.execute_batch(&format!(
        "CREATE TRIGGER IF NOT EXISTS e_{n}_ai AFTER INSERT ON e_{n} BEGIN
             INSERT INTO fts_{n} (rowid, {cols}) VALUES (new.rowid{new_cols}); END;
         CREATE TRIGGER IF NOT EXISTS e_{n}_ad AFTER DELETE ON e_{n} BEGIN
             INSERT INTO fts_{n} (fts_{n}, rowid, {cols}) VALUES ('delete', old.rowid{old_cols}); END;
         CREATE TRIGGER IF NOT EXISTS e_{n}_au AFTER UPDATE OF {cols} ON e_{n} BEGIN
             INSERT INTO fts_{n} (fts_{n}, rowid, {cols}) VALUES ('delete', old.rowid{old_cols});
             INSERT INTO fts_{n} (rowid, {cols}) VALUES (new.rowid{new_cols}); END;"
    ))?;
    Ok(())
}

fn drop_fts_triggers(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    let n = &s.name;
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS e_{n}_ai; DROP TRIGGER IF EXISTS e_{n}_ad;
         DROP TRIGGER IF EXISTS e_{n}_au;"
    ))?;
    Ok(())
}

const BULK_LOAD_KEY: &str = "store.bulk_load";

/// Starts a bulk load (an initial download): the reference indexes and the full-text triggers
/// are dropped so rows go into the bare tables, about four times faster; `end_bulk_load` builds
/// both in one pass. The state is kept in the store, so a load interrupted by a crash is finished
/// by whoever calls `end_bulk_load` next. Meanwhile search and reference lookups see only what
/// was indexed before. Run inside the caller's transaction.
pub fn begin_bulk_load(conn: &Connection) -> Result<(), EntityError> {
    for s in load_schemas(conn)? {
        drop_indexes(conn, &s)?;
        drop_fts_triggers(conn, &s)?;
    }
    crate::store::meta::set(conn, BULK_LOAD_KEY, "1")?;
    Ok(())
}

/// Whether a bulk load is under way.
pub fn in_bulk_load(conn: &Connection) -> Result<bool, EntityError> {
    Ok(crate::store::meta::get(conn, BULK_LOAD_KEY)?.is_some())
}

/// Ends a bulk load: recreates the indexes and triggers and rebuilds every full-text index from
/// its table. A no-op when no bulk load is under way.
pub fn end_bulk_load(conn: &Connection) -> Result<(), EntityError> {
    if !in_bulk_load(conn)? {
        return Ok(());
    }
    for s in load_schemas(conn)? {
        create_indexes(conn, &s)?;
        if !s.searchable().is_empty() {
            create_fts_triggers(conn, &s)?;
            conn.execute_batch(&format!(
                "INSERT INTO fts_{n} (fts_{n}) VALUES ('rebuild');",
                n = s.name
            ))?;
        }
    }
    crate::store::meta::remove(conn, BULK_LOAD_KEY)?;
    Ok(())
}

/// Gives every full-text index a fresh in-memory term buffer after a large write. FTS5 keeps the
/// slot array of its pending-term hash at the largest size a transaction ever needed (a bulk
/// rebuild, a 2000-record page) for as long as the connection lives, and every later commit
/// walks it twice (sort, clear): a one-record edit after an initial sync of 100k paid ~0.2 ms
/// for that alone. A schema reload reconnects the tables with a 1024-slot hash; statements
/// prepared before re-prepare themselves. Call it outside a transaction.
pub fn release_search_buffers(conn: &Connection) -> Result<(), EntityError> {
    conn.execute_batch("PRAGMA writable_schema = RESET")?;
    Ok(())
}

fn drop_fts(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    drop_fts_triggers(conn, s)?;
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS fts_{n}; DROP VIEW IF EXISTS fts_src_{n};",
        n = s.name
    ))?;
    Ok(())
}

fn extend_tables(
    conn: &Connection,
    old: &EntitySchema,
    new: &EntitySchema,
) -> Result<(), EntityError> {
    for f in &new.fields {
        match old.fields.iter().find(|o| o.name == f.name) {
            None => conn.execute_batch(&format!(
                "ALTER TABLE e_{} ADD COLUMN f_{} {};",
                new.name,
                f.name,
                sql_type(f.kind)
            ))?,
            Some(o) if sql_type(o.kind) != sql_type(f.kind) => {
                return Err(EntityError::TypeChanged {
                    entity: new.name.clone(),
                    field: f.name.clone(),
                    from: o.kind,
                    to: f.kind,
                });
            }
            Some(_) => {}
        }
    }
    // A field no longer sortable (or no longer listed) loses its order index.
    for o in sortables(old) {
        if !new.fields.iter().any(|f| f.name == o.name && f.sortable) {
            drop_order_index(conn, old, o)?;
        }
    }
    if !in_bulk_load(conn)? {
        create_indexes(conn, new)?;
    }
    // Removed fields keep their column (data is never dropped by a schema change).
    let mut merged = new.clone();
    for o in &old.fields {
        if !merged.fields.iter().any(|f| f.name == o.name) {
            merged.fields.push(o.clone());
        }
    }
    if old.searchable() != merged.searchable() {
        drop_fts(conn, old)?;
        create_fts(conn, &merged)?;
        if !merged.searchable().is_empty() {
            conn.execute_batch(&format!(
                "INSERT INTO fts_{n} (fts_{n}) VALUES ('rebuild');",
                n = new.name
            ))?;
        }
    }
    Ok(())
}
