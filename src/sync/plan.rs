//! Decide first, then apply: pure functions that turn a downloaded page, or a conflict answered by
//! the server, into what the store must do. The engine applies a plan in one transaction.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::protocol::{Change, ChangeOp};
use crate::store::conflicts::LocalChange;
use crate::store::outbox::Snapshot;

/// How a conflict between a local edit and a server change is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
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
}

/// What to do with a record whose local edit conflicts with the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Drop the local edit; the record becomes the server's.
    TakeServer,
    /// Send the local edit again over the server's version; the local record shows the server's
    /// record with the local fields on top.
    Rebase,
    /// Keep the local record and log the conflict for the app.
    Manual,
}

impl Resolution {
    /// The outcome written to the conflict log.
    pub fn outcome(&self, mode: ConflictMode) -> &'static str {
        match (self, mode) {
            (Resolution::TakeServer, _) => "server_wins",
            (Resolution::Rebase, ConflictMode::MergeFields) => "merged",
            (Resolution::Rebase, _) => "client_wins",
            (Resolution::Manual, _) => "pending",
        }
    }
}

/// Settles one conflict: `base` is the server state the local edit started from (None for a
/// record created offline), `server` the server's state now.
pub fn resolve(
    mode: ConflictMode,
    base: Option<&Snapshot>,
    local: &LocalChange,
    server: &Snapshot,
) -> Resolution {
    match mode {
        ConflictMode::ServerWins => Resolution::TakeServer,
        ConflictMode::ClientWins => Resolution::Rebase,
        ConflictMode::Manual => Resolution::Manual,
        ConflictMode::MergeFields => {
            let Some(base) = base else {
                return Resolution::Manual;
            };
            if server.deleted || local.deleted {
                return Resolution::Manual;
            }
            let server_changed = |name: &String| {
                server.fields.get(name).unwrap_or(&Value::Null)
                    != base.fields.get(name).unwrap_or(&Value::Null)
            };
            let clash = local.fields.iter().any(|(name, value)| {
                server_changed(name) && server.fields.get(name).unwrap_or(&Value::Null) != value
            });
            if clash {
                Resolution::Manual
            } else {
                Resolution::Rebase
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

/// What to do with one downloaded change.
#[derive(Debug, Clone, PartialEq)]
pub enum PageAction {
    /// Write the server's record (unless the local copy is already newer).
    Upsert(Change),
    /// Remove the record (a no-op for an unknown id).
    Delete(Change),
    /// The record has queued local edits: leave it; the next upload meets the server's version
    /// as a conflict and settles it by the conflict mode.
    KeepLocal(Change),
    /// The record's conflict waits for the app: refresh the server side it will be shown.
    RefreshConflict(Change),
}

/// Why a page cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the page names unknown entity {0:?}")]
    UnknownEntity(String),
    #[error("the page lists {0}/{1} twice")]
    DuplicateRecord(String, String),
    #[error("the page carries version {1} for {0}, versions start at 1")]
    BadVersion(String, i64),
    #[error("the page carries an empty or oversized id")]
    BadId,
}

/// Plans a page: `entities` are the known entity names, `queued` the records with queued edits,
/// `in_conflict` those whose conflict waits for the app.
pub fn plan_page(
    changes: Vec<Change>,
    entities: &HashSet<String>,
    queued: &HashSet<(String, String)>,
    in_conflict: &HashSet<(String, String)>,
) -> Result<Vec<PageAction>, PlanError> {
    let mut seen = HashSet::with_capacity(changes.len());
    let mut plan = Vec::with_capacity(changes.len());
    for change in changes {
        if !entities.contains(&change.entity) {
            return Err(PlanError::UnknownEntity(change.entity));
        }
        if change.id.is_empty() || change.id.len() > 128 {
            return Err(PlanError::BadId);
        }
        if change.version < 1 {
            return Err(PlanError::BadVersion(change.id, change.version));
        }
        let key = (change.entity.clone(), change.id.clone());
        if !seen.insert(key.clone()) {
            return Err(PlanError::DuplicateRecord(key.0, key.1));
        }
        let local_edits = !queued.is_empty() && queued.contains(&key);
        let conflict = !in_conflict.is_empty() && in_conflict.contains(&key);
        plan.push(match (change.op, local_edits, conflict) {
            (_, true, _) => PageAction::KeepLocal(change),
            (_, false, true) => PageAction::RefreshConflict(change),
            (ChangeOp::Upsert, false, false) => PageAction::Upsert(change),
            (ChangeOp::Delete, false, false) => PageAction::Delete(change),
        });
    }
    Ok(plan)
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
            resolve(ServerWins, Some(&base), &mine_b, &server),
            Resolution::TakeServer
        );
        assert_eq!(
            resolve(ClientWins, Some(&base), &mine_a, &server),
            Resolution::Rebase
        );
        assert_eq!(
            resolve(Manual, Some(&base), &mine_b, &server),
            Resolution::Manual
        );
        // Different fields merge, the same field does not.
        assert_eq!(
            resolve(MergeFields, Some(&base), &mine_b, &server),
            Resolution::Rebase
        );
        assert_eq!(
            resolve(MergeFields, Some(&base), &mine_a, &server),
            Resolution::Manual
        );
        // The same change on both sides is no clash.
        assert_eq!(
            resolve(MergeFields, Some(&base), &local(json!({"a": 2})), &server),
            Resolution::Rebase
        );
        // Deletes and records without a base wait for the app.
        let gone = Snapshot {
            deleted: true,
            ..server.clone()
        };
        assert_eq!(
            resolve(MergeFields, Some(&base), &mine_b, &gone),
            Resolution::Manual
        );
        assert_eq!(
            resolve(MergeFields, None, &mine_b, &server),
            Resolution::Manual
        );
        let deleting = LocalChange {
            deleted: true,
            ..Default::default()
        };
        assert_eq!(
            resolve(MergeFields, Some(&base), &deleting, &server),
            Resolution::Manual
        );
        assert_eq!(
            rebased_fields(&server, &mine_b),
            json!({"a": 2, "b": 5}).as_object().unwrap().clone()
        );
        assert_eq!(Resolution::Rebase.outcome(MergeFields), "merged");
        assert_eq!(Resolution::Rebase.outcome(ClientWins), "client_wins");
    }

    fn change(id: &str, op: ChangeOp) -> Change {
        Change {
            entity: "contact".into(),
            id: id.into(),
            version: 3,
            op,
            fields: Map::new(),
        }
    }

    #[test]
    fn pages_never_overwrite_local_edits() {
        let entities: HashSet<String> = ["contact".to_string()].into();
        let key = |id: &str| ("contact".to_string(), id.to_string());
        let queued: HashSet<_> = [key("q")].into();
        let conflicted: HashSet<_> = [key("c")].into();
        let plan = plan_page(
            vec![
                change("q", ChangeOp::Upsert),
                change("c", ChangeOp::Delete),
                change("u", ChangeOp::Upsert),
                change("d", ChangeOp::Delete),
            ],
            &entities,
            &queued,
            &conflicted,
        )
        .unwrap();
        assert!(matches!(plan[0], PageAction::KeepLocal(_)));
        assert!(matches!(plan[1], PageAction::RefreshConflict(_)));
        assert!(matches!(plan[2], PageAction::Upsert(_)));
        assert!(matches!(plan[3], PageAction::Delete(_)));
    }

    #[test]
    fn hostile_pages_are_refused_whole() {
        let entities: HashSet<String> = ["contact".to_string()].into();
        let none = HashSet::new();
        let twice = vec![change("x", ChangeOp::Upsert), change("x", ChangeOp::Delete)];
        assert_eq!(
            plan_page(twice, &entities, &none, &none),
            Err(PlanError::DuplicateRecord("contact".into(), "x".into()))
        );
        let mut unknown = change("x", ChangeOp::Upsert);
        unknown.entity = "invoice".into();
        assert!(matches!(
            plan_page(vec![unknown], &entities, &none, &none),
            Err(PlanError::UnknownEntity(_))
        ));
        let mut zero = change("x", ChangeOp::Upsert);
        zero.version = 0;
        assert!(matches!(
            plan_page(vec![zero], &entities, &none, &none),
            Err(PlanError::BadVersion(..))
        ));
        assert_eq!(
            plan_page(vec![change("", ChangeOp::Upsert)], &entities, &none, &none),
            Err(PlanError::BadId)
        );
    }
}
