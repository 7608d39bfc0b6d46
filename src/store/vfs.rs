//! The page-encryption VFS: a thin shim over another SQLite VFS (the platform default unless a
//! test names one) that seals every database page and every WAL frame's page with [`PageCipher`].
//!
//! What it understands, and refuses everything else (fail closed, `SQLITE_IOERR_WRITE`):
//! - database: whole-page writes at page offsets; reads of any shape (a partial read decrypts the
//!   whole page, e.g. the 100-byte header read at open);
//! - WAL: the 32-byte header and 24-byte frame headers in clear; the page content of frame k at
//!   `32 + (k-1)*(24+4096) + 24`, sealed with its frame's page number and the WAL generation's
//!   salts (from the frame header, or the WAL header while SQLite has zeroed the frame's). A
//!   full-frame read that fails authentication (recovery) reads as zeros, which SQLite takes as the
//!   end of the log; a content read that fails is `SQLITE_IOERR_DATA`;
//! - rollback journal (only at creation and journal-mode switches): headers and page numbers,
//!   never a non-zero page image;
//! - temporary files (sorts, statement journals, temporary tables): when the store gave a
//!   directory for them, each is created there under a random name, unlinked at once, and sealed
//!   block by block under a key of its own that lives only in memory (`temp_file`); without one
//!   they are refused;
//! - no super-journals, no memory mapping (io methods version 2 has no xFetch), and every
//!   callback catches panics.
//!
//! Each opened vault registers its own VFS instance (a unique name, the cipher in its app data),
//! so no key is ever put in a URI or a global table.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::ffi;

use super::cipher::{PAGE_SIZE, PAGE1_CLEAR, PageCipher, PageRole, RESERVE};
use super::sealed_file::FileCipher;
use super::temp_file::{SealedBytes, TempFile, TempFileError};

const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
const FRAME: usize = FRAME_HEADER + PAGE_SIZE;
const JOURNAL_HEADER: usize = 28;

/// Failure to register the VFS.
#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error("the underlying SQLite VFS {0:?} does not exist")]
    NoInnerVfs(Option<String>),
    #[error("sqlite3_vfs_register failed with code {0}")]
    Register(c_int),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileRole {
    Database,
    Wal,
    Journal,
    Temp,
}

#[repr(C)]
struct EncVfs {
    base: ffi::sqlite3_vfs,
    inner: *mut ffi::sqlite3_vfs,
    cipher: PageCipher,
    name: CString,
    /// Where temporary files are created; None refuses them.
    temp_dir: Option<std::path::PathBuf>,
}

/// Rust-side state of one open file; SQLite serializes calls on a file, so no lock is needed.
struct FileState {
    /// Storage for the inner VFS's file object (`szOsFile` bytes, 8-aligned).
    inner_mem: Vec<u64>,
    role: FileRole,
    vfs: *const EncVfs,
    /// One page-sized buffer for sealing writes and decrypting partial reads.
    scratch: Vec<u8>,
    /// The last WAL frame header written: (its offset, its bytes). Saves a read per page.
    last_frame_header: Option<(i64, [u8; FRAME_HEADER])>,
    /// A temporary file's key and logical size, and the name the inner VFS was given.
    temp: Option<(TempFile, CString)>,
}

#[repr(C)]
struct EncFile {
    base: ffi::sqlite3_file,
    state: *mut FileState,
}

/// A registered encrypting VFS. Connections using it must be closed before this is dropped
/// (the store keeps them in that order).
pub struct RegisteredVfs {
    vfs: *mut EncVfs,
}

// SAFETY: the EncVfs is immutable after registration except for the cipher's atomic counter;
// SQLite calls into it from any thread.
unsafe impl Send for RegisteredVfs {}
unsafe impl Sync for RegisteredVfs {}

