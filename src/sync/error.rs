//! Why a Synchronize stopped. The engine returns [`EngineError`]; the mobile API maps it to the
//! app's `SyncError` in one place (src/ffi/error.rs).

use crate::account::AccountError;
use crate::auth::AuthError;
use crate::runtime::TaskError;
use crate::store::StoreError;
use crate::store::entities::EntityError;
use std::time::Duration;

use super::plan::PlanError;
use super::transport::TransportError;

/// The server broke sync protocol v2 (docs/protocol.md): nothing of the offending page or answer
/// was applied. The text is syncvault's own (it may name identifiers that passed validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    pub fn new(reason: impl Into<String>) -> Self {
        ProtocolError(reason.into())
    }
}

impl From<PlanError> for ProtocolError {
    fn from(e: PlanError) -> Self {
        ProtocolError(e.to_string())
    }
}

/// Which time bound a Synchronize hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum TimeBound {
    /// The whole Synchronize took longer than its deadline (`SyncOptions::deadline`).
    Deadline,
    /// An answer arrived slower than the minimum transfer rate.
    MinimumTransferRate,
}

/// Why a Synchronize stopped. What was committed before stays; the next run resumes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Cancelled through the cancel token.
    #[error("cancelled")]
    Cancelled,
    /// No usable access token (sign in again), or the organization refuses fresh ones.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A final transport failure (after the retries the error allows).
    #[error(transparent)]
    Transport(TransportError),
    #[error("the server broke the protocol: {0}")]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The organization wiped this device (`device_wiped`): the caller crypto-erases the vault.
    #[error("the organization wiped this device")]
    RemoteWiped,
    /// The organization signed this device out (`device_signed_out`): the tokens are forgotten.
    #[error("the organization signed this device out")]
    SignedOutRemotely,
    /// A time bound was hit; what was committed stays.
    #[error("the synchronize hit its time bound: {0:?}")]
    TimedOut(TimeBound),
    /// The server refused the cursor (`invalid_cursor`): the engine resyncs in full. Never
    /// leaves the engine unless the full resync is refused too.
    #[error("the server refused the sync cursor")]
    CursorRefused,
    /// An attachment's content could not be read or written on the device.
    #[error(transparent)]
    Attachment(#[from] crate::store::attachments::AttachmentError),
    /// The server asked (429/503 `Retry-After`) to wait longer than the deadline leaves: the run
    /// ends at once rather than sleeping into the deadline.
    #[error("the server asked to wait {}s, longer than the deadline leaves", .0.as_secs())]
    ServerBusy(Duration),
}

impl From<PlanError> for EngineError {
    fn from(e: PlanError) -> Self {
        EngineError::Protocol(e.into())
    }
}

impl From<TransportError> for EngineError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Protocol(reason) => EngineError::Protocol(ProtocolError(reason)),
            TransportError::TooSlow(_) => EngineError::TimedOut(TimeBound::MinimumTransferRate),
            TransportError::Status {
                status: 403,
                code: Some(code),
                ..
            } if code == "device_wiped" => EngineError::RemoteWiped,
            TransportError::Status {
                status: 403,
                code: Some(code),
                ..
            } if code == "device_signed_out" => EngineError::SignedOutRemotely,
            other => EngineError::Transport(other),
        }
    }
}

/// Entity errors met while applying server data are the server's fault; a store failure stays
/// a store failure.
impl From<EntityError> for EngineError {
    fn from(e: EntityError) -> Self {
        match e {
            EntityError::Store(s) => EngineError::Store(s),
            other => EngineError::Protocol(ProtocolError(other.to_string())),
        }
    }
}
