//! SQLite's temporary files through the encrypting VFS (docs/security.md, "Temporary files"): a
//! sort larger than the page cache spills to files in the vault's `tmp` directory, unlinked at
//! once, that hold no plaintext (read back through `/proc/self/fd` while the sort is open); a
//! block changed under a running sort fails the query instead of feeding it wrong rows; and a
//! kill -9 in the middle of a spilled sort leaves nothing behind and the store intact. A control
//! shows plain SQLite's temporary files do carry the markers, so the scan can fail.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

use common::*;
use syncvault::store::{Store, StoreOptions, TEMP_DIR};
use syncvault::vault::{self, VaultPaths};
use syncvault_testkit::rng::Rng;

const MARKER: &str = "SVTEMPMARK";
const ROWS: usize = 30_000;
/// Rows in order of their random tail, not their insertion: a real sort.
const SORT: &str = "SELECT x FROM big ORDER BY substr(x, 17)";

/// ~5 MB of marked rows, ten times the page cache the tests open with.
fn fill(conn: &rusqlite::Connection) {
    let mut rng = Rng(42);
    conn.execute_batch("CREATE TABLE IF NOT EXISTS big (x TEXT); BEGIN")
        .unwrap();
    for i in 0..ROWS {
        conn.execute(
            "INSERT INTO big VALUES (?1)",
            [format!("{MARKER}{i:06}{}", rng.text(150))],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn small_cache(paths: &VaultPaths, v: &vault::UnlockedVault) -> Store {
    let options = StoreOptions {
        cache_kib: Some(512),
        ..Default::default()
    };
    Store::open(&paths.database(), v, &options).unwrap()
}

/// This process's open files that are already unlinked: (where they were, a path to read them).
fn unlinked_open_files() -> Vec<(String, PathBuf)> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(was) = target.strip_suffix(" (deleted)") {
                out.push((was.to_string(), entry.path()));
            }
        }
    }
    out
}

fn contains_marker(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
}

/// The sealed temporary files of the vault at `dir` that are open now, with their sizes.
fn sealed_temp_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let tmp = dir.join(TEMP_DIR).to_string_lossy().into_owned();
    unlinked_open_files()
        .into_iter()
        .filter(|(was, _)| was.starts_with(&tmp))
        .map(|(_, fd)| {
            let len = std::fs::metadata(&fd).unwrap().len();
            (fd, len)
        })
        .collect()
}

/// A new vault filled with the marked rows, its store opened with a small cache.
fn filled_store(dir: &Path) -> Store {
    let (paths, v) = new_vault(dir);
    let store = small_cache(&paths, &v);
    fill(store.conn());
    store
}

#[test]
fn a_sort_that_spills_writes_only_sealed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let mut stmt = store.conn().prepare(SORT).unwrap();
    let mut rows = stmt.query([]).unwrap();
    let first: String = rows.next().unwrap().unwrap().get(0).unwrap();

    // The first row is out: every run of the sort is on disk now.
    let spilled = sealed_temp_files(dir.path());
    let bytes: u64 = spilled.iter().map(|(_, len)| len).sum();
    assert!(
        bytes > 2 << 20,
        "the sort spilled only {bytes} bytes: {spilled:?}"
    );
    for (fd, _) in &spilled {
        assert!(!contains_marker(fd), "plaintext in a temporary file");
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join(TEMP_DIR))
            .unwrap()
            .count(),
        0,
        "temporary files have no name while open"
    );

    let mut last = first;
    let mut n = 1;
    while let Some(row) = rows.next().unwrap() {
        let x: String = row.get(0).unwrap();
        assert!(x[16..] >= last[16..], "out of order");
        last = x;
        n += 1;
    }
    assert_eq!(n, ROWS);
    drop(rows);
    drop(stmt);
    assert!(
        sealed_temp_files(dir.path()).is_empty(),
        "closed with the sort"
    );
}

#[test]
fn a_block_changed_under_a_running_sort_fails_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let mut stmt = store.conn().prepare(SORT).unwrap();
    let mut rows = stmt.query([]).unwrap();
    rows.next().unwrap().unwrap();
    // One bit of every sealed block flipped (4096 + 16 + 8 bytes each).
    for (fd, len) in sealed_temp_files(dir.path()) {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fd)
            .unwrap();
        for at in (100..len).step_by(4120) {
            let mut byte = [0u8];
            f.seek(std::io::SeekFrom::Start(at)).unwrap();
            std::io::Read::read_exact(&mut f, &mut byte).unwrap();
            f.seek(std::io::SeekFrom::Start(at)).unwrap();
            f.write_all(&[byte[0] ^ 1]).unwrap();
        }
    }
    let mut seen = 1;
    let failed = loop {
        match rows.next() {
            Ok(Some(row)) => {
                let x: String = row.get(0).unwrap();
                assert!(x.starts_with(MARKER), "a garbled row: {x:?}");
                seen += 1;
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    let e = failed.unwrap_or_else(|| panic!("all {seen} rows came back from tampered runs"));
    assert!(
        e.to_string().contains("disk I/O error"),
        "expected an I/O error (SQLITE_IOERR_DATA), got {e}"
    );
}

/// Child side of the kill test: holds a spilled sort open until killed.
#[test]
fn child_spilled_sort() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let paths = VaultPaths::new(&dir);
    let v = vault::unlock(&paths, PASSWORD, &config()).unwrap();
    let store = small_cache(&paths, &v);
    let mut stmt = store.conn().prepare(SORT).unwrap();
    let mut rows = stmt.query([]).unwrap();
    rows.next().unwrap().unwrap();
    println!("spilled {}", sealed_temp_files(Path::new(&dir)).len());
    std::thread::sleep(std::time::Duration::from_secs(600));
}

#[test]
fn kill_9_mid_sort_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, v) = new_vault(dir.path());
    fill(small_cache(&paths, &v).conn());
    let mut child = spawn_child_test("child_spilled_sort", dir.path());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let spilled = loop {
        match lines.next() {
            Some(Ok(line)) => {
                // libtest prints the test's name on the line of its first output.
                if let Some((_, n)) = line.split_once("spilled ") {
                    break n.parse::<usize>().unwrap();
                }
            }
            _ => panic!("the child ended before its sort spilled"),
        }
    };
    assert!(spilled > 0, "the child's sort did not spill");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join(TEMP_DIR))
            .unwrap()
            .count(),
        0
    );
    assert!(files_containing(dir.path(), MARKER.as_bytes()).is_empty());
    let store = small_cache(&paths, &v);
    store.integrity_check().unwrap();
    let n: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM (SELECT x FROM big ORDER BY substr(x, 17))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, ROWS as i64);
}

#[test]
fn control_plain_sqlite_temp_files_carry_the_markers() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("plain.db")).unwrap();
    conn.execute_batch("PRAGMA temp_store = FILE; PRAGMA cache_size = -512")
        .unwrap();
    fill(&conn);
    let mut stmt = conn.prepare(SORT).unwrap();
    let mut rows = stmt.query([]).unwrap();
    rows.next().unwrap().unwrap();
    assert!(
        unlinked_open_files()
            .iter()
            .any(|(_, fd)| contains_marker(fd)),
        "plain SQLite's spilled sort should be readable"
    );
}
