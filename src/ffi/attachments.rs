//! The attachment API: photos, signatures and documents linked to records, added offline (from
//! bytes or from a file the app names), listed with their state, read in ranges, exported as an
//! explicit plaintext copy, replaced and deleted; each change is queued like a record edit and
//! its content uploaded with the next Synchronize (docs/mobile.md, "Attachments").

use std::io::Write;
use std::path::PathBuf;

use crate::ffi::{SyncClient, SyncError};
use crate::runtime;
use crate::store::attachments::{self as store, Attachment, AttachmentError, Sealed};

/// Largest range one `readAttachment` returns (a screen reads a file in pieces).
pub const MAX_READ: u32 = 16 << 20;

impl SyncClient {
    /// The account's directory of sealed files (the store must be unlocked).
    async fn attachment_dir(&self) -> Result<PathBuf, SyncError> {
        self.with_account(|a| {
            a.store()?;
            Ok(store::files_dir(a.dir())?)
        })
        .await
    }

    /// Seals what `source` yields, off the caller's thread and outside the account lock.
    async fn seal_from(
        &self,
        source: impl FnOnce() -> Result<Box<dyn std::io::Read + Send>, AttachmentError> + Send + 'static,
    ) -> Result<(PathBuf, Sealed), SyncError> {
        let dir = self.attachment_dir().await?;
        runtime::spawn_blocking(move || {
            let mut source = source()?;
            let sealed = store::seal(&dir, &mut source)?;
            Ok::<_, SyncError>((dir, sealed))
        })
        .await
    }

    /// A new attachment of a record, from `source`.
    async fn add_from(
        &self,
        entity: String,
        record_id: String,
        name: String,
        mime: String,
        source: impl FnOnce() -> Result<Box<dyn std::io::Read + Send>, AttachmentError> + Send + 'static,
    ) -> Result<Attachment, SyncError> {
        let (dir, sealed) = self.seal_from(source).await?;
        self.commit_sealed(dir, sealed, move |c, s| {
            Ok((
                store::create(c, &entity, &record_id, &name, &mime, s)?,
                None,
            ))
        })
        .await
    }

    /// New content for attachment `id`, from `source`.
    async fn replace_from(
        &self,
        id: String,
        name: String,
        mime: String,
        source: impl FnOnce() -> Result<Box<dyn std::io::Read + Send>, AttachmentError> + Send + 'static,
    ) -> Result<Attachment, SyncError> {
        let (dir, sealed) = self.seal_from(source).await?;
        self.commit_sealed(dir, sealed, move |c, s| {
            let old = store::replace(c, &id, &name, &mime, s)?;
            Ok((id, old))
        })
        .await
    }

    /// Records sealed content in one transaction (`work`), removing the file if that fails and
    /// what the change left behind once it committed.
    async fn commit_sealed(
        &self,
        dir: PathBuf,
        sealed: Sealed,
        work: impl FnOnce(
            &rusqlite::Connection,
            &Sealed,
        ) -> Result<(String, Option<String>), AttachmentError>
        + Send
        + 'static,
    ) -> Result<Attachment, SyncError> {
        let file = sealed.file.clone();
        let done = self.in_transaction(move |c| Ok(work(c, &sealed)?)).await;
        match done {
            Ok((id, old)) => {
                store::remove_files(&dir, &old.into_iter().collect::<Vec<_>>());
                self.attachment(id).await
            }
            Err(e) => {
                store::remove_files(&dir, &[file]);
                Err(e)
            }
        }
    }
}

fn bytes_source(bytes: Vec<u8>) -> Box<dyn std::io::Read + Send> {
    Box::new(std::io::Cursor::new(zeroize::Zeroizing::new(bytes)))
}

fn file_source(path: String) -> Result<Box<dyn std::io::Read + Send>, AttachmentError> {
    let file = std::fs::File::open(path).map_err(AttachmentError::AppFile)?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, file)))
}

#[uniffi::export]
impl SyncClient {
    /// Attaches `bytes` to a record on the device (a signature, a small photo); queued for the
    /// next Synchronize after the record itself. Encrypted before it reaches the disk.
    pub async fn add_attachment(
        &self,
        entity: String,
        record_id: String,
        name: String,
        mime: String,
        bytes: Vec<u8>,
    ) -> Result<Attachment, SyncError> {
        self.add_from(entity, record_id, name, mime, move || {
            Ok(bytes_source(bytes))
        })
        .await
    }

