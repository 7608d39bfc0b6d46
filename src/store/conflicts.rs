//! The conflict log: every conflict the sync met, how its mode settled it, and the ones kept for
//! the app (Manual mode, or a merge that touched the same field on both sides) until it resolves
//! them. Changes the server refused are kept here too, as sync errors (`sync_errors.rs`), so one
//! log holds the history of both.

use std::collections::HashSet;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::entities::{self, EntityError, Record};
use super::outbox::{self, Op, Snapshot};
use super::{SqlResultExt, StoreError, record_state};

/// How a conflict between a local edit and a server change is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ConflictMode {
    /// The server's record replaces the local edit.
    ServerWins,
    /// The local edit is sent again over the server's version.
    ClientWins,
    /// Edits of different fields merge; the same field changed on both sides waits for the app.
    #[default]
    MergeFields,
    /// Every conflict waits for the app (`conflicts()` / `resolve_conflict()`).
    Manual,
}

impl ConflictMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictMode::ServerWins => "server_wins",
            ConflictMode::ClientWins => "client_wins",
            ConflictMode::MergeFields => "merge_fields",
            ConflictMode::Manual => "manual",
        }
    }

    fn parse(s: &str) -> Option<ConflictMode> {
        [
            ConflictMode::ServerWins,
            ConflictMode::ClientWins,
            ConflictMode::MergeFields,
            ConflictMode::Manual,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// How a logged conflict ended (or that it waits for the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConflictOutcome {
    ServerWins,
    ClientWins,
    Merged,
    /// The server refused the edit (not a conflict of versions: `reason` says why); logged by
    /// versions before sync errors, which now keep the edit (`SyncError`).
    Rejected,
    /// The server refused the edit; the person's values stay until they retry or discard.
    SyncError,
    /// A sync error the person sent again.
    Retried,
    /// A sync error the person dropped for the server's version.
    Discarded,
    /// Waits for the app's decision.
    Pending,
    ResolvedLocal,
    ResolvedServer,
    ResolvedMerged,
}

impl ConflictOutcome {
    const ALL: [ConflictOutcome; 11] = [
        ConflictOutcome::ServerWins,
        ConflictOutcome::ClientWins,
        ConflictOutcome::Merged,
        ConflictOutcome::Rejected,
        ConflictOutcome::SyncError,
        ConflictOutcome::Retried,
        ConflictOutcome::Discarded,
        ConflictOutcome::Pending,
        ConflictOutcome::ResolvedLocal,
        ConflictOutcome::ResolvedServer,
        ConflictOutcome::ResolvedMerged,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictOutcome::ServerWins => "server_wins",
            ConflictOutcome::ClientWins => "client_wins",
            ConflictOutcome::Merged => "merged",
            ConflictOutcome::Rejected => "rejected",
            ConflictOutcome::SyncError => "sync_error",
            ConflictOutcome::Retried => "retried",
            ConflictOutcome::Discarded => "discarded",
            ConflictOutcome::Pending => "pending",
            ConflictOutcome::ResolvedLocal => "resolved_local",
            ConflictOutcome::ResolvedServer => "resolved_server",
            ConflictOutcome::ResolvedMerged => "resolved_merged",
        }
    }

    fn parse(s: &str) -> Result<ConflictOutcome, StoreError> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| StoreError::Corrupted(format!("conflict outcome {s:?}")))
    }
}

/// The local side of a conflict: the fields the pending edits set, or a delete.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The mode that met it (None for a rejection).
    pub mode: Option<ConflictMode>,
    pub outcome: ConflictOutcome,
    pub reason: Option<String>,
    /// The server's rejection code (docs/protocol.md), for a sync error.
    pub code: Option<String>,
    /// Seconds since 1970.
    pub created_at: i64,
}

/// One conflict to log: what each side held and how it was settled.
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    pub entity: &'a str,
    pub record_id: &'a str,
    pub base: Option<&'a Snapshot>,
    pub local: &'a LocalChange,
    pub server: Option<&'a Snapshot>,
    pub mode: Option<ConflictMode>,
    pub outcome: ConflictOutcome,
    pub reason: Option<&'a str>,
    pub code: Option<&'a str>,
}

/// The app's decision on a pending conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum AppDecision {
    /// Send the local change again, over the server's version.
    KeepLocal,
    /// Drop the local change.
    KeepServer,
    /// Send these fields over the server's version.
    Merge(Map<String, Value>),
}

/// The outcomes of records that wait for the app or the person (protected from downloads).
pub(crate) const WAITING: &str = "outcome IN ('pending', 'sync_error')";

