use syncvault::store::{Store, StoreOptions};
use syncvault::vault::{self, KdfParams, VaultConfig, VaultPaths};

#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let paths = VaultPaths::new(dir.path());
    let config = VaultConfig { kdf: KdfParams::FLOOR, ..Default::default() };
    let v = vault::create(&paths, b"password1", b"password1", &config).unwrap();
    {
        let store = Store::open(&paths.database(), &v, &StoreOptions::default()).unwrap();
        store.conn().execute_batch("CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('MARKER-abc-123');").unwrap();
        let n: i64 = store.conn().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }
    let store = Store::open(&paths.database(), &v, &StoreOptions::default()).unwrap();
    let x: String = store.conn().query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, "MARKER-abc-123");
    store.integrity_check().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        let b = std::fs::read(&p).unwrap();
        println!("{} {}", p.display(), b.len());
        assert!(!b.windows(14).any(|w| w == b"MARKER-abc-123"), "{}", p.display());
    }
}
