//! One Synchronize: schema, then upload the outbox, then download pages (the next page is fetched
//! while the current one is applied, at most one page ahead), with retries, the one refresh a
//! refused token gets, cancellation, progress, and a sync log entry. What to do with what the
//! server sent is decided by plan.rs and applied by apply.rs; this file only drives.

mod attachments;

pub use attachments::Policy as AttachmentPolicy;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::apply::{self, CLIENT_ID_KEY, CURSOR_KEY, PAGE_TOKEN_KEY, SCHEMA_VERSION_KEY};
use super::cancel::CancelToken;
use super::error::{EngineError, TimeBound};
use super::plan::{self, ConflictMode, Outgoing, PageEnd, PullState};
use super::progress::{ProgressSink, SyncPhase, SyncProgress};
use super::protocol::{DeviceInfo, Mutation, PullRequest, PullResponse, PushRequest};
use super::transport::{Received, Transport, TransportError};
use crate::account::Account;
use crate::auth::{OneRefresh, TokenSource};
use crate::runtime::{self, TaskError};
use crate::store::entities::{self, EntitySchema};
use crate::store::{meta, outbox, sync_log};

/// The default bound on one Synchronize.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

/// How a Synchronize behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub conflict_mode: ConflictMode,
    /// Records per downloaded page (the server caps it).
    pub page_size: u32,
    /// Mutations per upload request.
    pub push_batch: u32,
    /// Tries per request before giving up on network errors, 5xx and 429.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt (with jitter) up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest a whole Synchronize may take (None: no bound). A phone app gets minutes in
    /// the background; what was committed when it is hit stays, and the next run resumes.
    pub deadline: Option<Duration>,
    /// The device's name and the app's version, reported to the organization's device list.
    pub device_name: Option<String>,
    pub app_version: Option<String>,
    /// The entities the app syncs (None: every one the user may read).
    pub entities: Option<Vec<String>>,
    /// The app's tighter limits on attachments: the largest file downloaded automatically, and
    /// the content a device keeps (None: the organization's).
    pub attachment_auto_download_max_bytes: Option<u64>,
    pub attachment_quota_bytes: Option<u64>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            conflict_mode: ConflictMode::MergeFields,
            page_size: 2000,
            push_batch: 500,
            max_attempts: 10,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            deadline: Some(DEFAULT_DEADLINE),
            device_name: None,
            app_version: None,
            entities: None,
            attachment_auto_download_max_bytes: None,
            attachment_quota_bytes: None,
        }
    }
}

/// What a Synchronize did.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncReport {
    pub records_downloaded: u64,
    /// Of the records downloaded, those that left the device because they left the user's
    /// scope (owner, roles, business unit, sync filter), not because anyone deleted them.
    pub records_removed: u64,
    pub records_uploaded: u64,
    /// Conflicts met (settled by the mode or kept for the app).
    pub conflicts: u64,
    /// Local changes the server refused in this run (each now a sync error).
    pub rejected: u64,
    /// Conflicts now waiting for the app.
    pub conflicts_pending: u64,
    /// Sync errors now waiting for the person (`syncErrors()`), from this run or earlier ones.
    pub sync_errors: u64,
    /// Local changes still queued (made during the sync, or left by a guard).
    pub pending_changes: u64,
    pub bytes_downloaded: u64,
    pub bytes_uploaded: u64,
    pub seconds: f64,
    /// Records downloaded and uploaded per second.
    pub records_per_second: f64,
    /// The server refused the saved cursor, so everything was downloaded again (unsent edits
    /// and waiting conflicts kept; records the server no longer has removed).
    pub full_resync: bool,
}

/// Everything one Synchronize needs.
pub struct SyncContext {
    pub account: Arc<Mutex<Account>>,
    pub transport: Arc<dyn Transport>,
    pub tokens: Arc<dyn TokenSource>,
    pub options: SyncOptions,
    pub progress: Option<Arc<dyn ProgressSink>>,
    pub cancel: CancelToken,
}

