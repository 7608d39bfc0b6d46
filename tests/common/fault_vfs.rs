//! A fault-injecting SQLite VFS that models a disk cache under power loss: writes since a file's
//! last xSync stay in memory (reads see them); when the armed write countdown runs out, every open
//! file keeps a random subset of its unsynced writes (some torn at 512-byte boundaries) and the
//! "process" is dead: every further call fails. Stacked *under* the encrypting VFS.
//!
//! One registration per process, driven through [`arm`]; tests using it hold [`lock`].

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;

pub const NAME: &str = "syncvault-fault";

static DEAD: AtomicBool = AtomicBool::new(false);
static COUNTDOWN: AtomicI64 = AtomicI64::new(-1);
static RNG: Mutex<u64> = Mutex::new(1);
/// Open files, so a crash can decide the fate of every file's cache.
static OPEN: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static SERIAL: Mutex<()> = Mutex::new(());

struct FState {
    inner_mem: Vec<u64>,
    pending: Vec<(i64, Vec<u8>)>,
}

#[repr(C)]
struct FFile {
    base: ffi::sqlite3_file,
    st: *mut FState,
}

struct VfsPtr(#[allow(dead_code)] *mut ffi::sqlite3_vfs);
unsafe impl Send for VfsPtr {}
unsafe impl Sync for VfsPtr {}

/// Registers the VFS once; returns a guard serializing its users.
pub fn lock() -> MutexGuard<'static, ()> {
    static REGISTERED: OnceLock<VfsPtr> = OnceLock::new();
    REGISTERED.get_or_init(|| unsafe {
        let inner = ffi::sqlite3_vfs_find(ptr::null());
        let mut vfs: ffi::sqlite3_vfs = *inner;
        vfs.szOsFile = std::mem::size_of::<FFile>() as c_int;
        vfs.zName = c"syncvault-fault".as_ptr();
        vfs.pAppData = inner.cast();
        vfs.xOpen = Some(x_open);
        vfs.iVersion = 2;
        // The remaining VFS methods (delete, access, pathname, time) ignore pAppData-free state in
        // the unix VFS, so they are shared as they are.
        let raw = Box::into_raw(Box::new(vfs));
        assert_eq!(ffi::sqlite3_vfs_register(raw, 0), ffi::SQLITE_OK);
        VfsPtr(raw)
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Arms a crash after `writes` more write calls (or never, with `None`); revives the process.
pub fn arm(writes: Option<i64>, seed: u64) {
    DEAD.store(false, Ordering::SeqCst);
    COUNTDOWN.store(writes.unwrap_or(-1), Ordering::SeqCst);
    *RNG.lock().unwrap() = seed | 1;
}

/// Whether the simulated crash happened.
pub fn crashed() -> bool {
    DEAD.load(Ordering::SeqCst)
}

fn rand() -> u64 {
    let mut s = RNG.lock().unwrap();
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

unsafe fn st<'a>(f: *mut ffi::sqlite3_file) -> &'a mut FState {
    unsafe { &mut *(*(f as *mut FFile)).st }
}

impl FState {
    fn inner(&mut self) -> *mut ffi::sqlite3_file {
        self.inner_mem.as_mut_ptr().cast()
    }
    fn m(&mut self) -> &ffi::sqlite3_io_methods {
        unsafe { &*(*self.inner()).pMethods }
    }
    fn write_through(&mut self, off: i64, data: &[u8]) -> c_int {
        let w = self.m().xWrite.unwrap();
        unsafe { w(self.inner(), data.as_ptr().cast(), data.len() as c_int, off) }
    }
    fn flush(&mut self) -> c_int {
        for (off, data) in std::mem::take(&mut self.pending) {
            let rc = self.write_through(off, &data);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        ffi::SQLITE_OK
    }
    fn inner_size(&mut self) -> i64 {
        let mut size = 0;
        let f = self.m().xFileSize.unwrap();
        unsafe { f(self.inner(), &mut size) };
        size
    }
    /// Power loss: each unsynced write lands whole, not at all, or torn.
    fn crash(&mut self) {
        for (off, data) in std::mem::take(&mut self.pending) {
            match rand() % 4 {
                0 | 1 => {
                    self.write_through(off, &data);
                }
                2 => {}
                _ => {
                    let sectors = data.len().div_ceil(512);
                    let keep = (rand() as usize % sectors.max(1)) * 512;
                    self.write_through(off, &data[..keep.min(data.len())]);
                }
            }
        }
    }
}

fn crash_all() {
    DEAD.store(true, Ordering::SeqCst);
    for &f in OPEN.lock().unwrap().iter() {
        unsafe { (*(f as *mut FState)).crash() };
    }
}

fn dead() -> bool {
    DEAD.load(Ordering::SeqCst)
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
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

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    unsafe {
        (*file).pMethods = ptr::null();
        if dead() {
            return ffi::SQLITE_CANTOPEN;
        }
        let inner = (*vfs).pAppData as *mut ffi::sqlite3_vfs;
        let words = ((*inner).szOsFile as usize).div_ceil(8);
        let mut st = Box::new(FState {
            inner_mem: vec![0; words],
            pending: Vec::new(),
        });
        let rc = ((*inner).xOpen.unwrap())(inner, name, st.inner(), flags, out);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let raw = Box::into_raw(st);
        OPEN.lock().unwrap().push(raw as usize);
        (*(file as *mut FFile)).st = raw;
        (*file).pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let raw = (*(f as *mut FFile)).st;
        OPEN.lock().unwrap().retain(|&p| p != raw as usize);
        let mut st = Box::from_raw(raw);
        if !dead() {
            // A clean close hands the cache to the OS, which writes it out eventually.
            st.flush();
        }
        let close = st.m().xClose.unwrap();
        close(st.inner())
    }
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: i64,
) -> c_int {
    unsafe {
        if dead() {
            return ffi::SQLITE_IOERR_READ;
        }
        let s = st(f);
        let read = s.m().xRead.unwrap();
        let mut rc = read(s.inner(), buf, n, off);
        if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
            return rc;
        }
        let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), n as usize);
        let end = off + n as i64;
        let mut size = s.inner_size();
        for (woff, data) in &s.pending {
            let wend = woff + data.len() as i64;
            size = size.max(wend);
            let (lo, hi) = (off.max(*woff), end.min(wend));
            if lo < hi {
                out[(lo - off) as usize..(hi - off) as usize]
                    .copy_from_slice(&data[(lo - woff) as usize..(hi - woff) as usize]);
            }
        }
        if rc == ffi::SQLITE_IOERR_SHORT_READ && end <= size {
            rc = ffi::SQLITE_OK;
        }
        rc
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: i64,
) -> c_int {
    unsafe {
        if dead() {
            return ffi::SQLITE_IOERR_WRITE;
        }
        if COUNTDOWN.load(Ordering::SeqCst) >= 0 && COUNTDOWN.fetch_sub(1, Ordering::SeqCst) == 0 {
            crash_all();
            return ffi::SQLITE_IOERR_WRITE;
        }
        let data = std::slice::from_raw_parts(buf.cast::<u8>(), n as usize).to_vec();
        st(f).pending.push((off, data));
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        if dead() {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        let s = st(f);
        let rc = s.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        (s.m().xSync.unwrap())(s.inner(), flags)
    }
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        if dead() {
            return ffi::SQLITE_IOERR_TRUNCATE;
        }
        // Simplification: a truncate is a sync point for the writes before it.
        let s = st(f);
        let rc = s.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        (s.m().xTruncate.unwrap())(s.inner(), size)
    }
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    unsafe {
        if dead() {
            return ffi::SQLITE_IOERR_FSTAT;
        }
        let s = st(f);
        let mut size = s.inner_size();
        for (off, data) in &s.pending {
            size = size.max(off + data.len() as i64);
        }
        *out = size;
        ffi::SQLITE_OK
    }
}

macro_rules! forward {
    ($name:ident, $m:ident, ($($a:ident: $t:ty),*) -> $r:ty) => {
        unsafe extern "C" fn $name(f: *mut ffi::sqlite3_file $(, $a: $t)*) -> $r {
            unsafe {
                let s = st(f);
                (s.m().$m.unwrap())(s.inner() $(, $a)*)
            }
        }
    };
}

forward!(x_lock, xLock, (l: c_int) -> c_int);
forward!(x_unlock, xUnlock, (l: c_int) -> c_int);
forward!(x_check_reserved_lock, xCheckReservedLock, (o: *mut c_int) -> c_int);
forward!(x_file_control, xFileControl, (op: c_int, a: *mut c_void) -> c_int);
forward!(x_sector_size, xSectorSize, () -> c_int);
forward!(x_device_characteristics, xDeviceCharacteristics, () -> c_int);
forward!(x_shm_map, xShmMap, (r: c_int, sz: c_int, e: c_int, o: *mut *mut c_void) -> c_int);
forward!(x_shm_lock, xShmLock, (o: c_int, n: c_int, fl: c_int) -> c_int);
forward!(x_shm_unmap, xShmUnmap, (d: c_int) -> c_int);

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    unsafe {
        let s = st(f);
        (s.m().xShmBarrier.unwrap())(s.inner())
    }
}
