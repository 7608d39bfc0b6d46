//! Attachment content in a Synchronize (docs/protocol.md, "Attachments"): before the outbox is
//! pushed, content the server does not hold is uploaded (resumable: the server's session says
//! where to continue, after a lost answer, a crash or a cancel); after the download, what the
//! policy says downloads automatically is fetched (ranged: a part file continues where it
//! stopped), then content that no longer matches its record is dropped and the rest is evicted
//! least-recently-used under the quota. On demand, one attachment downloads alone.

use std::path::PathBuf;
use std::sync::Arc;

use ring::digest::{Context, SHA256};

use super::Engine;
use crate::runtime;
use crate::store::attachments::{self as store, AttachmentError, Content, Meta};
use crate::store::sealed_file::{SealedReader, SealedWriter};
use crate::sync::error::{EngineError, ProtocolError};
use crate::sync::progress::SyncPhase;
use crate::sync::protocol::AttachmentPolicy;
use crate::sync::transport::TransportError;

/// Bytes per upload request.
pub const UPLOAD_CHUNK: usize = 8 << 20;

/// What decides automatic downloads and eviction: the organization's policy, tightened by the
/// app's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub auto_download_max_bytes: u64,
    /// Empty: all entities.
    pub auto_download_entities: Vec<String>,
    pub quota_bytes: u64,
}

impl Policy {
    /// The server's policy (None: a server without attachments, nothing downloads), tightened
    /// by the app's limits.
    pub fn effective(
        server: Option<&AttachmentPolicy>,
        app_max: Option<u64>,
        app_quota: Option<u64>,
    ) -> Policy {
        let (max, entities, quota) = match server {
            Some(p) => (
                p.auto_download_max_bytes,
                p.auto_download_entities.clone(),
                p.device_quota_bytes,
            ),
            None => (0, vec![], u64::MAX),
        };
        Policy {
            auto_download_max_bytes: app_max.map_or(max, |a| a.min(max)),
            auto_download_entities: entities,
            quota_bytes: app_quota.map_or(quota, |a| a.min(quota)),
        }
    }

    /// Whether this attachment downloads with every Synchronize.
    pub fn downloads_automatically(&self, m: &Meta) -> bool {
        m.size <= self.auto_download_max_bytes
            && m.size <= self.quota_bytes
            && (self.auto_download_entities.is_empty()
                || self.auto_download_entities.contains(&m.entity))
    }
}

fn attachment(e: AttachmentError) -> EngineError {
    match e {
        AttachmentError::Store(s) => EngineError::Store(s),
        other => EngineError::Attachment(other),
    }
}

fn valid_upload_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Bytes of a download sealed in one go.
const WRITE_BATCH: usize = 1 << 20;
/// Bytes between two progress reports of a download.
const PROGRESS_EVERY: u64 = 64 << 10;

/// A piece of content being decrypted for an upload.
type Piece =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<bytes::Bytes, EngineError>> + Send>>;

/// Starts decrypting the upload piece at `offset` (at most UPLOAD_CHUNK bytes) on a blocking
/// thread.
fn read_piece(c: &Content, offset: u64) -> Piece {
    let n = (c.size - offset).min(UPLOAD_CHUNK as u64) as usize;
    let (path, key, size) = (c.path.clone(), c.key.clone(), c.size);
    Box::pin(runtime::start_blocking(move || {
        let mut reader = SealedReader::open(&path, &key, size).map_err(|e| attachment(e.into()))?;
        let mut buf = vec![0u8; n];
        reader
            .read_at(offset, &mut buf)
            .map_err(|e| attachment(e.into()))?;
        Ok::<_, EngineError>(bytes::Bytes::from(buf))
    }))
}

impl Engine {
    /// The account's directory of sealed files.
    async fn files_dir(&self) -> Result<PathBuf, EngineError> {
        let account = Arc::clone(&self.ctx.account);
        runtime::spawn_blocking(move || {
            let dir = account
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .dir()
                .to_path_buf();
            store::files_dir(&dir).map_err(attachment)
        })
        .await
    }

    /// Uploads every complete content the server does not hold yet.
    pub(super) async fn upload_contents(&self) -> Result<(), EngineError> {
        let dir = self.files_dir().await?;
        let pending = self.db(move |c| Ok(store::to_upload(c, &dir)?)).await?;
        for content in pending {
            self.check_cancel()?;
            match self.upload_content(content).await {
                // Refused for good (too large for the organization) or unreadable here: its
                // record's push is then refused too, and the person sees that sync error.
                Err(EngineError::Transport(TransportError::Status { status, .. })) => {
                    tracing::warn!(status, "an attachment's content was refused");
                }
                Err(EngineError::Attachment(e)) => {
                    tracing::error!("an attachment's content cannot be read: {e}");
                }
                other => other?,
            }
        }
        Ok(())
    }

