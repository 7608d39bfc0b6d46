//! `synchronize()`: the seed's whole flow from the Synchronize button — check the account, sign in
//! through the app's `AuthorizationUi` when there are no usable tokens (or the refresh token
//! died), then run the sync engine over HTTP — plus the cancel handle.

use std::sync::Arc;

use async_trait::async_trait;

use crate::account::UserMode;
use crate::ffi::{SyncClient, SyncError, SyncObserver, SyncPhase, SyncProgress};
use crate::runtime;
use crate::sync::{
    self, CancelOnDrop, CancelToken, HttpTransport, SyncContext, SyncReport, TokenSource,
};

/// Cancels a running `synchronize()` (Swift Task cancellation does not reach Rust: call this).
/// What was applied stays; the next Synchronize resumes where this one stopped.
#[derive(uniffi::Object, Default)]
pub struct CancelHandle {
    token: CancelToken,
}

#[uniffi::export]
impl CancelHandle {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(CancelHandle::default())
    }

    /// Stops the Synchronize at the next safe point (`SyncError::Cancelled`).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// The engine's access tokens come from the client's token lifecycle (refresh, rotation).
struct ClientTokens(Arc<SyncClient>);

#[async_trait]
impl TokenSource for ClientTokens {
    async fn access_token(&self, rejected: Option<&str>) -> Result<String, SyncError> {
        self.0.access_token(rejected).await
    }
}

impl SyncClient {
    /// Signs in through the app's login page (OAuth user mode only).
    async fn sign_in_with_ui(&self, observer: &Arc<dyn SyncObserver>) -> Result<(), SyncError> {
        let state = self.account_state().await?;
        if state.user_mode != Some(UserMode::Oauth) {
            return Err(SyncError::SignInRequired {
                reason: "sign in with the organization's credentials".into(),
            });
        }
        let ui = self.ui.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let ui = ui.ok_or_else(|| SyncError::SignInRequired {
            reason: "no AuthorizationUi is set".into(),
        })?;
        observer.on_progress(SyncProgress {
            phase: SyncPhase::SigningIn,
            records_done: 0,
            records_estimated: None,
            bytes: 0,
        });
        let request = self.begin_sign_in(ui.redirect_uri()).await?;
        let callback = ui.authorize(request.url).await?;
        self.complete_sign_in(callback).await?;
        Ok(())
    }

    async fn run_engine(
        self: &Arc<Self>,
        observer: &Arc<dyn SyncObserver>,
        cancel: &CancelToken,
    ) -> Result<SyncReport, SyncError> {
        let info = self.org_info().await?;
        let base = info.sync_api.ok_or_else(|| SyncError::Server {
            status: 0,
            reason: "the organization names no sync API".into(),
        })?;
        let ctx = SyncContext {
            account: Arc::clone(&self.account),
            transport: Arc::new(HttpTransport::new(self.signin.http.clone(), &base)),
            tokens: Arc::new(ClientTokens(Arc::clone(self))),
            options: self.sync_options.clone(),
            observer: Some(Arc::clone(observer)),
            cancel: cancel.clone(),
        };
        sync::run(ctx).await
    }

    /// The whole Synchronize; runs in its own task, which holds the one-at-a-time lock until
    /// the work has really stopped (even when the caller stopped waiting).
    async fn synchronize_in_task(
        self: Arc<Self>,
        observer: Arc<dyn SyncObserver>,
        cancel: CancelToken,
    ) -> Result<SyncReport, SyncError> {
        let _one_at_a_time = self.sync_lock.lock().await;
        observer.on_progress(SyncProgress {
            phase: SyncPhase::Preparing,
            records_done: 0,
            records_estimated: None,
            bytes: 0,
        });
        let state = self.account_state().await?;
        if !state.configured {
            return Err(SyncError::NotConfigured);
        }
        if state.locked {
            return Err(SyncError::Locked);
        }
        if !self.is_signed_in().await? {
            self.sign_in_with_ui(&observer).await?;
        }
        match self.run_engine(&observer, &cancel).await {
            // The refresh token died: the login page comes back, then the sync runs again.
            Err(SyncError::SignInRequired { reason }) if self.has_authorization_ui() => {
                tracing::info!("signing in again: {reason}");
                self.sign_in_with_ui(&observer).await?;
                self.run_engine(&observer, &cancel).await
            }
            other => other,
        }
    }
}

#[uniffi::export]
impl SyncClient {
    /// Runs a Synchronize: uploads queued edits, downloads what changed, and reports progress to
    /// `observer`. Signs in through the `AuthorizationUi` when needed (OAuth user mode). The store
    /// must be unlocked. Cancel through `cancel` (a Kotlin coroutine's cancellation also
    /// stops it); a cancelled or failed run keeps everything it applied and the next one resumes.
    /// Runs are serialized per client: a second call waits until the first has stopped.
    #[uniffi::method(default(cancel = None))]
    pub async fn synchronize(
        self: Arc<Self>,
        observer: Arc<dyn SyncObserver>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<SyncReport, SyncError> {
        let cancel = cancel.map(|c| c.token.clone()).unwrap_or_default();
        let stop_if_abandoned = CancelOnDrop::new(cancel.clone());
        let result = runtime::spawn(self.synchronize_in_task(observer, cancel)).await;
        stop_if_abandoned.disarm();
        result
    }
}

impl SyncClient {
    fn has_authorization_ui(&self) -> bool {
        self.ui.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }
}
