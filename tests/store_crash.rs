//! Crash safety of the encrypted store: power loss (a fault VFS under the encrypting one drops or
//! tears unsynced writes) and kill -9 of a writer process at random points. After reopening,
//! `PRAGMA integrity_check` is ok and the content equals one of the committed states.

mod common;
#[path = "common/fault_vfs.rs"]
mod fault_vfs;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::*;
use syncvault::store::entities;
use syncvault::store::{Store, StoreOptions};
use syncvault::vault::{self, UnlockedVault, VaultPaths};
use syncvault_testkit::rng::Rng;

/// Transaction `i` of the workload: a new note (bodies up to 6 KB: overflow pages), every 4th
/// transaction deletes an older note, and the `counter` note records `i`. Pure in `i`.
fn run_tx(store: &Store, i: i64) -> Result<(), String> {
    let conn = store.conn();
    conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    let body = "b".repeat(((i * 7919) % 6000) as usize);
    let result = (|| -> Result<(), entities::EntityError> {
        entities::upsert(conn, "note", &note(&format!("n{i:05}"), "t", &body, "s", i))?;
        if i % 4 == 0 {
            entities::delete(conn, "note", &format!("n{:05}", i - 3))?;
        }
        entities::upsert(conn, "note", &note("counter", "t", "", "s", i))?;
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e.to_string())
        }
    }
}

/// The expected content after transactions 1..=c: id -> (n, body length).
fn expected(c: i64) -> BTreeMap<String, (i64, usize)> {
    let mut m = BTreeMap::new();
    for i in 1..=c {
        m.insert(format!("n{i:05}"), (i, ((i * 7919) % 6000) as usize));
        if i % 4 == 0 {
            m.remove(&format!("n{:05}", i - 3));
        }
    }
    if c > 0 {
        m.insert("counter".into(), (c, 0));
    }
    m
}

/// Opens with the default VFS, checks integrity, and returns the committed transaction count.
fn verify(paths: &VaultPaths, v: &UnlockedVault) -> i64 {
    let store = match Store::open(&paths.database(), v, &StoreOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            let sizes: Vec<_> = std::fs::read_dir(&paths.dir)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.file_name(), e.metadata().unwrap().len())
                })
                .collect();
            panic!("reopen failed: {e:?}; files {sizes:?}");
        }
    };
    store.integrity_check().unwrap();
    let found: BTreeMap<String, (i64, usize)> =
        entities::query(store.conn(), "note", &Default::default())
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    (
                        r.fields["n"].as_i64().unwrap(),
                        r.fields["body"].as_str().unwrap().len(),
                    ),
                )
            })
            .collect();
    let c = found.get("counter").map_or(0, |v| v.0);
    assert_eq!(
        found,
        expected(c),
        "content is not the state after transaction {c}"
    );
    c
}

fn fresh(dir: &std::path::Path) -> (VaultPaths, UnlockedVault) {
    let (paths, v) = new_vault(dir);
    let store = open(&paths, &v);
    entities::apply_schema(store.conn(), &[note_schema()]).unwrap();
    (paths, v)
}

#[test]
fn power_loss_at_random_writes_keeps_a_committed_state() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let _serial = fault_vfs::lock();
    // SYNCVAULT_CRASH_ROUNDS=500 SYNCVAULT_CRASH_SEED=... for a longer hunt.
    let rounds: u64 = std::env::var("SYNCVAULT_CRASH_ROUNDS").map_or(40, |v| v.parse().unwrap());
    let seed: u64 = std::env::var("SYNCVAULT_CRASH_SEED").map_or(0x5eed, |v| v.parse().unwrap());
    let mut rng = Rng(seed);
    let mut crashes = 0;
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let (paths, v) = fresh(dir.path());
        // Some committed history first, so crashes also hit checkpoints of older data.
        let mut committed = 0;
        let countdown = 1 + rng.below(600) as i64;
        fault_vfs::arm(Some(countdown), rng.next_u64());
        let options = StoreOptions {
            inner_vfs: Some(fault_vfs::NAME.into()),
            cache_kib: Some(64),
            ..Default::default()
        };
        {
            let store = Store::open(&paths.database(), &v, &options).unwrap();
            store
                .conn()
                .pragma_update(None, "wal_autocheckpoint", 8)
                .unwrap();
            for i in 1..=200 {
                match run_tx(&store, i) {
                    Ok(()) => committed = i,
                    Err(_) => break,
                }
            }
        }
        if fault_vfs::crashed() {
            crashes += 1;
        }
        fault_vfs::arm(None, 0);
        let c = verify(&paths, &v);
        assert!(
            c <= committed,
            "round {round}: found {c} > committed {committed}"
        );
    }
    assert!(
        crashes * 4 >= rounds * 3,
        "only {crashes} of {rounds} rounds crashed; the workload is too short"
    );
}

/// Child side of the kill test: continues the workload from the stored counter until killed.
#[test]
fn child_workload_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let paths = VaultPaths::new(&dir);
    let v = vault::unlock(&paths, PASSWORD, &config()).unwrap();
    let store = open(&paths, &v);
    store
        .conn()
        .pragma_update(None, "wal_autocheckpoint", 16)
        .unwrap();
    let start = entities::get(store.conn(), "note", "counter")
        .unwrap()
        .map_or(0, |r| r.fields["n"].as_i64().unwrap());
    for i in start + 1.. {
        run_tx(&store, i).unwrap();
        println!("committed {i}");
    }
}

#[test]
fn kill_9_at_random_points_keeps_every_reported_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, v) = fresh(dir.path());
    let mut rng = Rng(0xdead);
    let mut last_reported = 0;
    for round in 0..8 {
        let mut child = spawn_child_test("child_workload_writer", dir.path());
        let stdout = child.stdout.take().unwrap();
        let (started, first_commit) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = 0;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("committed ") {
                    last = n.parse().unwrap();
                    let _ = started.send(());
                }
            }
            last
        });
        // The random point is counted from the child's first commit, so a slow start (a loaded
        // CI machine) cannot turn a round into a kill before any write.
        let _ = first_commit.recv_timeout(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        child.kill().unwrap();
        child.wait().unwrap();
        let reported: i64 = reader.join().unwrap();
        last_reported = last_reported.max(reported);
        let c = verify(&paths, &v);
        assert!(
            c >= last_reported,
            "round {round}: commit {last_reported} was reported, store has {c}"
        );
    }
    assert!(last_reported > 0, "the children never committed");
}

/// Control for the fault model: plain SQLite (no encryption) under the same power losses stays
/// intact, so a failure above is the encrypting VFS's, not the model's.
#[test]
fn fault_model_control_plain_sqlite() {
    use rusqlite::{Connection, OpenFlags};
    let _serial = fault_vfs::lock();
    let mut rng = Rng(0xc0ffee);
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT);",
            )
            .unwrap();
        fault_vfs::arm(Some(1 + rng.below(600) as i64), rng.next_u64());
        {
            let c =
                Connection::open_with_flags_and_vfs(&path, OpenFlags::default(), fault_vfs::NAME)
                    .unwrap();
            c.execute_batch(
                "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-64; PRAGMA wal_autocheckpoint=8;",
            )
            .unwrap();
            for i in 1..=200i64 {
                let body = "b".repeat(((i * 7919) % 6000) as usize);
                if c.execute(
                    "INSERT OR REPLACE INTO t VALUES (?1, ?2)",
                    (format!("n{i}"), body),
                )
                .is_err()
                {
                    break;
                }
            }
        }
        fault_vfs::arm(None, 0);
        let check: String = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
}
