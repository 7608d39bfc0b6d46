//! Tampering with any byte of the database or the WAL gives `Corrupted` or a clean recovery to an
//! earlier committed state: never wrong data, never a panic.

mod common;

use std::path::Path;

use common::*;
use syncvault::store::entities::{self, EntityError};
use syncvault::store::{PAGE_SIZE, RESERVE, Store, StoreError, StoreOptions};
use syncvault::vault::{UnlockedVault, VaultPaths};

type State = Vec<(String, i64, String)>;

#[derive(Debug, PartialEq)]
enum Outcome {
    Corrupted,
    State(usize),
}

fn rows(store: &Store) -> Result<State, EntityError> {
    store.integrity_check()?;
    let all = entities::query(store.conn(), "note", &Default::default())?;
    Ok(all
        .into_iter()
        .map(|r| {
            (
                r.id,
                r.fields["n"].as_i64().unwrap(),
                r.fields["body"].as_str().unwrap().to_string(),
            )
        })
        .collect())
}

fn is_damage(err: &EntityError) -> bool {
    matches!(
        err,
        EntityError::Store(StoreError::Corrupted(_) | StoreError::NotEncrypted)
    )
}

/// Opens the (tampered) vault and says which known state it holds, or that it is corrupted.
fn outcome(dir: &Path, vault: &UnlockedVault, states: &[State]) -> Outcome {
    let paths = VaultPaths::new(dir);
    let store = match Store::open(&paths.database(), vault, &StoreOptions::default()) {
        Ok(s) => s,
        Err(StoreError::Corrupted(_) | StoreError::NotEncrypted) => return Outcome::Corrupted,
        Err(e) => panic!("open failed with an unexpected error: {e:?}"),
    };
    match rows(&store) {
        Ok(found) => match states.iter().position(|s| *s == found) {
            Some(i) => Outcome::State(i),
            None => panic!(
                "WRONG DATA: {} rows matching no committed state",
                found.len()
            ),
        },
        Err(e) if is_damage(&e) => Outcome::Corrupted,
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

fn state_a() -> State {
    (0..120)
        .map(|i| {
            (
                format!("id{i:03}"),
                i,
                format!("body {i} {}", "a".repeat(i as usize * 13)),
            )
        })
        .collect()
}

fn write_state(store: &Store, state: &State) {
    store.conn().execute_batch("BEGIN").unwrap();
    for (id, n, body) in state {
        put(store, &note(id, "t", body, "s", *n));
    }
    store.conn().execute_batch("COMMIT").unwrap();
}

/// A vault whose database holds state A, and (in `with_wal`) a crash image whose WAL holds state B.
struct Fixture {
    _tmp: tempfile::TempDir,
    vault: UnlockedVault,
    clean: std::path::PathBuf,
    with_wal: std::path::PathBuf,
    states: Vec<State>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let (paths, vault) = new_vault(&live);
    let a = state_a();
    let mut b = a.clone();
    for row in b.iter_mut().step_by(3) {
        row.1 += 1000;
        row.2.push_str(" changed");
    }
    let store = open(&paths, &vault);
    entities::apply_schema(store.conn(), &[note_schema()]).unwrap();
    write_state(&store, &a);
    store.checkpoint().unwrap();
    let clean = tmp.path().join("clean");
    snapshot(&live, &clean);
    store
        .conn()
        .pragma_update(None, "wal_autocheckpoint", 0)
        .unwrap();
    write_state(&store, &b);
    let with_wal = tmp.path().join("with_wal");
    snapshot(&live, &with_wal);
    drop(store);
    Fixture {
        _tmp: tmp,
        vault,
        clean,
        with_wal,
        states: vec![a, b],
    }
}

fn copy_of(src: &Path, name: &str) -> std::path::PathBuf {
    let dst = src.parent().unwrap().join(name);
    snapshot(src, &dst);
    dst
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

const P: u64 = PAGE_SIZE as u64;

#[test]
fn untouched_images_read_back_exactly() {
    let f = fixture();
    assert_eq!(outcome(&f.clean, &f.vault, &f.states), Outcome::State(0));
    assert_eq!(outcome(&f.with_wal, &f.vault, &f.states), Outcome::State(1));
}

#[test]
fn any_flipped_database_byte_is_corrupted() {
    let f = fixture();
    let db_len = std::fs::metadata(f.clean.join("store.db")).unwrap().len();
    let pages = db_len / P;
    let reserve = RESERVE as u64;
    let mut cases = vec![
        ("page 1 encrypted part", 100),
        ("page 1 clear header (payload fraction)", 21),
        ("page 1 reserve size", 20),
        ("page 1 nonce", P - reserve + 3),
        ("page 1 tag", P - 1),
    ];
    for pg in [2, pages / 2, pages - 1] {
        cases.push(("body", pg * P + 777));
        cases.push(("nonce", pg * P + P - reserve + 20));
        cases.push(("tag", pg * P + P - 8));
    }
    for (i, (what, offset)) in cases.into_iter().enumerate() {
        let dir = copy_of(&f.clean, &format!("flip{i}"));
        flip(&dir.join("store.db"), offset);
        assert_eq!(
            outcome(&dir, &f.vault, &f.states),
            Outcome::Corrupted,
            "{what} at {offset}"
        );
    }
}

#[test]
fn swapped_and_transplanted_pages_are_corrupted() {
    let f = fixture();
    let dir = copy_of(&f.clean, "swap");
    let db = dir.join("store.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let (p2, p3) = (P as usize, 2 * P as usize);
    let page2 = bytes[p2..p2 + PAGE_SIZE].to_vec();
    bytes.copy_within(p3..p3 + PAGE_SIZE, p2);
    bytes[p3..p3 + PAGE_SIZE].copy_from_slice(&page2);
    std::fs::write(&db, bytes).unwrap();
    assert_eq!(outcome(&dir, &f.vault, &f.states), Outcome::Corrupted);

    // Another vault with exactly the same content: its pages never fit this one.
    let other = fixture();
    let dir = copy_of(&f.clean, "transplant");
    let mut mine = std::fs::read(dir.join("store.db")).unwrap();
    let theirs = std::fs::read(other.clean.join("store.db")).unwrap();
    mine[p3..p3 + PAGE_SIZE].copy_from_slice(&theirs[p3..p3 + PAGE_SIZE]);
    std::fs::write(dir.join("store.db"), mine).unwrap();
    assert_eq!(outcome(&dir, &f.vault, &f.states), Outcome::Corrupted);

    // The whole database of the other vault.
    let dir = copy_of(&f.clean, "foreign");
    std::fs::copy(other.clean.join("store.db"), dir.join("store.db")).unwrap();
    assert_eq!(outcome(&dir, &f.vault, &f.states), Outcome::Corrupted);
}

#[test]
fn truncated_database_is_corrupted() {
    let f = fixture();
    for cut in [P / 2, P + 100, 3 * P] {
        let dir = copy_of(&f.clean, &format!("cut{cut}"));
        let db = dir.join("store.db");
        let bytes = std::fs::read(&db).unwrap();
        std::fs::write(&db, &bytes[..cut as usize]).unwrap();
        assert_eq!(
            outcome(&dir, &f.vault, &f.states),
            Outcome::Corrupted,
            "cut at {cut}"
        );
    }
}

#[test]
fn wal_damage_recovers_to_the_earlier_state_or_is_corrupted() {
    let f = fixture();
    let wal_len = std::fs::metadata(f.with_wal.join("store.db-wal"))
        .unwrap()
        .len();
    let frame = 24 + P;
    let frames = (wal_len - 32) / frame;
    assert!(
        frames > 3,
        "the fixture should leave several frames in the WAL"
    );
    let last = 32 + (frames - 1) * frame;
    let cases = [
        ("WAL header checksum", 28),
        ("first frame page content", 32 + 24 + 500),
        ("first frame nonce", 32 + 24 + P - 30),
        ("middle frame tag", 32 + (frames / 2) * frame + 24 + P - 2),
        ("last (commit) frame content", last + 24 + 1000),
        ("last frame salt", last + 9),
    ];
    for (i, (what, offset)) in cases.into_iter().enumerate() {
        for drop_shm in [false, true] {
            let dir = copy_of(&f.with_wal, &format!("wal{i}{drop_shm}"));
            flip(&dir.join("store.db-wal"), offset);
            if drop_shm {
                std::fs::remove_file(dir.join("store.db-shm")).unwrap();
            }
            let got = outcome(&dir, &f.vault, &f.states);
            assert!(
                matches!(got, Outcome::Corrupted | Outcome::State(0)),
                "{what}: {got:?}"
            );
        }
    }
    for cut in [wal_len - 1, wal_len - P, 32 + frame + 10] {
        let dir = copy_of(&f.with_wal, &format!("walcut{cut}"));
        std::fs::remove_file(dir.join("store.db-shm")).unwrap();
        let wal = dir.join("store.db-wal");
        let bytes = std::fs::read(&wal).unwrap();
        std::fs::write(&wal, &bytes[..cut as usize]).unwrap();
        assert_eq!(
            outcome(&dir, &f.vault, &f.states),
            Outcome::State(0),
            "WAL cut at {cut}"
        );
    }
}

#[test]
fn a_plain_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, vault) = new_vault(dir.path());
    let conn = rusqlite::Connection::open(paths.database()).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&paths.database(), &vault, &StoreOptions::default()),
        Err(StoreError::NotEncrypted)
    ));
    std::fs::write(
        paths.database(),
        b"definitely not a database, but long enough?",
    )
    .unwrap();
    assert!(matches!(
        Store::open(&paths.database(), &vault, &StoreOptions::default()),
        Err(StoreError::Corrupted(_))
    ));
}

#[test]
fn the_wrong_key_is_corrupted_not_garbage() {
    let f = fixture();
    let other = fixture();
    assert_eq!(
        outcome(&f.clean, &other.vault, &f.states),
        Outcome::Corrupted
    );
    assert_eq!(
        outcome(&f.with_wal, &other.vault, &f.states),
        Outcome::Corrupted
    );
}
