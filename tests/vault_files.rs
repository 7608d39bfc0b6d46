//! The account directory is private on Unix whatever the umask: the directory and its tmp/ and
//! attachments/ 0700, the header, the attempt counter, the database and its -wal and -shm 0600. Another local user cannot copy
//! them for an offline attack on the password.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;

unsafe extern "C" {
    fn umask(mask: u32) -> u32;
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_account_directory_and_every_file_are_private() {
    // The most permissive umask: nothing is masked away.
    // SAFETY: umask only changes this process's file-creation mask.
    let previous = unsafe { umask(0) };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("account");
    let (paths, vault) = common::new_vault(&dir);
    let store = common::open(&paths, &vault);
    store
        .conn()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    syncvault::store::entities::apply_schema(store.conn(), &[common::note_schema()]).unwrap();
    common::put(&store, &common::note("n1", "title", "body", "secret", 1));
    syncvault::store::attachments::files_dir(&dir).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    unsafe { umask(previous) };
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for needed in ["vault.header", "store.db", "store.db-wal", "store.db-shm"] {
        assert!(names.iter().any(|n| n == needed), "{needed} in {names:?}");
    }
    // The temporary-file and attachment directories are private like the account's.
    for file in &files {
        let private = if file.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(file), private, "{}", file.display());
    }
    for dir in [
        syncvault::store::TEMP_DIR,
        syncvault::store::attachments::DIR,
    ] {
        assert!(names.iter().any(|n| n == dir), "{dir} in {names:?}");
    }
    drop(store);
}
