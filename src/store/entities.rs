//! Entity tables built from the organization's schema description: one STRICT table per entity
//! with a typed column per field, and an FTS5 index over the fields marked searchable.
//!
//! Names from the server become SQL identifiers only after validation (`[a-z][a-z0-9_]*`), and are
//! prefixed (`e_`, `f_`, `fts_`) so no server name can collide with our own tables or keywords.

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::StoreError;

/// The type of one field, as the protocol's schema names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Integer,
    Real,
    Boolean,
    /// RFC 3339 text.
    Timestamp,
    /// The id of a record of another entity.
    Reference,
}

/// One field of an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Indexed for full-text search (text fields only).
    #[serde(default)]
    pub searchable: bool,
    /// For references: the entity referred to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
}

/// One entity (record type) of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitySchema {
    pub name: String,
    pub fields: Vec<FieldSchema>,
    /// The upsert statement, built once per schema (the sync engine's hot path).
    #[serde(skip)]
    upsert_sql: SqlCache,
}

/// A lazily built SQL text; never part of a schema's identity.
#[derive(Debug, Clone, Default)]
struct SqlCache(std::sync::OnceLock<String>);

impl PartialEq for SqlCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for SqlCache {}

/// A record as stored locally.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// The server version this record was last known at (0 for a record created offline).
    pub version: i64,
    pub fields: Map<String, Value>,
}

/// What a query asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Field equals value, all of which must hold.
    pub filters: Vec<(String, Value)>,
    /// Full-text search over the searchable fields (FTS5 syntax, terms are quoted).
    pub search: Option<String>,
    /// Sort by this field (ascending unless `descending`), then by id.
    pub order_by: Option<String>,
    pub descending: bool,
    pub limit: Option<u32>,
    pub offset: u32,
}

/// Errors of this module that are the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum EntityError {
    #[error("unknown entity {0:?}")]
    UnknownEntity(String),
    #[error("entity {entity:?} has no field {field:?}")]
    UnknownField { entity: String, field: String },
    #[error("field {field:?} expects {expected:?}, got {got}")]
    WrongType {
        field: String,
        expected: FieldType,
        got: String,
    },
    #[error("invalid name {0:?} in the schema")]
    InvalidName(String),
    #[error("no {entity} record with id {id:?}")]
    NoSuchRecord { entity: String, id: String },
    #[error("no pending conflict with id {0}")]
    NoSuchConflict(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for EntityError {
    fn from(e: rusqlite::Error) -> Self {
        EntityError::Store(StoreError::classify(e))
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn sql_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Text | FieldType::Timestamp | FieldType::Reference => "TEXT",
        FieldType::Integer | FieldType::Boolean => "INTEGER",
        FieldType::Real => "REAL",
    }
}

impl EntitySchema {
    /// An entity with these fields.
    pub fn new(name: String, fields: Vec<FieldSchema>) -> Self {
        EntitySchema {
            name,
            fields,
            upsert_sql: SqlCache::default(),
        }
    }

    /// Checks every name before any of them reaches SQL.
    pub fn validate(&self) -> Result<(), EntityError> {
        if !valid_name(&self.name) {
            return Err(EntityError::InvalidName(self.name.clone()));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            if !valid_name(&f.name)
                || f.name == "id"
                || f.name == "version"
                || !seen.insert(&f.name)
            {
                return Err(EntityError::InvalidName(f.name.clone()));
            }
        }
        Ok(())
    }

    fn field(&self, name: &str) -> Result<&FieldSchema, EntityError> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| EntityError::UnknownField {
                entity: self.name.clone(),
                field: name.to_string(),
            })
    }

    fn searchable(&self) -> Vec<&FieldSchema> {
        self.fields
            .iter()
            .filter(|f| f.searchable && f.kind == FieldType::Text)
            .collect()
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
        conn.execute(
            "INSERT INTO entity_schema (name, definition) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
            (
                &s.name,
                serde_json::to_string(s).expect("schema serializes"),
            ),
        )?;
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
        "CREATE TABLE e_{n} (id TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL{columns}) STRICT;",
        n = s.name
    ))?;
    create_indexes(conn, s)?;
    create_fts(conn, s)
}

