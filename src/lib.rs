//! syncvault: an offline-first mobile sync client core.
//!
//! Apps link this crate (through the uniffi bindings in `bindings/`) to sign in to an
//! organization, keep its records in an encrypted SQLite database on the device, work offline and
//! synchronize. See docs/ and design.md for the architecture.

uniffi::setup_scaffolding!("syncvault");

pub mod account;
#[cfg(target_os = "android")]
mod android;
pub mod auth;
pub mod ffi;
mod fsio;
pub mod net;
pub mod org;
mod runtime;
pub mod store;
pub mod sync;
pub mod vault;

pub use ffi::{
    AccountState, AuthorizationUi, CancelHandle, ClientOptions, ConflictInfo, ConflictMode,
    ConflictResolution, FieldInfo, FieldType, FieldValue, LogLevel, LogSink, PlatformKeyStore,
    RecordQuery, SyncClient, SyncError, SyncObserver, SyncPhase, SyncProgress, SyncRecord,
    SyncReport, UserMode, init_logging, normalize_organization_url, syncvault_version,
};
pub use org::UrlProblem;

/// The vault header's file name inside an account directory.
pub const VAULT_HEADER_FILE: &str = "vault.header";
