//! Progress reporting: the app implements `SyncObserver`; the engine's progress (a
//! `sync::ProgressSink`) reaches it through [`ObserverSink`], so the app never polls.

use std::sync::Arc;

use crate::sync::ProgressSink;
pub use crate::sync::{SyncPhase, SyncProgress};

/// Implemented by the app (a Kotlin Flow or Swift AsyncStream wraps it) to see progress.
/// Called from a syncvault worker thread: hop to the UI thread yourself.
#[uniffi::export(foreign)]
pub trait SyncObserver: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// The engine's progress, delivered to the app's observer.
pub(crate) struct ObserverSink(pub Arc<dyn SyncObserver>);

impl ProgressSink for ObserverSink {
    fn on_progress(&self, progress: SyncProgress) {
        self.0.on_progress(progress);
    }
}
