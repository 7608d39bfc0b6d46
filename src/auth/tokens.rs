//! Tokens at rest (inside the encrypted store) and the refresh rule: refresh ahead of expiry by a
//! margin that scales with the token's lifetime, one refresh at a time, and the rotated refresh
//! token persisted (committed) before the new access token is handed out, so a crash never leaves
//! us holding only a revoked refresh token. Without a refresh token the access token is used until
//! it expires; then the person signs in again.

use rusqlite::{Connection, OptionalExtension};

use super::TokenSet;
use crate::store::{SqlResultExt, StoreError};

/// Refresh when the access token has less than this left (or a quarter of its lifetime, when
/// that is shorter: a 30-second token is not due the moment it arrives).
pub const REFRESH_AHEAD_SECS: u64 = 60;

/// Saves a token set (replacing the previous one) in one transaction.
pub fn save(conn: &Connection, tokens: &TokenSet) -> Result<(), StoreError> {
    conn.execute_batch("SAVEPOINT save_tokens").classified()?;
    let result = (|| {
        conn.execute("DELETE FROM tokens", []).classified()?;
        let put =
            |kind: &str, value: Option<&str>, expires: Option<u64>| -> Result<(), StoreError> {
                if let Some(v) = value {
                    conn.execute(
                        "INSERT INTO tokens (kind, value, expires_at) VALUES (?1, ?2, ?3)",
                        (kind, v, expires.map(|e| e as i64)),
                    )
                    .classified()?;
                }
                Ok(())
            };
        put("access", Some(&tokens.access_token), tokens.expires_at)?;
        put("refresh", tokens.refresh_token.as_deref(), None)?;
        put("id", tokens.id_token.as_deref(), None)?;
        put("email", tokens.email.as_deref(), None)?;
        put("subject", tokens.subject.as_deref(), None)?;
        put("name", tokens.name.as_deref(), None)?;
        let issued = tokens.issued_at.map(|t| t.to_string());
        put("issued_at", issued.as_deref(), None)?;
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("RELEASE save_tokens").classified(),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO save_tokens; RELEASE save_tokens");
            Err(e)
        }
    }
}

/// The stored tokens, if signed in.
pub fn load(conn: &Connection) -> Result<Option<TokenSet>, StoreError> {
    let get = |kind: &str| -> Result<Option<(String, Option<i64>)>, StoreError> {
        conn.query_row(
            "SELECT value, expires_at FROM tokens WHERE kind = ?1",
            [kind],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .classified()
    };
    let Some((access_token, expires_at)) = get("access")? else {
        return Ok(None);
    };
    Ok(Some(TokenSet {
        access_token,
        refresh_token: get("refresh")?.map(|v| v.0),
        id_token: get("id")?.map(|v| v.0),
        expires_at: expires_at.map(|e| e as u64),
        subject: get("subject")?.map(|v| v.0),
        email: get("email")?.map(|v| v.0),
        name: get("name")?.map(|v| v.0),
        issued_at: get("issued_at")?.and_then(|v| v.0.parse().ok()),
    }))
}

/// Forgets the tokens (sign-out).
pub fn clear(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM tokens", [])
        .classified()
        .map(|_| ())
}

/// How long before expiry `tokens` is refreshed: a minute, or a quarter of a shorter lifetime;
/// none without a refresh token (the access token is used until it expires).
pub fn refresh_margin(tokens: &TokenSet) -> u64 {
    if tokens.refresh_token.is_none() {
        return 0;
    }
    match (tokens.issued_at, tokens.expires_at) {
        (Some(issued), Some(expires)) if expires > issued => {
            REFRESH_AHEAD_SECS.min((expires - issued) / 4)
        }
        _ => REFRESH_AHEAD_SECS,
    }
}

/// Whether `tokens` needs a refresh (or, without a refresh token, a new sign-in) at `now` (unix
/// seconds).
pub fn needs_refresh(tokens: &TokenSet, now: u64) -> bool {
    tokens
        .expires_at
        .is_some_and(|exp| exp <= now + refresh_margin(tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(issued: u64, lifetime: u64, refresh: bool) -> TokenSet {
        TokenSet {
            access_token: "a".into(),
            refresh_token: refresh.then(|| "r".into()),
            id_token: None,
            expires_at: Some(issued + lifetime),
            issued_at: Some(issued),
            subject: None,
            email: None,
            name: None,
        }
    }

    #[test]
    fn the_margin_scales_with_the_lifetime() {
        // An hour-long token is refreshed a minute early.
        let t = tokens(1000, 3600, true);
        assert!(!needs_refresh(&t, 1000 + 3600 - 61));
        assert!(needs_refresh(&t, 1000 + 3600 - 60));
        // A 30-second token is usable when it arrives, and due in its last quarter.
        let t = tokens(1000, 30, true);
        assert!(!needs_refresh(&t, 1000));
        assert!(!needs_refresh(&t, 1022));
        assert!(needs_refresh(&t, 1023));
        // Without a refresh token: used until it expires.
        let t = tokens(1000, 30, false);
        assert!(!needs_refresh(&t, 1029));
        assert!(needs_refresh(&t, 1030));
    }
}