#[derive(Default)]
struct Counters {
    full_resync: bool,
    downloaded: u64,
    removed: u64,
    uploaded: u64,
    conflicts: u64,
    rejected: u64,
    bytes_down: u64,
    bytes_up: u64,
}

struct Engine {
    ctx: SyncContext,
    /// When the deadline passes (None: no deadline).
    deadline_at: Option<tokio::time::Instant>,
    token: tokio::sync::Mutex<Option<String>>,
    counters: Mutex<Counters>,
}

/// Aborts its task when dropped, so a Synchronize whose future is dropped mid-download (the
/// app's task killed) stops its page fetcher too, instead of leaving it to send one more pull
/// beside the next Synchronize (found by the simulator, seed 0; docs/testing.md).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one Synchronize to the end (or to the first error, leaving the store consistent and the
/// next run able to resume).
pub async fn run(ctx: SyncContext) -> Result<SyncReport, EngineError> {
    let deadline_at = ctx
        .options
        .deadline
        .map(|d| tokio::time::Instant::now() + d);
    let engine = Arc::new(Engine {
        deadline_at,
        ctx,
        token: tokio::sync::Mutex::new(None),
        counters: Mutex::new(Counters::default()),
    });
    let started = Instant::now();
    let log_id = engine.db(|c| Ok(sync_log::start(c)?)).await?;
    let result = Arc::clone(&engine).run_steps().await;
    let totals = {
        let c = engine.counters();
        sync_log::Totals {
            downloaded: c.downloaded,
            uploaded: c.uploaded,
            conflicts: c.conflicts,
        }
    };
    let outcome = match &result {
        Ok(()) => sync_log::Outcome::Ok,
        Err(EngineError::Cancelled) => sync_log::Outcome::Cancelled,
        Err(_) => sync_log::Outcome::Failed,
    };
    let waiting = engine
        .db(move |c| {
            sync_log::finish(c, log_id, outcome, totals)?;
            Ok(crate::store::record_state::Waiting::count(c)?)
        })
        .await?;
    result?;
    let seconds = started.elapsed().as_secs_f64();
    let report = {
        let c = engine.counters();
        SyncReport {
            records_downloaded: c.downloaded,
            records_removed: c.removed,
            records_uploaded: c.uploaded,
            conflicts: c.conflicts,
            rejected: c.rejected,
            conflicts_pending: waiting.conflicts,
            sync_errors: waiting.sync_errors,
            pending_changes: waiting.pending_changes,
            bytes_downloaded: c.bytes_down,
            bytes_uploaded: c.bytes_up,
            seconds,
            records_per_second: (c.downloaded + c.uploaded) as f64 / seconds.max(1e-6),
            full_resync: c.full_resync,
        }
    };
    let moved = report.records_downloaded + report.records_uploaded;
    engine.progress(SyncPhase::Finished, moved, None);
    tracing::info!(
        downloaded = report.records_downloaded,
        uploaded = report.records_uploaded,
        conflicts = report.conflicts,
        "synchronize finished"
    );
    Ok(report)
}

/// Downloads one attachment's content on demand (`downloadAttachment`), with the engine's
/// retries, token refresh, progress and cancellation; a part file left by an earlier try
/// continues where it stopped.
pub async fn download_attachment(ctx: SyncContext, id: String) -> Result<SyncReport, EngineError> {
    let started = Instant::now();
    let engine = Engine {
        deadline_at: ctx
            .options
            .deadline
            .map(|d| tokio::time::Instant::now() + d),
        ctx,
        token: tokio::sync::Mutex::new(None),
        counters: Mutex::new(Counters::default()),
    };
    engine.download_one(id).await?;
    let c = engine.counters();
    let seconds = started.elapsed().as_secs_f64();
    Ok(SyncReport {
        records_downloaded: 0,
        records_removed: 0,
        records_uploaded: 0,
        conflicts: 0,
        rejected: 0,
        conflicts_pending: 0,
        sync_errors: 0,
        pending_changes: 0,
        bytes_downloaded: c.bytes_down,
        bytes_uploaded: c.bytes_up,
        seconds,
        records_per_second: 0.0,
        full_resync: false,
    })
}