impl RegisteredVfs {
    /// Registers a new encrypting VFS over `inner` (None = the default VFS); temporary files go
    /// to `temp_dir` (None refuses them).
    pub fn register(
        cipher: PageCipher,
        inner: Option<&str>,
        temp_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, VfsError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let inner_c = inner.map(|n| CString::new(n).expect("VFS names have no NUL"));
        // SAFETY: sqlite3_vfs_find is thread-safe and accepts NULL for the default.
        let inner_vfs =
            unsafe { ffi::sqlite3_vfs_find(inner_c.as_ref().map_or(ptr::null(), |c| c.as_ptr())) };
        if inner_vfs.is_null() {
            return Err(VfsError::NoInnerVfs(inner.map(str::to_string)));
        }
        let name = CString::new(format!(
            "syncvault-{}",
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ))
        .expect("no NUL");
        // SAFETY: inner_vfs is a registered VFS, valid for the process lifetime.
        let inner_ref = unsafe { &*inner_vfs };
        let boxed = Box::new(EncVfs {
            base: ffi::sqlite3_vfs {
                iVersion: 2,
                szOsFile: std::mem::size_of::<EncFile>() as c_int,
                mxPathname: inner_ref.mxPathname,
                pNext: ptr::null_mut(),
                zName: ptr::null(),
                pAppData: ptr::null_mut(),
                xOpen: Some(x_open),
                xDelete: Some(x_delete),
                xAccess: Some(x_access),
                xFullPathname: Some(x_full_pathname),
                xDlOpen: Some(x_dl_open),
                xDlError: Some(x_dl_error),
                xDlSym: Some(x_dl_sym),
                xDlClose: Some(x_dl_close),
                xRandomness: Some(x_randomness),
                xSleep: Some(x_sleep),
                xCurrentTime: Some(x_current_time),
                xGetLastError: Some(x_get_last_error),
                xCurrentTimeInt64: Some(x_current_time_int64),
                xSetSystemCall: None,
                xGetSystemCall: None,
                xNextSystemCall: None,
            },
            inner: inner_vfs,
            cipher,
            name,
            temp_dir,
        });
        let raw = Box::into_raw(boxed);
        // SAFETY: raw is a valid, uniquely owned EncVfs; zName points into it and lives as long.
        unsafe {
            (*raw).base.zName = (*raw).name.as_ptr();
            let rc = ffi::sqlite3_vfs_register(raw.cast(), 0);
            if rc != ffi::SQLITE_OK {
                drop(Box::from_raw(raw));
                return Err(VfsError::Register(rc));
            }
        }
        Ok(RegisteredVfs { vfs: raw })
    }

    /// The name to open connections with.
    pub fn name(&self) -> &str {
        // SAFETY: the EncVfs lives until drop.
        unsafe { (*self.vfs).name.to_str().expect("ASCII name") }
    }
}

impl Drop for RegisteredVfs {
    fn drop(&mut self) {
        // SAFETY: no connection uses the VFS any more (the store closes them first).
        unsafe {
            ffi::sqlite3_vfs_unregister(self.vfs.cast());
            drop(Box::from_raw(self.vfs));
        }
    }
}

/// Runs a callback body, turning a panic into an SQLite error code.
fn guard(on_panic: c_int, body: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        tracing::error!("panic inside the encrypting VFS");
        on_panic
    })
}

unsafe fn enc_vfs<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a EncVfs {
    // SAFETY: SQLite passes back the pointer we registered, whose first field is the base.
    unsafe { &*(vfs as *const EncVfs) }
}

unsafe fn inner_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    unsafe { enc_vfs(vfs).inner }
}

unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut FileState {
    // SAFETY: pMethods is only set after state was stored; SQLite serializes calls per file.
    unsafe { &mut *(*(file as *mut EncFile)).state }
}

impl FileState {
    fn inner(&mut self) -> *mut ffi::sqlite3_file {
        self.inner_mem.as_mut_ptr().cast()
    }

    fn cipher(&self) -> &PageCipher {
        // SAFETY: the VFS outlives every file opened through it.
        unsafe { &(*self.vfs).cipher }
    }

    fn methods(&mut self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the inner file was opened successfully, so its pMethods is set.
        unsafe { &*(*self.inner()).pMethods }
    }

    fn inner_read(&mut self, buf: &mut [u8], offset: usize) -> c_int {
        let read = self.methods().xRead.expect("xRead");
        let inner = self.inner();
        // SAFETY: buf is valid for its length; the inner file is open.
        unsafe {
            read(
                inner,
                buf.as_mut_ptr().cast(),
                buf.len() as c_int,
                offset as i64,
            )
        }
    }

