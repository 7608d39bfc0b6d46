//! Shared helpers for the integration tests: vaults with cheap KDF parameters, a test schema,
//! and file scans (the deterministic random source is `syncvault_testkit::rng`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::json;
use syncvault::store::entities::{self, EntitySchema, Record};
use syncvault::store::{Store, StoreOptions};
use syncvault::vault::{self, CipherSuite, KdfParams, UnlockedVault, VaultConfig, VaultPaths};

pub const PASSWORD: &[u8] = b"correct horse battery";

pub fn config() -> VaultConfig {
    VaultConfig {
        kdf: KdfParams::FLOOR,
        cipher: test_cipher(),
        ..Default::default()
    }
}

/// The page cipher the store tests run with: `SYNCVAULT_TEST_CIPHER=xchacha|xaes` (scripts/test
/// runs them once per cipher), else what this CPU prefers.
pub fn test_cipher() -> Option<CipherSuite> {
    match std::env::var("SYNCVAULT_TEST_CIPHER").as_deref() {
        Ok("xchacha") => Some(CipherSuite::XChaCha20Poly1305),
        Ok("xaes") => Some(CipherSuite::Xaes256Gcm),
        Ok(other) => panic!("SYNCVAULT_TEST_CIPHER={other}: expected xchacha or xaes"),
        Err(_) => None,
    }
}

pub fn new_vault(dir: &Path) -> (VaultPaths, UnlockedVault) {
    let paths = VaultPaths::new(dir);
    let unlocked = vault::create(&paths, PASSWORD, PASSWORD, &config()).unwrap();
    (paths, unlocked)
}

pub fn open(paths: &VaultPaths, vault: &UnlockedVault) -> Store {
    Store::open(&paths.database(), vault, &StoreOptions::default()).unwrap()
}

pub fn note_schema() -> EntitySchema {
    serde_json::from_value(json!({
        "name": "note",
        "fields": [
            {"name": "title", "type": "text", "searchable": true},
            {"name": "body", "type": "text", "searchable": true},
            {"name": "secret", "type": "text"},
            {"name": "n", "type": "integer"}
        ]
    }))
    .unwrap()
}

pub fn note(id: &str, title: &str, body: &str, secret: &str, n: i64) -> Record {
    let fields = json!({"title": title, "body": body, "secret": secret, "n": n});
    Record::new(id, 1, fields.as_object().unwrap().clone())
}

pub fn put(store: &Store, record: &Record) {
    entities::upsert(store.conn(), "note", record).unwrap();
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path);
            }
        }
    }
    hits
}

/// Copies the vault directory as it is right now: a crash image when a connection is open.
pub fn snapshot(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Where a child test process finds its vault directory (see [`spawn_child_test`]).
pub const CHILD_DIR_ENV: &str = "SYNCVAULT_TEST_CHILD_DIR";

/// Re-runs this test binary as a separate process that executes only `test` on `dir` (which
/// the child reads from [`CHILD_DIR_ENV`]), with its stdout piped: a writer the parent can kill -9.
pub fn spawn_child_test(test: &str, dir: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

pub mod oidc_node;
#[cfg(feature = "uniffi")]
pub mod org;
