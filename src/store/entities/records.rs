//! Record CRUD on entity tables: the server's state of a record in, one record out.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use serde_json::{Map, Value};

use super::EntityError;
use super::codec::to_sql;
use super::query::{Query, query};
use super::schema::{EntitySchema, require_schema};

/// A record as stored locally.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// The server version this record was last known at (0 for a record created offline).
    pub version: i64,
    pub fields: Map<String, Value>,
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
