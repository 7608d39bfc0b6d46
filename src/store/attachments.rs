//! Attachments on the device: the metadata is a record of the built-in `attachment` entity
//! (queued in the outbox like any edit, after the record it belongs to), the content a sealed
//! file (`sealed_file.rs`) under the account's `attachments/` directory, named at random, whose
//! key lives in the encrypted store (`attachment_content`). A file is written completely before
//! the transaction that records it commits, and removed only after the transaction that forgets
//! it; a crash between leaves a stray file that `sweep` removes, never a row without its file.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value, json};

use super::entities::{self, EntityError, Query};
use super::sealed_file::{CHUNK, FileKey, SealedFileError, SealedReader, SealedWriter};
use super::{SqlResultExt, StoreError, outbox};

/// The built-in entity of attachment metadata (docs/protocol.md, "Attachments").
pub const ENTITY: &str = "attachment";
/// The account directory's subdirectory of sealed files.
pub const DIR: &str = "attachments";

/// Why an attachment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Entity(#[from] EntityError),
    #[error(transparent)]
    File(#[from] SealedFileError),
    #[error("no attachment with this id")]
    NoSuchAttachment,
    /// The content is not on this device (download it first).
    #[error("the attachment's content is not on this device")]
    NotDownloaded,
    /// The app's own file (the one to add, the export target) could not be read or written.
    #[error("the file could not be read or written: {0}")]
    AppFile(std::io::Error),
}

/// Where an attachment's content stands on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AttachmentState {
    /// Added here, not sent yet.
    LocalOnly,
    /// Part of the content is on the server.
    Uploading,
    /// On this device and on the server.
    Synced,
    /// On the server only (too large for automatic download, or evicted): download on demand.
    NotDownloaded,
    /// Part of the content is here.
    Downloading,
}

/// One attachment as the app lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Attachment {
    pub id: String,
    /// The record it belongs to.
    pub entity: String,
    pub record_id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// Of the content, lowercase hex.
    pub sha256: String,
    /// The attachment record's server version (0: not uploaded yet).
    pub version: i64,
    pub state: AttachmentState,
}

/// The sealed content of one attachment.
#[derive(Clone)]
pub struct Content {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    pub path: PathBuf,
    pub key: FileKey,
    pub complete: bool,
    pub uploaded: bool,
}

/// Lowercase hex, as the protocol spells a SHA-256.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_name() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source");
    format!("{}.sva", hex(&b))
}

/// The account's directory of sealed files (created when missing, private like the account's).
pub fn files_dir(account_dir: &Path) -> Result<PathBuf, AttachmentError> {
    let dir = account_dir.join(DIR);
    crate::fsio::create_private_dir(&dir).map_err(StoreError::Io)?;
    Ok(dir)
}

/// A sealed file written from `source`, and its size and SHA-256.
pub struct Sealed {
    pub file: String,
    pub key: FileKey,
    pub size: u64,
    pub sha256: String,
}

/// Seals everything `source` yields into a new file of `dir` (plaintext only in memory).
pub fn seal(dir: &Path, source: &mut dyn Read) -> Result<Sealed, AttachmentError> {
    let key = FileKey::generate();
    let file = random_name();
    let path = dir.join(&file);
    let result = (|| {
        let mut writer = SealedWriter::create(&path, &key)?;
        let mut hash = Context::new(&SHA256);
        let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
        loop {
            let n = source.read(&mut buf).map_err(AttachmentError::AppFile)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            writer.write(&buf[..n])?;
        }
        let size = writer.finish()?;
        Ok(Sealed {
            file: file.clone(),
            key: key.clone(),
            size,
            sha256: hex(hash.finish().as_ref()),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

fn metadata_fields(name: &str, mime: &str, sealed: &Sealed) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("name".into(), json!(name));
    f.insert("mime".into(), json!(mime));
    f.insert("size".into(), json!(sealed.size));
    f.insert("sha256".into(), json!(sealed.sha256));
    f
}

fn put_content(conn: &Connection, id: &str, sealed: &Sealed) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO attachment_content
         (id, sha256, size, file, key, complete, uploaded, upload_offset, last_access)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, 0, 0, {NEXT_TICK})",
    ))
    .classified()?
    .execute(params![
        id,
        sealed.sha256,
        sealed.size as i64,
        sealed.file,
        sealed.key.as_bytes(),
    ])
    .classified()?;
    Ok(())
}

