//! The store side of a sync: each function runs inside one transaction the engine opens, so a
//! page, or the answer to a push, is applied entirely or not at all.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde_json::Map;

use super::plan::{self, ConflictMode, PageAction, Resolution};
use super::protocol::{MutationResult, MutationStatus, PullResponse};
use crate::ffi::SyncError;
use crate::store::conflicts::{self, LocalChange};
use crate::store::entities::{self, EntityError, EntitySchema, Record};
use crate::store::meta;
use crate::store::outbox::{self, Entry, Op, Snapshot};

/// Where the download stands, kept in `meta`.
pub const CURSOR_KEY: &str = "sync.cursor";
pub const PAGE_TOKEN_KEY: &str = "sync.page_token";
pub const CLIENT_ID_KEY: &str = "sync.client_id";
pub const SCHEMA_VERSION_KEY: &str = "sync.schema_version";

/// A protocol violation found while applying: nothing of the page or answer is kept.
pub fn protocol_error(reason: impl Into<String>) -> SyncError {
    SyncError::Server {
        status: 200,
        reason: reason.into(),
    }
}

fn entity_error(e: EntityError) -> SyncError {
    match e {
        EntityError::Store(s) => s.into(),
        other => protocol_error(other.to_string()),
    }
}

/// What applying a push answer did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PushOutcome {
    pub acknowledged: u64,
    pub conflicts: u64,
    pub rejected: u64,
    /// Whether any queued entry was removed or rebased (else the upload would loop).
    pub progressed: bool,
}

/// Applies the server's answers to the `sent` entries.
pub fn push_results(
    conn: &Connection,
    sent: &[Entry],
    results: Vec<MutationResult>,
    mode: ConflictMode,
) -> Result<PushOutcome, SyncError> {
    let by_id: HashMap<i64, &Entry> = sent.iter().map(|e| (e.seq, e)).collect();
    let mut seen = HashSet::new();
    for r in &results {
        if !by_id.contains_key(&r.mutation_id) || !seen.insert(r.mutation_id) {
            return Err(protocol_error(format!(
                "push answer for mutation {} that was not sent or twice",
                r.mutation_id
            )));
        }
    }
    let mut results = results;
    results.sort_by_key(|r| r.mutation_id);
    let mut outcome = PushOutcome::default();
    for result in results {
        let sent = by_id[&result.mutation_id];
        // Gone or rebased by an earlier answer in this batch (same record): nothing left to do.
        match outbox::entry(conn, sent.seq)? {
            Some(now) if now.base_version == sent.base_version && now.op == sent.op => {}
            _ => continue,
        }
        outcome.progressed = true;
        match result.status {
            MutationStatus::Applied | MutationStatus::Duplicate => {
                acknowledge(conn, sent, result.version)?;
                outcome.acknowledged += 1;
            }
            MutationStatus::Conflict => {
                let server = result
                    .server
                    .ok_or_else(|| protocol_error("a conflict without the server's record"))?;
                let server = Snapshot {
                    version: server.version,
                    deleted: server.deleted,
                    fields: server.fields,
                };
                settle_conflict(conn, &sent.entity, &sent.record_id, &server, mode)?;
                outcome.conflicts += 1;
            }
            MutationStatus::Rejected => {
                reject(conn, sent, result.reason.as_deref().unwrap_or("rejected"))?;
                outcome.rejected += 1;
            }
        }
    }
    Ok(outcome)
}

/// An applied mutation leaves the outbox; the record now stands on the new server version.
fn acknowledge(conn: &Connection, entry: &Entry, version: Option<i64>) -> Result<(), SyncError> {
    outbox::remove(conn, entry.seq)?;
    let (entity, id) = (entry.entity.as_str(), entry.record_id.as_str());
    let rest = outbox::entries_for(conn, entity, id)?;
    if entry.op == Op::Delete {
        if rest.is_empty() {
            outbox::set_mirror(conn, entity, id, None)?;
        }
        return Ok(());
    }
    let version = version.ok_or_else(|| protocol_error("an applied write without a version"))?;
    entities::set_version(conn, entity, id, version).map_err(entity_error)?;
    if rest.is_empty() {
        outbox::set_mirror(conn, entity, id, None)?;
        return Ok(());
    }
    // Later edits of this record were made on top of this one: they now stand on `version`.
    outbox::rebase_record(conn, entity, id, version)?;
    let mut base = outbox::mirror(conn, entity, id)?
        .map(|m| m.fields)
        .unwrap_or_default();
    base.extend(entry.fields.clone());
    let snapshot = Snapshot {
        version,
        deleted: false,
        fields: base,
    };
    outbox::set_mirror(conn, entity, id, Some(&snapshot))?;
    Ok(())
}

fn write_local(
    conn: &Connection,
    entity: &str,
    id: &str,
    state: &Snapshot,
) -> Result<(), SyncError> {
    if state.deleted {
        entities::delete(conn, entity, id).map_err(entity_error)?;
    } else {
        let record = Record {
            id: id.to_string(),
            version: state.version,
            fields: state.fields.clone(),
        };
        entities::upsert(conn, entity, &record).map_err(entity_error)?;
    }
    Ok(())
}

