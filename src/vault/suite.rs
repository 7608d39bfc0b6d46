//! Which AEAD seals the database pages of a vault, chosen once when the vault is created and
//! recorded in its header (docs/security.md). Both are read forever.

/// The page cipher of a vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuite {
    /// XChaCha20-Poly1305: fast in software; for CPUs without AES instructions, and every vault
    /// created before the choice existed (header v2).
    XChaCha20Poly1305,
    /// XAES-256-GCM (C2SP): AES-256-GCM under a subkey derived per 96-bit nonce prefix; several
    /// times faster where the CPU has AES and carry-less multiply instructions, and built from
    /// FIPS-approved primitives.
    Xaes256Gcm,
}

impl CipherSuite {
    /// Every suite a vault can have (both are read forever).
    pub const ALL: [CipherSuite; 2] = [CipherSuite::XChaCha20Poly1305, CipherSuite::Xaes256Gcm];

    /// The suite a new vault gets on this CPU.
    pub fn preferred() -> CipherSuite {
        if has_aes_instructions() {
            CipherSuite::Xaes256Gcm
        } else {
            CipherSuite::XChaCha20Poly1305
        }
    }

    /// Its byte in the vault header.
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::XChaCha20Poly1305 => 1,
            CipherSuite::Xaes256Gcm => 2,
        }
    }

    pub fn from_id(id: u8) -> Option<CipherSuite> {
        match id {
            1 => Some(CipherSuite::XChaCha20Poly1305),
            2 => Some(CipherSuite::Xaes256Gcm),
            _ => None,
        }
    }

    /// Its name, for benchmarks and diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            CipherSuite::XChaCha20Poly1305 => "XChaCha20-Poly1305",
            CipherSuite::Xaes256Gcm => "XAES-256-GCM",
        }
    }
}

/// AES rounds and GHASH's carry-less multiply in hardware (ring uses both when present).
fn has_aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_refused() {
        for s in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_id(s.id()), Some(s));
        }
        assert_eq!(CipherSuite::from_id(0), None);
        assert_eq!(CipherSuite::from_id(3), None);
    }
}
