//! `synchronize()`: the seed's whole flow from the Synchronize button — check the account, sign in
//! through the app's `AuthorizationUi` (or `DeviceCodeUi`) when there are no usable tokens or the
//! refresh token died, then run the sync engine over HTTP — plus the cancel handle.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::account::{Account, UserMode};
use crate::auth::Session;
use crate::ffi::observer::ObserverSink;
use crate::ffi::watch::StatusBoard;
use crate::ffi::{
    AuthorizationUi, DeviceCodeUi, SyncClient, SyncError, SyncObserver, SyncPhase, SyncProgress,
};
use crate::runtime;
use crate::store::{ChangeHub, sync_log};
use crate::sync::{
    self, CancelToken, EngineError, HttpTransport, SyncContext, SyncOptions, SyncReport,
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

/// How long closing a client waits for its Synchronize to reach a consistent point.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The runs in progress of one client: their cancel tokens, and a signal when none is left.
#[derive(Default)]
pub(crate) struct Runs {
    active: Mutex<Vec<CancelToken>>,
    idle: Condvar,
}

impl Runs {
    fn start(self: &Arc<Self>, token: CancelToken) -> RunGuard {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(token.clone());
        RunGuard(Arc::clone(self), token)
    }

    /// Cancels every run and waits (bounded) until each has stopped.
    pub(crate) fn cancel_and_wait(&self) {
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        for token in active.iter() {
            token.cancel();
        }
        let (_active, waited) = self
            .idle
            .wait_timeout_while(active, CLOSE_WAIT, |a| !a.is_empty())
            .unwrap_or_else(|p| p.into_inner());
        if waited.timed_out() {
            tracing::warn!("closing: a Synchronize did not stop in time");
        }
    }
}

/// Marks a run as stopped when dropped.
struct RunGuard(Arc<Runs>, CancelToken);

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut active = self.0.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = active.iter().position(|t| t.same_as(&self.1)) {
            active.swap_remove(at);
        }
        self.0.idle.notify_all();
    }
}

/// The app's observer, with the client's sync status fed from the same progress.
struct StatusFeed {
    app: Arc<dyn SyncObserver>,
    board: Arc<StatusBoard>,
    changes: Arc<ChangeHub>,
}

impl StatusFeed {
    fn finished(&self, error: Option<&SyncError>) {
        self.board.finished(&self.changes, error.cloned());
    }
}

impl SyncObserver for StatusFeed {
    fn on_progress(&self, progress: SyncProgress) {
        self.board.progress(&self.changes, &progress);
        self.app.on_progress(progress);
    }
}

/// The app's observer for one call, muted once the caller stops waiting: a cancelled Kotlin
/// coroutine drops the call's future while the run still finishes the page it is applying, and
/// from the moment that drop returns the app must hear nothing more. A callback in progress
/// holds the lock, so muting waits for it (an observer must not block on the call's coroutine).
struct AppObserver(std::sync::Mutex<Option<Arc<dyn SyncObserver>>>);

impl AppObserver {
    fn new(app: Arc<dyn SyncObserver>) -> Arc<Self> {
        Arc::new(AppObserver(std::sync::Mutex::new(Some(app))))
    }