/// Records a sealed file as a new attachment of `entity`/`record_id` (the record must be on the
/// device); queues its creation. Run inside a transaction; returns the attachment's id.
pub fn create(
    conn: &Connection,
    entity: &str,
    record_id: &str,
    name: &str,
    mime: &str,
    sealed: &Sealed,
) -> Result<String, AttachmentError> {
    let id = outbox::new_record_id();
    create_with_id(conn, &id, entity, record_id, name, mime, sealed)?;
    Ok(id)
}

/// As [`create`], with the attachment's id chosen by the caller (the simulator's come from its
/// seed, so a run replays exactly).
pub fn create_with_id(
    conn: &Connection,
    id: &str,
    entity: &str,
    record_id: &str,
    name: &str,
    mime: &str,
    sealed: &Sealed,
) -> Result<(), AttachmentError> {
    if entity == ENTITY || entities::get(conn, entity, record_id)?.is_none() {
        return Err(EntityError::NoSuchRecord {
            entity: entity.into(),
            id: record_id.into(),
        }
        .into());
    }
    let mut fields = metadata_fields(name, mime, sealed);
    fields.insert("record_entity".into(), json!(entity));
    fields.insert("record_id".into(), json!(record_id));
    outbox::create_with_id(conn, ENTITY, id, fields)?;
    put_content(conn, id, sealed)?;
    Ok(())
}

/// Replaces an attachment's content (and name, type); returns the file it no longer needs, to
/// remove after the commit. Run inside a transaction.
pub fn replace(
    conn: &Connection,
    id: &str,
    name: &str,
    mime: &str,
    sealed: &Sealed,
) -> Result<Option<String>, AttachmentError> {
    entities::get(conn, ENTITY, id)?.ok_or(AttachmentError::NoSuchAttachment)?;
    let old = content_file(conn, id)?;
    outbox::update(conn, ENTITY, id, metadata_fields(name, mime, sealed))?;
    put_content(conn, id, sealed)?;
    Ok(old)
}

/// Deletes an attachment (queued); returns its file, to remove after the commit. Run inside a
/// transaction.
pub fn delete(conn: &Connection, id: &str) -> Result<Option<String>, AttachmentError> {
    entities::get(conn, ENTITY, id)?.ok_or(AttachmentError::NoSuchAttachment)?;
    outbox::delete(conn, ENTITY, id)?;
    forget(conn, id)
}

fn content_file(conn: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT file FROM attachment_content WHERE id = ?1")
        .classified()?
        .query_row([id], |r| r.get(0))
        .optional()
        .classified()
}

/// Drops an attachment's content row; returns its file, to remove after the commit.
pub fn forget(conn: &Connection, id: &str) -> Result<Option<String>, AttachmentError> {
    let file = content_file(conn, id)?;
    conn.prepare_cached("DELETE FROM attachment_content WHERE id = ?1")
        .classified()?
        .execute([id])
        .classified()?;
    Ok(file)
}

/// Removes files of `dir` the store does not name (left by a crash between sealing and the
/// commit, or between the commit and the removal).
pub fn sweep(conn: &Connection, dir: &Path) -> Result<u64, AttachmentError> {
    let known: HashSet<String> = conn
        .prepare("SELECT file FROM attachment_content")
        .classified()?
        .query_map([], |r| r.get(0))
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(StoreError::Io)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !known.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
            removed += 1;
        }
    }
    Ok(removed)
}

fn row_content(dir: &Path, r: &rusqlite::Row<'_>) -> rusqlite::Result<Content> {
    let key: Vec<u8> = r.get(4)?;
    let file: String = r.get(3)?;
    Ok(Content {
        id: r.get(0)?,
        sha256: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        path: dir.join(file),
        key: FileKey::from_bytes(&key).unwrap_or_else(FileKey::generate),
        complete: r.get(5)?,
        uploaded: r.get(6)?,
    })
}

const CONTENT_COLUMNS: &str = "id, sha256, size, file, key, complete, uploaded";

/// The content row of an attachment, if any.
pub fn content(conn: &Connection, dir: &Path, id: &str) -> Result<Option<Content>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CONTENT_COLUMNS} FROM attachment_content WHERE id = ?1"
    ))
    .classified()?
    .query_row([id], |r| row_content(dir, r))
    .optional()
    .classified()
}

/// Complete content the server does not hold yet, oldest first (uploaded before the records
/// that name it).
pub fn to_upload(conn: &Connection, dir: &Path) -> Result<Vec<Content>, StoreError> {
    conn.prepare(&format!(
        "SELECT {CONTENT_COLUMNS} FROM attachment_content WHERE complete = 1 AND uploaded = 0
         ORDER BY rowid"
    ))
    .classified()?
    .query_map([], |r| row_content(dir, r))
    .classified()?
    .collect::<Result<_, _>>()
    .classified()
}

