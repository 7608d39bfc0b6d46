//! The one public error type. Every module has its own internal error; each maps here at the FFI
//! edge so that Swift sees one `throws` type and Kotlin one exception hierarchy, with cases an app
//! can act on (show a field error, ask for the password again, bring up the login page).

use crate::org::{OrgUrlError, UrlProblem};

/// Everything that can go wrong, as an app needs to tell it apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum SyncError {
    /// The offline password did not unlock the vault; after `attempts_left` more failures the
    /// vault is wiped.
    #[error("wrong offline password ({attempts_left} attempts left)")]
    WrongPassword { attempts_left: u32 },
    /// The two password entries differ.
    #[error("the passwords do not match")]
    PasswordMismatch,
    /// The new password breaks the policy (too short).
    #[error("the password must be at least {min_length} characters")]
    WeakPassword { min_length: u32 },
    /// The organization URL cannot be used; `problem` says which rule it broke.
    #[error("invalid organization URL: {reason}")]
    InvalidOrganizationUrl { problem: UrlProblem, reason: String },
    /// The organization does not allow the chosen user mode.
    #[error("the organization does not allow user mode {mode}")]
    UserModeNotAllowed { mode: String },
    /// Tokens are missing or dead: the login page must be shown again. Nothing local was lost.
    #[error("sign in again: {reason}")]
    SignInRequired { reason: String },
    /// The person closed the login page.
    #[error("sign-in was cancelled")]
    SignInCancelled,
    /// No vault exists yet in this data directory: run setup first.
    #[error("this account is not set up yet")]
    NotConfigured,
    /// A vault already exists; wipe it before setting up again.
    #[error("this account is already set up")]
    AlreadyConfigured,
    /// The vault is locked: unlock with the offline password first.
    #[error("the offline data is locked")]
    Locked,
    /// Too many wrong passwords: the offline data was crypto-erased.
    #[error("too many wrong passwords: the offline data was erased")]
    VaultWiped,
    /// Biometric unlock is not enabled for this account: unlock with the offline password.
    #[error("biometric unlock is not enabled")]
    PlatformUnlockNotEnabled,
    /// The person dismissed the biometric prompt: offer the offline password.
    #[error("biometric unlock was cancelled")]
    PlatformKeyCancelled,
    /// The platform key is gone for good (biometrics changed, key deleted, secret rejected).
    /// Biometric unlock has been turned off: unlock with the password, then enable it again.
    #[error("the biometric key is no longer valid")]
    PlatformKeyInvalidated,
    /// The key store cannot be used now (no biometrics enrolled, locked out, no secure hardware).
    #[error("biometric unlock is unavailable: {reason}")]
    PlatformKeyUnavailable { reason: String },
    /// The server could not be reached or the connection broke.
    #[error("network error: {reason}")]
    Network { reason: String },
    /// The server answered with an error or with something that breaks the protocol.
    #[error("server error {status}: {reason}")]
    Server { status: u16, reason: String },
    /// A change conflicts with the server and needs the app's decision.
    #[error("conflict: {reason}")]
    Conflict { reason: String },
    /// Files on disk were tampered with, truncated, or belong to another vault.
    #[error("the offline data is corrupted: {reason}")]
    Corrupted { reason: String },
    /// The operation was cancelled through its cancel handle.
    #[error("cancelled")]
    Cancelled,
    /// The app passed something the API cannot use (an unknown entity, a bad field value).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    /// Disk full, permissions, and other local I/O failures.
    #[error("storage error: {reason}")]
    Storage { reason: String },
    /// A bug in syncvault (including a caught panic). Please report it.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl From<OrgUrlError> for SyncError {
    fn from(err: OrgUrlError) -> Self {
        SyncError::InvalidOrganizationUrl {
            problem: err.problem,
            reason: err.to_string(),
        }
    }
}

/// A failed background task (panic or shutdown) must reach the app as an error, never as a crash.
impl From<tokio::task::JoinError> for SyncError {
    fn from(err: tokio::task::JoinError) -> Self {
        let reason = if err.is_panic() {
            tracing::error!("a background task panicked");
            "a background task panicked".to_string()
        } else {
            "a background task was stopped".to_string()
        };
        SyncError::Internal { reason }
    }
}

/// Lets `uniffi` report a failed foreign callback (e.g. an app's observer throwing).
impl From<uniffi::UnexpectedUniFFICallbackError> for SyncError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SyncError::Internal {
            reason: format!("callback failed: {}", err.reason),
        }
    }
}
