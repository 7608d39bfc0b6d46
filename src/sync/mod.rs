//! Synchronize: protocol v1's wire types, the transport (trait + HTTP), the pure planning of pages
//! and conflicts, the store side of applying them, and the engine that runs a whole sync.

pub mod apply;
pub mod cancel;
pub mod engine;
pub mod plan;
pub mod protocol;
pub mod transport;

pub use cancel::{CancelOnDrop, CancelToken};
pub use engine::{SyncContext, SyncOptions, SyncReport, TokenSource, run};
pub use plan::ConflictMode;
pub use transport::{HttpTransport, Received, Transport, TransportError};
