//! Decide first, then apply: pure functions that turn what the server sent, and what the store
//! holds, into what the store must do. The engine applies each plan in one transaction
//! (apply.rs). Nothing here touches the store or the network, so each rule is tested alone
//! (unit tests below, and the golden cases in src/sync/goldens/).
//!
//! - [`validate_page`]: a downloaded page against the rules of a pull (progress, limits, cursor).
//! - [`plan_page`]: what to do with each change of a valid page.
//! - [`coalesce`]: a record's queued edits as one mutation against its base version.
//! - [`plan_push`]: what to do with each answer to an upload.
//! - [`settle`]: how a conflict mode settles a local edit that met a different server version.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::protocol::{Change, ChangeOp, MutationResult, MutationStatus, PageView};
pub use crate::store::conflicts::ConflictMode;
use crate::store::conflicts::{ConflictOutcome, LocalChange};
use crate::store::entities::shown;
use crate::store::outbox::{Entry, Op, Snapshot};

/// How a conflict mode settles one conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Settlement {
    /// Drop the local edit; the record becomes the server's.
    TakeServer,
    /// Send the local edit again over the server's version; the local record shows the server's
    /// record with the local fields on top.
    Rebase,
    /// Keep the local record and log the conflict for the app.
    Manual,
}

impl Settlement {
    /// The outcome written to the conflict log.
    pub fn outcome(self, mode: ConflictMode) -> ConflictOutcome {
        match (self, mode) {
            (Settlement::TakeServer, _) => ConflictOutcome::ServerWins,
            (Settlement::Rebase, ConflictMode::MergeFields) => ConflictOutcome::Merged,
            (Settlement::Rebase, _) => ConflictOutcome::ClientWins,
            (Settlement::Manual, _) => ConflictOutcome::Pending,
        }
    }
}

/// Settles one conflict: `base` is the server state the local edit started from (None for a
/// record created offline), `server` the server's state now.
pub fn settle(
    mode: ConflictMode,
    base: Option<&Snapshot>,
    local: &LocalChange,
    server: &Snapshot,
) -> Settlement {
    match mode {
        ConflictMode::ServerWins => Settlement::TakeServer,
        ConflictMode::ClientWins => Settlement::Rebase,
        ConflictMode::Manual => Settlement::Manual,
        ConflictMode::MergeFields => {
            let Some(base) = base else {
                return Settlement::Manual;
            };
            if server.deleted || local.deleted {
                return Settlement::Manual;
            }
            let server_changed = |name: &String| {
                server.fields.get(name).unwrap_or(&Value::Null)
                    != base.fields.get(name).unwrap_or(&Value::Null)
            };
            let clash = local.fields.iter().any(|(name, value)| {
                server_changed(name) && server.fields.get(name).unwrap_or(&Value::Null) != value
            });
            if clash {
                Settlement::Manual
            } else {
                Settlement::Rebase
            }
        }
    }
}

/// The server's record with the local fields on top (what a rebased record shows).
pub fn rebased_fields(server: &Snapshot, local: &LocalChange) -> Map<String, Value> {
    let mut fields = server.fields.clone();
    fields.extend(local.fields.clone());
    fields
}

/// Why a page or a push answer cannot be applied. The texts name only what syncvault checked:
/// an identifier is shown when it is a valid name, never arbitrary server text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the page names unknown entity {}", shown(.0))]
    UnknownEntity(String),
    #[error("the page lists a record twice")]
    DuplicateRecord(String, String),
    #[error("the page carries version {1}, versions start at 1")]
    BadVersion(String, i64),
    #[error("the page carries an empty or oversized id")]
    BadId,
    #[error("a page of {got} changes when {limit} were asked for")]
    TooManyChanges { got: usize, limit: u32 },
    #[error("a page that makes no progress")]
    NoProgress,
    #[error("a page token that came before in this pull (a page that makes no progress)")]
    TokenRepeated,
    #[error("{received} changes in a pull the server estimated at {estimated}")]
    FarBeyondEstimate { received: u64, estimated: u64 },
    #[error("the last page carries no cursor")]
    NoCursor,
    #[error("the cursor went backwards")]
    CursorBackwards,
    #[error("a push answer for mutation {0} that was not sent or twice")]
    UnknownMutation(i64),
    #[error("a conflict without the server's record")]
    ConflictWithoutServer,
    #[error("an applied write without a version")]
    AppliedWithoutVersion,
    #[error("the server answered none of the uploaded changes")]
    NoAnswer,
    #[error("a push answer without a result for mutation {0}")]
    MissingResult(i64),
}

