//! The desktop redirect for apps (RFC 8252 §7.3): the core's loopback listener as an object, so a
//! desktop app's `AuthorizationUi` binds `http://127.0.0.1:PORT/callback`, opens the system
//! browser and awaits the callback without writing an HTTP server of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::AuthError;
use crate::auth::loopback;
use crate::runtime;
use crate::sync::CancelToken;

use super::SyncError;

/// One sign-in's listener on 127.0.0.1: bind it in `redirectUri()`, await it in `authorize`.
#[derive(uniffi::Object)]
pub struct LoopbackRedirect {
    listener: Mutex<Option<loopback::LoopbackRedirect>>,
    uri: String,
    cancel: CancelToken,
}

fn listener_failed(e: AuthError) -> SyncError {
    SyncError::AuthorizationUiFailed {
        reason: match e {
            AuthError::InvalidRedirect(reason) => reason,
            _ => "the loopback listener failed".into(),
        },
    }
}

/// Cancels the token when the awaiting future goes away, finished or not.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[uniffi::export]
impl LoopbackRedirect {
    /// Binds a port the OS picks; `AuthorizationUiFailed` when loopback cannot be listened on.
    #[uniffi::constructor]
    pub fn bind() -> Result<Arc<Self>, SyncError> {
        let listener = loopback::LoopbackRedirect::bind_now().map_err(listener_failed)?;
        Ok(Arc::new(LoopbackRedirect {
            uri: listener.redirect_uri(),
            listener: Mutex::new(Some(listener)),
            cancel: CancelToken::default(),
        }))
    }

    /// `http://127.0.0.1:PORT/callback`: what `AuthorizationUi.redirectUri()` returns.
    pub fn redirect_uri(&self) -> String {
        self.uri.clone()
    }

    /// Waits for the browser's callback and returns its full URL (for `authorize`). Answers the
    /// browser with a short "return to the app" page. `SignInCancelled` after `timeoutSeconds`,
    /// after `cancel()`, or when the Synchronize awaiting it is cancelled; one wait per listener.
    pub async fn wait_for_callback(&self, timeout_seconds: u32) -> Result<String, SyncError> {
        let taken = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(listener) = taken else {
            return Err(SyncError::AuthorizationUiFailed {
                reason: "this loopback listener was already waited on; bind a new one".into(),
            });
        };
        let cancel = self.cancel.clone();
        // An abandoned wait (the app's coroutine cancelled) frees the port at once.
        let _stop_if_abandoned = CancelOnDrop(self.cancel.clone());
        let timeout = Duration::from_secs(timeout_seconds.into());
        runtime::spawn(async move {
            tokio::select! {
                got = listener.wait(timeout) => got.map_err(|e| match e {
                    AuthError::Cancelled => SyncError::SignInCancelled,
                    other => listener_failed(other),
                }),
                () = cancel.cancelled() => Err(SyncError::SignInCancelled),
            }
        })
        .await
    }

    /// Ends a wait in progress (the person pressed Cancel in the app).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}
