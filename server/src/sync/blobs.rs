//! Attachment content on the server: files under `DATA/attachments`, content-addressed by SHA-256
//! (`blobs/ab/abcd…`), and resumable upload sessions (`uploads/ID.part` beside `ID.json`). A
//! session is named by who uploads what (user, SHA-256, size), so a client that lost the answer
//! to its create, or crashed, asks again and continues at the offset the server holds; finishing
//! checks the SHA-256 and moves the file into place, so the server keeps one copy of each content
//! (docs/protocol.md, "Attachments"). Each content also remembers who uploaded it: a user may
//! attach only content they sent themselves (knowing a SHA-256 is not holding the file), so a
//! second user's upload of the same bytes is received in full and then kept as one copy.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::store::ApiError;

/// What the organization allows for attachments (the app may tighten it on the device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentPolicy {
    /// Largest file a device may upload.
    pub max_upload_bytes: u64,
    /// Files up to this size download with every Synchronize; larger ones on demand.
    pub auto_download_max_bytes: u64,
    /// Entities whose attachments download with every Synchronize (empty: all of them).
    #[serde(default)]
    pub auto_download_entities: Vec<String>,
    /// How much attachment content a device keeps before it evicts the least recently used.
    pub device_quota_bytes: u64,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        AttachmentPolicy {
            max_upload_bytes: 512 << 20,
            auto_download_max_bytes: 10 << 20,
            auto_download_entities: vec![],
            device_quota_bytes: 1 << 30,
        }
    }
}

/// Bytes of one upload request's body, at most.
pub const MAX_UPLOAD_CHUNK: usize = 8 << 20;

/// Upload sessions whose running SHA-256 is kept in memory at most.
const RUNNING_HASHES: usize = 1024;

/// One upload session as stored beside its part file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    user: String,
    sha256: String,
    size: u64,
}

/// Where an upload stands.
#[derive(Debug, Clone, Serialize)]
pub struct UploadState {
    pub upload_id: String,
    /// Bytes the server holds (the next chunk starts here).
    pub offset: u64,
    /// The server holds this content already: nothing to send.
    pub complete: bool,
}

/// The content store and its sessions.
pub struct BlobStore {
    root: PathBuf,
    /// A temporary root (no data directory) is removed with the store.
    temporary: bool,
    /// Serializes writes to sessions (a retried chunk racing its original).
    lock: Mutex<()>,
    /// Each session's SHA-256 of the bytes appended so far, with their count, so finishing
    /// does not read the whole upload again. Only a speed-up: a session this process did not
    /// see from its first byte (a restart) is hashed from its part file at finish. It trusts
    /// that only this process writes the part files, as one data directory has one server
    /// today; processes sharing a blob directory must hash the file at finish instead.
    running: Mutex<HashMap<String, (u64, ring::digest::Context)>>,
    /// Content bytes received in upload chunks and sent in downloads (tests count resends).
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// The offset each download started at (tests check that a download resumes).
    pub download_starts: Mutex<Vec<u64>>,
}

impl Drop for BlobStore {
    fn drop(&mut self) {
        if self.temporary {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("attachment storage: {e}"))
}

/// Whether `s` is a SHA-256 as the protocol spells it: 64 lowercase hex digits.
pub fn valid_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// SHA-256 of a whole file, with ring's assembly (the size-optimized release build makes
/// generic hashing slow).
fn hash_file(path: &Path) -> Result<ring::digest::Context, ApiError> {
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut file = File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok(hasher);
        }
        hasher.update(&buf[..n]);
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError {
        status: 404,
        code: "not_found",
        description: format!("no such {what}"),
    }
}

impl BlobStore {
    /// Content under `data_dir/attachments`, or a temporary directory for an in-memory org.
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<BlobStore> {
        let (root, temporary) = match data_dir {
            Some(d) => (d.join("attachments"), false),
            None => {
                let r: u64 = rand::random();
                let name = format!("syncvault-blobs-{}-{r:016x}", std::process::id());
                (std::env::temp_dir().join(name), true)
            }
        };
        fs::create_dir_all(root.join("blobs"))?;
        fs::create_dir_all(root.join("uploads"))?;
        fs::create_dir_all(root.join("uploaders"))?;
        Ok(BlobStore {
            root,
            temporary,
            lock: Mutex::new(()),
            running: Mutex::default(),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            download_starts: Mutex::default(),
        })
    }