/// Where a pull stands, for checking its next page.
#[derive(Debug, Clone, Default)]
pub struct PullState {
    /// The page size asked for.
    pub limit: u32,
    /// The cursor the pull started from.
    pub cursor: Option<i64>,
    /// The page token the page was asked with.
    pub asked: Option<String>,
    /// Every page token this pull has received.
    pub tokens_seen: HashSet<String>,
    /// Changes received so far in this pull.
    pub received: u64,
    /// The largest `estimated_total` the server gave in this pull.
    pub estimated: Option<u64>,
}

/// How a valid page ends its pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PageEnd {
    /// More pages follow; ask with this token.
    More(String),
    /// The last page: the pull ends at this cursor.
    Last(i64),
}

/// Changes beyond the server's own estimate that a pull tolerates (the estimate may grow while
/// the pull runs), as a multiple of the estimate plus a few pages.
const ESTIMATE_SLACK: u64 = 2;

/// Checks a page against the rules of a pull (docs/protocol.md, "Client rules"): a bounded size,
/// progress (a non-empty page and a token never seen in this pull), a cursor on the last page
/// that never goes backwards, and no more changes than the estimate allows.
pub fn validate_page(page: &PageView<'_>, state: &PullState) -> Result<PageEnd, PlanError> {
    if page.changes.len() > state.limit as usize {
        return Err(PlanError::TooManyChanges {
            got: page.changes.len(),
            limit: state.limit,
        });
    }
    let received = state.received + page.changes.len() as u64;
    let estimated = state.estimated.max(page.estimated_total);
    if let Some(estimated) = estimated
        && received > estimated * ESTIMATE_SLACK + 4 * state.limit as u64
    {
        return Err(PlanError::FarBeyondEstimate {
            received,
            estimated,
        });
    }
    match (&page.page_token, page.cursor) {
        (Some(next), _) => {
            if page.changes.is_empty() || state.asked.as_ref() == Some(next) {
                return Err(PlanError::NoProgress);
            }
            if state.tokens_seen.contains(next) {
                return Err(PlanError::TokenRepeated);
            }
            Ok(PageEnd::More(next.clone()))
        }
        (None, Some(new)) if state.cursor.is_some_and(|old| new < old) => {
            Err(PlanError::CursorBackwards)
        }
        (None, Some(new)) => Ok(PageEnd::Last(new)),
        (None, None) => Err(PlanError::NoCursor),
    }
}

/// What to do with one downloaded change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PageAction<'p> {
    /// Write the server's record (unless the local copy is already newer).
    Upsert(&'p Change<'p>),
    /// Remove the record (a no-op for an unknown id): deleted on the server, or out of scope.
    Delete(&'p Change<'p>),
    /// The record left the user's scope while edits of it were queued: they become a sync
    /// error (`out_of_scope`) and the record keeps the person's values.
    OutOfScope(&'p Change<'p>),
    /// The record has queued local edits: leave it; the next upload meets the server's version
    /// as a conflict and settles it by the conflict mode.
    KeepLocal(&'p Change<'p>),
    /// The record's conflict waits for the app: refresh the server side it will be shown.
    RefreshConflict(&'p Change<'p>),
}

/// Plans a page: `entities` are the known entity names, `queued` the records with queued edits,
/// `in_conflict` those whose conflict waits for the app. The plan points into the page.
pub fn plan_page<'p>(
    changes: &'p [Change<'p>],
    entities: &HashSet<String>,
    queued: &HashSet<(String, String)>,
    in_conflict: &HashSet<(String, String)>,
) -> Result<Vec<PageAction<'p>>, PlanError> {
    let mut seen = HashSet::with_capacity(changes.len());
    let mut plan = Vec::with_capacity(changes.len());
    for change in changes {
        let (entity, id) = (change.entity.as_ref(), change.id.as_ref());
        if !entities.contains(entity) {
            return Err(PlanError::UnknownEntity(entity.to_string()));
        }
        if id.is_empty() || id.len() > 128 {
            return Err(PlanError::BadId);
        }
        if change.version < 1 {
            return Err(PlanError::BadVersion(id.to_string(), change.version));
        }
        if !seen.insert((entity, id)) {
            return Err(PlanError::DuplicateRecord(
                entity.to_string(),
                id.to_string(),
            ));
        }
        // Most pages meet no queued edit and no conflict: no key is built for them.
        let held_in = |set: &HashSet<(String, String)>| {
            !set.is_empty() && set.contains(&(entity.to_string(), id.to_string()))
        };
        let (local_edits, conflict) = (held_in(queued), held_in(in_conflict));
        plan.push(match (change.op, local_edits, conflict) {
            (ChangeOp::Remove, true, _) => PageAction::OutOfScope(change),
            (_, true, _) => PageAction::KeepLocal(change),
            (_, false, true) => PageAction::RefreshConflict(change),
            (ChangeOp::Upsert, false, false) => PageAction::Upsert(change),
            (ChangeOp::Delete | ChangeOp::Remove, false, false) => PageAction::Delete(change),
        });
    }
    Ok(plan)
}