    /// Attaches the file at `path` (a photo the camera wrote), read in pieces: never whole in
    /// memory. The app may delete its file afterwards; syncvault keeps its own encrypted copy.
    pub async fn add_attachment_from_path(
        &self,
        entity: String,
        record_id: String,
        name: String,
        mime: String,
        path: String,
    ) -> Result<Attachment, SyncError> {
        self.add_from(entity, record_id, name, mime, move || file_source(path))
            .await
    }

    /// Replaces an attachment's content (a retaken photo) from the file at `path`.
    pub async fn replace_attachment_from_path(
        &self,
        id: String,
        name: String,
        mime: String,
        path: String,
    ) -> Result<Attachment, SyncError> {
        self.replace_from(id, name, mime, move || file_source(path))
            .await
    }

    /// Replaces an attachment's content with `bytes`.
    pub async fn replace_attachment(
        &self,
        id: String,
        name: String,
        mime: String,
        bytes: Vec<u8>,
    ) -> Result<Attachment, SyncError> {
        self.replace_from(id, name, mime, move || Ok(bytes_source(bytes)))
            .await
    }

    /// The attachments of one record, by name, each with its state.
    pub async fn attachments(
        &self,
        entity: String,
        record_id: String,
    ) -> Result<Vec<Attachment>, SyncError> {
        self.with_account(move |a| Ok(store::list(a.store()?.conn(), &entity, &record_id)?))
            .await
    }

    /// One attachment and its state.
    pub async fn attachment(&self, id: String) -> Result<Attachment, SyncError> {
        self.with_account(move |a| Ok(store::get(a.store()?.conn(), &id)?))
            .await
    }

    /// Up to `length` bytes (at most 16 MiB) of the content from `offset`; fewer at the end.
    /// `NotDownloaded` when the content is not on the device, `Corrupted` when its file was
    /// tampered with (never wrong bytes).
    pub async fn read_attachment(
        &self,
        id: String,
        offset: u64,
        length: u32,
    ) -> Result<Vec<u8>, SyncError> {
        let length = length.min(MAX_READ) as usize;
        self.with_account(move |a| {
            let dir = a.dir().join(store::DIR);
            let mut reader = store::open(a.store()?.conn(), &dir, &id)?;
            let mut out = vec![0u8; length.min(reader.len().saturating_sub(offset) as usize)];
            let n = reader
                .read_at(offset, &mut out)
                .map_err(AttachmentError::from)?;
            out.truncate(n);
            Ok(out)
        })
        .await
    }

    /// Writes the content, decrypted, to `path`: an explicit plaintext copy the app asked for
    /// (to share or open in another app); syncvault neither tracks nor removes it. The content
    /// goes to a temporary file beside `path`, renamed over it only once all of it was read and
    /// verified: a damaged attachment leaves no partial output (and an existing file untouched).
    pub async fn export_attachment(&self, id: String, path: String) -> Result<(), SyncError> {
        self.with_account(move |a| {
            let dir = a.dir().join(store::DIR);
            let mut reader = store::open(a.store()?.conn(), &dir, &id)?;
            let target = std::path::Path::new(&path);
            let (partial, mut out) = partial_file(target).map_err(AttachmentError::AppFile)?;
            let written = (|| {
                let mut buf = zeroize::Zeroizing::new(vec![0u8; 1 << 16]);
                let mut offset = 0;
                loop {
                    let n = reader
                        .read_at(offset, &mut buf)
                        .map_err(AttachmentError::from)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n]).map_err(AttachmentError::AppFile)?;
                    offset += n as u64;
                }
                out.sync_all().map_err(AttachmentError::AppFile)?;
                std::fs::rename(&partial, target).map_err(AttachmentError::AppFile)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            Ok(written?)
        })
        .await
    }

    /// Deletes an attachment (queued for the next Synchronize); its content leaves the device.
    pub async fn delete_attachment(&self, id: String) -> Result<(), SyncError> {
        let dir = self.attachment_dir().await?;
        let old = self
            .in_transaction(move |c| Ok(store::delete(c, &id)?))
            .await?;
        store::remove_files(&dir, &old.into_iter().collect::<Vec<_>>());
        Ok(())
    }
}

/// A new file beside `target` for its content until it is complete:
/// `.NAME.partial-RANDOM`, created exclusively.
fn partial_file(target: &std::path::Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?
        .to_string_lossy();
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    let suffix: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let partial = target.with_file_name(format!(".{name}.partial-{suffix}"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)?;
    Ok((partial, file))
}
