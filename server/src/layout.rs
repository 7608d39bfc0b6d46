//! Which layout of its databases this binary writes, and the refusal to start on a newer one:
//! each SQLite file carries its layout version in `PRAGMA user_version`, stamped after its
//! migrations run at start. A file stamped by a newer binary is refused before anything opens it
//! for writing, so a downgrade never half-migrates it (docs/deploy.md, "Upgrading").

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// `admin.db`'s layout: 1 is the first stamped one (users with business units, devices,
/// sessions); unstamped files (0) are migrated to it.
pub const ADMIN_DB: i64 = 1;

/// `org.db`'s layout: 1 is the first stamped one (versioned records, cursors, scopes).
pub const ORG_DB: i64 = 1;

/// The layout version a database file carries; 0 when it has none or does not exist.
fn stamped(path: &Path) -> Result<i64, String> {
    if !path.exists() {
        return Ok(0);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Refuses a data directory whose databases a newer binary wrote.
pub fn check(dir: &Path) -> Result<(), String> {
    for (file, known) in [("admin.db", ADMIN_DB), ("org.db", ORG_DB)] {
        let path = dir.join(file);
        let found = stamped(&path)?;
        if found > known {
            return Err(format!(
                "{} has layout version {found}, written by a newer syncvault; this binary knows \
                 up to {known}. Run the newer binary (or restore a backup made for this one); \
                 nothing was changed",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Records that `conn`'s migrations to `version` ran (after they committed).
pub fn stamp(conn: &Connection, version: i64) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "user_version", version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(dir.path()), Ok(()), "an empty directory starts");
        let path = dir.path().join("org.db");
        let conn = Connection::open(&path).unwrap();
        stamp(&conn, ORG_DB).unwrap();
        assert_eq!(check(dir.path()), Ok(()), "this binary's own layout starts");
        stamp(&conn, ORG_DB + 1).unwrap();
        let refused = check(dir.path()).unwrap_err();
        assert!(refused.contains("newer syncvault"), "{refused}");
        assert_eq!(stamped(&path), Ok(ORG_DB + 1));
    }
}
