//! The conflict log: every conflict the sync met, how its mode settled it, and the ones kept for
//! the app (Manual mode, or a merge that touched the same field on both sides) until it resolves
//! them.

use std::collections::HashSet;

use rusqlite::{Connection, params};
use serde_json::{Map, Value, json};

use super::entities::{self, EntityError, Record};
use super::outbox::{self, Op, Snapshot};
use super::{SqlResultExt, StoreError};

/// The local side of a conflict: the fields the pending edits set, or a delete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalChange {
    pub fields: Map<String, Value>,
    pub deleted: bool,
    /// The record was created offline (it has no server base).
    pub created: bool,
}

impl LocalChange {
    /// What a record's queued entries amount to, in order.
    pub fn of(entries: &[outbox::Entry]) -> LocalChange {
        let mut change = LocalChange::default();
        for e in entries {
            match e.op {
                Op::Create => {
                    change.created = true;
                    change.fields.extend(e.fields.clone());
                }
                Op::Update => change.fields.extend(e.fields.clone()),
                Op::Delete => change.deleted = true,
            }
        }
        change
    }
}

/// One logged conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub id: i64,
    pub entity: String,
    pub record_id: String,
    pub base: Option<Snapshot>,
    pub local: LocalChange,
    pub server: Option<Snapshot>,
    pub mode: String,
    /// server_wins, client_wins, merged, rejected, pending (for the app), or resolved_*.
    pub outcome: String,
    pub reason: Option<String>,
}

/// How the app settles a pending conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Send the local change again, over the server's version.
    KeepLocal,
    /// Drop the local change.
    KeepServer,
    /// Send these fields over the server's version.
    Merge(Map<String, Value>),
}

fn snapshot_json(s: &Snapshot) -> String {
    json!({"version": s.version, "deleted": s.deleted, "fields": s.fields}).to_string()
}

fn snapshot_from(text: Option<String>) -> Result<Option<Snapshot>, StoreError> {
    let Some(text) = text else { return Ok(None) };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupted(format!("conflict snapshot: {e}")))?;
    Ok(Some(Snapshot {
        version: v["version"].as_i64().unwrap_or(0),
        deleted: v["deleted"].as_bool().unwrap_or(false),
        fields: v["fields"].as_object().cloned().unwrap_or_default(),
    }))
}

/// Logs a conflict and how it was settled.
#[allow(clippy::too_many_arguments)]
pub fn log(
    conn: &Connection,
    entity: &str,
    id: &str,
    base: Option<&Snapshot>,
    local: &LocalChange,
    server: Option<&Snapshot>,
    mode: &str,
    outcome: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let local = json!({"deleted": local.deleted, "created": local.created, "fields": local.fields});
    conn.prepare_cached(
        "INSERT INTO conflicts (entity, record_id, base, local, server, mode, outcome, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .classified()?
    .execute(params![
        entity,
        id,
        base.map(snapshot_json),
        local.to_string(),
        server.map(snapshot_json),
        mode,
        outcome,
        reason,
        super::unix_now()
    ])
    .classified()?;
    tracing::info!(entity, outcome, mode, "sync conflict");
    Ok(())
}

const COLUMNS: &str =
    "SELECT id, entity, record_id, base, local, server, mode, outcome, reason FROM conflicts";

fn read(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Conflict>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).classified()?;
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        String,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = stmt
        .query_map(args, |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    rows.into_iter()
        .map(
            |(id, entity, record_id, base, local, server, mode, outcome, reason)| {
                let local: Value = serde_json::from_str(&local)
                    .map_err(|e| StoreError::Corrupted(format!("conflict: {e}")))?;
                Ok(Conflict {
                    id,
                    entity,
                    record_id,
                    base: snapshot_from(base)?,
                    local: LocalChange {
                        fields: local["fields"].as_object().cloned().unwrap_or_default(),
                        deleted: local["deleted"].as_bool().unwrap_or(false),
                        created: local["created"].as_bool().unwrap_or(false),
                    },
                    server: snapshot_from(server)?,
                    mode,
                    outcome,
                    reason,
                })
            },
        )
        .collect()
}

/// Conflicts waiting for the app, oldest first.
pub fn pending(conn: &Connection) -> Result<Vec<Conflict>, StoreError> {
    read(
        conn,
        &format!("{COLUMNS} WHERE outcome = 'pending' ORDER BY id"),
        [],
    )
}

/// Every logged conflict, newest first (for support screens).
pub fn recent(conn: &Connection, limit: u32) -> Result<Vec<Conflict>, StoreError> {
    read(
        conn,
        &format!("{COLUMNS} ORDER BY id DESC LIMIT ?1"),
        [limit],
    )
}

/// A newer server state arrived for a record whose conflict waits for the app.
pub fn refresh_server(
    conn: &Connection,
    entity: &str,
    id: &str,
    server: &Snapshot,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE conflicts SET server = ?3 WHERE entity = ?1 AND record_id = ?2 AND outcome = 'pending'",
    )
    .classified()?
    .execute(params![entity, id, snapshot_json(server)])
    .classified()?;
    outbox::set_mirror(conn, entity, id, Some(server))
}

/// Settles a pending conflict. Run inside a transaction.
pub fn resolve(
    conn: &Connection,
    conflict_id: i64,
    resolution: Resolution,
) -> Result<(), EntityError> {
    let conflict = read(
        conn,
        &format!("{COLUMNS} WHERE id = ?1 AND outcome = 'pending'"),
        [conflict_id],
    )?
    .pop()
    .ok_or(EntityError::NoSuchConflict(conflict_id))?;
    let (entity, id) = (conflict.entity.as_str(), conflict.record_id.as_str());
    let server = conflict.server.clone().unwrap_or(Snapshot {
        version: 0,
        deleted: true,
        fields: Map::new(),
    });
    let base = (server.version > 0).then_some(server.version);
    let queue = |op: Op, fields: &Map<String, Value>| -> Result<(), EntityError> {
        Ok(outbox::queue(conn, entity, id, op, base, fields)?)
    };
    let op_for_write = if base.is_some() {
        Op::Update
    } else {
        Op::Create
    };
    let outcome = match resolution {
        Resolution::KeepLocal => {
            if conflict.local.deleted {
                queue(Op::Delete, &Map::new())?;
            } else {
                queue(op_for_write, &conflict.local.fields)?;
            }
            "resolved_local"
        }
        Resolution::KeepServer => {
            if server.deleted {
                entities::delete(conn, entity, id)?;
            } else {
                let record = Record {
                    id: id.to_string(),
                    version: server.version,
                    fields: server.fields.clone(),
                };
                entities::upsert(conn, entity, &record)?;
            }
            outbox::set_mirror(conn, entity, id, None)?;
            "resolved_server"
        }
        Resolution::Merge(fields) => {
            let mut merged = if server.deleted {
                Map::new()
            } else {
                server.fields.clone()
            };
            merged.extend(fields.clone());
            let record = Record {
                id: id.to_string(),
                version: server.version,
                fields: merged,
            };
            entities::upsert(conn, entity, &record)?;
            queue(op_for_write, &fields)?;
            "resolved_merged"
        }
    };
    conn.execute(
        "UPDATE conflicts SET outcome = ?2, resolved_at = ?3 WHERE id = ?1",
        params![conflict_id, outcome, super::unix_now()],
    )?;
    Ok(())
}

/// The (entity, id) of every record whose conflict waits for the app.
pub fn pending_records(conn: &Connection) -> Result<HashSet<(String, String)>, StoreError> {
    outbox::keys(
        conn,
        "SELECT entity, record_id FROM conflicts WHERE outcome = 'pending'",
    )
}