    async fn create_upload(
        &self,
        c: &Content,
    ) -> Result<crate::sync::protocol::UploadState, EngineError> {
        let transport = Arc::clone(&self.ctx.transport);
        let (sha, size) = (c.sha256.clone(), c.size);
        let state = self
            .call("attachment upload", |token| {
                let (transport, sha) = (Arc::clone(&transport), sha.clone());
                async move { transport.create_upload(&token, &sha, size).await }
            })
            .await?;
        self.count(|n| n.bytes_up += state.bytes);
        let state = state.value;
        if !valid_upload_id(&state.upload_id) || state.offset > c.size {
            return Err(ProtocolError::new("an upload session of the wrong shape").into());
        }
        Ok(state)
    }

    async fn upload_content(&self, c: Content) -> Result<(), EngineError> {
        let mut state = self.create_upload(&c).await?;
        let transport = Arc::clone(&self.ctx.transport);
        while !state.complete {
            let mut offset = state.offset;
            // The next piece is decrypted while this one is on the wire.
            let mut next: Option<(u64, Piece)> = None;
            let mut mismatches = 0;
            while offset < c.size {
                self.check_cancel()?;
                let bytes = match next.take() {
                    Some((at, piece)) if at == offset => piece.await?,
                    _ => read_piece(&c, offset).await?,
                };
                let after = offset + bytes.len() as u64;
                if after < c.size {
                    next = Some((after, read_piece(&c, after)));
                }
                let id = state.upload_id.clone();
                let sent = self
                    .call("attachment chunk", |token| {
                        let (transport, id, bytes) =
                            (Arc::clone(&transport), id.clone(), bytes.clone());
                        async move { transport.upload_chunk(&token, &id, offset, bytes).await }
                    })
                    .await;
                offset = match sent {
                    Ok(held) if held.value > offset && held.value <= c.size => {
                        self.count(|k| k.bytes_up += held.bytes);
                        held.value
                    }
                    Ok(_) => {
                        return Err(
                            ProtocolError::new("an upload offset that makes no progress").into(),
                        );
                    }
                    // A retry of a chunk the server stored (its answer was lost): ask where to go on.
                    Err(EngineError::Transport(TransportError::Status { status: 409, .. })) => {
                        mismatches += 1;
                        if mismatches > self.ctx.options.max_attempts {
                            return Err(ProtocolError::new(
                                "the server refuses every offset of an upload",
                            )
                            .into());
                        }
                        self.create_upload(&c).await?.offset
                    }
                    Err(e) => return Err(e),
                };
                let id = c.id.clone();
                self.db(move |conn| Ok(store::set_upload_offset(conn, &id, offset)?))
                    .await?;
                self.progress(SyncPhase::Uploading, 0, None);
            }
            let id = state.upload_id.clone();
            let finished = self
                .call("attachment finish", |token| {
                    let (transport, id) = (Arc::clone(&transport), id.clone());
                    async move { transport.finish_upload(&token, &id).await }
                })
                .await;
            match finished {
                Ok(done) => {
                    self.count(|k| k.bytes_up += done.bytes);
                    break;
                }
                // The server holds less than we sent (it lost a chunk): continue from its offset.
                Err(EngineError::Transport(TransportError::Status { status: 409, .. })) => {
                    state = self.create_upload(&c).await?;
                }
                Err(EngineError::Transport(TransportError::Status { status: 422, .. })) => {
                    return Err(ProtocolError::new(
                        "the server stored other bytes than were uploaded",
                    )
                    .into());
                }
                Err(e) => return Err(e),
            }
        }
        let sha = c.sha256.clone();
        self.db(move |conn| Ok(store::mark_uploaded(conn, &sha)?))
            .await
    }

    /// After the download: what the policy fetches automatically, then the clean-up.
    pub(super) async fn download_contents(&self, policy: &Policy) -> Result<(), EngineError> {
        let dir = self.files_dir().await?;
        let gone = self
            .db_tx(|c| store::reconcile(c).map_err(attachment))
            .await?;
        store::remove_files(&dir, &gone);
        // Room first (what on-demand downloads added), then what fits: automatic downloads
        // never evict each other, so a quota smaller than the policy's set does not thrash.
        self.evict(policy.quota_bytes, &dir).await?;
        let (wanted, mut held) = {
            let policy = policy.clone();
            self.db(move |c| {
                // Content that is here (synced, or unsent) is not fetched again.
                let wanted: Vec<Meta> = store::missing(c)
                    .map_err(attachment)?
                    .into_iter()
                    .filter(|m| policy.downloads_automatically(m) && !m.sha256.is_empty())
                    .collect();
                Ok((wanted, store::held_bytes(c)?))
            })
            .await?
        };
        for m in wanted {
            self.check_cancel()?;
            if held + m.size > policy.quota_bytes {
                continue;
            }
            held += m.size;
            self.download_meta(m, &dir).await?;
        }
        Ok(())
    }

    async fn evict(&self, quota: u64, dir: &std::path::Path) -> Result<(), EngineError> {
        let files = self
            .db_tx(move |c| store::evict(c, quota).map_err(attachment))
            .await?;
        store::remove_files(dir, &files);
        Ok(())
    }

