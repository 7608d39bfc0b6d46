//! What committed transactions changed, for watched queries: SQLite's update hook collects the
//! tables a transaction writes, the WAL hook (called once the commit is in the log, so a reader
//! sees it) hands them to the [`ChangeHub`], which wakes the subscriptions that read one of them.
//! A rolled-back transaction publishes nothing.
//!
//! The hub also holds a second, read-only connection on the same encrypting VFS: watched queries
//! re-run there, beside the writer (WAL lets them read while a sync writes), never under the
//! account's lock. The store attaches it when it opens and detaches it when it closes, so a
//! locked vault leaves no connection, and no key, behind.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Notify;

use super::vfs::RegisteredVfs;
use super::{SqlResultExt, StoreError};

/// WAL size (pages) at which a commit checkpoints, as SQLite's own auto-checkpoint does (a WAL
/// hook replaces it).
const AUTO_CHECKPOINT_PAGES: i32 = 1000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The read-only connection watched queries run on; closed before the VFS it uses.
struct Reader {
    conn: Connection,
    _vfs: Arc<RegisteredVfs>,
}

/// One watcher's interest: the tables it reads, and a flag raised by every commit that wrote one.
pub struct Subscription {
    tables: HashSet<String>,
    dirty: AtomicBool,
    wake: Notify,
}

impl Subscription {
    fn mark(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Waits until a commit touched one of the tables since the last call (or since
    /// subscribing: the first call returns at once), and lowers the flag.
    pub async fn changed(&self) {
        loop {
            if self.dirty.swap(false, Ordering::SeqCst) {
                return;
            }
            self.wake.notified().await;
        }
    }
}

/// The change feed and the reader slot of one account, shared by its watches; it outlives the
/// stores (one per unlock) that publish to it.
#[derive(Default)]
pub struct ChangeHub {
    subscribers: Mutex<Vec<Weak<Subscription>>>,
    reader: Mutex<Option<Reader>>,
    /// Commits published, for tests and benchmarks.
    published: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ChangeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeHub")
            .field("commits_published", &self.commits_published())
            .finish_non_exhaustive()
    }
}

impl ChangeHub {
    pub fn new() -> Arc<ChangeHub> {
        Arc::new(ChangeHub::default())
    }

    /// Subscribes to commits that write any of `tables`; dropped subscriptions are forgotten.
    pub fn subscribe(&self, tables: HashSet<String>) -> Arc<Subscription> {
        let sub = Arc::new(Subscription {
            tables,
            dirty: AtomicBool::new(true),
            wake: Notify::new(),
        });
        let mut subs = lock(&self.subscribers);
        subs.retain(|s| s.strong_count() > 0);
        subs.push(Arc::downgrade(&sub));
        sub
    }

    /// Wakes every subscription that reads one of `tables`.
    fn publish(&self, tables: &HashSet<String>) {
        self.published.fetch_add(1, Ordering::Relaxed);
        for sub in lock(&self.subscribers).iter().filter_map(Weak::upgrade) {
            if sub.tables.iter().any(|t| tables.contains(t)) {
                sub.mark();
            }
        }
    }

    /// Wakes the subscriptions to `name`, a change outside the store (e.g. a Synchronize's
    /// activity) that watches want to follow like a table.
    pub fn announce(&self, name: &str) {
        for sub in lock(&self.subscribers).iter().filter_map(Weak::upgrade) {
            if sub.tables.contains(name) {
                sub.mark();
            }
        }
    }

    /// Wakes every subscription (the store opened or closed: what they show may have changed).
    fn wake_all(&self) {
        for sub in lock(&self.subscribers).iter().filter_map(Weak::upgrade) {
            sub.mark();
        }
    }

    /// How many commits were published so far.
    pub fn commits_published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Runs `read` on the reader connection, or with None while the store is locked.
    pub fn read<T>(&self, read: impl FnOnce(Option<&Connection>) -> T) -> T {
        read(lock(&self.reader).as_ref().map(|r| &r.conn))
    }

    /// Opens the reader for a newly opened store and installs the hooks on its writer.
    pub(super) fn attach(
        self: &Arc<Self>,
        writer: &mut Connection,
        path: &Path,
        vfs: &Arc<RegisteredVfs>,
    ) -> Result<(), StoreError> {
        install_hooks(writer, Arc::downgrade(self))?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_EXRESCODE;
        let conn = Connection::open_with_flags_and_vfs(path, flags, vfs.name()).classified()?;
        conn.pragma_update(None, "query_only", true).classified()?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .classified()?;
        conn.pragma_update(None, "mmap_size", 0).classified()?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .classified()?;
        *lock(&self.reader) = Some(Reader {
            conn,
            _vfs: Arc::clone(vfs),
        });
        self.wake_all();
        Ok(())
    }

    /// Closes the reader (the store is closing); waits for a query in progress. Watches wake:
    /// a query finds nothing to read and delivers nothing, the sync status shows the lock.
    pub(super) fn detach(&self) {
        lock(&self.reader).take();
        self.wake_all();
    }
}

/// The update hook collects table names, the rollback hook forgets them, the WAL hook publishes
/// them once the commit is in the log (and checkpoints as SQLite's auto-checkpoint would).
fn install_hooks(conn: &mut Connection, hub: Weak<ChangeHub>) -> Result<(), StoreError> {
    let written: Arc<Mutex<HashSet<String>>> = Arc::default();
    let on_update = Arc::clone(&written);
    conn.update_hook(Some(
        move |_: rusqlite::hooks::Action, db: &str, table: &str, _: i64| {
            if db == "main" {
                let mut set = lock(&on_update);
                if !set.contains(table) {
                    set.insert(table.to_string());
                }
            }
        },
    ))
    .classified()?;
    let on_rollback = Arc::clone(&written);
    conn.rollback_hook(Some(move || lock(&on_rollback).clear()))
        .classified()?;
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
        let tables = std::mem::take(&mut *lock(&written));
        if !tables.is_empty()
            && let Some(hub) = hub.upgrade()
        {
            hub.publish(&tables);
        }
        if pages >= AUTO_CHECKPOINT_PAGES {
            // Passive: never waits for a reader; what it cannot copy now waits for the next one.
            let _ = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE);
        }
        Ok(())
    }))
    .classified()?;
    Ok(())
}
