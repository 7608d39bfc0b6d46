//! The store benchmark's workload, shared verbatim (by `#[path]`) with the SQLCipher crate so all
//! three stores run exactly the same statements: bulk insert of ~400-byte rows with an FTS5
//! index, random point reads, a full scan, and FTS queries.

use std::time::Instant;

use rusqlite::Connection;

/// One measured stage.
pub struct Stage {
    pub name: &'static str,
    pub ops: u64,
    pub seconds: f64,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

const WORDS: &[&str] = &[
    "account", "contact", "meeting", "invoice", "service", "visit", "repair", "install", "pump",
    "valve", "boiler", "filter", "warranty", "quote", "order", "delivery", "customer", "site",
    "north", "south", "urgent", "follow", "call", "email", "parts", "schedule", "review", "budget",
];

fn sentence(rng: &mut Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 16);
    while s.len() < bytes {
        s.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
        s.push(' ');
    }
    s
}

/// Applies the settings every store shares, then runs the stages on `conn`.
pub fn run(conn: &Connection, rows: u64) -> Vec<Stage> {
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;
         CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL, n INTEGER);
         CREATE VIRTUAL TABLE t_fts USING fts5(body, content='t', content_rowid='id');",
    )
    .unwrap();
    let mut stages = Vec::new();
    let mut rng = Rng(42);

    let start = Instant::now();
    for batch in 0..rows.div_ceil(5000) {
        conn.execute_batch("BEGIN").unwrap();
        {
            let mut insert = conn
                .prepare_cached("INSERT INTO t (id, name, body, n) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            let mut index = conn
                .prepare_cached("INSERT INTO t_fts (rowid, body) VALUES (?1, ?2)")
                .unwrap();
            for id in batch * 5000..((batch + 1) * 5000).min(rows) {
                let name = format!("Customer {id}");
                let body = sentence(&mut rng, 360);
                insert
                    .execute((id as i64, &name, &body, (rng.next() % 1000) as i64))
                    .unwrap();
                index.execute((id as i64, &body)).unwrap();
            }
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    stages.push(Stage {
        name: "bulk insert (rows, with FTS)",
        ops: rows,
        seconds: start.elapsed().as_secs_f64(),
    });

    let reads = rows;
    let start = Instant::now();
    let mut stmt = conn
        .prepare_cached("SELECT name, body FROM t WHERE id = ?1")
        .unwrap();
    let mut total = 0usize;
    for _ in 0..reads {
        let id = (rng.next() % rows) as i64;
        total += stmt
            .query_row([id], |r| Ok(r.get_ref(1)?.as_str()?.len()))
            .unwrap();
    }
    assert!(total > 0);
    stages.push(Stage {
        name: "random point reads",
        ops: reads,
        seconds: start.elapsed().as_secs_f64(),
    });

    let start = Instant::now();
    for _ in 0..3 {
        let n: i64 = conn
            .query_row("SELECT sum(length(body)) + sum(n) FROM t", [], |r| r.get(0))
            .unwrap();
        assert!(n > 0);
    }
    stages.push(Stage {
        name: "full scan (rows)",
        ops: rows * 3,
        seconds: start.elapsed().as_secs_f64(),
    });

    let queries = 2000;
    let start = Instant::now();
    let mut fts = conn
        .prepare_cached("SELECT count(*) FROM t_fts WHERE t_fts MATCH ?1")
        .unwrap();
    for _ in 0..queries {
        let a = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        let b = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        let _: i64 = fts
            .query_row([format!("{a} AND {b}")], |r| r.get(0))
            .unwrap();
    }
    stages.push(Stage {
        name: "FTS queries",
        ops: queries,
        seconds: start.elapsed().as_secs_f64(),
    });
    stages
}

/// One JSON line per stage, for benches/run-store-bench to put side by side.
pub fn print(store: &str, stages: &[Stage]) {
    for s in stages {
        println!(
            "{{\"store\": \"{store}\", \"stage\": \"{}\", \"ops\": {}, \"seconds\": {:.6}}}",
            s.name, s.ops, s.seconds
        );
    }
}
