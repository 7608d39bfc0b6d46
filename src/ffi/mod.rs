//! The exported mobile API (uniffi proc-macros): the `SyncClient` object, its records and enums,
//! the `SyncError` enum, and the traits the app implements.

mod attachments;
mod authorization_ui;
mod client;
mod error;
mod logging;
mod loopback;
mod observer;
mod platform_unlock;
mod records;
mod signin;
mod sync_state;
mod synchronize;
mod watch;

pub use crate::account::{AccountState, UserMode};
pub use crate::store::entities::FieldType;
pub use crate::sync::{ConflictMode, SyncReport, TimeBound};
pub use authorization_ui::{AuthorizationUi, DeviceCodeUi};
pub use client::{ClientOptions, SyncClient};
pub use error::SyncError;
pub use logging::{LogLevel, LogSink, init_logging};
pub use loopback::LoopbackRedirect;
pub use observer::{SyncObserver, SyncPhase, SyncProgress};
pub use platform_unlock::PlatformKeyStore;
pub use records::{
    ConflictInfo, ConflictResolution, FieldInfo, FieldValue, RecordQuery, SyncRecord,
};
pub use signin::{AuthorizationRequest, DeviceAuthorization, SignedInUser};
pub use sync_state::{ChangeKind, PendingChange, RecordSyncState, RejectionCode, SyncErrorInfo};
pub use synchronize::CancelHandle;
pub use watch::{
    CountObserver, QueryObserver, QueryWatch, RecordObserver, SyncActivity, SyncStatus,
    SyncStatusObserver,
};

/// Normalizes an organization URL as typed by a person; call it on every keystroke.
#[uniffi::export]
pub fn normalize_organization_url(input: String) -> Result<String, SyncError> {
    Ok(crate::org::normalize_organization_url(&input)?)
}

/// The library version, for support logs.
#[uniffi::export]
pub fn syncvault_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