fn references(s: &EntitySchema) -> impl Iterator<Item = &FieldSchema> {
    s.fields.iter().filter(|f| f.kind == FieldType::Reference)
}

/// One index per reference field (lookups of an account's contacts, a contact's activities).
fn create_indexes(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    for f in references(s) {
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS e_{n}_{f} ON e_{n} (f_{f});",
            n = s.name,
            f = f.name
        ))?;
    }
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
    Ok(())
}

fn create_fts(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    let searchable = s.searchable();
    if searchable.is_empty() {
        return Ok(());
    }
    let cols: Vec<String> = searchable.iter().map(|f| format!("f_{}", f.name)).collect();
    let n = &s.name;
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE fts_{n} USING fts5({}, content='e_{n}', content_rowid='rowid');",
        cols.join(", ")
    ))?;
    create_fts_triggers(conn, s)
}

/// The triggers that keep the full-text index in step with the entity table.
fn create_fts_triggers(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    let searchable = s.searchable();
    if searchable.is_empty() {
        return Ok(());
    }
    let cols: Vec<String> = searchable.iter().map(|f| format!("f_{}", f.name)).collect();
    let cols = cols.join(", ");
    let new_cols: String = searchable
        .iter()
        .map(|f| format!(", new.f_{}", f.name))
        .collect();
    let old_cols: String = searchable
        .iter()
        .map(|f| format!(", old.f_{}", f.name))
        .collect();
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
    super::meta::set(conn, BULK_LOAD_KEY, "1")?;
    Ok(())
}

/// Whether a bulk load is under way.
pub fn in_bulk_load(conn: &Connection) -> Result<bool, EntityError> {
    Ok(super::meta::get(conn, BULK_LOAD_KEY)?.is_some())
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
    super::meta::remove(conn, BULK_LOAD_KEY)?;
    Ok(())
}

fn drop_fts(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    drop_fts_triggers(conn, s)?;
    conn.execute_batch(&format!("DROP TABLE IF EXISTS fts_{n};", n = s.name))?;
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
                return Err(EntityError::InvalidName(format!(
                    "{}.{} changed type from {:?} to {:?}",
                    new.name, f.name, o.kind, f.kind
                )));
            }
            Some(_) => {}
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

/// The stored schema of one entity.
pub fn load_schema(conn: &Connection, entity: &str) -> Result<Option<EntitySchema>, EntityError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT definition FROM entity_schema WHERE name = ?1",
            [entity],
            |r| r.get(0),
        )
        .optional()?;
    json.map(|j| {
        serde_json::from_str(&j)
            .map_err(|e| StoreError::Corrupted(format!("stored schema: {e}")).into())
    })
    .transpose()
}

/// Every stored entity schema, by name.
pub fn load_schemas(conn: &Connection) -> Result<Vec<EntitySchema>, EntityError> {
    let mut stmt = conn.prepare("SELECT name FROM entity_schema ORDER BY name")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .iter()
        .map(|n| load_schema(conn, n)?.ok_or_else(|| EntityError::UnknownEntity(n.clone())))
        .collect()
}

fn require_schema(conn: &Connection, entity: &str) -> Result<EntitySchema, EntityError> {
    load_schema(conn, entity)?.ok_or_else(|| EntityError::UnknownEntity(entity.to_string()))
}

