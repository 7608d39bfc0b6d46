//! Differential test: the same random operation sequence (inserts, updates, deletes, overflow
//! pages, VACUUM, checkpoints, reopen, small page cache) against plain SQLite and the encrypted
//! store gives identical query results.

mod common;

use common::*;
use rusqlite::Connection;
use syncvault::store::{Store, StoreOptions};
use syncvault::vault::{UnlockedVault, VaultPaths};
use syncvault_testkit::rng::Rng;

type Row = (i64, String, Vec<u8>);
type Rows = Vec<Row>;

fn dump(c: &Connection) -> Rows {
    let mut stmt = c.prepare("SELECT id, a, b FROM t ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn open_encrypted(paths: &VaultPaths, v: &UnlockedVault) -> Store {
    Store::open(
        &paths.database(),
        v,
        &StoreOptions {
            inner_vfs: None,
            cache_kib: Some(128),
            ..Default::default()
        },
    )
    .unwrap()
}

fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (paths, v) = new_vault(&dir.path().join("vault"));
    let plain_path = dir.path().join("plain.db");
    let mut plain = Connection::open(&plain_path).unwrap();
    let mut enc = open_encrypted(&paths, &v);
    let schema =
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b BLOB); CREATE INDEX t_a ON t (a);";
    plain
        .execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA cache_size=-128; {schema}"
        ))
        .unwrap();
    enc.conn().execute_batch(schema).unwrap();
    let mut rng = Rng(seed);
    for step in 0..400 {
        let op = rng.below(100);
        let id = rng.below(300) as i64;
        let sql_and_args: Option<(&str, Row)> = match op {
            0..=44 => {
                let len = if rng.below(10) == 0 {
                    5000 + rng.below(20000)
                } else {
                    rng.below(300)
                } as usize;
                let blob: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                let text_len = 1 + rng.below(40) as usize;
                Some((
                    "INSERT OR REPLACE INTO t (id, a, b) VALUES (?1, ?2, ?3)",
                    (id, rng.text(text_len), blob),
                ))
            }
            45..=64 => Some((
                "UPDATE t SET a = ?2, b = ?3 WHERE id = ?1",
                (
                    id,
                    rng.text(8),
                    vec![rng.next_u64() as u8; rng.below(9000) as usize],
                ),
            )),
            65..=84 => {
                let span = rng.below(4) as usize;
                Some((
                    "DELETE FROM t WHERE id >= ?1 AND id < ?1 + length(?2) + length(?3)",
                    (id, rng.text(span), vec![]),
                ))
            }
            85..=88 => {
                plain.execute_batch("VACUUM").unwrap();
                enc.conn().execute_batch("VACUUM").unwrap();
                None
            }
            89..=93 => {
                plain
                    .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                    .unwrap();
                enc.checkpoint().unwrap();
                None
            }
            94..=96 => {
                drop(enc);
                enc = open_encrypted(&paths, &v);
                plain = Connection::open(&plain_path).unwrap();
                None
            }
            _ => {
                // A multi-statement transaction that is rolled back leaves nothing behind.
                for c in [&plain, enc.conn()] {
                    c.execute_batch(
                        "BEGIN; DELETE FROM t; INSERT INTO t (id, a) VALUES (-1, 'x'); ROLLBACK;",
                    )
                    .unwrap();
                }
                None
            }
        };
        if let Some((sql, args)) = sql_and_args {
            plain.execute(sql, args.clone()).unwrap();
            enc.conn().execute(sql, args).unwrap();
        }
        if step % 25 == 0 {
            assert_eq!(dump(&plain), dump(enc.conn()), "seed {seed}, step {step}");
        }
    }
    assert_eq!(dump(&plain), dump(enc.conn()), "seed {seed}, end");
    enc.integrity_check().unwrap();
    let agg = "SELECT count(*), coalesce(sum(length(b)), 0), group_concat(a, ',') FROM (SELECT * FROM t ORDER BY a, id)";
    let q = |c: &Connection| -> (i64, i64, Option<String>) {
        c.query_row(agg, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
    };
    assert_eq!(q(&plain), q(enc.conn()));
}

#[test]
fn random_sequences_match_plain_sqlite() {
    for seed in [1, 2, 3, 0xfeed, 0xbeef] {
        run(seed);
    }
}