    fn inner_write(&mut self, buf: &[u8], offset: usize) -> c_int {
        let write = self.methods().xWrite.expect("xWrite");
        let inner = self.inner();
        // SAFETY: as above.
        unsafe {
            write(
                inner,
                buf.as_ptr().cast(),
                buf.len() as c_int,
                offset as i64,
            )
        }
    }

    /// Reads one database page (decrypted) into `scratch`. `SHORT_READ` past the end of the file.
    fn read_db_page(&mut self, pgno: u32) -> c_int {
        let mut scratch = std::mem::take(&mut self.scratch);
        let rc = self.inner_read(&mut scratch, (pgno as usize - 1) * PAGE_SIZE);
        let rc = self.finish_db_read(&mut scratch, pgno, rc);
        self.scratch = scratch;
        rc
    }

    fn finish_db_read(&self, page: &mut [u8], pgno: u32, rc: c_int) -> c_int {
        match rc {
            ffi::SQLITE_OK if self.cipher().open(page, PageRole::Database, pgno) => ffi::SQLITE_OK,
            ffi::SQLITE_OK => {
                tracing::error!(pgno, "database page failed authentication");
                ffi::SQLITE_IOERR_DATA
            }
            // Past the end of the file: SQLite zero-filled the buffer. A page cut short is damage.
            ffi::SQLITE_IOERR_SHORT_READ if page.iter().all(|&b| b == 0) => rc,
            ffi::SQLITE_IOERR_SHORT_READ => ffi::SQLITE_IOERR_DATA,
            other => other,
        }
    }

    /// Re-reads page 1 raw into `scratch`; true when its clear header is ours.
    fn page_one_clear_prefix_ok(&mut self) -> bool {
        let mut scratch = std::mem::take(&mut self.scratch);
        let rc = self.inner_read(&mut scratch, 0);
        let ok = rc == ffi::SQLITE_OK
            && &scratch[..16] == b"SQLite format 3\0"
            && page_one_header_ok(&scratch);
        self.scratch = scratch;
        ok
    }

    fn db_read(&mut self, buf: &mut [u8], offset: usize) -> c_int {
        if offset.is_multiple_of(PAGE_SIZE) && buf.len() == PAGE_SIZE {
            let pgno = (offset / PAGE_SIZE + 1) as u32;
            let rc = self.inner_read(buf, offset);
            return self.finish_db_read(buf, pgno, rc);
        }
        // Partial or spanning read: decrypt each page touched, copy the requested bytes.
        let mut done = 0;
        let mut short = false;
        while done < buf.len() {
            let at = offset + done;
            let pgno = (at / PAGE_SIZE + 1) as u32;
            let within = at % PAGE_SIZE;
            let n = (PAGE_SIZE - within).min(buf.len() - done);
            match self.read_db_page(pgno) {
                ffi::SQLITE_OK => {
                    buf[done..done + n].copy_from_slice(&self.scratch[within..within + n])
                }
                // SQLite reads parts of page 1 straight from the file before the WAL is replayed
                // (the 100-byte header at open, the change counter at 24), and uses only the clear
                // page size and reserve from them; the real page 1 comes through an authenticated
                // full-page read. A page 1 torn by a crash mid-checkpoint is still in the WAL, so
                // serve the clear bytes and zeros ("changed") instead of failing the open.
                ffi::SQLITE_IOERR_DATA if pgno == 1 && self.page_one_clear_prefix_ok() => {
                    tracing::warn!(
                        "page 1 failed authentication on a header read; serving its clear prefix"
                    );
                    for (i, byte) in buf[done..done + n].iter_mut().enumerate() {
                        let at = within + i;
                        *byte = if at < PAGE1_CLEAR {
                            self.scratch[at]
                        } else {
                            0
                        };
                    }
                }
                ffi::SQLITE_IOERR_SHORT_READ => {
                    buf[done..done + n].fill(0);
                    short = true;
                }
                rc => return rc,
            }
            done += n;
        }
        if short {
            ffi::SQLITE_IOERR_SHORT_READ
        } else {
            ffi::SQLITE_OK
        }
    }