/// One record's queued edits as one mutation: what goes up in a push.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Outgoing {
    /// The newest queued entry's sequence number: unique per client and never reused, so a
    /// retry of the same coalesced edits is answered `duplicate`.
    pub mutation_id: i64,
    pub entity: String,
    pub record_id: String,
    pub op: Op,
    pub base_version: Option<i64>,
    /// The fields the edits set, later edits winning.
    pub fields: Map<String, Value>,
    /// The outbox entries this mutation stands for (removed together when acknowledged).
    pub seqs: Vec<i64>,
}

/// Folds each record's queued edits, oldest first, into one mutation against the record's base
/// version: a create followed by updates is one create with the merged fields, updates are one
/// update with the changed fields, and a delete ends the record (a record created offline and
/// then deleted sends a delete without a base, which the server applies as a no-op when it never
/// saw the record). A record edited many times offline goes up in one request, and no answer in a
/// push can concern an entry an earlier answer already moved.
///
/// Entries already sent (`sent_as`) whose answer never came are frozen: they go up again as
/// exactly the same mutation (same id, same fields), so the server recognises a retry as a
/// duplicate; the record's newer edits wait for the next round. Mutations come out in the order of
/// each record's first edit (a parent created before its child reaches the server first).
pub fn coalesce(entries: Vec<Entry>) -> Vec<Outgoing> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut by_record: HashMap<(String, String), Vec<Entry>> = HashMap::new();
    for e in entries {
        let key = (e.entity.clone(), e.record_id.clone());
        by_record
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(e);
    }
    order
        .into_iter()
        .filter_map(|k| by_record.remove(&k))
        .filter_map(|mut record| {
            if record.iter().any(|e| e.sent_as.is_some()) {
                record.retain(|e| e.sent_as.is_some());
            }
            fold(record)
        })
        .collect()
}

/// One record's entries, oldest first, as one mutation.
fn fold(entries: Vec<Entry>) -> Option<Outgoing> {
    let mut entries = entries.into_iter();
    let first = entries.next()?;
    let mut out = Outgoing {
        mutation_id: first.sent_as.unwrap_or(first.seq),
        entity: first.entity,
        record_id: first.record_id,
        op: first.op,
        base_version: first.base_version,
        fields: first.fields,
        seqs: vec![first.seq],
    };
    for e in entries {
        out.mutation_id = out.mutation_id.max(e.sent_as.unwrap_or(e.seq));
        out.seqs.push(e.seq);
        match (out.op, e.op) {
            (Op::Delete, _) => {}
            (Op::Create, Op::Delete) => {
                out.op = Op::Delete;
                out.base_version = None;
                out.fields = Map::new();
            }
            (_, Op::Delete) => {
                out.op = Op::Delete;
                out.fields = Map::new();
            }
            (_, _) => out.fields.extend(e.fields),
        }
    }
    Some(out)
}

/// What to do with one answered mutation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PushAction {
    /// Applied (or a duplicate of an applied one): its entries leave the outbox and the record
    /// stands on `version` (None for a delete); out of the user's scope, it leaves the device.
    Acknowledge {
        mutation_id: i64,
        version: Option<i64>,
        in_scope: bool,
    },
    /// The server holds a different version: settle the local edits by the conflict mode.
    Settle {
        mutation_id: i64,
        settlement: Settlement,
        server: Snapshot,
    },
    /// The server refused the edits: they become a sync error with the server's code and reason
    /// (cleaned to what may be shown); the record keeps the person's values.
    Reject {
        mutation_id: i64,
        code: Option<String>,
        reason: String,
    },
}

