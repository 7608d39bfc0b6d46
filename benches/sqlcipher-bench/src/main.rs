//! The store benchmark's workload on SQLCipher with a raw 256-bit key (no PBKDF2), for the
//! side-by-side comparison in benches/run-store-bench.

#[path = "../../store-bench/src/workload.rs"]
mod workload;

fn main() {
    let rows: u64 = std::env::args().nth(1).map_or(100_000, |a| a.parse().expect("ROWS is a number"));
    let tmp = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("cipher.db")).unwrap();
    conn.execute_batch("PRAGMA key = \"x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'\";")
        .unwrap();
    let version: String = conn.query_row("PRAGMA cipher_version", [], |r| r.get(0)).unwrap();
    eprintln!("SQLCipher {version}");
    workload::print("sqlcipher", &workload::run(&conn, rows));
}
