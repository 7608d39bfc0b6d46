//! The change hub on a real encrypted store: a commit wakes the subscriptions that read a table
//! it wrote (and no other), a rollback wakes none, the reader connection sees committed data,
//! cannot write, and is gone once the store closes; the WAL stays bounded although the hook
//! that publishes replaces SQLite's auto-checkpoint.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use syncvault::store::changes::Subscription;
use syncvault::store::{ChangeHub, PAGE_SIZE, Store, StoreOptions};
use syncvault::vault::{UnlockedVault, VaultPaths};

fn open_with(paths: &VaultPaths, v: &UnlockedVault, hub: &Arc<ChangeHub>) -> Store {
    let options = StoreOptions {
        changes: Some(Arc::clone(hub)),
        ..Default::default()
    };
    Store::open(&paths.database(), v, &options).unwrap()
}

fn tables(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

async fn woken(sub: &Subscription) -> bool {
    tokio::time::timeout(Duration::from_millis(100), sub.changed())
        .await
        .is_ok()
}

#[tokio::test]
async fn commits_wake_their_tables_rollbacks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, v) = new_vault(&dir.path().join("vault"));
    let hub = ChangeHub::new();
    let mut store = open_with(&paths, &v, &hub);
    store
        .conn()
        .execute_batch("CREATE TABLE a (x); CREATE TABLE b (x);")
        .unwrap();
    let (sub_a, sub_b) = (hub.subscribe(tables(&["a"])), hub.subscribe(tables(&["b"])));
    assert!(
        woken(&sub_a).await && woken(&sub_b).await,
        "a new subscription starts dirty"
    );
    assert!(!woken(&sub_a).await, "then waits");

    store
        .conn()
        .execute("INSERT INTO a VALUES (1)", [])
        .unwrap();
    assert!(woken(&sub_a).await, "a commit to a wakes a");
    assert!(!woken(&sub_b).await, "and not b");

    let published = hub.commits_published();
    let tx = store.conn_mut().transaction().unwrap();
    tx.execute("INSERT INTO a VALUES (2)", []).unwrap();
    tx.execute("INSERT INTO b VALUES (2)", []).unwrap();
    tx.rollback().unwrap();
    assert_eq!(
        hub.commits_published(),
        published,
        "a rollback publishes nothing"
    );
    assert!(!woken(&sub_a).await && !woken(&sub_b).await);
    // What the rolled-back transaction wrote is not carried into the next commit.
    store
        .conn()
        .execute("INSERT INTO b VALUES (3)", [])
        .unwrap();
    assert!(woken(&sub_b).await && !woken(&sub_a).await);

    // The reader sees what was committed, and only reads.
    let count = hub.read(|c| {
        c.expect("open")
            .query_row("SELECT count(*) FROM a", [], |r| r.get::<_, i64>(0))
            .unwrap()
    });
    assert_eq!(count, 1);
    let write = hub.read(|c| c.unwrap().execute("INSERT INTO a VALUES (9)", []).is_err());
    assert!(write, "the reader is read-only");

    // Closed: no reader, and the subscriptions wake to notice.
    drop(store);
    assert!(hub.read(|c| c.is_none()));
    assert!(woken(&sub_a).await && woken(&sub_b).await);
}

#[tokio::test]
async fn the_wal_stays_bounded_with_the_publishing_hook() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, v) = new_vault(&dir.path().join("vault"));
    let hub = ChangeHub::new();
    let store = open_with(&paths, &v, &hub);
    store
        .conn()
        .execute_batch("CREATE TABLE big (x BLOB)")
        .unwrap();
    // 40 MB in 400 commits, about 10,000 pages: ten times the checkpoint threshold.
    for _ in 0..400 {
        store
            .conn()
            .execute("INSERT INTO big VALUES (zeroblob(100000))", [])
            .unwrap();
    }
    let wal = std::fs::metadata(paths.database().with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    let bound = 2 * 1000 * PAGE_SIZE as u64;
    assert!(wal < bound, "WAL {wal} bytes, bound {bound}");
    assert_eq!(
        hub.commits_published(),
        400,
        "one per data commit (DDL wakes no table)"
    );
}
