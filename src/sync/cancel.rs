//! Cancellation: an explicit token the app cancels (Swift Task cancellation does not reach Rust).
//! The engine checks it between steps and races it against every network wait; a transaction in
//! progress always completes or rolls back, so the store stays consistent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Shared cancel flag with a wake-up for tasks waiting on the network.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    /// Asks the running work to stop.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Whether `other` is a clone of this token.
    pub fn same_as(&self, other: &CancelToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Resolves once `cancel` was called.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Cancels its token when dropped, unless disarmed. Kotlin cancels a coroutine by dropping the
/// Rust future it awaits; work spawned on the runtime for that future would otherwise go on.
pub struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    pub fn new(token: CancelToken) -> Self {
        CancelOnDrop(Some(token))
    }

    /// The call finished: leave the token as it is (the app may reuse its handle).
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_cancels_and_a_disarmed_one_does_not() {
        let token = CancelToken::default();
        CancelOnDrop::new(token.clone()).disarm();
        assert!(!token.is_cancelled());
        drop(CancelOnDrop::new(token.clone()));
        assert!(token.is_cancelled());
    }
}
