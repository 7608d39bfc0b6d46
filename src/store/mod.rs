//! The encrypted store: SQLite through the page-encryption VFS, opened with the settings
//! docs/security.md requires (WAL, memory temp store, no mmap, 4096-byte pages with 40 reserved
//! bytes), and the schema of the offline data.

pub mod attachments;
pub mod changes;
mod cipher;
pub mod conflicts;
pub mod entities;
pub mod meta;
pub mod outbox;
pub mod record_state;
pub mod resync;
pub mod schema;
pub mod sealed_file;
pub mod sync_errors;
pub mod sync_log;
mod temp_file;
mod vfs;

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, ffi};

pub use changes::ChangeHub;
pub use cipher::{PAGE_SIZE, PageCipher, PageRole, RESERVE};
pub use vfs::{RegisteredVfs, VfsError, default_vfs_name};

use crate::vault::UnlockedVault;

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is damaged or belongs to another vault: {0}")]
    Corrupted(String),
    #[error("the database was not created by syncvault (no room for encryption)")]
    NotEncrypted,
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Vfs(#[from] VfsError),
    #[error("store I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// SQLite reports authentication failures as I/O or corruption errors; name them as damage.
    pub(crate) fn classify(err: rusqlite::Error) -> StoreError {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::DatabaseCorrupt)
            | Some(rusqlite::ErrorCode::NotADatabase) => StoreError::Corrupted(err.to_string()),
            _ => StoreError::Sqlite(err),
        }
    }
}

/// Lets `?` on rusqlite calls inside store code classify damage.
pub trait SqlResultExt<T> {
    fn classified(self) -> Result<T, StoreError>;
}

impl<T> SqlResultExt<T> for Result<T, rusqlite::Error> {
    fn classified(self) -> Result<T, StoreError> {
        self.map_err(StoreError::classify)
    }
}

/// Seconds since 1970, for the timestamps the store keeps (outbox, conflicts, sync log).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Options for opening; tests stack a fault-injecting VFS under the encrypting one.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// The VFS under the encrypting shim; `None` is the platform default.
    pub inner_vfs: Option<String>,
    /// Page cache size in KiB (SQLite's `cache_size = -N`).
    pub cache_kib: Option<u32>,
    /// Where commits are published and watched queries read (the account's hub).
    pub changes: Option<Arc<ChangeHub>>,
}

/// An open encrypted database. The connection is dropped before the VFS it uses.
pub struct Store {
    conn: Connection,
    changes: Option<Arc<ChangeHub>>,
    _vfs: Arc<RegisteredVfs>,
}

/// The watch reader closes with the store, before the writer and the VFS.
impl Drop for Store {
    fn drop(&mut self) {
        if let Some(hub) = &self.changes {
            hub.detach();
        }
    }
}

impl Store {
    /// Opens (creating if needed) the encrypted database at `path` with the vault's key.
    pub fn open(
        path: &Path,
        vault: &UnlockedVault,
        options: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let fresh = check_existing_file(path)?;
        let vfs = Arc::new(RegisteredVfs::register(
            PageCipher::new(&vault.dek, vault.vault_id, vault.cipher),
            options.inner_vfs.as_deref(),
            Some(temp_dir(path)?),
        )?);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_EXRESCODE;
        let conn = Connection::open_with_flags_and_vfs(path, flags, vfs.name()).classified()?;
        // Before WAL mode creates the -wal and -shm files: SQLite gives them the database's mode.
        crate::fsio::make_private(path)?;
        let mut store = Store {
            conn,
            changes: None,
            _vfs: vfs,
        };
        store.configure(fresh, options)?;
        schema::migrate(&store.conn)?;
        if let Some(hub) = &options.changes {
            hub.attach(&mut store.conn, path, &store._vfs)?;
            store.changes = Some(Arc::clone(hub));
        }
        Ok(store)
    }

    fn configure(&self, fresh: bool, options: &StoreOptions) -> Result<(), StoreError> {
        let c = &self.conn;
        if fresh {
            c.pragma_update(None, "page_size", PAGE_SIZE as i64)
                .classified()?;
            set_reserve_bytes(c, RESERVE as i32)?;
        }
        // Sorts larger than the page cache (an index built at the end of an initial download)
        // spill to sealed temporary files instead of growing memory with the data.
        c.pragma_update(None, "temp_store", "FILE").classified()?;
        c.pragma_update(None, "mmap_size", 0).classified()?;
        // The first read of an existing database happens here: a wrong key or a damaged page 1
        // shows up as Corrupted.
        let mode: String = c
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .classified()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupted(format!("journal mode stayed {mode}")));
        }
        c.pragma_update(None, "synchronous", "NORMAL")
            .classified()?;
        c.pragma_update(None, "foreign_keys", true).classified()?;
        if let Some(kib) = options.cache_kib {
            c.pragma_update(None, "cache_size", -(kib as i64))
                .classified()?;
        }
        let reserve = set_reserve_bytes(c, -1)?;
        if reserve != RESERVE as i32 {
            return Err(StoreError::NotEncrypted);
        }
        Ok(())
    }

    /// The connection, for the modules that own the tables.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Mutable access (transactions).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs a full integrity check; `Corrupted` names the first problem.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .classified()?;
        if result == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupted(result))
        }
    }

    /// Moves the WAL's content into the database file and truncates the WAL.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .classified()
    }
}

/// Where the store's temporary files go (docs/security.md, "Temporary files"), beside the
/// database so a wipe covers it.
pub const TEMP_DIR: &str = "tmp";

/// Creates the private temporary-file directory beside `db`, emptied of anything a platform
/// that cannot unlink open files left behind.
fn temp_dir(db: &Path) -> Result<std::path::PathBuf, StoreError> {
    let dir = db.parent().unwrap_or(Path::new(".")).join(TEMP_DIR);
    crate::fsio::create_private_dir(&dir)?;
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(dir)
}

/// Sets (n >= 0) or reads (n < 0) the reserved bytes per page; returns the current value.
fn set_reserve_bytes(conn: &Connection, n: i32) -> Result<i32, StoreError> {
    let mut value = n;
    // SAFETY: a valid connection handle; the op takes a pointer to an int.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_RESERVE_BYTES,
            (&mut value as *mut i32).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            None,
        )));
    }
    Ok(value)
}

/// Refuses a database file that is not ours before SQLite touches it. Returns whether the file
/// is new (missing or empty).
fn check_existing_file(path: &Path) -> Result<bool, StoreError> {
    use std::io::Read;
    let mut header = [0u8; 24];
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    if len < PAGE_SIZE as u64 || file.read_exact(&mut header).is_err() {
        return Err(StoreError::Corrupted(
            "the database file is truncated".into(),
        ));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(StoreError::Corrupted("not an SQLite database".into()));
    }
    if header[16..18] != (PAGE_SIZE as u16).to_be_bytes() || header[20] as usize != RESERVE {
        return Err(StoreError::NotEncrypted);
    }
    Ok(false)
}