    /// Where the content with this SHA-256 lives (checked hex, so no path tricks).
    pub fn blob_path(&self, sha256: &str) -> Option<PathBuf> {
        valid_sha256(sha256).then(|| self.root.join("blobs").join(&sha256[..2]).join(sha256))
    }

    /// Whether the server holds this content, of this size.
    pub fn has(&self, sha256: &str, size: u64) -> bool {
        self.blob_path(sha256)
            .and_then(|p| fs::metadata(p).ok())
            .is_some_and(|m| m.len() == size)
    }

    /// The marker that `user` uploaded the content with this SHA-256 (checked hex).
    fn uploader_mark(&self, user: &str, sha256: &str) -> Option<PathBuf> {
        let who = hex(&Sha256::digest(format!("uploader\n{user}"))[..16]);
        valid_sha256(sha256).then(|| self.root.join("uploaders").join(sha256).join(who))
    }

    fn mark_uploader(&self, user: &str, sha256: &str) -> Result<(), ApiError> {
        let mark = self.uploader_mark(user, sha256).expect("checked at create");
        fs::create_dir_all(mark.parent().expect("a directory")).map_err(io)?;
        fs::write(mark, b"").map_err(io)
    }

    /// Whether the server holds this content, of this size, and `user` uploaded it: what an
    /// attachment record of `user`'s may name.
    pub fn held_for(&self, user: &str, sha256: &str, size: u64) -> bool {
        self.has(sha256, size) && self.uploader_mark(user, sha256).is_some_and(|m| m.exists())
    }

