//! The offline-password policy: checked when a password is set or changed, never at unlock (an
//! old password that predates a stricter policy must still open the vault).

use zeroize::Zeroizing;

/// Rules a new offline password must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters (Unicode scalar values, not bytes).
    pub min_length: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_length: 8 }
    }
}

/// A new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the two passwords do not match")]
    Mismatch,
    #[error("the password must be at least {min_length} characters")]
    TooShort { min_length: u32 },
    #[error("the password is not valid UTF-8")]
    NotUtf8,
}

impl PasswordPolicy {
    /// Checks the two entries of a new password. Mismatch is reported first: it is what the person
    /// most likely got wrong when both fields were typed blind.
    pub fn check(&self, password: &[u8], confirmation: &[u8]) -> Result<(), PolicyError> {
        if !constant_time_eq(password, confirmation) {
            return Err(PolicyError::Mismatch);
        }
        let text = std::str::from_utf8(password).map_err(|_| PolicyError::NotUtf8)?;
        // Count characters, not bytes, so "ääää" is four characters.
        let length = Zeroizing::new(text.chars().count());
        if (*length as u64) < u64::from(self.min_length) {
            return Err(PolicyError::TooShort {
                min_length: self.min_length,
            });
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_before_length() {
        let p = PasswordPolicy::default();
        assert_eq!(p.check(b"short", b"shorT"), Err(PolicyError::Mismatch));
        assert_eq!(
            p.check(b"long enough", b"long enough!"),
            Err(PolicyError::Mismatch)
        );
        assert_eq!(
            p.check(b"short", b"short"),
            Err(PolicyError::TooShort { min_length: 8 })
        );
        assert_eq!(p.check(b"exactly8", b"exactly8"), Ok(()));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let p = PasswordPolicy { min_length: 4 };
        let four = "äöüß".as_bytes();
        assert_eq!(p.check(four, four), Ok(()));
        let three = "äöü".as_bytes();
        assert_eq!(
            p.check(three, three),
            Err(PolicyError::TooShort { min_length: 4 })
        );
        assert_eq!(
            p.check(&[0xff, 0xfe, 0xfd, 0xfc], &[0xff, 0xfe, 0xfd, 0xfc]),
            Err(PolicyError::NotUtf8)
        );
    }
}
