//! Record CRUD on entity tables: the server's state of a record in, one record out.

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::{Map, Value};

use super::EntityError;
use super::codec::{Scalar, WireValue, to_sql_ref};
use super::query::{Query, query};
use super::schema::{EntitySchema, require_schema};
use crate::store::record_state::RecordState;

/// A record as stored locally.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// The server version this record was last known at (0 for a record created offline).
    pub version: i64,
    pub fields: Map<String, Value>,
    /// Where the row stands with the server, as read; writes leave the stored state alone
    /// (`record_state::refresh` keeps it).
    pub state: RecordState,
}

impl Record {
    /// A record to write (its stored sync state is kept by `record_state`, not by writes).
    pub fn new(id: impl Into<String>, version: i64, fields: Map<String, Value>) -> Record {
        Record {
            id: id.into(),
            version,
            fields,
            state: RecordState::Synced,
        }
    }
}

/// Inserts or replaces a record's server state (all fields given; missing ones become null).
pub fn upsert(conn: &Connection, entity: &str, record: &Record) -> Result<(), EntityError> {
    let schema = require_schema(conn, entity)?;
    upsert_with(conn, &schema, record)
}

/// As [`upsert`], with the schema already loaded.
pub fn upsert_with(
    conn: &Connection,
    schema: &EntitySchema,
    record: &Record,
) -> Result<(), EntityError> {
    let fields = record
        .fields
        .iter()
        .map(|(name, value)| (name.as_str(), Scalar::from(value)));
    write_row(conn, schema, &record.id, record.version, fields)
}

/// Writes a record of a downloaded page from its values read in place: no copy of the page's
/// text is made before SQLite's own. The sync engine's hot path.
pub fn upsert_wire<'a>(
    conn: &Connection,
    schema: &EntitySchema,
    id: &str,
    version: i64,
    fields: impl IntoIterator<Item = (&'a str, &'a WireValue<'a>)>,
) -> Result<(), EntityError> {
    let fields = fields
        .into_iter()
        .map(|(name, value)| (name, Scalar::from(value)));
    write_row(conn, schema, id, version, fields)
}

/// The one write every upsert goes through: each given field is checked against the schema and
/// bound to its column as it comes (a name given twice: the last wins, as in a JSON object);
/// columns not given stay null (a cached statement comes back with its bindings cleared).
fn write_row<'a>(
    conn: &Connection,
    schema: &EntitySchema,
    id: &str,
    version: i64,
    fields: impl Iterator<Item = (&'a str, Scalar<'a>)>,
) -> Result<(), EntityError> {
    let sql = schema.upsert_sql.0.get_or_init(|| upsert_sql(schema));
    let mut stmt = conn.prepare_cached(sql)?;
    stmt.raw_bind_parameter(1, ToSqlOutput::Borrowed(ValueRef::Text(id.as_bytes())))?;
    stmt.raw_bind_parameter(2, version)?;
    for (name, value) in fields {
        let (i, f) = schema.field_at(name)?;
        stmt.raw_bind_parameter(i + 3, ToSqlOutput::Borrowed(to_sql_ref(f, value)?))?;
    }
    stmt.raw_execute()?;
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