/// What a record's queued edits amount to, and the server state they started from; None when
/// nothing is queued for it.
fn local_side(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<Option<(LocalChange, Option<Snapshot>)>, SyncError> {
    let entries = outbox::entries_for(conn, entity, id)?;
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        LocalChange::of(&entries),
        outbox::mirror(conn, entity, id)?,
    )))
}

/// Settles a record whose queued edits met a different server version.
pub fn settle_conflict(
    conn: &Connection,
    entity: &str,
    id: &str,
    server: &Snapshot,
    mode: ConflictMode,
) -> Result<(), SyncError> {
    let Some((local, base)) = local_side(conn, entity, id)? else {
        return Ok(());
    };
    let resolution = plan::resolve(mode, base.as_ref(), &local, server);
    let outcome = resolution.outcome(mode);
    conflicts::log(
        conn,
        entity,
        id,
        base.as_ref(),
        &local,
        Some(server),
        mode.as_str(),
        outcome,
        None,
    )?;
    match resolution {
        Resolution::TakeServer => {
            outbox::remove_record(conn, entity, id)?;
            write_local(conn, entity, id, server)?;
            outbox::set_mirror(conn, entity, id, None)?;
        }
        Resolution::Rebase => {
            outbox::rebase_record(conn, entity, id, server.version)?;
            outbox::set_mirror(conn, entity, id, Some(server))?;
            if !local.deleted {
                let shown = Snapshot {
                    version: server.version,
                    deleted: false,
                    fields: plan::rebased_fields(server, &local),
                };
                write_local(conn, entity, id, &shown)?;
            }
        }
        Resolution::Manual => {
            // The edits move into the conflict log; the local record keeps showing them.
            outbox::remove_record(conn, entity, id)?;
            outbox::set_mirror(conn, entity, id, Some(server))?;
        }
    }
    Ok(())
}

/// The server refused an edit (e.g. a value it does not accept): log it and show the server's
/// state again.
fn reject(conn: &Connection, entry: &Entry, reason: &str) -> Result<(), SyncError> {
    let (entity, id) = (entry.entity.as_str(), entry.record_id.as_str());
    let Some((local, base)) = local_side(conn, entity, id)? else {
        return Ok(());
    };
    conflicts::log(
        conn,
        entity,
        id,
        base.as_ref(),
        &local,
        None,
        "none",
        "rejected",
        Some(reason),
    )?;
    outbox::remove_record(conn, entity, id)?;
    match &base {
        Some(b) => write_local(conn, entity, id, b)?,
        None => write_local(
            conn,
            entity,
            id,
            &Snapshot {
                version: 0,
                deleted: true,
                fields: Map::new(),
            },
        )?,
    }
    outbox::set_mirror(conn, entity, id, None)?;
    Ok(())
}

/// Applies one downloaded page and records where the download stands, returning how many
/// changes it held.
pub fn page(
    conn: &Connection,
    response: PullResponse,
    schemas: &HashMap<String, EntitySchema>,
) -> Result<u64, SyncError> {
    let names: HashSet<String> = schemas.keys().cloned().collect();
    let queued = outbox::queued_records(conn)?;
    let in_conflict = conflicts::pending_records(conn)?;
    let count = response.changes.len() as u64;
    let actions = plan::plan_page(response.changes, &names, &queued, &in_conflict)
        .map_err(|e| protocol_error(e.to_string()))?;
    for action in actions {
        match action {
            PageAction::Upsert(c) => {
                let record = Record {
                    id: c.id,
                    version: c.version,
                    fields: c.fields,
                };
                entities::upsert_with(conn, &schemas[&c.entity], &record).map_err(entity_error)?;
            }
            PageAction::Delete(c) => {
                entities::delete_if_not_newer(conn, &c.entity, &c.id, c.version)
                    .map_err(entity_error)?;
            }
            PageAction::KeepLocal(_) => {}
            PageAction::RefreshConflict(c) => {
                let server = Snapshot {
                    version: c.version,
                    deleted: c.op == super::protocol::ChangeOp::Delete,
                    fields: c.fields,
                };
                conflicts::refresh_server(conn, &c.entity, &c.id, &server)?;
            }
        }
    }
    match (&response.page_token, response.cursor) {
        (Some(token), _) => meta::set(conn, PAGE_TOKEN_KEY, token)?,
        (None, Some(cursor)) => {
            // The last page of an initial download also builds its indexes (same transaction).
            entities::end_bulk_load(conn).map_err(entity_error)?;
            meta::set(conn, CURSOR_KEY, &cursor.to_string())?;
            meta::remove(conn, PAGE_TOKEN_KEY)?;
        }
        (None, None) => return Err(protocol_error("the last page carries no cursor")),
    }
    Ok(count)
}
