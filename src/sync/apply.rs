//! Executes the plans of plan.rs in the store. Each function runs inside one transaction the
//! engine opens, so a page, or the answer to a push, is applied entirely or not at all.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use super::error::EngineError;
use super::plan::{self, ConflictMode, Outgoing, PageAction, PageEnd, PushAction, Settlement};
use super::protocol::{ChangeOp, MutationResult, MutationStatus, PullResponse};
use crate::store::conflicts::{self, LocalChange, LogEntry};
use crate::store::entities::{self, EntitySchema, Record};
use crate::store::outbox::{self, Op, Snapshot};
use crate::store::sync_errors::{self, Refusal};
use crate::store::{meta, record_state, resync};

/// Where the download stands, kept in `meta`.
pub const CURSOR_KEY: &str = "sync.cursor";
pub const PAGE_TOKEN_KEY: &str = "sync.page_token";
pub const CLIENT_ID_KEY: &str = "sync.client_id";
pub const SCHEMA_VERSION_KEY: &str = "sync.schema_version";

/// What applying a push answer did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PushOutcome {
    pub acknowledged: u64,
    pub conflicts: u64,
    pub rejected: u64,
}

/// What a record's queued edits amount to, and the server state they started from; None when
/// nothing is queued for it.
fn local_side(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<Option<(LocalChange, Option<Snapshot>)>, EngineError> {
    let entries = outbox::entries_for(conn, entity, id)?;
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        LocalChange::of(&entries),
        outbox::mirror(conn, entity, id)?,
    )))
}

/// Plans and applies the server's answers to the `sent` mutations.
pub fn push_results(
    conn: &Connection,
    sent: &[Outgoing],
    results: Vec<MutationResult>,
    mode: ConflictMode,
) -> Result<PushOutcome, EngineError> {
    let by_id: HashMap<i64, &Outgoing> = sent.iter().map(|m| (m.mutation_id, m)).collect();
    let mut locals = HashMap::new();
    for r in results
        .iter()
        .filter(|r| r.status == MutationStatus::Conflict)
    {
        if let Some(m) = by_id.get(&r.mutation_id)
            && let Some(side) = local_side(conn, &m.entity, &m.record_id)?
        {
            locals.insert(r.mutation_id, side);
        }
    }
    let actions = plan::plan_push(sent, results, &locals, mode)?;
    let mut outcome = PushOutcome::default();
    for action in actions {
        match action {
            PushAction::Acknowledge {
                mutation_id,
                version,
                in_scope,
            } => {
                acknowledge(conn, by_id[&mutation_id], version, in_scope)?;
                outcome.acknowledged += 1;
            }
            PushAction::Settle {
                mutation_id,
                settlement,
                server,
            } => {
                let m = by_id[&mutation_id];
                if let Some(side) = locals.get(&mutation_id) {
                    let conflict = Conflicted {
                        entity: &m.entity,
                        id: &m.record_id,
                        local: &side.0,
                        base: side.1.as_ref(),
                        server: &server,
                    };
                    settle(conn, &conflict, settlement, mode)?;
                }
                outcome.conflicts += 1;
            }
            PushAction::Reject {
                mutation_id,
                code,
                reason,
            } => {
                let m = by_id[&mutation_id];
                if let Some((local, _)) = local_side(conn, &m.entity, &m.record_id)? {
                    let refusal = Refusal {
                        code: code.as_deref(),
                        reason: &reason,
                    };
                    sync_errors::record(conn, &m.entity, &m.record_id, &local, refusal)?;
                }
                outcome.rejected += 1;
            }
        }
    }
    Ok(outcome)
}

/// An applied mutation leaves the outbox; the record now stands on the new server version, and
/// edits made while it was in flight are rebased on it.
fn acknowledge(
    conn: &Connection,
    m: &Outgoing,
    version: Option<i64>,
    in_scope: bool,
) -> Result<(), EngineError> {
    for seq in &m.seqs {
        outbox::remove(conn, *seq)?;
    }
    let (entity, id) = (m.entity.as_str(), m.record_id.as_str());
    let rest = outbox::entries_for(conn, entity, id)?;
    if m.op == Op::Delete {
        if rest.is_empty() {
            outbox::set_mirror(conn, entity, id, None)?;
        }
        return Ok(());
    }
    let version = version.ok_or(plan::PlanError::AppliedWithoutVersion)?;
    if !in_scope && rest.is_empty() {
        // The organization took the record but the user may not read it (a sync filter, the
        // roles): no pull will ever update or remove it, so it leaves the device now, as a record
        // leaving the scope does (found by the simulator; docs/testing.md).
        entities::delete(conn, entity, id)?;
        outbox::set_mirror(conn, entity, id, None)?;
        return Ok(());
    }
    entities::set_version(conn, entity, id, version)?;
    if rest.is_empty() {
        outbox::set_mirror(conn, entity, id, None)?;
        record_state::refresh(conn, entity, id)?;
        return Ok(());
    }
    outbox::rebase_record(conn, entity, id, version)?;
    let mut base = outbox::mirror(conn, entity, id)?
        .map(|s| s.fields)
        .unwrap_or_default();
    base.extend(m.fields.clone());
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
) -> Result<(), EngineError> {
    if state.deleted {
        entities::delete(conn, entity, id)?;
    } else {
        let record = Record::new(id.to_string(), state.version, state.fields.clone());
        entities::upsert(conn, entity, &record)?;
    }
    Ok(())
}

