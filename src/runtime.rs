//! The one tokio runtime behind the mobile API.
//!
//! Async FFI methods hand their work to this runtime and await the join handle, so the work runs on
//! tokio whatever executor the foreign side polls with (Kotlin coroutines, Swift tasks), and a
//! caller's thread is never blocked by network or KDF work.

use std::sync::OnceLock;

use std::future::Future;

use tokio::runtime::{Builder, Runtime};

use crate::ffi::SyncError;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("syncvault")
            .enable_all()
            .build()
            .expect("the tokio runtime must start")
    })
}

/// Runs CPU-heavy or blocking work (KDF, SQLite) on the runtime's blocking pool.
pub(crate) async fn spawn_blocking<T, F>(work: F) -> Result<T, SyncError>
where
    F: FnOnce() -> Result<T, SyncError> + Send + 'static,
    T: Send + 'static,
{
    runtime().spawn_blocking(work).await?
}

/// Runs `fut` (network I/O) on the shared runtime; a panic inside becomes `SyncError::Internal`.
pub(crate) async fn spawn<T, F>(fut: F) -> Result<T, SyncError>
where
    F: Future<Output = Result<T, SyncError>> + Send + 'static,
    T: Send + 'static,
{
    runtime().spawn(fut).await?
}
