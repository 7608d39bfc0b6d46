//! The failed-unlock counter, kept outside the encrypted database (which cannot be read without
//! the password). It is advanced and fsynced *before* the KDF runs, so killing the app during a
//! guess still counts the guess. Against a copied vault it is only advisory: the KDF cost is the
//! real defense (docs/security.md).

use std::path::Path;
use std::time::Duration;

use crate::fsio;

/// How many failures are tolerated and how unlocking slows down before the wipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// After this many consecutive failures the vault is crypto-erased.
    pub max_attempts: u32,
    /// Failures allowed without any delay.
    pub free_attempts: u32,
    /// Delay before the KDF on the first delayed attempt; doubles each further failure.
    pub base_delay: Duration,
    /// The delay never grows past this.
    pub max_delay: Duration,
}

impl Default for AttemptPolicy {
    fn default() -> Self {
        AttemptPolicy {
            max_attempts: 10,
            free_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl AttemptPolicy {
    /// The wait before attempt number `failures + 1`, given `failures` earlier failures.
    pub fn delay_before(&self, failures: u32) -> Duration {
        if failures < self.free_attempts {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free_attempts).min(16);
        self.base_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

/// Reads the number of consecutive failures; a missing file is zero.
pub(crate) fn read(path: &Path) -> std::io::Result<u32> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().unwrap_or_else(|_| {
            // Unparsable means damaged or edited: count from the threshold, not from zero.
            tracing::warn!("the failed-attempt counter is unreadable; treating it as 5");
            5
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Durably records `failures`.
pub(crate) fn write(path: &Path, failures: u32) -> std::io::Result<()> {
    fsio::write_atomic(path, format!("{failures}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_escalates_after_free_attempts_and_is_capped() {
        let p = AttemptPolicy::default();
        assert_eq!(p.delay_before(0), Duration::ZERO);
        assert_eq!(p.delay_before(4), Duration::ZERO);
        assert_eq!(p.delay_before(5), Duration::from_secs(1));
        assert_eq!(p.delay_before(6), Duration::from_secs(2));
        assert_eq!(p.delay_before(8), Duration::from_secs(8));
        assert_eq!(p.delay_before(9), Duration::from_secs(16));
        assert_eq!(p.delay_before(10), Duration::from_secs(30));
        assert_eq!(p.delay_before(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn persists_and_tolerates_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attempts");
        assert_eq!(read(&path).unwrap(), 0);
        write(&path, 3).unwrap();
        assert_eq!(read(&path).unwrap(), 3);
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(read(&path).unwrap(), 5);
    }
}