    fn db_write(&mut self, buf: &[u8], offset: usize) -> c_int {
        if !offset.is_multiple_of(PAGE_SIZE) || buf.len() != PAGE_SIZE {
            tracing::error!(
                offset,
                len = buf.len(),
                "refusing a database write that is not one page"
            );
            return ffi::SQLITE_IOERR_WRITE;
        }
        let pgno = (offset / PAGE_SIZE + 1) as u32;
        if pgno == 1 && !page_one_header_ok(buf) {
            tracing::error!("refusing to write a database without the reserve for encryption");
            return ffi::SQLITE_IOERR_WRITE;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.copy_from_slice(buf);
        self.cipher().seal(&mut scratch, PageRole::Database, pgno);
        let rc = self.inner_write(&scratch, offset);
        self.scratch = scratch;
        rc
    }

    /// The frame header of the frame whose content starts at `content_offset`.
    fn frame_header_for(&mut self, content_offset: usize) -> Result<[u8; FRAME_HEADER], c_int> {
        let header_offset = content_offset - FRAME_HEADER;
        if let Some((at, header)) = self.last_frame_header
            && at == header_offset as i64
        {
            return Ok(header);
        }
        let mut header = [0u8; FRAME_HEADER];
        match self.inner_read(&mut header, header_offset) {
            ffi::SQLITE_OK => Ok(header),
            _ => Err(ffi::SQLITE_IOERR_DATA),
        }
    }

    /// The page number and WAL-generation salts a frame is sealed with. A frame header carries a
    /// copy of the salts, except while SQLite rewrites frames within a transaction: then it writes
    /// zero salts and fills them in at commit (`walRewriteChecksums`), so we read the WAL header's.
    fn frame_binding(&mut self, header: &[u8]) -> Result<(u32, [u8; 8]), c_int> {
        let (pgno, salts) = frame_fields(header);
        if salts != [0; 8] {
            return Ok((pgno, salts));
        }
        let mut wal_header = [0u8; WAL_HEADER];
        match self.inner_read(&mut wal_header, 0) {
            ffi::SQLITE_OK => Ok((pgno, wal_header[16..24].try_into().expect("8 bytes"))),
            _ => Err(ffi::SQLITE_IOERR_DATA),
        }
    }

    fn wal_read(&mut self, buf: &mut [u8], offset: usize) -> c_int {
        let rc = self.inner_read(buf, offset);
        if rc != ffi::SQLITE_OK {
            // A short read is the end of the log; SQLite treats the zero fill as such.
            return rc;
        }
        match wal_region(offset, buf.len()) {
            WalRegion::Clear => ffi::SQLITE_OK,
            WalRegion::FullFrame => {
                let header: [u8; FRAME_HEADER] = buf[..FRAME_HEADER].try_into().expect("24 bytes");
                let (pgno, salts) = match self.frame_binding(&header) {
                    Ok(binding) => binding,
                    Err(rc) => return rc,
                };
                if !self
                    .cipher()
                    .open(&mut buf[FRAME_HEADER..], PageRole::Wal { salts }, pgno)
                {
                    // Recovery: an unauthenticated frame ends the log, exactly as a torn one.
                    tracing::warn!(
                        "WAL frame failed authentication; treating it as the end of the log"
                    );
                    buf.fill(0);
                }
                ffi::SQLITE_OK
            }
            WalRegion::Content => match self
                .frame_header_for(offset)
                .and_then(|h| self.frame_binding(&h))
            {
                Ok((pgno, salts)) => {
                    if self.cipher().open(buf, PageRole::Wal { salts }, pgno) {
                        ffi::SQLITE_OK
                    } else {
                        tracing::error!(pgno, "WAL page failed authentication");
                        ffi::SQLITE_IOERR_DATA
                    }
                }
                Err(rc) => rc,
            },
            WalRegion::Other => {
                tracing::error!(
                    offset,
                    len = buf.len(),
                    "refusing a WAL read of an unknown shape"
                );
                buf.fill(0);
                ffi::SQLITE_IOERR_READ
            }
        }
    }

    fn wal_write(&mut self, buf: &[u8], offset: usize) -> c_int {
        match (offset, buf.len()) {
            (0, WAL_HEADER) => self.inner_write(buf, offset),
            (o, FRAME_HEADER) if o >= WAL_HEADER && (o - WAL_HEADER).is_multiple_of(FRAME) => {
                let rc = self.inner_write(buf, offset);
                if rc == ffi::SQLITE_OK {
                    let header: [u8; FRAME_HEADER] = buf.try_into().expect("length matched");
                    self.last_frame_header = Some((offset as i64, header));
                }
                rc
            }
            (o, PAGE_SIZE)
                if o >= WAL_HEADER + FRAME_HEADER
                    && (o - WAL_HEADER - FRAME_HEADER).is_multiple_of(FRAME) =>
            {
                let (pgno, salts) = match self
                    .frame_header_for(offset)
                    .and_then(|h| self.frame_binding(&h))
                {
                    Ok(binding) => binding,
                    Err(_) => return ffi::SQLITE_IOERR_WRITE,
                };
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.copy_from_slice(buf);
                self.cipher()
                    .seal(&mut scratch, PageRole::Wal { salts }, pgno);
                let rc = self.inner_write(&scratch, offset);
                self.scratch = scratch;
                rc
            }
            (o, n) => {
                tracing::error!(
                    offset = o,
                    len = n,
                    "refusing a WAL write of an unknown shape"
                );
                ffi::SQLITE_IOERR_WRITE
            }
        }
    }

    /// Runs `op` on this temporary file's sealed blocks; a block that fails authentication is
    /// `SQLITE_IOERR_DATA`, an inner failure its own code.
    fn temp_op<T>(
        &mut self,
        op: impl FnOnce(&mut TempFile, &mut InnerBytes<'_>) -> Result<T, TempFileError>,
    ) -> Result<T, c_int> {
        let Some((mut temp, name)) = self.temp.take() else {
            return Err(ffi::SQLITE_IOERR);
        };
        let result = op(&mut temp, &mut InnerBytes(self));
        self.temp = Some((temp, name));
        result.map_err(|e| match e {
            TempFileError::Io(rc) => rc,
            TempFileError::Corrupted => {
                tracing::error!("temporary file block failed authentication");
                ffi::SQLITE_IOERR_DATA
            }
        })
    }

    fn temp_read(&mut self, buf: &mut [u8], offset: u64) -> c_int {
        match self.temp_op(|t, io| t.read(io, buf, offset)) {
            Ok(true) => ffi::SQLITE_OK,
            Ok(false) => ffi::SQLITE_IOERR_SHORT_READ,
            Err(rc) => rc,
        }
    }

    fn temp_write(&mut self, data: &[u8], offset: u64) -> c_int {
        self.temp_op(|t, io| t.write(io, data, offset))
            .map_or_else(|rc| rc, |()| ffi::SQLITE_OK)
    }

    fn journal_write(&mut self, buf: &[u8], offset: usize) -> c_int {
        // Headers (zero-padded), page numbers, checksums and record counts are metadata; a
        // non-zero page image would be plaintext, so it is refused.
        let metadata = buf.len() <= 8 || buf.iter().skip(JOURNAL_HEADER).all(|&b| b == 0);
        if metadata {
            self.inner_write(buf, offset)
        } else {
            tracing::error!(
                offset,
                len = buf.len(),
                "refusing to write a page image to a rollback journal"
            );
            ffi::SQLITE_IOERR_WRITE
        }
    }
}

/// Page 1 must declare 4096-byte pages and our 40 reserved bytes.
fn page_one_header_ok(page: &[u8]) -> bool {
    page.len() >= PAGE1_CLEAR
        && page[16..18] == (PAGE_SIZE as u16).to_be_bytes()
        && page[20] as usize == RESERVE
}

enum WalRegion {
    /// Only header bytes.
    Clear,
    /// One frame header and its page, as recovery reads them.
    FullFrame,
    /// One frame's page content.
    Content,
    Other,
}

fn wal_region(offset: usize, len: usize) -> WalRegion {
    if offset + len <= WAL_HEADER {
        return WalRegion::Clear;
    }
    if offset < WAL_HEADER {
        return WalRegion::Other;
    }
    let within = (offset - WAL_HEADER) % FRAME;
    match (within, len) {
        (0, FRAME) => WalRegion::FullFrame,
        (FRAME_HEADER, PAGE_SIZE) => WalRegion::Content,
        (w, n) if w + n <= FRAME_HEADER => WalRegion::Clear,
        _ => WalRegion::Other,
    }
}

/// Page number and the two salts from a WAL frame header.
fn frame_fields(header: &[u8]) -> (u32, [u8; 8]) {
    let pgno = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes"));
    let salts: [u8; 8] = header[8..16].try_into().expect("8 bytes");
    (pgno, salts)
}

// ---- VFS callbacks -------------------------------------------------------------------------

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 2: shared memory for WAL, and no xFetch, so SQLite never maps ciphertext.
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// The open flags of SQLite's temporary files.
const TEMP_KINDS: c_int = ffi::SQLITE_OPEN_TEMP_DB
    | ffi::SQLITE_OPEN_TEMP_JOURNAL
    | ffi::SQLITE_OPEN_SUBJOURNAL
    | ffi::SQLITE_OPEN_TRANSIENT_DB;

/// A temporary file's inner (sealed) bytes.
struct InnerBytes<'a>(&'a mut FileState);

impl SealedBytes for InnerBytes<'_> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<(), TempFileError> {
        match self.0.inner_read(buf, offset as usize) {
            // Past the end the inner VFS zero-fills, which reads as a block never written.
            ffi::SQLITE_OK | ffi::SQLITE_IOERR_SHORT_READ => Ok(()),
            rc => Err(TempFileError::Io(rc)),
        }
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<(), TempFileError> {
        match self.0.inner_write(buf, offset as usize) {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(TempFileError::Io(rc)),
        }
    }