fn local_json(local: &LocalChange) -> String {
    json!({"deleted": local.deleted, "created": local.created, "fields": local.fields}).to_string()
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
pub fn log(conn: &Connection, e: &LogEntry<'_>) -> Result<(), StoreError> {
    let mode = e.mode.map_or("none", ConflictMode::as_str);
    conn.prepare_cached(
        "INSERT INTO conflicts
             (entity, record_id, base, local, server, mode, outcome, reason, code, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .classified()?
    .execute(params![
        e.entity,
        e.record_id,
        e.base.map(snapshot_json),
        local_json(e.local),
        e.server.map(snapshot_json),
        mode,
        e.outcome.as_str(),
        e.reason,
        e.code,
        super::unix_now()
    ])
    .classified()?;
    tracing::info!(
        entity = e.entity,
        outcome = e.outcome.as_str(),
        mode,
        "sync conflict"
    );
    Ok(())
}

pub(crate) const COLUMNS: &str = "SELECT id, entity, record_id, base, local, server, mode, \
     outcome, reason, code, created_at FROM conflicts";

/// Conflict log rows (`COLUMNS` plus a condition).
pub(crate) fn read(
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
        Option<String>,
        i64,
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
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    rows.into_iter()
        .map(
            |(
                id,
                entity,
                record_id,
                base,
                local,
                server,
                mode,
                outcome,
                reason,
                code,
                created_at,
            )| {
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
                    mode: ConflictMode::parse(&mode),
                    outcome: ConflictOutcome::parse(&outcome)?,
                    reason,
                    code,
                    created_at,
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

/// The conflict or sync error that waits on one record, if any (a sync error first).
pub fn waiting_for(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<Option<Conflict>, StoreError> {
    Ok(read(
        conn,
        &format!(
            "{COLUMNS} WHERE entity = ?1 AND record_id = ?2 AND {WAITING}
             ORDER BY outcome = 'sync_error' DESC LIMIT 1"
        ),
        params![entity, id],
    )?
    .pop())
}

/// A newer server state arrived for a record whose conflict waits for the app.
pub fn refresh_server(
    conn: &Connection,
    entity: &str,
    id: &str,
    server: &Snapshot,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "UPDATE conflicts SET server = ?3 WHERE entity = ?1 AND record_id = ?2 AND {WAITING}"
    ))
    .classified()?
    .execute(params![entity, id, snapshot_json(server)])
    .classified()?;
    outbox::set_mirror(conn, entity, id, Some(server))
}

/// Settles a pending conflict. Run inside a transaction.
pub fn resolve(
    conn: &Connection,
    conflict_id: i64,
    decision: AppDecision,
) -> Result<(), EntityError> {
    let conflict = waiting(conn, conflict_id, ConflictOutcome::Pending)?
        .ok_or(EntityError::NoSuchConflict(conflict_id))?;
    let outcome = match decision {
        AppDecision::KeepLocal => ConflictOutcome::ResolvedLocal,
        AppDecision::KeepServer => ConflictOutcome::ResolvedServer,
        AppDecision::Merge(_) => ConflictOutcome::ResolvedMerged,
    };
    settle_waiting(conn, &conflict, decision, outcome)
}

/// One entry that waits with `outcome` (pending conflict or sync error).
pub(crate) fn waiting(
    conn: &Connection,
    id: i64,
    outcome: ConflictOutcome,
) -> Result<Option<Conflict>, StoreError> {
    Ok(read(
        conn,
        &format!("{COLUMNS} WHERE id = ?1 AND outcome = ?2"),
        params![id, outcome.as_str()],
    )?
    .pop())
}

/// Carries out the decision on a waiting entry: the local change queued again over the server's
/// version, or the server's version shown, or a merge; then closes the entry with `outcome`.
pub(crate) fn settle_waiting(
    conn: &Connection,
    conflict: &Conflict,
    decision: AppDecision,
    outcome: ConflictOutcome,
) -> Result<(), EntityError> {
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
    match decision {
        AppDecision::KeepLocal => {
            if conflict.local.deleted {
                if base.is_some() {
                    queue(Op::Delete, &Map::new())?;
                }
            } else {
                queue(op_for_write, &conflict.local.fields)?;
            }
        }
        AppDecision::KeepServer => {
            if server.deleted {
                entities::delete(conn, entity, id)?;
            } else {
                let record = Record::new(id, server.version, server.fields.clone());
                entities::upsert(conn, entity, &record)?;
            }
            outbox::set_mirror(conn, entity, id, None)?;
        }
        AppDecision::Merge(fields) => {
            let mut merged = if server.deleted {
                Map::new()
            } else {
                server.fields.clone()
            };
            merged.extend(fields.clone());
            let record = Record::new(id, server.version, merged);
            entities::upsert(conn, entity, &record)?;
            queue(op_for_write, &fields)?;
        }
    }
    close(conn, conflict.id, outcome)?;
    record_state::refresh(conn, entity, id)?;
    Ok(())
}

/// The (entity, id) of every record whose conflict or sync error waits for the app or the
/// person: downloads must not overwrite them.
pub fn waiting_records(conn: &Connection) -> Result<HashSet<(String, String)>, StoreError> {
    outbox::keys(
        conn,
        &format!("SELECT entity, record_id FROM conflicts WHERE {WAITING}"),
    )
}

/// Rewrites the local side of a waiting entry (a sync error the person edited further).
pub(crate) fn set_local(conn: &Connection, id: i64, local: &LocalChange) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE conflicts SET local = ?2 WHERE id = ?1")
        .classified()?
        .execute(params![id, local_json(local)])
        .classified()?;
    Ok(())
}

/// Records how a waiting entry ended.
pub(crate) fn close(
    conn: &Connection,
    id: i64,
    outcome: ConflictOutcome,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE conflicts SET outcome = ?2, resolved_at = ?3 WHERE id = ?1")
        .classified()?
        .execute(params![id, outcome.as_str(), super::unix_now()])
        .classified()?;
    Ok(())
}
