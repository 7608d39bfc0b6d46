//! `pending`, `errors` and `watch`: what waits to go up, the changes the server refused (retry
//! or discard them), and a live view of one entity.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use syncvault::{
    QueryObserver, RecordQuery, RecordSyncState, SyncClient, SyncError, SyncErrorInfo, SyncRecord,
};

use crate::cli::{ErrorsAction, GlobalArgs};
use crate::data_commands::{fields_json, unlocked};
use crate::output::{HarnessError, Output};

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A record's sync state as the harness prints it: `synced`, `pending`, `conflict` or `error`.
pub fn state_name(state: &RecordSyncState) -> &'static str {
    match state {
        RecordSyncState::Synced => "synced",
        RecordSyncState::Pending { .. } => "pending",
        RecordSyncState::Conflict { .. } => "conflict",
        RecordSyncState::Error { .. } => "error",
    }
}

pub async fn pending(global: &GlobalArgs, out: &Output) -> Result<(), HarnessError> {
    let client = unlocked(global).await?;
    let changes = client.pending_changes().await?;
    let rows: Vec<Value> = changes
        .iter()
        .map(|p| {
            json!({
                "entity": p.entity,
                "id": p.record_id,
                "kind": format!("{:?}", p.kind).to_lowercase(),
                "fields": p.fields,
                "edits": p.edits,
                "queued_at": unix_seconds(p.queued_at),
            })
        })
        .collect();
    let text = changes
        .iter()
        .map(|p| {
            format!(
                "{} {} {:?} {} ({} edits)",
                p.entity,
                p.record_id,
                p.kind,
                p.fields.join(","),
                p.edits
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.result(&Value::Array(rows), &text);
    Ok(())
}

fn error_json(e: &SyncErrorInfo) -> Value {
    json!({
        "id": e.id,
        "entity": e.entity,
        "record_id": e.record_id,
        "code": format!("{:?}", e.code),
        "message": e.server_message,
        "local_fields": fields_json(&e.local_fields),
        "local_deleted": e.local_deleted,
        "created_offline": e.created_offline,
        "server_fields": e.server_fields.as_ref().map(fields_json),
        "server_version": e.server_version,
        "occurred_at": unix_seconds(e.occurred_at),
    })
}

pub async fn errors(
    global: &GlobalArgs,
    action: Option<ErrorsAction>,
    out: &Output,
) -> Result<(), HarnessError> {
    let client = unlocked(global).await?;
    let (value, text) = match action {
        None => {
            let errors = client.sync_errors().await?;
            let text = errors
                .iter()
                .map(|e| {
                    format!(
                        "#{} {} {}: {:?}: {}",
                        e.id, e.entity, e.record_id, e.code, e.server_message
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (Value::Array(errors.iter().map(error_json).collect()), text)
        }
        Some(ErrorsAction::Retry { id }) => {
            client.retry_sync_error(id).await?;
            (
                json!({"id": id, "retried": true}),
                format!("#{id} queued again: it goes up with the next sync"),
            )
        }
        Some(ErrorsAction::Discard { id }) => {
            client.discard_sync_error(id).await?;
            (
                json!({"id": id, "discarded": true}),
                format!("#{id} discarded: the server's version is back"),
            )
        }
    };
    out.result(&value, &text);
    Ok(())
}

/// Prints each delivery of a watched query as one line.
struct Printer {
    out: Output,
    failed: Mutex<Option<SyncError>>,
}

impl QueryObserver for Printer {
    fn on_records(&self, records: Vec<SyncRecord>) {
        let mut states = std::collections::BTreeMap::<&str, u64>::new();
        for r in &records {
            *states.entry(state_name(&r.sync_state)).or_default() += 1;
        }
        let states = json!(states);
        let text = format!("{} records {states}", records.len());
        self.out
            .result(&json!({"records": records.len(), "states": states}), &text);
    }

    fn on_error(&self, error: SyncError) {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}

/// Watches `entity` for `seconds` (or until Ctrl-C), printing one line per delivery.
pub async fn watch(
    global: &GlobalArgs,
    entity: String,
    search: Option<String>,
    seconds: Option<u64>,
    out: &Output,
) -> Result<(), HarnessError> {
    let client: Arc<SyncClient> = unlocked(global).await?;
    let printer = Arc::new(Printer {
        out: *out,
        failed: Mutex::default(),
    });
    let query = RecordQuery {
        search,
        ..Default::default()
    };
    let watch = client.watch_query(entity, query, printer.clone())?;
    match seconds {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => tokio::signal::ctrl_c().await?,
    }
    watch.cancel();
    match printer
        .failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