    fn mute(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl SyncObserver for AppObserver {
    fn on_progress(&self, progress: SyncProgress) {
        if let Some(app) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            app.on_progress(progress);
        }
    }
}

/// Cancels a call's run and mutes its observer when the caller stops waiting (the future is
/// dropped), unless disarmed because the call finished: work spawned on the runtime for that
/// future would otherwise go on, and keep calling the app.
struct StopIfAbandoned(Option<(CancelToken, Arc<AppObserver>)>);

impl StopIfAbandoned {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StopIfAbandoned {
    fn drop(&mut self) {
        if let Some((token, app)) = self.0.take() {
            token.cancel();
            app.mute();
        }
    }
}

/// One Synchronize, with what it needs of the client (and not the client itself, so closing the
/// client can cancel it).
struct SyncJob {
    account: Arc<std::sync::Mutex<Account>>,
    session: Arc<Session>,
    ui: Option<Arc<dyn AuthorizationUi>>,
    device_ui: Option<Arc<dyn DeviceCodeUi>>,
    options: SyncOptions,
    min_rate: Option<crate::net::MinRate>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl SyncJob {
    async fn with_account<T, F>(&self, work: F) -> Result<T, SyncError>
    where
        F: FnOnce(&mut Account) -> Result<T, SyncError> + Send + 'static,
        T: Send + 'static,
    {
        let account = Arc::clone(&self.account);
        runtime::spawn_blocking(move || {
            work(&mut account.lock().unwrap_or_else(|p| p.into_inner()))
        })
        .await
    }

    /// Signs in through the app's login page or device-code screen (OAuth user mode only).
    async fn sign_in_with_ui(&self, observer: &Arc<dyn SyncObserver>) -> Result<(), SyncError> {
        let (_, mode) = self.session.organization().await?;
        if mode != UserMode::Oauth {
            return Err(SyncError::SignInRequired {
                reason: "sign in with the organization's credentials".into(),
            });
        }
        if self.ui.is_none() && self.device_ui.is_none() {
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
        if let Some(ui) = &self.ui {
            let request = self.session.begin_sign_in(ui.redirect_uri()).await?;
            let callback = ui.authorize(request.url).await.map_err(ui_failure)?;
            self.session.complete_sign_in(callback).await?;
        } else if let Some(ui) = &self.device_ui {
            let code = self.session.begin_device_sign_in().await?;
            ui.show_code(code).await.map_err(ui_failure)?;
            self.session.complete_device_sign_in().await?;
        }
        Ok(())
    }

    /// The sign-in, stopped by a cancel (or the client closing) while the page is shown.
    async fn sign_in_until_cancelled(
        &self,
        observer: &Arc<dyn SyncObserver>,
        cancel: &CancelToken,
    ) -> Result<(), SyncError> {
        tokio::select! {
            r = self.sign_in_with_ui(observer) => r,
            _ = cancel.cancelled() => Err(SyncError::Cancelled),
        }
    }

    /// What the engine needs, over HTTP to the discovered sync API.
    async fn context(
        &self,
        observer: &Arc<dyn SyncObserver>,
        cancel: &CancelToken,
    ) -> Result<SyncContext, SyncError> {
        let info = self.session.org_info().await?;
        let base = info.sync_api.ok_or_else(|| SyncError::ProtocolViolation {
            reason: "the organization names no sync API".into(),
        })?;
        Ok(SyncContext {
            account: Arc::clone(&self.account),
            transport: Arc::new(
                HttpTransport::new(self.session.http().clone(), &base).with_min_rate(self.min_rate),
            ),
            tokens: Arc::clone(&self.session) as _,
            options: self.options.clone(),
            progress: Some(Arc::new(ObserverSink(Arc::clone(observer)))),
            cancel: cancel.clone(),
        })
    }

    /// One attachment's content, on demand (signed in and unlocked; one run at a time).
    async fn download_attachment(
        self,
        id: String,
        observer: Arc<dyn SyncObserver>,
        cancel: CancelToken,
        _running: RunGuard,
    ) -> Result<SyncReport, SyncError> {
        let _one_at_a_time = self.lock.lock().await;
        let state = self.with_account(|a| Ok(a.state()?)).await?;
        if state.locked {
            return Err(SyncError::Locked);
        }
        if !self.session.is_signed_in().await? {
            return Err(SyncError::SignInRequired {
                reason: "synchronize (and sign in) before downloading attachments".into(),
            });
        }
        let ctx = self.context(&observer, &cancel).await?;
        Ok(sync::download_attachment(ctx, id).await?)
    }

    async fn run_engine(
        &self,
        observer: &Arc<dyn SyncObserver>,
        cancel: &CancelToken,
    ) -> Result<SyncReport, SyncError> {
        let ctx = self.context(observer, cancel).await?;
        match sync::run(ctx).await {
            Ok(report) => Ok(report),
            // The administrator's orders, carried out on the device.
            Err(EngineError::RemoteWiped) => {
                self.with_account(|a| Ok(a.wipe_remotely()?)).await?;
                Err(SyncError::RemoteWiped)
            }
            Err(EngineError::SignedOutRemotely) => {
                self.session.sign_out(false).await?;
                Err(SyncError::SignInRequired {
                    reason: "the organization signed this device out".into(),
                })
            }
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

    /// The whole Synchronize; holds the one-at-a-time lock until the work has really stopped
    /// (even when the caller stopped waiting).
    async fn run(
        self,
        observer: Arc<dyn SyncObserver>,
        cancel: CancelToken,
        _running: RunGuard,
    ) -> Result<SyncReport, SyncError> {
        let _one_at_a_time = self.lock.lock().await;
        observer.on_progress(SyncProgress {
            phase: SyncPhase::Preparing,
            records_done: 0,
            records_estimated: None,
            bytes: 0,
        });
        let state = self.with_account(|a| Ok(a.state()?)).await?;
        if !state.configured {
            return Err(SyncError::NotConfigured);
        }
        if state.locked {
            return Err(SyncError::Locked);
        }
        if cancel.is_cancelled() {
            return Err(SyncError::Cancelled);
        }
        if !self.session.is_signed_in().await? {
            self.sign_in_until_cancelled(&observer, &cancel).await?;
        }
        match self.run_engine(&observer, &cancel).await {
            // The refresh token died: the login page comes back, then the sync runs again.
            Err(SyncError::SignInRequired { reason })
                if self.ui.is_some() || self.device_ui.is_some() =>
            {
                tracing::info!("signing in again: {reason}");
                self.sign_in_until_cancelled(&observer, &cancel).await?;
                self.run_engine(&observer, &cancel).await
            }
            other => other,
        }
    }
}

impl SyncClient {
    fn job(&self) -> SyncJob {
        SyncJob {
            account: Arc::clone(&self.account),
            session: Arc::clone(&self.session),
            ui: self.ui.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            device_ui: self
                .device_ui
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            options: self.sync_options.clone(),
            min_rate: self.min_rate,
            lock: Arc::clone(&self.sync_lock),
        }
    }
}

#[uniffi::export]
impl SyncClient {
    /// Downloads one attachment's content now (one too large for automatic download, or
    /// evicted), reporting bytes to `observer`; cancel through `cancel` (what arrived stays, and
    /// the next call continues from there). Needs a signed-in, unlocked client; waits for a
    /// running Synchronize.
    #[uniffi::method(default(cancel = None))]
    pub async fn download_attachment(
        self: Arc<Self>,
        id: String,
        observer: Arc<dyn SyncObserver>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<SyncReport, SyncError> {
        let cancel = cancel.map(|c| c.token.clone()).unwrap_or_default();
        let job = self.job();
        let running = self.runs.start(cancel.clone());
        drop(self);
        let observer = AppObserver::new(observer);
        let stop_if_abandoned = StopIfAbandoned(Some((cancel.clone(), Arc::clone(&observer))));
        let result = runtime::spawn(async move {
            job.download_attachment(id, observer as _, cancel, running)
                .await
        })
        .await;
        stop_if_abandoned.disarm();
        result
    }

    /// Runs a Synchronize: uploads queued edits, downloads what changed, and reports progress to
    /// `observer`. Signs in through the `AuthorizationUi` when needed (OAuth user mode). The store
    /// must be unlocked. Cancel through `cancel` (a Kotlin coroutine's cancellation, or closing
    /// the client, also stops it); a cancelled or failed run keeps everything it applied and the
    /// next one resumes. Runs are serialized per client: a second call waits until the first has
    /// stopped.
    #[uniffi::method(default(cancel = None))]
    pub async fn synchronize(
        self: Arc<Self>,
        observer: Arc<dyn SyncObserver>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<SyncReport, SyncError> {
        let cancel = cancel.map(|c| c.token.clone()).unwrap_or_default();
        let job = self.job();
        let running = self.runs.start(cancel.clone());
        let app = AppObserver::new(observer);
        let status = StatusFeed {
            app: Arc::clone(&app) as _,
            board: Arc::clone(&self.status),
            changes: Arc::clone(&self.changes),
        };
        // The run must not keep the client alive: closing the client cancels it.
        drop(self);
        let stop_if_abandoned = StopIfAbandoned(Some((cancel.clone(), app)));
        let observer: Arc<StatusFeed> = Arc::new(status);
        // The status learns the outcome in the task, so also when the caller stopped waiting.
        let result = runtime::spawn(async move {
            let result = job.run(Arc::clone(&observer) as _, cancel, running).await;
            observer.finished(result.as_ref().err());
            result
        })
        .await;
        stop_if_abandoned.disarm();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting(AtomicU32);

    impl SyncObserver for Counting {
        fn on_progress(&self, _: SyncProgress) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn progress() -> SyncProgress {
        SyncProgress {
            phase: SyncPhase::Downloading,
            records_done: 1,
            records_estimated: None,
            bytes: 0,
        }
    }

    #[test]
    fn an_abandoned_call_cancels_its_run_and_mutes_its_observer() {
        let counting = Arc::new(Counting(AtomicU32::new(0)));
        let (token, app) = (CancelToken::default(), AppObserver::new(counting.clone()));
        StopIfAbandoned(Some((token.clone(), Arc::clone(&app)))).disarm();
        app.on_progress(progress());
        assert!(!token.is_cancelled());
        assert_eq!(counting.0.load(Ordering::SeqCst), 1);
        drop(StopIfAbandoned(Some((token.clone(), Arc::clone(&app)))));
        assert!(token.is_cancelled());
        app.on_progress(progress());
        assert_eq!(counting.0.load(Ordering::SeqCst), 1, "muted once abandoned");
    }
}