    /// Every stored content's SHA-256 (tests check there is one copy each).
    pub fn contents(&self) -> Vec<String> {
        let mut all = vec![];
        for dir in fs::read_dir(self.root.join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                all.push(f.file_name().to_string_lossy().into_owned());
            }
        }
        all.sort();
        all
    }

    fn session_id(user: &str, sha256: &str, size: u64) -> String {
        hex(&Sha256::digest(format!("upload\n{user}\n{sha256}\n{size}"))[..16])
    }

    fn part(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(format!("{id}.part"))
    }

    fn session(&self, id: &str, user: &str) -> Result<Session, ApiError> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found("upload"));
        }
        let path = self.root.join("uploads").join(format!("{id}.json"));
        let session: Session = fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| not_found("upload"))?;
        // Another user's session does not exist for this one.
        if session.user != user {
            return Err(not_found("upload"));
        }
        Ok(session)
    }

    /// Starts (or finds again) the upload of `size` bytes with `sha256` by `user`.
    pub fn create_upload(
        &self,
        user: &str,
        sha256: &str,
        size: u64,
        policy: &AttachmentPolicy,
    ) -> Result<UploadState, ApiError> {
        if !valid_sha256(sha256) {
            return Err(ApiError::bad_request(
                "invalid_request",
                "sha256 is 64 lowercase hex digits",
            ));
        }
        if size > policy.max_upload_bytes {
            return Err(ApiError {
                status: 413,
                code: "attachment_too_large",
                description: format!(
                    "the organization accepts files up to {} bytes",
                    policy.max_upload_bytes
                ),
            });
        }
        let upload_id = Self::session_id(user, sha256, size);
        if self.held_for(user, sha256, size) {
            return Ok(UploadState {
                upload_id,
                offset: size,
                complete: true,
            });
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let meta = self.root.join("uploads").join(format!("{upload_id}.json"));
        if !meta.exists() {
            let session = Session {
                user: user.into(),
                sha256: sha256.into(),
                size,
            };
            fs::write(&meta, serde_json::to_vec(&session).expect("json")).map_err(io)?;
        }
        let offset = fs::metadata(self.part(&upload_id))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(UploadState {
            upload_id,
            offset,
            complete: false,
        })
    }

    /// Appends `bytes` at `offset`; a chunk at another offset than the server holds (a retry of
    /// one already stored) is refused with the offset to continue from.
    pub fn append(&self, id: &str, user: &str, offset: u64, bytes: &[u8]) -> Result<u64, ApiError> {
        let session = self.session(id, user)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.part(id);
        let held = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if offset != held {
            return Err(ApiError {
                status: 409,
                code: "offset_mismatch",
                description: format!("the server holds {held} bytes of this upload"),
            });
        }
        if held + bytes.len() as u64 > session.size {
            return Err(ApiError::bad_request(
                "invalid_request",
                "more bytes than the upload's size",
            ));
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_data().map_err(io)?;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if held == 0 {
            // Abandoned sessions would keep their entries: past this many, start afresh (the
            // sessions then finish by reading their part files).
            if running.len() >= RUNNING_HASHES {
                running.clear();
            }
            running.insert(
                id.to_string(),
                (0, ring::digest::Context::new(&ring::digest::SHA256)),
            );
        }
        if let Some((hashed, hasher)) = running.get_mut(id).filter(|(n, _)| *n == held) {
            hasher.update(bytes);
            *hashed += bytes.len() as u64;
        }
        self.bytes_received
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(held + bytes.len() as u64)
    }

    /// Checks the whole upload's SHA-256 and moves it into place; an upload of content the
    /// server already holds just ends.
    pub fn finish(&self, id: &str, user: &str) -> Result<String, ApiError> {
        let session = self.session(id, user)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let target = self.blob_path(&session.sha256).expect("checked at create");
        let meta = self.root.join("uploads").join(format!("{id}.json"));
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if self.held_for(user, &session.sha256, session.size) {
            let _ = fs::remove_file(self.part(id));
            let _ = fs::remove_file(&meta);
            return Ok(session.sha256);
        }
        let path = self.part(id);
        let held = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if held != session.size {
            if let Some(r) = running {
                let mut all = self.running.lock().unwrap_or_else(|p| p.into_inner());
                all.insert(id.to_string(), r);
            }
            return Err(ApiError {
                status: 409,
                code: "upload_incomplete",
                description: format!("the server holds {held} of {} bytes", session.size),
            });
        }
        let hasher = match running.filter(|(hashed, _)| *hashed == held) {
            Some((_, hasher)) => hasher,
            None => hash_file(&path)?,
        };
        let got = hex(hasher.finish().as_ref());
        if got != session.sha256 {
            let _ = fs::remove_file(&path);
            return Err(ApiError {
                status: 422,
                code: "sha256_mismatch",
                description: "the uploaded bytes do not have the announced SHA-256".into(),
            });
        }
        if self.has(&session.sha256, session.size) {
            // Another user's copy: this one proved it holds the bytes; one copy stays.
            fs::remove_file(&path).map_err(io)?;
        } else {
            fs::create_dir_all(target.parent().expect("a blob has a directory")).map_err(io)?;
            fs::rename(&path, &target).map_err(io)?;
        }
        self.mark_uploader(user, &session.sha256)?;
        let _ = fs::remove_file(&meta);
        Ok(session.sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    #[test]
    fn an_upload_resumes_and_is_stored_once() {
        let store = BlobStore::open(None).unwrap();
        let policy = AttachmentPolicy::default();
        let data = vec![7u8; 1000];
        let h = sha(&data);
        let s = store.create_upload("u1", &h, 1000, &policy).unwrap();
        assert_eq!((s.offset, s.complete), (0, false));
        assert_eq!(
            store.append(&s.upload_id, "u1", 0, &data[..400]).unwrap(),
            400
        );
        // A retry of the same chunk: refused with the offset to continue at.
        let again = store
            .append(&s.upload_id, "u1", 0, &data[..400])
            .unwrap_err();
        assert_eq!((again.status, again.code), (409, "offset_mismatch"));
        // Another user cannot see or write the session.
        assert_eq!(
            store
                .append(&s.upload_id, "u2", 400, b"x")
                .unwrap_err()
                .status,
            404
        );
        // Asked again (a lost answer, a crash): same session, same offset.
        let resumed = store.create_upload("u1", &h, 1000, &policy).unwrap();
        assert_eq!(
            (resumed.upload_id.as_str(), resumed.offset),
            (s.upload_id.as_str(), 400)
        );
        assert_eq!(
            store.finish(&s.upload_id, "u1").unwrap_err().code,
            "upload_incomplete"
        );
        store.append(&s.upload_id, "u1", 400, &data[400..]).unwrap();
        assert_eq!(store.finish(&s.upload_id, "u1").unwrap(), h);
        assert!(store.has(&h, 1000));
        assert_eq!(store.contents(), vec![h.clone()]);
        assert!(store.held_for("u1", &h, 1000));
        assert!(
            store
                .create_upload("u1", &h, 1000, &policy)
                .unwrap()
                .complete
        );
        // Another user knowing the SHA-256 does not hold the content: they send it all, and
        // one copy stays.
        assert!(!store.held_for("u2", &h, 1000));
        let other = store.create_upload("u2", &h, 1000, &policy).unwrap();
        assert!(!other.complete);
        store.append(&other.upload_id, "u2", 0, &data).unwrap();
        assert_eq!(store.finish(&other.upload_id, "u2").unwrap(), h);
        assert!(store.held_for("u2", &h, 1000));
        assert_eq!(store.contents(), vec![h.clone()]);
        assert_eq!(store.bytes_received.load(Ordering::Relaxed), 2000);
    }

    #[test]
    fn an_upload_another_process_began_is_checked_from_its_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let policy = AttachmentPolicy::default();
        let (data, wrong) = (vec![3u8; 900], vec![4u8; 900]);
        let (h, bad) = (sha(&data), sha(&wrong));
        // The first bytes reach one process, the rest the next one on the same directory (a
        // restart): it has no running hash and reads the file.
        let first = BlobStore::open(Some(dir.path())).unwrap();
        let s = first.create_upload("u", &h, 900, &policy).unwrap();
        first.append(&s.upload_id, "u", 0, &data[..300]).unwrap();
        let t = first.create_upload("u", &bad, 900, &policy).unwrap();
        first.append(&t.upload_id, "u", 0, &data[..300]).unwrap();
        let second = BlobStore::open(Some(dir.path())).unwrap();
        second.append(&s.upload_id, "u", 300, &data[300..]).unwrap();
        assert_eq!(second.finish(&s.upload_id, "u").unwrap(), h);
        second.append(&t.upload_id, "u", 300, &data[300..]).unwrap();
        assert_eq!(
            second.finish(&t.upload_id, "u").unwrap_err().code,
            "sha256_mismatch"
        );
        // And a process that saw every byte checks them without the file.
        let u = first.create_upload("v", &bad, 900, &policy).unwrap();
        first.append(&u.upload_id, "v", 0, &data).unwrap();
        assert_eq!(
            first.finish(&u.upload_id, "v").unwrap_err().code,
            "sha256_mismatch"
        );
    }

    #[test]
    fn wrong_content_and_oversize_are_refused() {
        let store = BlobStore::open(None).unwrap();
        let policy = AttachmentPolicy {
            max_upload_bytes: 10,
            ..Default::default()
        };
        let h = sha(b"right");
        assert_eq!(
            store
                .create_upload("u", &h, 11, &policy)
                .unwrap_err()
                .status,
            413
        );
        assert_eq!(
            store
                .create_upload("u", "../x", 1, &policy)
                .unwrap_err()
                .status,
            400
        );
        let s = store.create_upload("u", &h, 5, &policy).unwrap();
        store.append(&s.upload_id, "u", 0, b"wrong").unwrap();
        assert_eq!(
            store.finish(&s.upload_id, "u").unwrap_err().code,
            "sha256_mismatch"
        );
        assert!(store.contents().is_empty());
    }
}
