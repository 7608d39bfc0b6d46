//! Both page ciphers on real files: a vault of each kind is created, written, closed, unlocked
//! and read; the kind is in the header (a vault never changes cipher); and a vault from before
//! the choice (header version 2, XChaCha20-Poly1305 pages) opens as it always did.

mod common;

use common::*;
use syncvault::store::{Store, StoreOptions};
use syncvault::vault::{self, CipherSuite, Header, KdfParams, VaultConfig, VaultPaths};

fn config_with(cipher: CipherSuite) -> VaultConfig {
    VaultConfig {
        cipher: Some(cipher),
        ..config()
    }
}

fn write_rows(store: &Store, n: i64) {
    store
        .conn()
        .execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    for i in 0..n {
        store
            .conn()
            .execute(
                "INSERT INTO t (v) VALUES (?1)",
                [format!("row {i} of the test")],
            )
            .unwrap();
    }
}

fn count(store: &Store) -> i64 {
    store
        .conn()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_vault_of_each_cipher_keeps_it_and_reads_back() {
    for cipher in CipherSuite::ALL {
        let dir = tempfile::tempdir().unwrap();
        let paths = VaultPaths::new(dir.path().join("vault"));
        let created = vault::create(&paths, PASSWORD, PASSWORD, &config_with(cipher)).unwrap();
        assert_eq!(created.cipher, cipher);
        let store = Store::open(&paths.database(), &created, &StoreOptions::default()).unwrap();
        write_rows(&store, 2000);
        drop(store);
        // Unlocking with a config that prefers the other cipher changes nothing.
        let other = CipherSuite::ALL.into_iter().find(|c| *c != cipher).unwrap();
        let unlocked = vault::unlock(&paths, PASSWORD, &config_with(other)).unwrap();
        assert_eq!(unlocked.cipher, cipher, "the header decides");
        let store = Store::open(&paths.database(), &unlocked, &StoreOptions::default()).unwrap();
        assert_eq!(count(&store), 2000);
        write_rows(&store, 10);
        drop(store);
        let unlocked = vault::unlock(&paths, PASSWORD, &config()).unwrap();
        let store = Store::open(&paths.database(), &unlocked, &StoreOptions::default()).unwrap();
        assert_eq!(count(&store), 2010);
        // The pages really are the other construction's: opened under the wrong suite, the
        // database refuses.
        drop(store);
        let mut wrong = vault::unlock(&paths, PASSWORD, &config()).unwrap();
        wrong.cipher = other;
        assert!(Store::open(&paths.database(), &wrong, &StoreOptions::default()).is_err());
    }
}

#[test]
fn a_vault_from_before_the_choice_opens_as_xchacha() {
    let dir = tempfile::tempdir().unwrap();
    let paths = VaultPaths::new(dir.path().join("vault"));
    let created = vault::create(
        &paths,
        PASSWORD,
        PASSWORD,
        &config_with(CipherSuite::XChaCha20Poly1305),
    )
    .unwrap();
    let store = Store::open(&paths.database(), &created, &StoreOptions::default()).unwrap();
    write_rows(&store, 500);
    drop(store);
    // The header as a version-2 build wrote it: no cipher byte, same id and key.
    let mut v2 = Header {
        version: 2,
        vault_id: created.vault_id,
        cipher: CipherSuite::XChaCha20Poly1305,
        slots: Vec::new(),
    };
    v2.set_password(&created.dek, PASSWORD, KdfParams::FLOOR)
        .unwrap();
    std::fs::write(paths.header(), v2.encode()).unwrap();

    let unlocked = vault::unlock(&paths, PASSWORD, &config()).unwrap();
    assert_eq!(unlocked.cipher, CipherSuite::XChaCha20Poly1305);
    let store = Store::open(&paths.database(), &unlocked, &StoreOptions::default()).unwrap();
    assert_eq!(count(&store), 500);
    let header = Header::decode(&std::fs::read(paths.header()).unwrap()).unwrap();
    assert_eq!(header.version, 2, "unlocking does not rewrite the format");
}