/// Converts a JSON value to the column's SQL value, checking its type.
fn to_sql(field: &FieldSchema, value: &Value) -> Result<SqlValue, EntityError> {
    let wrong = || EntityError::WrongType {
        field: field.name.clone(),
        expected: field.kind,
        got: match value {
            Value::Null => "null".into(),
            Value::Bool(_) => "a boolean".into(),
            Value::Number(_) => "a number".into(),
            Value::String(_) => "a string".into(),
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
        },
    };
    Ok(match (field.kind, value) {
        (_, Value::Null) => SqlValue::Null,
        (FieldType::Text | FieldType::Reference, Value::String(s)) => SqlValue::Text(s.clone()),
        (FieldType::Timestamp, Value::String(s)) if looks_like_rfc3339(s) => {
            SqlValue::Text(s.clone())
        }
        (FieldType::Integer, Value::Number(n)) => SqlValue::Integer(n.as_i64().ok_or_else(wrong)?),
        (FieldType::Real, Value::Number(n)) => SqlValue::Real(n.as_f64().ok_or_else(wrong)?),
        (FieldType::Boolean, Value::Bool(b)) => SqlValue::Integer(*b as i64),
        _ => return Err(wrong()),
    })
}

fn looks_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
}

fn from_sql(field: &FieldSchema, value: ValueRef<'_>) -> Value {
    match (field.kind, value) {
        (_, ValueRef::Null) => Value::Null,
        (FieldType::Boolean, ValueRef::Integer(i)) => Value::Bool(i != 0),
        (_, ValueRef::Integer(i)) => Value::from(i),
        (_, ValueRef::Real(r)) => Value::from(r),
        (_, ValueRef::Text(t)) => Value::String(String::from_utf8_lossy(t).into_owned()),
        (_, ValueRef::Blob(_)) => Value::Null,
    }
}

/// Inserts or replaces a record's server state (all fields given; missing ones become null).
pub fn upsert(conn: &Connection, entity: &str, record: &Record) -> Result<(), EntityError> {
    let schema = require_schema(conn, entity)?;
    upsert_with(conn, &schema, record)
}

/// As [`upsert`], with the schema already loaded (the sync engine's hot path).
pub fn upsert_with(
    conn: &Connection,
    schema: &EntitySchema,
    record: &Record,
) -> Result<(), EntityError> {
    for key in record.fields.keys() {
        schema.field(key)?;
    }
    let mut values: Vec<SqlValue> = vec![
        SqlValue::Text(record.id.clone()),
        SqlValue::Integer(record.version),
    ];
    for f in &schema.fields {
        values.push(to_sql(
            f,
            record.fields.get(&f.name).unwrap_or(&Value::Null),
        )?);
    }
    let sql = schema.upsert_sql.0.get_or_init(|| upsert_sql(schema));
    conn.prepare_cached(sql)?
        .execute(params_from_iter(values.iter()))?;
    Ok(())
}

fn upsert_sql(schema: &EntitySchema) -> String {
    let cols: String = schema
        .fields
        .iter()
        .map(|f| format!(", f_{}", f.name))
        .collect();
    let marks: String = (3..=schema.fields.len() + 2)
        .map(|i| format!(", ?{i}"))
        .collect();
    let updates: String = std::iter::once("version = excluded.version".to_string())
        .chain(
            schema
                .fields
                .iter()
                .map(|f| format!("f_{0} = excluded.f_{0}", f.name)),
        )
        .collect::<Vec<_>>()
        .join(", ");
    // Never replaces a newer version with an older one (a late page after an acknowledged edit).
    format!(
        "INSERT INTO e_{n} (id, version{cols}) VALUES (?1, ?2{marks})
         ON CONFLICT (id) DO UPDATE SET {updates} WHERE excluded.version >= e_{n}.version",
        n = schema.name
    )
}

/// Removes a record; removing an unknown id is not an error (deletes are idempotent).
pub fn delete(conn: &Connection, entity: &str, id: &str) -> Result<bool, EntityError> {
    let schema = require_schema(conn, entity)?;
    let n = conn
        .prepare_cached(&format!("DELETE FROM e_{} WHERE id = ?1", schema.name))?
        .execute([id])?;
    Ok(n > 0)
}