/// Full jitter over an exponential backoff: a random wait in [d/2, d].
fn backoff(options: &SyncOptions, attempt: u32) -> Duration {
    let d = options
        .base_backoff
        .saturating_mul(1u32 << attempt.min(16))
        .min(options.max_backoff);
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    let frac = u32::from_le_bytes(b) as f64 / u32::MAX as f64;
    d.mul_f64(0.5 + frac / 2.0)
}

impl Engine {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs store work on the blocking pool with the account's store.
    async fn db<T, F>(&self, work: F) -> Result<T, EngineError>
    where
        F: FnOnce(&mut Connection) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        let account = Arc::clone(&self.ctx.account);
        runtime::spawn_blocking(move || {
            let mut account = account.lock().unwrap_or_else(|p| p.into_inner());
            work(account.store()?.conn_mut())
        })
        .await
    }

    /// As `db`, inside one transaction.
    async fn db_tx<T, F>(&self, work: F) -> Result<T, EngineError>
    where
        F: FnOnce(&Connection) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        self.db(|c| {
            let tx = c
                .transaction()
                .map_err(crate::store::StoreError::classify)?;
            let value = work(&tx)?;
            tx.commit().map_err(crate::store::StoreError::classify)?;
            Ok(value)
        })
        .await
    }

    fn progress(&self, phase: SyncPhase, records_done: u64, records_estimated: Option<u64>) {
        if let Some(sink) = &self.ctx.progress {
            let bytes = {
                let c = self.counters();
                c.bytes_down + c.bytes_up
            };
            sink.on_progress(SyncProgress {
                phase,
                records_done,
                records_estimated,
                bytes,
            });
        }
    }

    fn check_cancel(&self) -> Result<(), EngineError> {
        if self.ctx.cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The access token calls start with (cached for the run).
    async fn token(&self) -> Result<String, EngineError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            return Ok(t.clone());
        }
        let fresh = self.ctx.tokens.access_token(None).await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Waits for the deadline (never, without one).
    async fn deadline(&self) {
        match self.deadline_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// One protocol call with retries (backoff + jitter, Retry-After), the one refresh a refused
    /// token gets, cancellation, and the deadline.
    async fn call<T, F, Fut>(&self, what: &'static str, op: F) -> Result<Received<T>, EngineError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Received<T>, TransportError>>,
    {
        let mut attempt_token = OneRefresh::new(self.token().await?);
        let mut attempt = 0;
        loop {
            self.check_cancel()?;
            let result = tokio::select! {
                r = op(attempt_token.token().to_string()) => r,
                _ = self.ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
                _ = self.deadline() => return Err(EngineError::TimedOut(TimeBound::Deadline)),
            };
            let err = match result {
                Ok(received) => return Ok(received),
                Err(err) => err,
            };
            match err {
                TransportError::Unauthorized => {
                    tracing::info!(what, "access token refused; refreshing once");
                    let fresh = attempt_token.refused(self.ctx.tokens.as_ref()).await?;
                    *self.token.lock().await = Some(fresh.to_string());
                }
                TransportError::Retryable { retry_after, .. }
                    if attempt + 1 < self.ctx.options.max_attempts =>
                {
                    attempt += 1;
                    let asked = retry_after.unwrap_or_default();
                    let wait =
                        backoff(&self.ctx.options, attempt).max(asked.min(Duration::from_secs(60)));
                    // A wait that would end past the deadline fails now, not when it ends: the
                    // server's own request first (a wait it asked for, however long, that the
                    // deadline cannot cover), then ours.
                    let left = self
                        .deadline_at
                        .map(|at| at.saturating_duration_since(tokio::time::Instant::now()));
                    if left.is_some_and(|left| asked > left) {
                        return Err(EngineError::ServerBusy(asked));
                    }
                    if left.is_some_and(|left| wait > left) {
                        return Err(EngineError::TimedOut(TimeBound::Deadline));
                    }
                    tracing::warn!(what, attempt, ?wait, "retrying: {err}");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
                    }
                }
                other => return Err(other.into()),
            }
        }
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters());
    }

    async fn run_steps(self: Arc<Self>) -> Result<(), EngineError> {
        self.progress(SyncPhase::Preparing, 0, None);
        let client_id = self
            .db_tx(|c| {
                if let Some(id) = meta::get(c, CLIENT_ID_KEY)? {
                    return Ok(id);
                }
                let id = outbox::new_record_id();
                meta::set(c, CLIENT_ID_KEY, &id)?;
                Ok(id)
            })
            .await?;
        let transport = Arc::clone(&self.ctx.transport);
        let schema = self
            .call("schema", |token| {
                let transport = Arc::clone(&transport);
                async move { transport.schema(&token).await }
            })
            .await?;
        self.count(|c| c.bytes_down += schema.bytes);
        let schema = schema.value;
        let version = schema.schema_version;
        let policy = attachments::Policy::effective(
            schema.attachment_policy.as_ref(),
            self.ctx.options.attachment_auto_download_max_bytes,
            self.ctx.options.attachment_quota_bytes,
        );
        let schemas = self
            .db_tx(move |c| {
                entities::apply_schema(c, &schema.entities)?;
                meta::set(c, SCHEMA_VERSION_KEY, &version.to_string())?;
                let all = entities::load_schemas(c)?;
                Ok(all
                    .into_iter()
                    .map(|s| (s.name.clone(), s))
                    .collect::<HashMap<_, _>>())
            })
            .await?;
        // Content first: the server accepts an attachment record only once it holds its content.
        self.upload_contents().await?;
        self.upload(&client_id).await?;
        self.download(&client_id, version, Arc::new(schemas))
            .await?;
        if self.counters().downloaded > 0 {
            self.db(|c| Ok(entities::release_search_buffers(c)?))
                .await?;
        }
        self.download_contents(&policy).await
    }

    /// Every queued edit, one mutation per record (plan::coalesce), in rounds of `push_batch`.
    async fn pending_mutations(&self) -> Result<Vec<Outgoing>, EngineError> {
        self.db(|c| Ok(plan::coalesce(outbox::oldest(c, u32::MAX)?)))
            .await
    }

    async fn upload(&self, client_id: &str) -> Result<(), EngineError> {
        let batch = self.ctx.options.push_batch.max(1) as usize;
        let initial = self.pending_mutations().await?.len() as u64;
        // ClientWins can resend a record that keeps changing on the server: bound the rounds and
        // leave what remains for the next Synchronize.
        let max_rounds = initial / batch as u64 + 5;
        let mut done = 0;
        for _ in 0..max_rounds {
            self.check_cancel()?;
            let mut mutations = self.pending_mutations().await?;
            if mutations.is_empty() {
                break;
            }
            mutations.truncate(batch);
            // Committed before the request goes out: a retry after a lost answer (or a crash)
            // sends the very same mutations, which the server answers `duplicate`.
            let sent: Vec<(Vec<i64>, i64)> = mutations
                .iter()
                .map(|m| (m.seqs.clone(), m.mutation_id))
                .collect();
            self.db_tx(move |c| {
                for (seqs, id) in &sent {
                    outbox::mark_sent(c, seqs, *id)?;
                }
                Ok(())
            })
            .await?;
            self.progress(SyncPhase::Uploading, done, Some(initial));
            let request = Arc::new(PushRequest {
                client_id: client_id.to_string(),
                mutations: mutations
                    .iter()
                    .map(|m| Mutation {
                        mutation_id: m.mutation_id,
                        entity: m.entity.clone(),
                        id: m.record_id.clone(),
                        op: m.op.as_str(),
                        base_version: m.base_version,
                        fields: m.fields.clone(),
                    })
                    .collect(),
            });
            let transport = Arc::clone(&self.ctx.transport);
            let answer = self
                .call("push", |token| {
                    let (transport, request) = (Arc::clone(&transport), Arc::clone(&request));
                    async move { transport.push(&token, &request).await }
                })
                .await?;
            let mode = self.ctx.options.conflict_mode;
            let results = answer.value.results;
            let outcome = self
                .db_tx(move |c| apply::push_results(c, &mutations, results, mode))
                .await?;
            done += outcome.acknowledged;
            self.count(|c| {
                c.bytes_up += answer.bytes;
                c.uploaded += outcome.acknowledged;
                c.conflicts += outcome.conflicts;
                c.rejected += outcome.rejected;
            });
        }
        self.progress(SyncPhase::Uploading, done, Some(initial));
        Ok(())
    }

    /// Downloads what changed; a cursor the server refuses turns into one full resync.
    async fn download(
        self: &Arc<Self>,
        client_id: &str,
        schema_version: i64,
        schemas: Arc<HashMap<String, EntitySchema>>,
    ) -> Result<(), EngineError> {
        match self
            .pull(client_id, schema_version, Arc::clone(&schemas))
            .await
        {
            Err(EngineError::CursorRefused) => {
                tracing::warn!("the server refused the sync cursor: downloading everything again");
                self.db_tx(|c| {
                    meta::remove(c, CURSOR_KEY)?;
                    meta::remove(c, PAGE_TOKEN_KEY)?;
                    crate::store::resync::begin(c)?;
                    Ok(())
                })
                .await?;
                self.count(|c| c.full_resync = true);
                self.pull(client_id, schema_version, schemas).await
            }
            other => other,
        }
    }

    /// One pull: from the saved page token, or the cursor, or (none saved) everything.
    async fn pull(
        self: &Arc<Self>,
        client_id: &str,
        schema_version: i64,
        schemas: Arc<HashMap<String, EntitySchema>>,
    ) -> Result<(), EngineError> {
        let (cursor, page_token) = self
            .db(|c| {
                let cursor = meta::get(c, CURSOR_KEY)?.and_then(|v| v.parse::<i64>().ok());
                Ok((cursor, meta::get(c, PAGE_TOKEN_KEY)?))
            })
            .await?;
        if cursor.is_none() {
            // An initial download loads into bare tables; its last page builds the indexes.
            self.db_tx(|c| Ok(entities::begin_bulk_load(c)?)).await?;
        }
        let (name, app_version) = (
            self.ctx.options.device_name.clone(),
            self.ctx.options.app_version.clone(),
        );
        let device = self
            .db(move |c| {
                let mut held = 0;
                for s in entities::load_schemas(c)? {
                    held += entities::count(c, &s.name)?;
                }
                let last_result = sync_log::latest(c)?.map(|(outcome, kind)| match kind {
                    Some(kind) => format!("{outcome}: {kind}"),
                    None => outcome,
                });
                Ok(DeviceInfo {
                    name,
                    app_version,
                    records_held: held,
                    pending_edits: outbox::pending_count(c)?,
                    last_result,
                })
            })
            .await?;
        self.progress(SyncPhase::Downloading, 0, None);
        // The fetcher runs at most one page ahead: the channel holds one page, so a slow store
        // holds back the network instead of filling memory.
        type Page = Result<(PullResponse, PageEnd), EngineError>;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Page>(1);
        let fetcher = {
            let engine = Arc::clone(self);
            let client_id = client_id.to_string();
            AbortOnDrop(tokio::spawn(async move {
                let result = engine
                    .fetch_pages(client_id, schema_version, cursor, page_token, device, &tx)
                    .await;
                if let Err(e) = result {
                    let _ = tx.send(Err(e)).await;
                }
            }))
        };
        let mut done = 0;
        let result = async {
            let mut ended = false;
            while let Some(page) = rx.recv().await {
                let (page, end) = page?;
                ended = matches!(end, PageEnd::Last(_));
                self.check_cancel()?;
                let estimated = page.view().estimated_total;
                let schemas = Arc::clone(&schemas);
                let counts = self
                    .db_tx(move |c| apply::page(c, page, end, &schemas))
                    .await?;
                done += counts.changes;
                self.count(|c| {
                    c.downloaded = done;
                    c.removed += counts.removed;
                });
                self.progress(SyncPhase::Downloading, done, estimated);
            }
            // The fetcher sends every page, an error or the last page; a channel that closes
            // before the last page means it panicked, and the pull is not done.
            if !ended {
                return Err(EngineError::Task(TaskError::Panicked));
            }
            Ok(())
        }
        .await;
        drop(fetcher);
        result
    }

    /// Fetches pages in order, checks each against the pull's rules (plan::validate_page), and
    /// hands them over.
    async fn fetch_pages(
        &self,
        client_id: String,
        schema_version: i64,
        cursor: Option<i64>,
        page_token: Option<String>,
        device: DeviceInfo,
        pages: &tokio::sync::mpsc::Sender<Result<(PullResponse, PageEnd), EngineError>>,
    ) -> Result<(), EngineError> {
        let mut state = PullState {
            limit: self.ctx.options.page_size.max(1),
            cursor,
            asked: page_token,
            ..Default::default()
        };
        let mut resumed = state.asked.is_some();
        loop {
            let request = Arc::new(PullRequest {
                client_id: client_id.clone(),
                schema_version,
                cursor: if state.asked.is_none() { cursor } else { None },
                page_token: state.asked.clone(),
                limit: state.limit,
                device: Some(device.clone()),
                entities: self.ctx.options.entities.clone(),
            });
            let transport = Arc::clone(&self.ctx.transport);
            let answer = self
                .call("pull", |token| {
                    let (transport, request) = (Arc::clone(&transport), Arc::clone(&request));
                    async move { transport.pull(&token, &request).await }
                })
                .await;
            let answer = match answer {
                // The cursor is unusable (ahead of the server, past its retention).
                Err(EngineError::Transport(TransportError::Status {
                    status: 400,
                    code: Some(code),
                    ..
                })) if code == "invalid_cursor" && state.asked.is_none() && cursor.is_some() => {
                    return Err(EngineError::CursorRefused);
                }
                // A saved page token the server no longer accepts: start over from the cursor.
                Err(EngineError::Transport(TransportError::Status { status: 400, .. }))
                    if resumed =>
                {
                    tracing::warn!("the saved page token was refused; restarting from the cursor");
                    resumed = false;
                    state.asked = None;
                    continue;
                }
                other => other?,
            };
            resumed = false;
            self.count(|c| c.bytes_down += answer.bytes);
            let page = answer.value;
            let view = page.view();
            let end = plan::validate_page(view, &state)?;
            state.received += view.changes.len() as u64;
            state.estimated = state.estimated.max(view.estimated_total);
            if pages.send(Ok((page, end.clone()))).await.is_err() {
                return Ok(());
            }
            match end {
                PageEnd::More(token) => {
                    state.tokens_seen.insert(token.clone());
                    state.asked = Some(token);
                }
                PageEnd::Last(_) => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let o = SyncOptions::default();
        for attempt in 1..20 {
            let d = backoff(&o, attempt);
            let full = o
                .base_backoff
                .saturating_mul(1 << attempt.min(16))
                .min(o.max_backoff);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }
}
