//! No plaintext ever reaches the disk: records carrying random markers (in FTS-indexed fields,
//! plain fields and overflow pages) are looked for in every file of the vault directory after a
//! commit, a checkpoint, VACUUM, a password change, and a kill -9 mid-write.

mod common;

use std::io::{BufRead, BufReader};

use common::*;
use syncvault::store::entities;
use syncvault::vault::{self, VaultPaths};
use syncvault_testkit::rng::Rng;

fn markers(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| format!("{MARKER_PREFIX}{i}{}", rng.text(12)))
        .collect()
}

/// Every marker starts with this; eight random-looking bytes never appear in ciphertext by chance.
const MARKER_PREFIX: &str = "SVMARKER";

fn assert_no_marker(dir: &std::path::Path, when: &str) {
    let hits = files_containing(dir, MARKER_PREFIX.as_bytes());
    assert!(
        hits.is_empty(),
        "after {when}: a marker was found in {hits:?}"
    );
}

#[test]
fn markers_never_reach_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, v) = new_vault(dir.path());
    let ms = markers(7, 60);
    let store = open(&paths, &v);
    entities::apply_schema(store.conn(), &[note_schema()]).unwrap();
    store.conn().execute_batch("BEGIN").unwrap();
    for (i, m) in ms.iter().enumerate() {
        // Title and body are FTS-indexed; secret is not; every 10th body spans overflow pages.
        let body = if i % 10 == 0 {
            format!("{m} {}", "x".repeat(9000))
        } else {
            format!("body {m}")
        };
        put(
            &store,
            &note(&format!("id{i}"), &format!("title {m}"), &body, m, i as i64),
        );
    }
    store.conn().execute_batch("COMMIT").unwrap();
    assert!(
        std::fs::metadata(dir.path().join("store.db-wal"))
            .unwrap()
            .len()
            > 0,
        "the WAL should hold the commit"
    );
    assert_no_marker(dir.path(), "commit (WAL)");

    store.checkpoint().unwrap();
    assert_no_marker(dir.path(), "checkpoint");

    store
        .conn()
        .execute_batch("DELETE FROM e_note WHERE f_n % 2 = 0; VACUUM;")
        .unwrap();
    assert_no_marker(dir.path(), "VACUUM");
    let found = entities::query(
        store.conn(),
        "note",
        &entities::Query {
            search: Some(ms[1].clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(found.len(), 1, "FTS still finds an odd record after VACUUM");
    drop(store);
    assert_no_marker(dir.path(), "close");

    vault::change_password(
        &paths,
        PASSWORD,
        b"another password",
        b"another password",
        &config(),
    )
    .unwrap();
    assert_no_marker(dir.path(), "password change");
    let v = vault::unlock(&paths, b"another password", &config()).unwrap();
    let store = open(&paths, &v);
    assert_eq!(entities::count(store.conn(), "note").unwrap(), 30);
}

/// Child side of the kill test: writes marker records until killed, reporting each commit.
#[test]
fn child_marker_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let paths = VaultPaths::new(&dir);
    let v = vault::unlock(&paths, PASSWORD, &config()).unwrap();
    let store = open(&paths, &v);
    entities::apply_schema(store.conn(), &[note_schema()]).unwrap();
    let ms = markers(11, 400);
    for (i, m) in ms.iter().cycle().enumerate() {
        put(
            &store,
            &note(
                &format!("id{}", i % 400),
                m,
                &format!("{m} {}", "y".repeat(i % 5000)),
                m,
                i as i64,
            ),
        );
        println!("committed {i}");
    }
}

#[test]
fn kill_mid_write_leaves_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, _v) = new_vault(dir.path());
    let mut child = spawn_child_test("child_marker_writer", dir.path());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0;
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("committed ") {
            last = n.parse().unwrap();
            if last >= 300 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(last >= 300, "the child stopped early");
    assert_no_marker(dir.path(), "kill -9");
    let v = vault::unlock(&paths, PASSWORD, &config()).unwrap();
    let store = open(&paths, &v);
    store.integrity_check().unwrap();
    let n: i64 = store
        .conn()
        .query_row("SELECT max(f_n) FROM e_note", [], |r| r.get(0))
        .unwrap();
    assert!(
        n >= last,
        "commit {last} was reported but the store ends at {n}"
    );
}

#[test]
fn the_scan_finds_plaintext_when_it_is_there() {
    // Control: the same records in a plain SQLite file are found, so the scan can fail.
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("plain.db")).unwrap();
    conn.execute("CREATE TABLE t (x TEXT)", []).unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", [&markers(3, 1)[0]])
        .unwrap();
    drop(conn);
    assert_eq!(
        files_containing(dir.path(), MARKER_PREFIX.as_bytes()).len(),
        1
    );
}
