//! The app's live view: watched queries, records and counts that deliver a new result after
//! every commit touching their entity (local edits, downloaded pages, conflict and sync-error
//! decisions), and the sync status as a value and as a stream. Kotlin wraps the observers in
//! `Flow`s, Swift in `AsyncStream`s (bindings/); both cancel the watch when the collector goes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::ffi::records::{RecordQuery, SyncRecord, record};
use crate::ffi::{SyncClient, SyncError};
use crate::live::{self, WatchSpec};
use crate::store::entities::{self, EntityError};
use crate::store::record_state::Waiting;
use crate::store::{ChangeHub, StoreError, sync_log};
use crate::sync::{CancelToken, SyncPhase, SyncProgress};

/// Receives a watched query's results: the current one at once, then a new one after each
/// commit that may change it. Called on a syncvault worker thread: hop to the UI thread yourself.
#[uniffi::export(foreign)]
pub trait QueryObserver: Send + Sync {
    fn on_records(&self, records: Vec<SyncRecord>);
    /// The query failed (e.g. the store is damaged); the watch goes on.
    fn on_error(&self, error: SyncError);
}

/// Receives one watched record (None: not on the device, or deleted).
#[uniffi::export(foreign)]
pub trait RecordObserver: Send + Sync {
    fn on_record(&self, record: Option<SyncRecord>);
    fn on_error(&self, error: SyncError);
}

/// Receives a watched count.
#[uniffi::export(foreign)]
pub trait CountObserver: Send + Sync {
    fn on_count(&self, count: u64);
    fn on_error(&self, error: SyncError);
}

/// Receives the sync status whenever it changes.
#[uniffi::export(foreign)]
pub trait SyncStatusObserver: Send + Sync {
    fn on_status(&self, status: SyncStatus);
}

/// A running watch. Cancel it, or drop it (Kotlin `close()`, the last Swift reference): no
/// delivery starts after that.
#[derive(uniffi::Object)]
pub struct QueryWatch {
    cancel: CancelToken,
}

#[uniffi::export]
impl QueryWatch {
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl Drop for QueryWatch {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What a Synchronize is doing right now.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SyncActivity {
    Idle,
    /// The login page is shown (or a device code).
    SigningIn,
    /// Checking the account and the organization.
    Preparing,
    Uploading {
        done: u64,
    },
    Downloading {
        done: u64,
        estimated: Option<u64>,
    },
}

/// Where synchronization stands, for a status line or a badge.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncStatus {
    pub activity: SyncActivity,
    /// When a Synchronize last ended well (kept across restarts).
    pub last_synced_at: Option<SystemTime>,
    /// Why the last Synchronize of this client failed; None once one succeeds (a cancelled one
    /// changes nothing).
    pub last_error: Option<SyncError>,
    /// Local edits waiting to go up.
    pub pending_changes: u64,
    /// Conflicts waiting for the app's decision.
    pub conflicts_waiting: u64,
    /// Changes the server refused, waiting for the person.
    pub sync_errors: u64,
    /// Tokens are stored (a Synchronize will not need the login page unless they died).
    pub signed_in: bool,
    /// The offline data is open (counts and times are from the store; all zero while locked).
    pub unlocked: bool,
}

/// What the running Synchronize reports, for the status (held by the client).
#[derive(Default)]
pub(crate) struct StatusBoard {
    activity: Mutex<Option<SyncActivity>>,
    last_error: Mutex<Option<SyncError>>,
}

/// The name under which activity changes wake status watches (never a table name: no `e_`).
const ACTIVITY: &str = "syncvault:activity";

/// The tables the stored part of the status comes from.
const STATUS_TABLES: [&str; 4] = ["outbox", "conflicts", "tokens", "sync_log"];

impl StatusBoard {
    fn set_activity(&self, hub: &ChangeHub, activity: Option<SyncActivity>) {
        let mut current = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        if *current != activity {
            *current = activity;
            drop(current);
            hub.announce(ACTIVITY);
        }
    }

    /// A Synchronize reported progress.
    pub(crate) fn progress(&self, hub: &ChangeHub, p: &SyncProgress) {
        let activity = match p.phase {
            SyncPhase::Preparing => Some(SyncActivity::Preparing),
            SyncPhase::SigningIn => Some(SyncActivity::SigningIn),
            SyncPhase::Uploading => Some(SyncActivity::Uploading {
                done: p.records_done,
            }),
            SyncPhase::Downloading => Some(SyncActivity::Downloading {
                done: p.records_done,
                estimated: p.records_estimated,
            }),
            SyncPhase::Finished => None,
        };
        self.set_activity(hub, activity);
    }

    /// A Synchronize ended. A cancelled one is no failure: the last error stays as it was.
    pub(crate) fn finished(&self, hub: &ChangeHub, error: Option<SyncError>) {
        if !matches!(error, Some(SyncError::Cancelled)) {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
        }
        // Announced even when the activity was already idle: the error changed.
        *self.activity.lock().unwrap_or_else(|p| p.into_inner()) = None;
        hub.announce(ACTIVITY);
    }

