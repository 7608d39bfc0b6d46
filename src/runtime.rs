//! The one tokio runtime behind the core's async work.
//!
//! Async methods hand their work to this runtime and await the join handle, so the work runs on
//! tokio whatever executor the caller polls with (Kotlin coroutines, Swift tasks, a Rust host's own
//! runtime), and a caller's thread is never blocked by network, disk or KDF work. The helpers are
//! generic over the caller's error: a panic or a stopped task becomes that error through
//! [`TaskError`], never an unwind into the caller.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// A background task did not return: it panicked, or the runtime stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("a background task panicked")]
    Panicked,
    #[error("a background task was stopped")]
    Stopped,
}

impl From<tokio::task::JoinError> for TaskError {
    fn from(err: tokio::task::JoinError) -> Self {
        if err.is_panic() {
            tracing::error!("a background task panicked");
            TaskError::Panicked
        } else {
            TaskError::Stopped
        }
    }
}

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

/// What the runtime is handed: one boxed type for every task, so tokio's task machinery (about
/// 3 KiB of code per distinct future or closure type) is built once instead of once per call
/// site; the mobile library was 119 copies, ~350 KiB, heavier (benches/run-size-report).
type AnyResult = Box<dyn Any + Send>;
type BoxedWork = Box<dyn FnOnce() -> AnyResult + Send>;
type BoxedTask = Pin<Box<dyn Future<Output = AnyResult> + Send>>;

fn boxed_work<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> BoxedWork {
    Box::new(move || Box::new(work()) as AnyResult)
}

fn boxed_task<R: Send + 'static>(fut: impl Future<Output = R> + Send + 'static) -> BoxedTask {
    Box::pin(async move { Box::new(fut.await) as AnyResult })
}

/// A task's result back in its own type (the box always holds what the task returned).
fn unbox<T, E>(joined: Result<AnyResult, tokio::task::JoinError>) -> Result<T, E>
where
    T: 'static,
    E: From<TaskError> + 'static,
{
    match joined {
        Ok(any) => *any
            .downcast::<Result<T, E>>()
            .expect("a task returns its own result type"),
        Err(join) => Err(TaskError::from(join).into()),
    }
}

/// Starts a task that outlives its caller (a watched query), on the shared runtime.
pub(crate) fn detach<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime().spawn(boxed_task(fut));
}

/// Runs CPU-heavy or blocking work (KDF, SQLite) on the runtime's blocking pool.
pub(crate) async fn spawn_blocking<T, E, F>(work: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<TaskError> + Send + 'static,
{
    unbox(runtime().spawn_blocking(boxed_work(work)).await)
}

/// Starts blocking work now (unlike [`spawn_blocking`], which starts when awaited), for work
/// that runs beside the caller, e.g. sealing a download while the next bytes arrive.
pub(crate) fn start_blocking<T, E, F>(work: F) -> impl Future<Output = Result<T, E>>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<TaskError> + Send + 'static,
{
    let handle = runtime().spawn_blocking(boxed_work(work));
    async move { unbox(handle.await) }
}

/// Runs `fut` (network I/O) on the shared runtime.
pub(crate) async fn spawn<T, E, F>(fut: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<TaskError> + Send + 'static,
{
    unbox(runtime().spawn(boxed_task(fut)).await)
}