/// Removes a record the server deleted at `version`, unless the local copy is newer.
pub fn delete_if_not_newer(
    conn: &Connection,
    entity: &str,
    id: &str,
    version: i64,
) -> Result<(), EntityError> {
    let schema = require_schema(conn, entity)?;
    conn.prepare_cached(&format!(
        "DELETE FROM e_{} WHERE id = ?1 AND version <= ?2",
        schema.name
    ))?
    .execute(rusqlite::params![id, version])?;
    Ok(())
}

/// Records the server version a local record is now based on (after its edit was applied).
pub fn set_version(
    conn: &Connection,
    entity: &str,
    id: &str,
    version: i64,
) -> Result<(), EntityError> {
    let schema = require_schema(conn, entity)?;
    conn.prepare_cached(&format!(
        "UPDATE e_{} SET version = ?2 WHERE id = ?1",
        schema.name
    ))?
    .execute(rusqlite::params![id, version])?;
    Ok(())
}

/// One record by id.
pub fn get(conn: &Connection, entity: &str, id: &str) -> Result<Option<Record>, EntityError> {
    let q = Query {
        filters: vec![("id".into(), Value::String(id.into()))],
        limit: Some(1),
        ..Default::default()
    };
    Ok(query(conn, entity, &q)?.into_iter().next())
}