/// How far an upload got (for its state and progress).
pub fn set_upload_offset(conn: &Connection, id: &str, offset: u64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE attachment_content SET upload_offset = ?2 WHERE id = ?1")
        .classified()?
        .execute(params![id, offset as i64])
        .classified()?;
    Ok(())
}

/// The server holds this content.
pub fn mark_uploaded(conn: &Connection, sha256: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE attachment_content SET uploaded = 1, upload_offset = size WHERE sha256 = ?1",
    )
    .classified()?
    .execute([sha256])
    .classified()?;
    Ok(())
}

/// An attachment record's metadata.
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: String,
    pub entity: String,
    pub record_id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub sha256: String,
    pub version: i64,
}

fn meta_of(record: &entities::Record) -> Meta {
    let text = |name: &str| {
        record
            .fields
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Meta {
        id: record.id.clone(),
        entity: text("record_entity"),
        record_id: text("record_id"),
        name: text("name"),
        mime: text("mime"),
        size: record
            .fields
            .get("size")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        sha256: text("sha256"),
        version: record.version,
    }
}

/// One attachment's metadata.
pub fn meta(conn: &Connection, id: &str) -> Result<Meta, AttachmentError> {
    let record = entities::get(conn, ENTITY, id)?.ok_or(AttachmentError::NoSuchAttachment)?;
    Ok(meta_of(&record))
}

/// Every attachment record on the device (none when the organization has no attachments).
pub fn all(conn: &Connection) -> Result<Vec<Meta>, AttachmentError> {
    if entities::load_schema(conn, ENTITY)?.is_none() {
        return Ok(vec![]);
    }
    Ok(entities::query(conn, ENTITY, &Query::default())?
        .iter()
        .map(meta_of)
        .collect())
}

/// The attachments whose content is not complete on the device (not downloaded, partly
/// downloaded, or replaced on the server since): two reads, whatever their number.
pub fn missing(conn: &Connection) -> Result<Vec<Meta>, AttachmentError> {
    let here: HashSet<(String, String)> = conn
        .prepare("SELECT id, sha256 FROM attachment_content WHERE complete = 1")
        .classified()?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    Ok(all(conn)?
        .into_iter()
        .filter(|m| !here.contains(&(m.id.clone(), m.sha256.clone())))
        .collect())
}

/// Where one attachment's content stands.
pub fn state(conn: &Connection, m: &Meta) -> Result<AttachmentState, StoreError> {
    let offset: Option<(bool, bool, i64, String)> = conn
        .prepare_cached(
            "SELECT complete, uploaded, upload_offset, sha256 FROM attachment_content WHERE id = ?1",
        )
        .classified()?
        .query_row([&m.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .classified()?;
    Ok(match offset {
        None => AttachmentState::NotDownloaded,
        Some((_, _, _, sha)) if sha != m.sha256 => AttachmentState::NotDownloaded,
        Some((false, _, _, _)) => AttachmentState::Downloading,
        Some((true, true, _, _)) => AttachmentState::Synced,
        Some((true, false, 0, _)) => AttachmentState::LocalOnly,
        Some((true, false, _, _)) => AttachmentState::Uploading,
    })
}

fn listed(conn: &Connection, m: Meta) -> Result<Attachment, StoreError> {
    let state = state(conn, &m)?;
    Ok(Attachment {
        id: m.id,
        entity: m.entity,
        record_id: m.record_id,
        name: m.name,
        mime: m.mime,
        size: m.size,
        sha256: m.sha256,
        version: m.version,
        state,
    })
}

/// One attachment, for the app.
pub fn get(conn: &Connection, id: &str) -> Result<Attachment, AttachmentError> {
    let m = meta(conn, id)?;
    Ok(listed(conn, m)?)
}

/// The attachments of one record, by name.
pub fn list(
    conn: &Connection,
    entity: &str,
    record_id: &str,
) -> Result<Vec<Attachment>, AttachmentError> {
    if entities::load_schema(conn, ENTITY)?.is_none() {
        return Ok(vec![]);
    }
    let q = Query {
        filters: vec![
            ("record_entity".into(), json!(entity)),
            ("record_id".into(), json!(record_id)),
        ],
        order_by: Some("name".into()),
        ..Query::default()
    };
    let mut out = vec![];
    for r in entities::query(conn, ENTITY, &q)? {
        out.push(listed(conn, meta_of(&r))?);
    }
    Ok(out)
}

/// The LRU clock: each use of content takes the next tick (seconds would tie).
const NEXT_TICK: &str = "(SELECT coalesce(max(last_access), 0) + 1 FROM attachment_content)";

fn touch(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "UPDATE attachment_content SET last_access = {NEXT_TICK} WHERE id = ?1"
    ))
    .classified()?
    .execute([id])
    .classified()?;
    Ok(())
}

/// Opens an attachment's content for reading (and counts it as used, for eviction).
pub fn open(conn: &Connection, dir: &Path, id: &str) -> Result<SealedReader, AttachmentError> {
    let m = meta(conn, id)?;
    let c = content(conn, dir, id)?
        .filter(|c| c.complete && c.sha256 == m.sha256)
        .ok_or(AttachmentError::NotDownloaded)?;
    touch(conn, id)?;
    let mut reader = SealedReader::open(&c.path, &c.key, m.size)?;
    reader.verify_end()?;
    Ok(reader)
}

/// Starts or continues the download of an attachment's content: the content row (partial), and
/// whether a part file is there to resume. Run inside a transaction.
pub fn begin_download(conn: &Connection, dir: &Path, m: &Meta) -> Result<Content, AttachmentError> {
    if let Some(c) = content(conn, dir, &m.id)?
        && c.sha256 == m.sha256
    {
        return Ok(c);
    }
    let old = forget(conn, &m.id)?;
    if let Some(old) = old {
        let _ = std::fs::remove_file(dir.join(old));
    }
    let key = FileKey::generate();
    let file = random_name();
    conn.prepare_cached(&format!(
        "INSERT INTO attachment_content
         (id, sha256, size, file, key, complete, uploaded, upload_offset, last_access)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 1, 0, {NEXT_TICK})",
    ))
    .classified()?
    .execute(params![m.id, m.sha256, m.size as i64, file, key.as_bytes()])
    .classified()?;
    Ok(content(conn, dir, &m.id)?.expect("just written"))
}

