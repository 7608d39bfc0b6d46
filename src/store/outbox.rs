//! Local edits: every create, update and delete changes the local row at once and queues a
//! mutation in the outbox, in one transaction. The first edit of a server record also keeps its
//! last server state in the mirror, the base of a three-way merge if the server changed it too.
//!
//! The outbox sequence number is the mutation id sent to the server (AUTOINCREMENT: never reused,
//! so a retried upload is recognised as a duplicate).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::conflicts::LocalChange;
use super::entities::{self, EntityError, Record};
use super::{SqlResultExt, StoreError, record_state, sync_errors};

/// What a queued mutation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
    fn parse(s: &str) -> Result<Op, StoreError> {
        match s {
            "create" => Ok(Op::Create),
            "update" => Ok(Op::Update),
            "delete" => Ok(Op::Delete),
            other => Err(StoreError::Corrupted(format!("outbox op {other:?}"))),
        }
    }
}

/// One queued local change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Also the mutation id.
    pub seq: i64,
    pub entity: String,
    pub record_id: String,
    pub op: Op,
    /// The server version the change was made on (None for a create).
    pub base_version: Option<i64>,
    /// The fields the change sets (all given fields for a create, changed ones for an update).
    pub fields: Map<String, Value>,
    /// The mutation id this entry went up as, while the server's answer is outstanding.
    #[serde(default)]
    pub sent_as: Option<i64>,
}

/// The last known server state of a record with pending edits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub version: i64,
    pub deleted: bool,
    pub fields: Map<String, Value>,
}

/// A fresh record id (random, UUID-shaped) for records created offline.
pub fn new_record_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn to_json(fields: &Map<String, Value>) -> String {
    Value::Object(fields.clone()).to_string()
}

fn from_json(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupted(format!("stored fields: {e}")))
}

/// Appends a change to the outbox (in the caller's transaction).
pub(crate) fn queue(
    conn: &Connection,
    entity: &str,
    id: &str,
    op: Op,
    base: Option<i64>,
    fields: &Map<String, Value>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (entity, record_id, op, base_version, fields, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .classified()?
    .execute(params![
        entity,
        id,
        op.as_str(),
        base,
        to_json(fields),
        super::unix_now()
    ])
    .classified()?;
    Ok(())
}

/// Keeps the record's server state as the merge base before its first local edit.
fn keep_base(conn: &Connection, entity: &str, record: &Record) -> Result<(), StoreError> {
    if record.version > 0 {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO mirror (entity, record_id, version, fields) VALUES (?1, ?2, ?3, ?4)",
        )
        .classified()?
        .execute(params![entity, record.id, record.version, to_json(&record.fields)])
        .classified()?;
    }
    Ok(())
}

fn require(conn: &Connection, entity: &str, id: &str) -> Result<Record, EntityError> {
    entities::get(conn, entity, id)?.ok_or_else(|| EntityError::NoSuchRecord {
        entity: entity.to_string(),
        id: id.to_string(),
    })
}

/// Creates a record offline; returns its new id. Run inside a transaction.
pub fn create(
    conn: &Connection,
    entity: &str,
    fields: Map<String, Value>,
) -> Result<String, EntityError> {
    let id = new_record_id();
    create_with_id(conn, entity, &id, fields)?;
    Ok(id)
}

/// As [`create`], with the id chosen by the caller (the simulator's ids come from its seed, so
/// a run replays exactly). Run inside a transaction.
pub fn create_with_id(
    conn: &Connection,
    entity: &str,
    id: &str,
    fields: Map<String, Value>,
) -> Result<(), EntityError> {
    let id = id.to_string();
    let record = Record::new(id.clone(), 0, fields);
    entities::upsert(conn, entity, &record)?;
    queue(conn, entity, &id, Op::Create, None, &record.fields)?;
    record_state::refresh(conn, entity, &id)?;
    Ok(())
}

/// Changes some fields of a record offline. Run inside a transaction.
pub fn update(
    conn: &Connection,
    entity: &str,
    id: &str,
    fields: Map<String, Value>,
) -> Result<(), EntityError> {
    let mut record = require(conn, entity, id)?;
    let error = sync_errors::open_for(conn, entity, id)?;
    if error.is_none() {
        keep_base(conn, entity, &record)?;
    }
    let base = record.version;
    record.fields.extend(fields.clone());
    entities::upsert(conn, entity, &record)?;
    match error {
        Some(error) => sync_errors::fold_edit(conn, &error, &fields, false)?,
        None => queue(conn, entity, id, Op::Update, Some(base), &fields)?,
    }
    record_state::refresh(conn, entity, id)?;
    Ok(())
}

/// Deletes a record offline. Run inside a transaction.
pub fn delete(conn: &Connection, entity: &str, id: &str) -> Result<(), EntityError> {
    let record = require(conn, entity, id)?;
    entities::delete(conn, entity, id)?;
    if let Some(error) = sync_errors::open_for(conn, entity, id)? {
        return Ok(sync_errors::fold_edit(conn, &error, &Map::new(), true)?);
    }
    keep_base(conn, entity, &record)?;
    queue(
        conn,
        entity,
        id,
        Op::Delete,
        Some(record.version),
        &Map::new(),
    )?;
    Ok(())
}

/// Whether a record has queued changes.
pub fn has_entries(conn: &Connection, entity: &str, id: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE entity = ?1 AND record_id = ?2)")
        .classified()?
        .query_row(params![entity, id], |r| r.get(0))
        .classified()
}