/// The longest server reason a sync error keeps.
pub const MAX_REASON_CHARS: usize = 500;

/// A server's reason as a sync error keeps it: control characters and runs of space made one
/// space, at most
/// [`MAX_REASON_CHARS`], never empty.
pub fn shown_reason(reason: Option<String>) -> String {
    let spaced: String = reason
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean: String = spaced
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    if clean.is_empty() {
        "the server refused the change".into()
    } else {
        clean
    }
}

/// A rejection code as kept: `[a-z_]{1,40}`, else none (the app sees `Other`).
fn shown_code(code: Option<String>) -> Option<String> {
    code.filter(|c| {
        (1..=40).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    })
}

/// Plans the answer to a push. `sent` are the mutations of the request, `locals` the local side
/// (edits and merge base) of every record whose mutation met a conflict. The whole answer is
/// refused when it names a mutation not sent (or twice), carries a conflict without the server's
/// record or an applied write without a version, or answers nothing.
pub fn plan_push(
    sent: &[Outgoing],
    results: Vec<MutationResult>,
    locals: &HashMap<i64, (LocalChange, Option<Snapshot>)>,
    mode: ConflictMode,
) -> Result<Vec<PushAction>, PlanError> {
    let by_id: HashMap<i64, &Outgoing> = sent.iter().map(|m| (m.mutation_id, m)).collect();
    let mut seen = HashSet::new();
    for r in &results {
        if !by_id.contains_key(&r.mutation_id) || !seen.insert(r.mutation_id) {
            return Err(PlanError::UnknownMutation(r.mutation_id));
        }
    }
    if results.is_empty() && !sent.is_empty() {
        return Err(PlanError::NoAnswer);
    }
    // An answer that leaves a mutation out breaks the protocol: none of it is applied, and the
    // next push sends them all again (the server answers `duplicate` for what it applied).
    if let Some(m) = sent.iter().find(|m| !seen.contains(&m.mutation_id)) {
        return Err(PlanError::MissingResult(m.mutation_id));
    }
    let mut results = results;
    results.sort_by_key(|r| r.mutation_id);
    results
        .into_iter()
        .map(|r| {
            let mutation = by_id[&r.mutation_id];
            Ok(match r.status {
                MutationStatus::Applied | MutationStatus::Duplicate => {
                    if mutation.op != Op::Delete && r.version.is_none() {
                        return Err(PlanError::AppliedWithoutVersion);
                    }
                    PushAction::Acknowledge {
                        mutation_id: r.mutation_id,
                        version: r.version,
                        in_scope: r.in_scope != Some(false),
                    }
                }
                MutationStatus::Conflict => {
                    let row = r.server.ok_or(PlanError::ConflictWithoutServer)?;
                    let server = Snapshot {
                        version: row.version,
                        deleted: row.deleted,
                        fields: row.fields,
                    };
                    let settlement = match locals.get(&r.mutation_id) {
                        Some((local, base)) => settle(mode, base.as_ref(), local, &server),
                        None => Settlement::TakeServer,
                    };
                    PushAction::Settle {
                        mutation_id: r.mutation_id,
                        settlement,
                        server,
                    }
                }
                MutationStatus::Rejected => PushAction::Reject {
                    mutation_id: r.mutation_id,
                    code: shown_code(r.code),
                    reason: shown_reason(r.reason),
                },
            })
        })
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(version: i64, fields: Value) -> Snapshot {
        Snapshot {
            version,
            deleted: false,
            fields: fields.as_object().unwrap().clone(),
        }
    }

    fn local(fields: Value) -> LocalChange {
        LocalChange {
            fields: fields.as_object().unwrap().clone(),
            ..Default::default()
        }
    }

    #[test]
    fn modes_settle_conflicts() {
        let base = snap(1, json!({"a": 1, "b": 1}));
        let server = snap(2, json!({"a": 2, "b": 1}));
        let mine_b = local(json!({"b": 5}));
        let mine_a = local(json!({"a": 7}));
        use ConflictMode::*;
        assert_eq!(
            settle(ServerWins, Some(&base), &mine_b, &server),
            Settlement::TakeServer
        );
        assert_eq!(
            settle(ClientWins, Some(&base), &mine_a, &server),
            Settlement::Rebase
        );
        assert_eq!(
            settle(Manual, Some(&base), &mine_b, &server),
            Settlement::Manual
        );
        // Different fields merge, the same field does not.
        assert_eq!(
            settle(MergeFields, Some(&base), &mine_b, &server),
            Settlement::Rebase
        );
        assert_eq!(
            settle(MergeFields, Some(&base), &mine_a, &server),
            Settlement::Manual
        );
        // The same change on both sides is no clash.
        assert_eq!(
            settle(MergeFields, Some(&base), &local(json!({"a": 2})), &server),
            Settlement::Rebase
        );
        // Deletes and records without a base wait for the app.
        let gone = Snapshot {
            deleted: true,
            ..server.clone()
        };
        assert_eq!(
            settle(MergeFields, Some(&base), &mine_b, &gone),
            Settlement::Manual
        );
        assert_eq!(
            settle(MergeFields, None, &mine_b, &server),
            Settlement::Manual
        );
        let deleting = LocalChange {
            deleted: true,
            ..Default::default()
        };
        assert_eq!(
            settle(MergeFields, Some(&base), &deleting, &server),
            Settlement::Manual
        );
        assert_eq!(
            rebased_fields(&server, &mine_b),
            json!({"a": 2, "b": 5}).as_object().unwrap().clone()
        );
        assert_eq!(
            Settlement::Rebase.outcome(MergeFields),
            ConflictOutcome::Merged
        );
        assert_eq!(
            Settlement::Rebase.outcome(ClientWins),
            ConflictOutcome::ClientWins
        );
    }

    fn change(id: &str, op: ChangeOp) -> Change<'_> {
        Change {
            entity: "contact".into(),
            id: id.into(),
            version: 3,
            op,
            fields: Default::default(),
        }
    }

    #[test]
    fn pages_never_overwrite_local_edits() {
        let entities: HashSet<String> = ["contact".to_string()].into();
        let key = |id: &str| ("contact".to_string(), id.to_string());
        let queued: HashSet<_> = [key("q")].into();
        let conflicted: HashSet<_> = [key("c")].into();
        let page = [
            change("q", ChangeOp::Upsert),
            change("c", ChangeOp::Delete),
            change("u", ChangeOp::Upsert),
            change("d", ChangeOp::Delete),
        ];
        let plan = plan_page(&page, &entities, &queued, &conflicted).unwrap();
        assert!(matches!(plan[0], PageAction::KeepLocal(_)));
        assert!(matches!(plan[1], PageAction::RefreshConflict(_)));
        assert!(matches!(plan[2], PageAction::Upsert(_)));
        assert!(matches!(plan[3], PageAction::Delete(_)));
    }

    #[test]
    fn removes_keep_queued_edits_visible() {
        let entities: HashSet<String> = ["contact".to_string()].into();
        let key = |id: &str| ("contact".to_string(), id.to_string());
        let queued: HashSet<_> = [key("q")].into();
        let conflicted: HashSet<_> = [key("c")].into();
        let page = [
            change("q", ChangeOp::Remove),
            change("c", ChangeOp::Remove),
            change("r", ChangeOp::Remove),
        ];
        let plan = plan_page(&page, &entities, &queued, &conflicted).unwrap();
        assert!(matches!(plan[0], PageAction::OutOfScope(_)));
        assert!(matches!(plan[1], PageAction::RefreshConflict(_)));
        assert!(matches!(plan[2], PageAction::Delete(_)));
    }

    #[test]
    fn hostile_pages_are_refused_whole() {
        let entities: HashSet<String> = ["contact".to_string()].into();
        let none = HashSet::new();
        let twice = [change("x", ChangeOp::Upsert), change("x", ChangeOp::Delete)];
        assert_eq!(
            plan_page(&twice, &entities, &none, &none),
            Err(PlanError::DuplicateRecord("contact".into(), "x".into()))
        );
        let mut unknown = change("x", ChangeOp::Upsert);
        unknown.entity = "invoice".into();
        assert!(matches!(
            plan_page(&[unknown], &entities, &none, &none),
            Err(PlanError::UnknownEntity(_))
        ));
        let mut zero = change("x", ChangeOp::Upsert);
        zero.version = 0;
        assert!(matches!(
            plan_page(&[zero], &entities, &none, &none),
            Err(PlanError::BadVersion(..))
        ));
        assert_eq!(
            plan_page(&[change("", ChangeOp::Upsert)], &entities, &none, &none),
            Err(PlanError::BadId)
        );
    }
}