    fn truncate(&mut self, size: u64) -> Result<(), TempFileError> {
        let truncate = self.0.methods().xTruncate.expect("xTruncate");
        // SAFETY: the inner file is open.
        match unsafe { truncate(self.0.inner(), size as i64) } {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(TempFileError::Io(rc)),
        }
    }
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    guard(ffi::SQLITE_CANTOPEN, || unsafe {
        (*file).pMethods = ptr::null();
        let role = if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
            FileRole::Database
        } else if flags & ffi::SQLITE_OPEN_WAL != 0 {
            FileRole::Wal
        } else if flags & ffi::SQLITE_OPEN_MAIN_JOURNAL != 0 {
            FileRole::Journal
        } else if flags & TEMP_KINDS != 0 && enc_vfs(vfs).temp_dir.is_some() {
            FileRole::Temp
        } else {
            // Super-journals, and temporary files with nowhere sealed to go.
            tracing::error!(flags, "refusing to open a temporary or unknown file kind");
            return ffi::SQLITE_CANTOPEN;
        };
        let enc = enc_vfs(vfs);
        let (name, flags, temp) = match (role, &enc.temp_dir) {
            (FileRole::Temp, Some(dir)) => {
                // Our own name in the vault's directory (SQLite passes none); the inner VFS
                // unlinks it as soon as it is open.
                let path = dir.join(format!(
                    "svtmp-{:016x}",
                    u64::from_le_bytes(crate::vault::random_bytes())
                ));
                let Ok(path) = CString::new(path.as_os_str().as_encoded_bytes()) else {
                    return ffi::SQLITE_CANTOPEN;
                };
                let flags = flags | ffi::SQLITE_OPEN_DELETEONCLOSE | ffi::SQLITE_OPEN_EXCLUSIVE;
                let cipher = FileCipher::matching(enc.cipher.suite());
                (path.as_ptr(), flags, Some((TempFile::new(cipher), path)))
            }
            _ => (name, flags, None),
        };
        if name.is_null() {
            return ffi::SQLITE_CANTOPEN;
        }
        let inner = &*enc.inner;
        let words = (inner.szOsFile as usize).div_ceil(8);
        let mut st = Box::new(FileState {
            inner_mem: vec![0u64; words.max(1)],
            role,
            vfs: enc,
            scratch: vec![0u8; PAGE_SIZE],
            last_frame_header: None,
            temp,
        });
        let inner_file = st.inner();
        let rc = (inner.xOpen.expect("xOpen"))(enc.inner, name, inner_file, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            let methods = (*inner_file).pMethods;
            if !methods.is_null()
                && let Some(close) = (*methods).xClose
            {
                close(inner_file);
            }
            return rc;
        }
        let f = file as *mut EncFile;
        (*f).state = Box::into_raw(st);
        (*f).base.pMethods = &IO_METHODS;
        ffi::SQLITE_OK
    })
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    guard(ffi::SQLITE_IOERR_CLOSE, || unsafe {
        let f = file as *mut EncFile;
        let mut st = Box::from_raw((*f).state);
        (*f).state = ptr::null_mut();
        (*f).base.pMethods = ptr::null();
        let close = st.methods().xClose.expect("xClose");
        close(st.inner())
    })
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    guard(ffi::SQLITE_IOERR_READ, || unsafe {
        let st = state(file);
        let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amount as usize);
        let offset = offset as usize;
        match st.role {
            FileRole::Database => st.db_read(out, offset),
            FileRole::Wal => st.wal_read(out, offset),
            FileRole::Journal => st.inner_read(out, offset),
            FileRole::Temp => st.temp_read(out, offset as u64),
        }
    })
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    guard(ffi::SQLITE_IOERR_WRITE, || unsafe {
        let st = state(file);
        let data = std::slice::from_raw_parts(buf.cast::<u8>(), amount as usize);
        let offset = offset as usize;
        match st.role {
            FileRole::Database => st.db_write(data, offset),
            FileRole::Wal => st.wal_write(data, offset),
            FileRole::Journal => st.journal_write(data, offset),
            FileRole::Temp => st.temp_write(data, offset as u64),
        }
    })
}