/// One record's queued changes, as the person's list of what waits to go up.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRecord {
    pub entity: String,
    pub record_id: String,
    /// What the edits amount to.
    pub change: LocalChange,
    /// How many edits are queued.
    pub edits: u32,
    /// When the oldest of them was made (seconds since 1970).
    pub queued_at: i64,
}

/// Every record with queued changes, in the order of its first edit.
pub fn pending_records(conn: &Connection) -> Result<Vec<PendingRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT entity, record_id, count(*), min(created_at) FROM outbox
             GROUP BY entity, record_id ORDER BY min(seq)",
        )
        .classified()?;
    let rows: Vec<(String, String, u32, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    rows.into_iter()
        .map(|(entity, record_id, edits, queued_at)| {
            Ok(PendingRecord {
                change: LocalChange::of(&entries_for(conn, &entity, &record_id)?),
                entity,
                record_id,
                edits,
                queued_at,
            })
        })
        .collect()
}

/// How many local changes wait to be sent.
pub fn pending_count(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))
        .classified()
        .map(|n| n as u64)
}

type EntryRow = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    String,
    Option<i64>,
);

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn entries(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).classified()?;
    let rows: Vec<_> = stmt
        .query_map(args, entry_from_row)
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    rows.into_iter()
        .map(
            |(seq, entity, record_id, op, base_version, fields, sent_as)| {
                Ok(Entry {
                    seq,
                    entity,
                    record_id,
                    op: Op::parse(&op)?,
                    base_version,
                    fields: from_json(&fields)?,
                    sent_as,
                })
            },
        )
        .collect()
}

const ENTRY_COLUMNS: &str =
    "SELECT seq, entity, record_id, op, base_version, fields, sent_as FROM outbox";

/// The oldest `limit` queued changes, in order.
pub fn oldest(conn: &Connection, limit: u32) -> Result<Vec<Entry>, StoreError> {
    entries(
        conn,
        &format!("{ENTRY_COLUMNS} ORDER BY seq LIMIT ?1"),
        [limit],
    )
}

/// One queued change by mutation id.
pub fn entry(conn: &Connection, seq: i64) -> Result<Option<Entry>, StoreError> {
    Ok(entries(conn, &format!("{ENTRY_COLUMNS} WHERE seq = ?1"), [seq])?.pop())
}

/// The queued changes of one record, in order.
pub fn entries_for(conn: &Connection, entity: &str, id: &str) -> Result<Vec<Entry>, StoreError> {
    entries(
        conn,
        &format!("{ENTRY_COLUMNS} WHERE entity = ?1 AND record_id = ?2 ORDER BY seq"),
        params![entity, id],
    )
}

/// Removes one acknowledged change.
pub fn remove(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM outbox WHERE seq = ?1")
        .classified()?
        .execute([seq])
        .classified()?;
    Ok(())
}

/// Removes every queued change of a record.
pub fn remove_record(conn: &Connection, entity: &str, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM outbox WHERE entity = ?1 AND record_id = ?2",
        params![entity, id],
    )
    .classified()?;
    Ok(())
}

/// Rebases every queued change of a record on a new server version (and turns a queued create
/// into an update, for a record the server already has). They go up again as a new mutation.
pub fn rebase_record(
    conn: &Connection,
    entity: &str,
    id: &str,
    version: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET base_version = ?3, sent_as = NULL,
             op = CASE op WHEN 'create' THEN 'update' ELSE op END
         WHERE entity = ?1 AND record_id = ?2",
        params![entity, id, version],
    )
    .classified()?;
    Ok(())
}

/// Records that the entries `seqs` go up as mutation `mutation_id`: committed before the request
/// is sent, so a retry after a lost answer sends the same mutation again.
pub fn mark_sent(conn: &Connection, seqs: &[i64], mutation_id: i64) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("UPDATE outbox SET sent_as = ?2 WHERE seq = ?1")
        .classified()?;
    for seq in seqs {
        stmt.execute(params![seq, mutation_id]).classified()?;
    }
    Ok(())
}

/// The merge base of a record with pending edits.
pub fn mirror(conn: &Connection, entity: &str, id: &str) -> Result<Option<Snapshot>, StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, fields FROM mirror WHERE entity = ?1 AND record_id = ?2")
        .classified()?
        .query_row(params![entity, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .classified()?;
    row.map(|(version, fields)| {
        Ok(Snapshot {
            version,
            deleted: false,
            fields: from_json(&fields)?,
        })
    })
    .transpose()
}

/// Replaces (or with None removes) the merge base of a record.
pub fn set_mirror(
    conn: &Connection,
    entity: &str,
    id: &str,
    snapshot: Option<&Snapshot>,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM mirror WHERE entity = ?1 AND record_id = ?2")
        .classified()?
        .execute(params![entity, id])
        .classified()?;
    if let Some(s) = snapshot.filter(|s| !s.deleted) {
        conn.prepare_cached(
            "INSERT INTO mirror (entity, record_id, version, fields) VALUES (?1, ?2, ?3, ?4)",
        )
        .classified()?
        .execute(params![entity, id, s.version, to_json(&s.fields)])
        .classified()?;
    }
    Ok(())
}

/// The (entity, id) of every record with queued changes: the download must not overwrite them.
pub fn queued_records(conn: &Connection) -> Result<HashSet<(String, String)>, StoreError> {
    keys(conn, "SELECT DISTINCT entity, record_id FROM outbox")
}

/// Runs a query of (entity, id) pairs.
pub(crate) fn keys(conn: &Connection, sql: &str) -> Result<HashSet<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).classified()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .classified()?;
    rows.collect::<Result<_, _>>().classified()
}