/// Records matching `q`.
pub fn query(conn: &Connection, entity: &str, q: &Query) -> Result<Vec<Record>, EntityError> {
    let schema = require_schema(conn, entity)?;
    let n = &schema.name;
    let cols: String = schema
        .fields
        .iter()
        .map(|f| format!(", e.f_{}", f.name))
        .collect();
    let mut sql = format!("SELECT e.id, e.version{cols} FROM e_{n} e");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    if let Some(text) = q.search.as_deref().filter(|t| !t.trim().is_empty()) {
        if schema.searchable().is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(" JOIN fts_{n} ON fts_{n}.rowid = e.rowid"));
        conditions.push(format!("fts_{n} MATCH ?{}", args.len() + 1));
        args.push(SqlValue::Text(fts_terms(text)));
    }
    for (field, value) in &q.filters {
        if field == "id" {
            conditions.push(format!("e.id = ?{}", args.len() + 1));
            args.push(SqlValue::Text(
                value.as_str().unwrap_or_default().to_string(),
            ));
            continue;
        }
        let f = schema.field(field)?;
        match to_sql(f, value)? {
            SqlValue::Null => conditions.push(format!("e.f_{} IS NULL", f.name)),
            v => {
                conditions.push(format!("e.f_{} = ?{}", f.name, args.len() + 1));
                args.push(v);
            }
        }
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let direction = if q.descending { "DESC" } else { "ASC" };
    match &q.order_by {
        Some(field) => {
            let f = schema.field(field)?;
            sql.push_str(&format!(
                " ORDER BY e.f_{} {direction}, e.id {direction}",
                f.name
            ));
        }
        None => sql.push_str(&format!(" ORDER BY e.id {direction}")),
    }
    sql.push_str(&format!(
        " LIMIT {} OFFSET {}",
        q.limit.map_or(-1, i64::from),
        q.offset
    ));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |row| {
        let mut fields = Map::new();
        for (i, f) in schema.fields.iter().enumerate() {
            fields.insert(f.name.clone(), from_sql(f, row.get_ref(i + 2)?));
        }
        Ok(Record {
            id: row.get(0)?,
            version: row.get(1)?,
            fields,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Quotes each whitespace-separated term so user text is never FTS5 syntax; a trailing term is
/// a prefix match (search as you type).
fn fts_terms(text: &str) -> String {
    let terms: Vec<String> = text
        .split_whitespace()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    let mut joined = terms.join(" ");
    if !joined.is_empty() {
        joined.push('*');
    }
    joined
}

/// Number of records of an entity.
pub fn count(conn: &Connection, entity: &str) -> Result<u64, EntityError> {
    let schema = require_schema(conn, entity)?;
    let n: i64 = conn.query_row(
        &format!("SELECT count(*) FROM e_{}", schema.name),
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn contact_schema() -> EntitySchema {
        serde_json::from_value(json!({
            "name": "contact",
            "fields": [
                {"name": "full_name", "type": "text", "searchable": true},
                {"name": "notes", "type": "text", "searchable": true},
                {"name": "age", "type": "integer"},
                {"name": "score", "type": "real"},
                {"name": "active", "type": "boolean"},
                {"name": "born", "type": "timestamp"},
                {"name": "account_id", "type": "reference", "references": "account"}
            ]
        }))
        .unwrap()
    }

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&c).unwrap();
        apply_schema(&c, &[contact_schema()]).unwrap();
        c
    }

    fn rec(id: &str, fields: Value) -> Record {
        Record {
            id: id.into(),
            version: 1,
            fields: fields.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn typed_round_trip_query_and_search() {
        let c = conn();
        upsert(&c, "contact", &rec("c1", json!({"full_name": "Ada Lovelace", "notes": "analytical engine",
            "age": 36, "score": 9.5, "active": true, "born": "1815-12-10T00:00:00Z", "account_id": "a1"}))).unwrap();
        upsert(
            &c,
            "contact",
            &rec(
                "c2",
                json!({"full_name": "Charles Babbage", "age": 79, "active": false}),
            ),
        )
        .unwrap();
        let ada = get(&c, "contact", "c1").unwrap().unwrap();
        assert_eq!(ada.fields["active"], json!(true));
        assert_eq!(ada.fields["score"], json!(9.5));
        assert_eq!(ada.fields["account_id"], json!("a1"));
        let c2 = get(&c, "contact", "c2").unwrap().unwrap();
        assert_eq!(c2.fields["notes"], Value::Null);

        let q = Query {
            search: Some("analyt".into()),
            ..Default::default()
        };
        assert_eq!(query(&c, "contact", &q).unwrap().len(), 1);
        let q = Query {
            filters: vec![("active".into(), json!(false))],
            ..Default::default()
        };
        assert_eq!(query(&c, "contact", &q).unwrap()[0].id, "c2");
        let q = Query {
            order_by: Some("age".into()),
            descending: true,
            ..Default::default()
        };
        assert_eq!(query(&c, "contact", &q).unwrap()[0].id, "c2");

        // Updates and deletes keep the index right.
        upsert(
            &c,
            "contact",
            &rec("c1", json!({"full_name": "Ada King", "notes": "countess"})),
        )
        .unwrap();
        let q = Query {
            search: Some("analytical".into()),
            ..Default::default()
        };
        assert!(query(&c, "contact", &q).unwrap().is_empty());
        assert!(delete(&c, "contact", "c1").unwrap());
        assert!(!delete(&c, "contact", "c1").unwrap());
        let q = Query {
            search: Some("countess".into()),
            ..Default::default()
        };
        assert!(query(&c, "contact", &q).unwrap().is_empty());
    }

    #[test]
    fn wrong_types_and_names_are_refused() {
        let c = conn();
        let err = upsert(&c, "contact", &rec("x", json!({"age": "old"}))).unwrap_err();
        assert!(matches!(err, EntityError::WrongType { .. }), "{err}");
        assert!(matches!(
            upsert(&c, "contact", &rec("x", json!({"born": "yesterday"}))),
            Err(EntityError::WrongType { .. })
        ));
        assert!(matches!(
            upsert(&c, "contact", &rec("x", json!({"nope": 1}))),
            Err(EntityError::UnknownField { .. })
        ));
        assert!(matches!(
            upsert(&c, "ghost", &rec("x", json!({}))),
            Err(EntityError::UnknownEntity(_))
        ));
        for bad in ["Contact", "x; DROP TABLE meta", "", "1abc", "a-b"] {
            let s = EntitySchema::new(bad.into(), vec![]);
            assert!(
                matches!(apply_schema(&c, &[s]), Err(EntityError::InvalidName(_))),
                "{bad}"
            );
        }
        let dup = EntitySchema::new(
            "dup".into(),
            vec![
                FieldSchema {
                    name: "a".into(),
                    kind: FieldType::Text,
                    searchable: false,
                    references: None,
                },
                FieldSchema {
                    name: "a".into(),
                    kind: FieldType::Text,
                    searchable: false,
                    references: None,
                },
            ],
        );
        assert!(apply_schema(&c, &[dup]).is_err());
    }

    #[test]
    fn bulk_load_builds_indexes_and_search_at_the_end() {
        let c = conn();
        apply_schema(&c, &[contact_schema()]).unwrap();
        let search = |text: &str| {
            let q = Query {
                search: Some(text.into()),
                ..Default::default()
            };
            query(&c, "contact", &q).unwrap().len()
        };
        let trigger_count = || -> i64 {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'e_contact'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        upsert(
            &c,
            "contact",
            &rec("before", json!({"full_name": "Ada Lovelace"})),
        )
        .unwrap();
        begin_bulk_load(&c).unwrap();
        assert!(in_bulk_load(&c).unwrap());
        assert_eq!(trigger_count(), 0);
        for i in 0..50 {
            let r = rec(
                &format!("r{i}"),
                json!({"full_name": format!("Grace Hopper {i}")}),
            );
            upsert(&c, "contact", &r).unwrap();
        }
        upsert(
            &c,
            "contact",
            &rec("before", json!({"full_name": "Alan Turing"})),
        )
        .unwrap();
        end_bulk_load(&c).unwrap();
        assert!(!in_bulk_load(&c).unwrap());
        assert_eq!(trigger_count(), 3);
        assert_eq!(search("hopper"), 50);
        assert_eq!(search("turing"), 1);
        assert_eq!(
            search("lovelace"),
            0,
            "the update during the load was indexed"
        );
        // Back to incremental indexing.
        upsert(
            &c,
            "contact",
            &rec("after", json!({"full_name": "Edsger Dijkstra"})),
        )
        .unwrap();
        assert_eq!(search("dijkstra"), 1);
        end_bulk_load(&c).unwrap();
    }

    #[test]
    fn search_text_is_never_fts_syntax() {
        let c = conn();
        upsert(
            &c,
            "contact",
            &rec("c1", json!({"full_name": "O'Brien \"Bob\" NEAR AND"})),
        )
        .unwrap();
        for text in ["\"", "NEAR(", "AND", "bob\"", "*", "o'brien"] {
            query(
                &c,
                "contact",
                &Query {
                    search: Some(text.into()),
                    ..Default::default()
                },
            )
            .unwrap();
        }
    }

    #[test]
    fn schema_grows_without_losing_data() {
        let c = conn();
        upsert(
            &c,
            "contact",
            &rec("c1", json!({"full_name": "Grace Hopper"})),
        )
        .unwrap();
        let mut s = contact_schema();
        s.fields.push(FieldSchema {
            name: "title".into(),
            kind: FieldType::Text,
            searchable: true,
            references: None,
        });
        apply_schema(&c, &[s]).unwrap();
        upsert(
            &c,
            "contact",
            &rec(
                "c2",
                json!({"full_name": "Someone", "title": "rear admiral"}),
            ),
        )
        .unwrap();
        assert_eq!(
            query(
                &c,
                "contact",
                &Query {
                    search: Some("admiral".into()),
                    ..Default::default()
                }
            )
            .unwrap()
            .len(),
            1
        );
        assert_eq!(
            query(
                &c,
                "contact",
                &Query {
                    search: Some("hopper".into()),
                    ..Default::default()
                }
            )
            .unwrap()
            .len(),
            1
        );
    }
}
