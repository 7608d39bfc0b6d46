//! Progress of a Synchronize as the engine reports it: a phase and counts, pushed to a
//! [`ProgressSink`] as work advances (the app never polls). The mobile API adapts its foreign
//! `SyncObserver` to this trait.

/// Which step of a Synchronize is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
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
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Records handled so far in this phase.
    pub records_done: u64,
    /// The server's estimate of the phase's total, when it gave one.
    pub records_estimated: Option<u64>,
    /// Bytes received and sent so far in this Synchronize.
    pub bytes: u64,
}

/// Receives progress; called from the engine's threads, so it must be cheap and thread-safe.
pub trait ProgressSink: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}