/// The download is complete and checked.
pub fn finish_download(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE attachment_content SET complete = 1, uploaded = 1 WHERE id = ?1")
        .classified()?
        .execute([id])
        .classified()?;
    touch(conn, id)
}

/// Whether an attachment's record holds a change the server has not taken: queued, in
/// conflict, or refused and kept as a sync error. Its content is then never dropped.
fn unsent(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(super::record_state::derive(conn, ENTITY, id)? != super::record_state::RecordState::Synced)
}

/// Content rows that no longer match their record (deleted, left the scope, replaced on the
/// server) and that hold nothing unsent: forgotten, their files returned for removal. Content
/// whose record still has queued changes is kept.
pub fn reconcile(conn: &Connection) -> Result<Vec<String>, AttachmentError> {
    let rows: Vec<(String, String, bool, String)> = conn
        .prepare("SELECT id, sha256, uploaded, file FROM attachment_content")
        .classified()?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    let mut files = vec![];
    for (id, sha, uploaded, _) in rows {
        if unsent(conn, &id)? || !uploaded {
            continue;
        }
        let current = entities::get(conn, ENTITY, &id)?.map(|r| meta_of(&r).sha256);
        if current.as_deref() != Some(sha.as_str())
            && let Some(file) = forget(conn, &id)?
        {
            files.push(file);
        }
    }
    Ok(files)
}

/// Evicts complete, uploaded content with no queued change, least recently used first, until
/// what the device holds fits `quota` bytes; returns the files to remove after the commit.
pub fn evict(conn: &Connection, quota: u64) -> Result<Vec<String>, AttachmentError> {
    let rows: Vec<(String, i64, bool, bool, String)> = conn
        .prepare(
            "SELECT id, size, complete, uploaded, file FROM attachment_content
             ORDER BY last_access, rowid",
        )
        .classified()?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .classified()?
        .collect::<Result<_, _>>()
        .classified()?;
    let mut held: u64 = rows.iter().map(|r| r.1 as u64).sum();
    let mut files = vec![];
    for (id, size, complete, uploaded, _) in rows {
        if held <= quota {
            break;
        }
        if !complete || !uploaded || unsent(conn, &id)? {
            continue;
        }
        if let Some(file) = forget(conn, &id)? {
            files.push(file);
        }
        held -= size as u64;
    }
    Ok(files)
}

/// Bytes of content the device holds.
pub fn held_bytes(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT coalesce(sum(size), 0) FROM attachment_content",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .classified()
}

/// Removes files after the transaction that forgot them committed.
pub fn remove_files(dir: &Path, files: &[String]) {
    for f in files {
        let _ = std::fs::remove_file(dir.join(f));
    }
}
