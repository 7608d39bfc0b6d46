//! `synchronize()`: the seed's whole flow from the Synchronize button — check the account, sign in
//! through the app's `AuthorizationUi` (or `DeviceCodeUi`) when there are no usable tokens or the
//! refresh token died, then run the sync engine over HTTP — plus the cancel handle.

use std::sync::Arc;

use crate::account::UserMode;
use crate::ffi::observer::ObserverSink;
use crate::ffi::{SyncClient, SyncError, SyncObserver, SyncPhase, SyncProgress};
use crate::runtime;
use crate::store::sync_log;
use crate::sync::{self, CancelOnDrop, CancelToken, HttpTransport, SyncContext, SyncReport};

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

/// What the app's sign-in UI failed with, as the app should see it: the person closing the page
/// stays `SignInCancelled`; anything else the UI threw is the UI's failure.
fn ui_failure(err: SyncError) -> SyncError {
    match err {
        SyncError::SignInCancelled => SyncError::SignInCancelled,
        other => SyncError::AuthorizationUiFailed {
            reason: format!("the app's sign-in UI threw {}", other.kind()),
        },
    }
}

impl SyncClient {
    fn has_sign_in_ui(&self) -> bool {
        self.ui.lock().unwrap_or_else(|p| p.into_inner()).is_some()
            || self
                .device_ui
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
    }

    /// Signs in through the app's login page or device-code screen (OAuth user mode only).
    async fn sign_in_with_ui(&self, observer: &Arc<dyn SyncObserver>) -> Result<(), SyncError> {
        let (_, mode) = self.session.organization().await?;
        if mode != UserMode::Oauth {
            return Err(SyncError::SignInRequired {
                reason: "sign in with the organization's credentials".into(),
            });
        }
        let ui = self.ui.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let device_ui = self
            .device_ui
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if ui.is_none() && device_ui.is_none() {
            return Err(SyncError::SignInRequired {
                reason: "no AuthorizationUi is set".into(),
            });
        }
        observer.on_progress(SyncProgress {
            phase: SyncPhase::SigningIn,
            records_done: 0,
            records_estimated: None,
            bytes: 0,
        });
        if let Some(ui) = ui {
            let request = self.session.begin_sign_in(ui.redirect_uri()).await?;
            let callback = ui.authorize(request.url).await.map_err(ui_failure)?;
            self.session.complete_sign_in(callback).await?;
        } else if let Some(ui) = device_ui {
            let code = self.session.begin_device_sign_in().await?;
            ui.show_code(code).await.map_err(ui_failure)?;
            self.session.complete_device_sign_in().await?;
        }
        Ok(())
    }

    async fn run_engine(
        self: &Arc<Self>,
        observer: &Arc<dyn SyncObserver>,
        cancel: &CancelToken,
    ) -> Result<SyncReport, SyncError> {
        let info = self.session.org_info().await?;
        let base = info.sync_api.ok_or_else(|| SyncError::ProtocolViolation {
            reason: "the organization names no sync API".into(),
        })?;
        let ctx = SyncContext {
            account: Arc::clone(&self.account),
            transport: Arc::new(HttpTransport::new(self.session.http().clone(), &base)),
            tokens: Arc::clone(&self.session) as _,
            options: self.sync_options.clone(),
            progress: Some(Arc::new(ObserverSink(Arc::clone(observer)))),
            cancel: cancel.clone(),
        };
        match sync::run(ctx).await {
            Ok(report) => Ok(report),
            Err(e) => {
                let error = SyncError::from(e);
                let kind = error.kind();
                // The sync log keeps the failure's stable name (support screens).
                let _ = self
                    .with_account(move |a| {
                        Ok(sync_log::record_error_kind(a.store()?.conn(), kind)?)
                    })
                    .await;
                Err(error)
            }
        }
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
        if !self.session.is_signed_in().await? {
            self.sign_in_with_ui(&observer).await?;
        }
        match self.run_engine(&observer, &cancel).await {
            // The refresh token died: the login page comes back, then the sync runs again.
            Err(SyncError::SignInRequired { reason }) if self.has_sign_in_ui() => {
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