    /// Downloads one attachment's content (on demand), unless it is here already.
    pub(super) async fn download_one(&self, id: String) -> Result<(), EngineError> {
        let m = self
            .db(move |c| store::meta(c, &id).map_err(attachment))
            .await?;
        let dir = self.files_dir().await?;
        self.download_meta(m, &dir).await
    }

    async fn download_meta(&self, m: Meta, dir: &std::path::Path) -> Result<(), EngineError> {
        let dir = dir.to_path_buf();
        let content = {
            let (dir, m) = (dir.clone(), m.clone());
            self.db_tx(move |c| store::begin_download(c, &dir, &m).map_err(attachment))
                .await?
        };
        if content.complete {
            return Ok(());
        }
        // Resume from the part file's whole chunks (hashed again), or start it.
        let (path, key) = (content.path.clone(), content.key.clone());
        let (mut writer, mut hash, mut offset) = runtime::spawn_blocking(move || {
            let mut hash = Context::new(&SHA256);
            let opened = if path.exists() {
                SealedWriter::resume(&path, &key, |p| hash.update(p))
            } else {
                SealedWriter::create(&path, &key).map(|w| (w, 0))
            };
            let (writer, kept) = opened.map_err(|e| attachment(e.into()))?;
            Ok::<_, EngineError>((writer, hash, kept))
        })
        .await?;
        let transport = Arc::clone(&self.ctx.transport);
        let mut failures = 0;
        while offset < m.size || m.size == 0 {
            self.check_cancel()?;
            let id = m.id.clone();
            let mut stream = self
                .call("attachment download", |token| {
                    let (transport, id) = (Arc::clone(&transport), id.clone());
                    async move {
                        transport
                            .download(&token, &id, offset)
                            .await
                            .map(|s| crate::sync::transport::Received { value: s, bytes: 0 })
                    }
                })
                .await?
                .value;
            if stream.start != offset {
                return Err(ProtocolError::new("a download from another offset than asked").into());
            }
            // Each network piece is hashed as it arrives (SHA-256 runs at several times the
            // network's rate) while the pieces are sealed a batch at a time on a blocking thread
            // beside it (at most two batches queued): the two costs overlap instead of adding
            // up on one thread. Progress is reported every PROGRESS_EVERY bytes.
            let (batches, mut queued) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
            let sealing = runtime::start_blocking(move || {
                while let Some(batch) = queued.blocking_recv() {
                    let batch = zeroize::Zeroizing::new(batch);
                    writer.write(&batch).map_err(|e| attachment(e.into()))?;
                }
                // What arrived stays in the part file for the next try (or the next run).
                writer.flush().map_err(|e| attachment(e.into()))?;
                Ok::<_, EngineError>(writer)
            });
            let mut pending: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
            let mut reported = offset;
            let broke = loop {
                let next = tokio::select! {
                    n = stream.next() => n,
                    _ = self.ctx.cancel.cancelled() => Err(TransportError::Retryable { reason: "cancelled".into(), retry_after: None }),
                };
                match next {
                    Ok(Some(bytes)) => {
                        if offset + bytes.len() as u64 > m.size {
                            return Err(ProtocolError::new(
                                "more content than the attachment's size",
                            )
                            .into());
                        }
                        offset += bytes.len() as u64;
                        self.count(|k| k.bytes_down += bytes.len() as u64);
                        hash.update(&bytes);
                        pending.extend_from_slice(&bytes);
                        if pending.len() >= WRITE_BATCH
                            && batches.send(std::mem::take(&mut pending)).await.is_err()
                        {
                            break None; // the sealing failed: its error comes below
                        }
                        if offset - reported >= PROGRESS_EVERY || offset == m.size {
                            reported = offset;
                            self.progress(SyncPhase::Downloading, 0, None);
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            if !pending.is_empty() {
                let _ = batches.send(pending).await;
            }
            drop(batches);
            writer = sealing.await?;
            self.check_cancel()?;
            match broke {
                None if offset == m.size => break,
                None => {
                    return Err(ProtocolError::new(
                        "the download ended before the attachment's size",
                    )
                    .into());
                }
                Some(e) => {
                    failures += 1;
                    if failures >= self.ctx.options.max_attempts {
                        return Err(EngineError::Transport(e));
                    }
                    tracing::warn!(
                        failures,
                        "attachment download broke; continuing at its offset"
                    );
                }
            }
        }
        if store::hex(hash.finish().as_ref()) != m.sha256 {
            // Not what the record names: start over next time rather than keep wrong bytes.
            let id = m.id.clone();
            let files = self
                .db_tx(move |c| store::forget(c, &id).map_err(attachment))
                .await?;
            store::remove_files(&dir, &files.into_iter().collect::<Vec<_>>());
            return Err(ProtocolError::new("downloaded content does not match its SHA-256").into());
        }
        runtime::spawn_blocking(move || writer.finish().map_err(|e| attachment(e.into()))).await?;
        let id = m.id.clone();
        self.db(move |c| Ok(store::finish_download(c, &id)?)).await
    }
}
