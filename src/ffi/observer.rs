//! Progress reporting: the app implements `SyncObserver`; Rust calls it as work advances, so the
//! app never polls.

/// Which step of a Synchronize is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncPhase {
    /// Checking the account, unlocking, reading the organization's configuration.
    Preparing,
    /// Waiting for the person to sign in on the identity provider's page.
    SigningIn,
    /// Sending queued local edits.
    Uploading,
    /// Receiving the organization's changes.
    Downloading,
    /// Done; the report follows.
    Finished,
}

/// One progress update.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Records handled so far in this phase.
    pub records_done: u64,
    /// The server's estimate of the phase's total, when it gave one.
    pub records_estimated: Option<u64>,
    /// Bytes received and sent so far in this Synchronize.
    pub bytes: u64,
}

/// Implemented by the app (a Kotlin Flow or Swift AsyncStream wraps it) to see progress.
/// Called from a syncvault worker thread: hop to the UI thread yourself.
#[uniffi::export(foreign)]
pub trait SyncObserver: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}
