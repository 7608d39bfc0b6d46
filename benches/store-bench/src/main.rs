//! `cargo run --release -p syncvault-store-bench -- [ROWS [all|stores|unlock [ROUND]]]`: plain
//! SQLite and syncvault's encrypted store run the same workload in one process (`stores`, one
//! round); then unlock latency at the default and floor KDF parameters (`unlock`).
//! benches/run-store-bench runs several rounds, adds SQLCipher and prints the median ratios.

#[path = "workload.rs"]
mod workload;

use std::time::Instant;

use rusqlite::Connection;
use syncvault::store::{PAGE_SIZE, PageCipher, PageRole};
use syncvault::store::{Store, StoreOptions};
use syncvault::vault::{self, CipherSuite, KdfParams, UnlockedVault, VaultConfig, VaultPaths};

/// What one 4096-byte page costs to seal and to open.
fn page_cipher_alone(unlocked: &UnlockedVault, suite: CipherSuite) {
    let cipher = PageCipher::new(&unlocked.dek, unlocked.vault_id, suite);
    let mut page = vec![7u8; PAGE_SIZE];
    let n = 20_000;
    let start = Instant::now();
    for i in 0..n {
        cipher.seal(&mut page, PageRole::Database, 2 + i % 1000);
        assert!(cipher.open(&mut page, PageRole::Database, 2 + i % 1000));
    }
    let per_page = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "{{\"cipher\": \"{}\", \"cipher_seal_open_us_per_page\": {:.3}, \"cipher_mb_per_s\": {:.0}}}",
        suite.name(),
        per_page * 1e6,
        2.0 * 4096.0 / per_page / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = args
        .get(1)
        .map_or(100_000, |a| a.parse().expect("ROWS is a number"));
    let part = args.get(2).map_or("all", String::as_str);
    let round: u64 = args
        .get(3)
        .map_or(0, |a| a.parse().expect("ROUND is a number"));
    if part != "unlock" {
        stores(rows, round);
    }
    if part != "stores" {
        unlock();
    }
}

/// One round of the workload on each store: plain SQLite and the encrypted store under each page
/// cipher, in fresh files. Odd rounds run plain last, so drift over a run (CPU clock, the OS
/// cache) does not always favour the same side.
fn stores(rows: u64, round: u64) {
    let tmp = tempfile::tempdir().unwrap();
    // The default first ("syncvault" is what this CPU gets), then the other.
    let preferred = CipherSuite::preferred();
    println!("{{\"default_cipher\": \"{}\"}}", preferred.name());
    let mut suites = CipherSuite::ALL;
    suites.sort_by_key(|s| *s != preferred);
    let plain_first = round.is_multiple_of(2);
    let plain = || {
        let conn = Connection::open(tmp.path().join("plain.db")).unwrap();
        workload::print("plain", &workload::run(&conn, rows));
    };
    if plain_first {
        plain();
    }
    for suite in suites {
        let label = if suite == preferred {
            "syncvault".to_string()
        } else {
            format!("syncvault {}", suite.name())
        };
        let paths = VaultPaths::new(tmp.path().join(suite.name()));
        let config = VaultConfig {
            kdf: KdfParams::FLOOR,
            cipher: Some(suite),
            ..Default::default()
        };
        let unlocked = vault::create(
            &paths,
            b"benchmark password",
            b"benchmark password",
            &config,
        )
        .unwrap();
        let store = Store::open(&paths.database(), &unlocked, &StoreOptions::default()).unwrap();
        workload::print(&label, &workload::run(store.conn(), rows));
        drop(store);
        page_cipher_alone(&unlocked, suite);
    }
    if !plain_first {
        plain();
    }
}

/// Unlock latency at the default and floor KDF parameters, beside the KDF alone.
fn unlock() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, kdf) in [("default", KdfParams::DEFAULT), ("floor", KdfParams::FLOOR)] {
        let paths = VaultPaths::new(tmp.path().join(name));
        let config = VaultConfig {
            kdf,
            ..Default::default()
        };
        vault::create(
            &paths,
            b"benchmark password",
            b"benchmark password",
            &config,
        )
        .unwrap();
        let median = |mut times: Vec<f64>| {
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        };
        // Interleaved, so drift hits both alike: the KDF alone is the bulk of an unlock; the
        // difference is what the rest (header, attempt counter, store open) adds.
        let (mut unlocks, mut kdfs, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..9 {
            let start = Instant::now();
            vault::derive_kek(b"benchmark password", &[7; 16], kdf).unwrap();
            let kdf_seconds = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let v = vault::unlock(&paths, b"benchmark password", &config).unwrap();
            drop(Store::open(&paths.database(), &v, &StoreOptions::default()).unwrap());
            let unlock_seconds = start.elapsed().as_secs_f64();
            unlocks.push(unlock_seconds);
            kdfs.push(kdf_seconds);
            rest.push(unlock_seconds - kdf_seconds);
        }
        let (unlock, kdf_alone, rest) = (median(unlocks), median(kdfs), median(rest));
        println!(
            "{{\"unlock\": \"{name}\", \"m_kib\": {}, \"t\": {}, \"p\": {}, \"median_seconds\": {:.4}, \"kdf_median_seconds\": {:.4}, \"rest_median_seconds\": {:.4}}}",
            kdf.m_kib, kdf.t, kdf.p, unlock, kdf_alone, rest
        );
    }
}
