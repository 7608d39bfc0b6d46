//! Watched reads: a read re-run after every commit that wrote a table it reads, its result handed
//! to a delivery, until cancelled. The read runs on the change hub's reader connection and the
//! delivery on a blocking thread, both off the caller's thread and off the sync's: a slow
//! delivery only delays its own watch, and the commits it missed meanwhile collapse into one
//! re-run (newest wins). Re-runs of one watch are at least `min_interval` apart.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::time::Instant;

use crate::runtime;
use crate::store::ChangeHub;
use crate::sync::CancelToken;

/// The default shortest time between two deliveries of one watch.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(50);

/// A watch's read: gets the reader connection (None while the store is locked), returns what
/// to deliver (None: nothing).
pub type WatchRead<T> = Box<dyn Fn(Option<&Connection>) -> Option<T> + Send + Sync>;

/// What one watch reads and where its results go.
pub struct WatchSpec<T> {
    /// The tables whose commits make the read run again (e.g. `e_contact`).
    pub tables: HashSet<String>,
    pub read: WatchRead<T>,
    /// Receives each result; may block (it runs on a blocking thread).
    pub deliver: Box<dyn Fn(T) + Send + Sync>,
    pub min_interval: Duration,
}

/// Starts a watch on the runtime: the first result is delivered at once, then one after each
/// commit that touches `spec.tables` and after the store opens or closes. Stops when `cancel`
/// fires.
pub fn spawn<T: Send + 'static>(hub: Arc<ChangeHub>, spec: WatchSpec<T>, cancel: CancelToken) {
    let subscription = hub.subscribe(spec.tables.clone());
    let spec = Arc::new(spec);
    runtime::detach(async move {
        let mut last_run: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = subscription.changed() => {}
                _ = cancel.cancelled() => return,
            }
            if let Some(at) = last_run {
                tokio::select! {
                    _ = tokio::time::sleep_until(at + spec.min_interval) => {}
                    _ = cancel.cancelled() => return,
                }
            }
            last_run = Some(Instant::now());
            let (hub, run) = (Arc::clone(&hub), Arc::clone(&spec));
            let cancelled = cancel.clone();
            let done = tokio::task::spawn_blocking(move || {
                if let Some(value) = hub.read(|conn| (run.read)(conn))
                    && !cancelled.is_cancelled()
                {
                    (run.deliver)(value);
                }
            })
            .await;
            if done.is_err() {
                tracing::error!("a watched read or its delivery panicked; the watch stops");
                return;
            }
        }
    });
}
