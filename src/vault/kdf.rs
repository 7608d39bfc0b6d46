//! Offline password -> key-encryption key, with Argon2id.
//!
//! Parameters travel in the vault header, so they are checked against a floor and a ceiling
//! *before* the KDF runs: a tampered header can neither make unlocking trivially cheap for an
//! attacker's benefit nor make the device allocate gigabytes.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use zeroize::{Zeroize, Zeroizing};

/// Argon2id cost parameters as stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// Default for new vaults: 64 MiB, 3 passes, 4 lanes (about 120 ms on a desktop core pair).
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
    };
    /// The least we accept (OWASP's Argon2id minimum); for constrained devices.
    pub const FLOOR: KdfParams = KdfParams {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };
    /// The most we run: protects the device from a header that asks for absurd work.
    pub const CEILING: KdfParams = KdfParams {
        m_kib: 1024 * 1024,
        t: 16,
        p: 16,
    };

    /// Whether these parameters lie between [`FLOOR`](Self::FLOOR) and [`CEILING`](Self::CEILING).
    pub fn in_range(&self) -> bool {
        (Self::FLOOR.m_kib..=Self::CEILING.m_kib).contains(&self.m_kib)
            && (Self::FLOOR.t..=Self::CEILING.t).contains(&self.t)
            && (Self::FLOOR.p..=Self::CEILING.p).contains(&self.p)
            && self.m_kib >= 8 * self.p
    }
}

/// The KDF could not run with these inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    #[error("KDF parameters out of the allowed range: {0:?}")]
    OutOfRange(KdfParams),
    #[error("argon2 refused its inputs: {0}")]
    Argon2(String),
}

/// Derives the 32-byte KEK. The memory matrix is a buffer we own and wipe afterwards (argon2's
/// own `zeroize` feature wipes only the first and last blocks).
pub fn derive_kek(
    password: &[u8],
    salt: &[u8; 16],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KdfError> {
    if !params.in_range() {
        return Err(KdfError::OutOfRange(params));
    }
    let argon_params = Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| KdfError::Argon2(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut memory = vec![Block::default(); params.m_kib as usize];
    let mut kek = Zeroizing::new([0u8; 32]);
    let result = argon.hash_password_into_with_memory(password, salt, kek.as_mut(), &mut memory);
    memory.iter_mut().for_each(Zeroize::zeroize);
    result.map_err(|e| KdfError::Argon2(e.to_string()))?;
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_enforced_before_running() {
        assert!(KdfParams::DEFAULT.in_range());
        assert!(KdfParams::FLOOR.in_range());
        assert!(KdfParams::CEILING.in_range());
        let too_cheap = KdfParams {
            m_kib: 1024,
            t: 1,
            p: 1,
        };
        assert_eq!(
            derive_kek(b"pw", &[0; 16], too_cheap),
            Err(KdfError::OutOfRange(too_cheap))
        );
        // Refused instantly: a 4 TiB request would otherwise abort the process.
        let absurd = KdfParams {
            m_kib: u32::MAX,
            t: 3,
            p: 4,
        };
        assert_eq!(
            derive_kek(b"pw", &[0; 16], absurd),
            Err(KdfError::OutOfRange(absurd))
        );
        let too_many_passes = KdfParams {
            t: 17,
            ..KdfParams::FLOOR
        };
        assert!(!too_many_passes.in_range());
    }

    #[test]
    fn deterministic_and_salted() {
        let a = derive_kek(b"password", &[1; 16], KdfParams::FLOOR).unwrap();
        let b = derive_kek(b"password", &[1; 16], KdfParams::FLOOR).unwrap();
        let c = derive_kek(b"password", &[2; 16], KdfParams::FLOOR).unwrap();
        let d = derive_kek(b"passwore", &[1; 16], KdfParams::FLOOR).unwrap();
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
        assert_ne!(*a, *d);
    }
}