/// Forwards a file method to the inner file unchanged.
macro_rules! forward {
    ($name:ident, $method:ident, $on_panic:expr, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            guard($on_panic, || unsafe {
                let st = state(file);
                let f = st.methods().$method.expect(stringify!($method));
                f(st.inner() $(, $arg)*)
            })
        }
    };
}

forward!(inner_truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: ffi::sqlite3_int64) -> c_int);
forward!(inner_file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut ffi::sqlite3_int64) -> c_int);

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: SQLite passes a file opened by x_open.
    if unsafe { state(file).role } != FileRole::Temp {
        return unsafe { inner_truncate(file, size) };
    }
    guard(ffi::SQLITE_IOERR_TRUNCATE, || unsafe {
        state(file)
            .temp_op(|t, io| t.truncate(io, size as u64))
            .map_or_else(|rc| rc, |()| ffi::SQLITE_OK)
    })
}

/// A temporary file's size is the logical one (its blocks take more on disk).
unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as above; `size` is a valid out-pointer.
    unsafe {
        match &state(file).temp {
            Some((t, _)) => {
                *size = t.size() as i64;
                ffi::SQLITE_OK
            }
            None => inner_file_size(file, size),
        }
    }
}
forward!(x_sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int) -> c_int);
forward!(x_lock, xLock, ffi::SQLITE_IOERR_LOCK, (level: c_int) -> c_int);
forward!(x_unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, (level: c_int) -> c_int);
forward!(x_check_reserved_lock, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, (out: *mut c_int) -> c_int);
forward!(x_file_control, xFileControl, ffi::SQLITE_IOERR, (op: c_int, arg: *mut c_void) -> c_int);
forward!(x_sector_size, xSectorSize, 4096, () -> c_int);
forward!(x_shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
forward!(x_shm_lock, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, (offset: c_int, n: c_int, flags: c_int) -> c_int);
forward!(x_shm_unmap, xShmUnmap, ffi::SQLITE_IOERR, (delete: c_int) -> c_int);

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    guard(0, || unsafe {
        let st = state(file);
        (st.methods().xShmBarrier.expect("xShmBarrier"))(st.inner());
        0
    });
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    guard(0, || unsafe {
        let st = state(file);
        let caps = (st
            .methods()
            .xDeviceCharacteristics
            .expect("xDeviceCharacteristics"))(st.inner());
        // Batch-atomic writes would bypass the journal shapes this shim checks.
        caps & !ffi::SQLITE_IOCAP_BATCH_ATOMIC
    })
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    guard(ffi::SQLITE_IOERR_DELETE, || unsafe {
        let inner = inner_vfs(vfs);
        ((*inner).xDelete.expect("xDelete"))(inner, name, sync_dir)
    })
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    guard(ffi::SQLITE_IOERR_ACCESS, || unsafe {
        let inner = inner_vfs(vfs);
        ((*inner).xAccess.expect("xAccess"))(inner, name, flags, out)
    })
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    guard(ffi::SQLITE_CANTOPEN, || unsafe {
        let inner = inner_vfs(vfs);
        ((*inner).xFullPathname.expect("xFullPathname"))(inner, name, n, out)
    })
}