/// A record whose queued edits met a different server version.
struct Conflicted<'a> {
    entity: &'a str,
    id: &'a str,
    local: &'a LocalChange,
    base: Option<&'a Snapshot>,
    server: &'a Snapshot,
}

/// Applies how the mode settled a conflict, and logs it.
fn settle(
    conn: &Connection,
    c: &Conflicted<'_>,
    settlement: Settlement,
    mode: ConflictMode,
) -> Result<(), EngineError> {
    conflicts::log(
        conn,
        &LogEntry {
            entity: c.entity,
            record_id: c.id,
            base: c.base,
            local: c.local,
            server: Some(c.server),
            mode: Some(mode),
            outcome: settlement.outcome(mode),
            reason: None,
            code: None,
        },
    )?;
    let (entity, id, server) = (c.entity, c.id, c.server);
    match settlement {
        Settlement::TakeServer => {
            outbox::remove_record(conn, entity, id)?;
            write_local(conn, entity, id, server)?;
            outbox::set_mirror(conn, entity, id, None)?;
        }
        Settlement::Rebase => {
            outbox::rebase_record(conn, entity, id, server.version)?;
            outbox::set_mirror(conn, entity, id, Some(server))?;
            if !c.local.deleted {
                let shown = Snapshot {
                    version: server.version,
                    deleted: false,
                    fields: plan::rebased_fields(server, c.local),
                };
                write_local(conn, entity, id, &shown)?;
            }
        }
        Settlement::Manual => {
            // The edits move into the conflict log; the local record keeps showing them.
            outbox::remove_record(conn, entity, id)?;
            outbox::set_mirror(conn, entity, id, Some(server))?;
        }
    }
    record_state::refresh(conn, entity, id)?;
    Ok(())
}

/// What a person reads when a record they were editing is no longer shared with them.
const OUT_OF_SCOPE: &str =
    "This record is no longer shared with you (its owner, your roles or a sync filter changed)";

/// A record left the user's scope while edits of it were queued: the edits become a sync error
/// (`out_of_scope`) whose server side is "gone at `version`": a retry sends them again (the
/// server decides), a discard removes the record.
fn out_of_scope(
    conn: &Connection,
    entity: &str,
    id: &str,
    version: i64,
) -> Result<(), EngineError> {
    if let Some((local, _)) = local_side(conn, entity, id)? {
        let gone = Snapshot {
            version,
            deleted: true,
            fields: Default::default(),
        };
        outbox::set_mirror(conn, entity, id, Some(&gone))?;
        let refusal = Refusal {
            code: Some("out_of_scope"),
            reason: OUT_OF_SCOPE,
        };
        sync_errors::record(conn, entity, id, &local, refusal)?;
    }
    Ok(())
}

/// What one page held: all its changes, and how many of them were records leaving the scope.
#[derive(Debug, Default, Clone, Copy)]
pub struct PageCounts {
    pub changes: u64,
    pub removed: u64,
}

/// Plans and applies one validated page and records where the download stands (`end`).
pub fn page(
    conn: &Connection,
    response: PullResponse,
    end: PageEnd,
    schemas: &HashMap<String, EntitySchema>,
) -> Result<PageCounts, EngineError> {
    let page = response.view();
    let names: HashSet<String> = schemas.keys().cloned().collect();
    let queued = outbox::queued_records(conn)?;
    let waiting = conflicts::waiting_records(conn)?;
    let count = PageCounts {
        changes: page.changes.len() as u64,
        removed: page
            .changes
            .iter()
            .filter(|c| c.op == ChangeOp::Remove)
            .count() as u64,
    };
    let resync = resync::in_progress(conn)?;
    if resync {
        resync::saw(
            conn,
            page.changes
                .iter()
                .map(|c| (c.entity.as_ref(), c.id.as_ref())),
        )?;
    }
    for action in plan::plan_page(&page.changes, &names, &queued, &waiting)? {
        match action {
            PageAction::Upsert(c) => {
                entities::upsert_wire(
                    conn,
                    &schemas[&*c.entity],
                    &c.id,
                    c.version,
                    c.fields.iter(),
                )?;
            }
            PageAction::Delete(c) => {
                entities::delete_if_not_newer(conn, &c.entity, &c.id, c.version)?;
            }
            PageAction::KeepLocal(_) => {}
            PageAction::OutOfScope(c) => out_of_scope(conn, &c.entity, &c.id, c.version)?,
            PageAction::RefreshConflict(c) => {
                let server = Snapshot {
                    version: c.version,
                    deleted: c.op != ChangeOp::Upsert,
                    fields: c.fields.to_map(),
                };
                conflicts::refresh_server(conn, &c.entity, &c.id, &server)?;
            }
        }
    }
    match end {
        PageEnd::More(token) => meta::set(conn, PAGE_TOKEN_KEY, &token)?,
        PageEnd::Last(cursor) => {
            // The last page of an initial download also builds its indexes (same transaction),
            // and that of a full resync removes what the server no longer has.
            entities::end_bulk_load(conn)?;
            if resync {
                let gone = resync::finish(conn, &schemas.values().collect::<Vec<_>>())?;
                tracing::info!(gone, "full resync done");
            }
            meta::set(conn, CURSOR_KEY, &cursor.to_string())?;
            meta::remove(conn, PAGE_TOKEN_KEY)?;
        }
    }
    Ok(count)
}