    /// The whole status, with what the store says (None: locked).
    fn status(&self, stored: Option<StoredStatus>) -> SyncStatus {
        let stored = stored.unwrap_or_default();
        SyncStatus {
            activity: self
                .activity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or(SyncActivity::Idle),
            last_synced_at: stored
                .last_synced_at
                .map(|s| UNIX_EPOCH + Duration::from_secs(s.max(0) as u64)),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            pending_changes: stored.waiting.pending_changes,
            conflicts_waiting: stored.waiting.conflicts,
            sync_errors: stored.waiting.sync_errors,
            signed_in: stored.signed_in,
            unlocked: stored.unlocked,
        }
    }
}

/// The part of the status that lives in the store.
#[derive(Default)]
struct StoredStatus {
    waiting: Waiting,
    last_synced_at: Option<i64>,
    signed_in: bool,
    unlocked: bool,
}

fn stored_status(conn: &Connection) -> Result<StoredStatus, StoreError> {
    Ok(StoredStatus {
        waiting: Waiting::count(conn)?,
        last_synced_at: sync_log::last_success(conn)?,
        signed_in: crate::auth::tokens::load(conn)?.is_some(),
        unlocked: true,
    })
}

fn entity_tables(entity: &str) -> HashSet<String> {
    // The schema table too: an entity that arrives with the first Synchronize wakes the watch.
    HashSet::from([format!("e_{entity}"), "entity_schema".to_string()])
}

/// A data watch's read: runs only while the store is open (a locked store delivers nothing).
fn when_open<T>(
    read: impl Fn(&Connection) -> T + Send + Sync,
) -> impl Fn(Option<&Connection>) -> Option<T> + Send + Sync {
    move |conn| conn.map(&read)
}

fn log_status_error(e: StoreError) {
    tracing::warn!(error = %e, "the sync status could not be read");
}

/// An entity the store does not know yet (before the first Synchronize) reads as empty.
fn unknown_is_empty<T: Default>(result: Result<T, EntityError>) -> Result<T, SyncError> {
    match result {
        Err(EntityError::UnknownEntity(_)) => Ok(T::default()),
        other => Ok(other?),
    }
}

impl SyncClient {
    /// Starts a watch with the client's interval, cancelled by its handle or by the client
    /// closing. `read` gets None while the store is locked and returns None for no delivery.
    fn watch<T: Send + 'static>(
        &self,
        tables: HashSet<String>,
        read: impl Fn(Option<&Connection>) -> Option<T> + Send + Sync + 'static,
        deliver: impl Fn(T) + Send + Sync + 'static,
    ) -> Arc<QueryWatch> {
        let cancel = CancelToken::default();
        {
            let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
            watches.retain(|w| !w.is_cancelled());
            watches.push(cancel.clone());
        }
        let spec = WatchSpec {
            tables,
            read: Box::new(read),
            deliver: Box::new(deliver),
            min_interval: self.watch_interval,
        };
        live::spawn(Arc::clone(&self.changes), spec, cancel.clone());
        Arc::new(QueryWatch { cancel })
    }
}

#[uniffi::export]
impl SyncClient {
    /// Watches the records of `entity` matching `query`: the current result at once, then a new
    /// one after every commit that writes `entity` (at most one per commit and per the client's
    /// watch interval; newest wins). Nothing is delivered while the store is locked.
    pub fn watch_query(
        &self,
        entity: String,
        query: RecordQuery,
        observer: Arc<dyn QueryObserver>,
    ) -> Result<Arc<QueryWatch>, SyncError> {
        let q = query.into_store_query()?;
        let tables = entity_tables(&entity);
        Ok(self.watch(
            tables,
            when_open(move |conn| {
                unknown_is_empty(entities::query(conn, &entity, &q))
                    .and_then(|rows| rows.into_iter().map(|r| record(conn, &entity, r)).collect())
            }),
            move |result| match result {
                Ok(records) => observer.on_records(records),
                Err(e) => observer.on_error(e),
            },
        ))
    }

    /// Watches one record.
    pub fn watch_record(
        &self,
        entity: String,
        id: String,
        observer: Arc<dyn RecordObserver>,
    ) -> Arc<QueryWatch> {
        self.watch(
            entity_tables(&entity),
            when_open(move |conn| {
                unknown_is_empty(entities::get(conn, &entity, &id))
                    .and_then(|r| r.map(|r| record(conn, &entity, r)).transpose())
            }),
            move |result| match result {
                Ok(r) => observer.on_record(r),
                Err(e) => observer.on_error(e),
            },
        )
    }

    /// Watches how many records of `entity` are on the device.
    pub fn watch_count(&self, entity: String, observer: Arc<dyn CountObserver>) -> Arc<QueryWatch> {
        self.watch(
            entity_tables(&entity),
            when_open(move |conn| unknown_is_empty(entities::count(conn, &entity))),
            move |result| match result {
                Ok(n) => observer.on_count(n),
                Err(e) => observer.on_error(e),
            },
        )
    }

    /// Watches the sync status: the current one at once, then one after each change of activity,
    /// of a count, of the sign-in, or of a Synchronize's outcome.
    pub fn watch_sync_status(&self, observer: Arc<dyn SyncStatusObserver>) -> Arc<QueryWatch> {
        let mut tables: HashSet<String> = STATUS_TABLES.iter().map(|t| t.to_string()).collect();
        tables.insert(ACTIVITY.to_string());
        let board = Arc::clone(&self.status);
        self.watch(
            tables,
            // A store that cannot answer skips a delivery rather than show zeros.
            |conn| {
                conn.map(stored_status)
                    .transpose()
                    .map_err(log_status_error)
                    .ok()
            },
            move |stored| observer.on_status(board.status(stored)),
        )
    }

    /// The sync status now.
    pub async fn sync_status(&self) -> Result<SyncStatus, SyncError> {
        let hub = Arc::clone(&self.changes);
        let stored = crate::runtime::spawn_blocking(move || {
            Ok::<_, SyncError>(hub.read(|conn| conn.map(stored_status).transpose())?)
        })
        .await?;
        Ok(self.status.status(stored))
    }
}