// Loading extensions through this VFS is not supported: there is no reason to, and it would put
// foreign code next to the key.
unsafe extern "C" fn x_dl_open(_: *mut ffi::sqlite3_vfs, _: *const c_char) -> *mut c_void {
    ptr::null_mut()
}

unsafe extern "C" fn x_dl_error(_: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let msg = c"extension loading is disabled in syncvault";
    if n > 0 && !out.is_null() {
        let bytes = msg.to_bytes_with_nul();
        let len = bytes.len().min(n as usize);
        // SAFETY: out has room for n bytes; we write at most n and keep a terminator.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr().cast(), out, len);
            *out.add(len - 1) = 0;
        }
    }
}

unsafe extern "C" fn x_dl_sym(
    _: *mut ffi::sqlite3_vfs,
    _: *mut c_void,
    _: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    None
}

unsafe extern "C" fn x_dl_close(_: *mut ffi::sqlite3_vfs, _: *mut c_void) {}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    guard(0, || unsafe {
        let inner = inner_vfs(vfs);
        ((*inner).xRandomness.expect("xRandomness"))(inner, n, out)
    })
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    guard(0, || unsafe {
        let inner = inner_vfs(vfs);
        ((*inner).xSleep.expect("xSleep"))(inner, micros)
    })
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    guard(ffi::SQLITE_ERROR, || unsafe {
        let inner = inner_vfs(vfs);
        ((*inner).xCurrentTime.expect("xCurrentTime"))(inner, out)
    })
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    guard(0, || unsafe {
        let inner = inner_vfs(vfs);
        match (*inner).xGetLastError {
            Some(f) => f(inner, n, out),
            None => 0,
        }
    })
}

