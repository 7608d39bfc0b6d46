//! Synchronize: protocol v2's wire types, the transport (trait + HTTP), the pure plans of what a
//! page or a push answer means for the store, their execution, and the engine that runs a whole
//! sync and reports progress to a [`ProgressSink`].

pub mod apply;
pub mod cancel;
pub mod engine;
pub mod error;
#[cfg(test)]
mod goldens;
pub mod plan;
pub mod progress;
pub mod protocol;
pub mod transport;

pub use crate::auth::TokenSource;
pub use cancel::CancelToken;
pub use engine::{
    AttachmentPolicy, SyncContext, SyncOptions, SyncReport, download_attachment, run,
};
pub use error::{EngineError, ProtocolError, TimeBound};
pub use plan::ConflictMode;
pub use progress::{ProgressSink, SyncPhase, SyncProgress};
pub use transport::{HttpTransport, Received, Transport, TransportError};
