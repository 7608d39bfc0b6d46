//! syncvault: an offline-first mobile sync client core.
//!
//! Apps link this crate (through the uniffi bindings in `bindings/`) to sign in to an
//! organization, keep its records in an encrypted SQLite database on the device, work offline and
//! synchronize. docs/architecture.md maps the layers; with the `uniffi` feature off the core is a
//! plain Rust library (`account`, `auth::Session`, `sync::run`) without the mobile API.

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("syncvault");

pub mod account;
#[cfg(all(target_os = "android", feature = "uniffi"))]
mod android;
pub mod auth;
#[cfg(feature = "uniffi")]
pub mod ffi;
mod fsio;
pub mod live;
pub mod net;
pub mod org;
pub mod runtime;
pub mod store;
pub mod sync;
pub mod vault;

#[cfg(feature = "uniffi")]
pub use ffi::{
    AccountState, AuthorizationUi, CancelHandle, ChangeKind, ClientOptions, ConflictInfo,
    ConflictMode, ConflictResolution, CountObserver, DeviceCodeUi, FieldInfo, FieldType,
    FieldValue, LogLevel, LogSink, PendingChange, PlatformKeyStore, QueryObserver, QueryWatch,
    RecordObserver, RecordQuery, RecordSyncState, RejectionCode, SyncActivity, SyncClient,
    SyncError, SyncErrorInfo, SyncObserver, SyncPhase, SyncProgress, SyncRecord, SyncReport,
    SyncStatus, SyncStatusObserver, UserMode, init_logging, normalize_organization_url,
    syncvault_version,
};
pub use org::UrlProblem;
pub use store::attachments::{Attachment, AttachmentState};

/// The vault header's file name inside an account directory.
pub const VAULT_HEADER_FILE: &str = "vault.header";
