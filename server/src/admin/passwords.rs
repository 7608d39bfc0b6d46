//! Organization passwords (credentials user mode, the System Administrator's console password)
//! as Argon2id PHC strings, never in clear.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// A hash of a password nobody has: verifying against it costs what a real check costs.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3luY3ZhdWx0LWR1bW15$4ZkKsNjyHOmB3w8+8s0mD7bP3WJtjvQ0h4R3QyZr1tA";

/// Hashes a password with a fresh salt (Argon2id, the crate's defaults: 19 MiB, t=2, p=1).
pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 hashes any password")
        .to_string()
}

/// Checks a password against a stored hash.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random password for the first System Administrator (printed once).
pub fn random_password() -> String {
    use base64::Engine;
    let mut b = [0u8; 18];
    rand::fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_never_hold_the_password() {
        let h = hash("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
        assert!(!verify("x", DUMMY_HASH));
    }
}
