//! Key-value settings of the account kept inside the encrypted store (organization URL, user mode,
//! sync cursor): they describe the person's organization, so they are as private as the data.

use rusqlite::{Connection, OptionalExtension};

use super::{SqlResultExt, StoreError};

/// Reads a setting.
pub fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .classified()
}

/// Writes a setting (in the caller's transaction, if any).
pub fn set(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .classified()?;
    Ok(())
}

/// Removes a setting.
pub fn remove(conn: &Connection, key: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM meta WHERE key = ?1", [key])
        .classified()?;
    Ok(())
}