unsafe extern "C" fn x_current_time_int64(
    vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    guard(ffi::SQLITE_ERROR, || unsafe {
        let inner = inner_vfs(vfs);
        match (*inner).xCurrentTimeInt64 {
            Some(f) => f(inner, out),
            None => {
                let mut days = 0f64;
                let rc = ((*inner).xCurrentTime.expect("xCurrentTime"))(inner, &mut days);
                *out = (days * 86_400_000.0) as ffi::sqlite3_int64;
                rc
            }
        }
    })
}

/// The name of the platform's default VFS (for tests that stack a fault VFS under ours).
pub fn default_vfs_name() -> String {
    // SAFETY: the default VFS always exists and its name is a static C string.
    unsafe { CStr::from_ptr((*ffi::sqlite3_vfs_find(ptr::null())).zName) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_regions() {
        assert!(matches!(wal_region(0, 32), WalRegion::Clear));
        assert!(matches!(wal_region(32, FRAME), WalRegion::FullFrame));
        assert!(matches!(wal_region(32 + 24, PAGE_SIZE), WalRegion::Content));
        assert!(matches!(wal_region(32 + FRAME + 16, 8), WalRegion::Clear));
        assert!(matches!(
            wal_region(32 + 3 * FRAME + 24, PAGE_SIZE),
            WalRegion::Content
        ));
        assert!(matches!(wal_region(32 + 24, 100), WalRegion::Other));
        assert!(matches!(wal_region(16, 32), WalRegion::Other));
        assert!(matches!(wal_region(32, 2 * FRAME), WalRegion::Other));
    }

    #[test]
    fn page_one_header_check() {
        let mut page = vec![0u8; PAGE_SIZE];
        page[16..18].copy_from_slice(&4096u16.to_be_bytes());
        page[20] = 40;
        assert!(page_one_header_ok(&page));
        page[20] = 0;
        assert!(!page_one_header_ok(&page));
        page[20] = 40;
        page[16..18].copy_from_slice(&1024u16.to_be_bytes());
        assert!(!page_one_header_ok(&page));
    }
}
