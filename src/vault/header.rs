//! The vault header file: which KDF and parameters, the salt, and the database key (DEK) wrapped
//! under the password-derived key (KEK).
//!
//! Layout (all integers little-endian):
//! ```text
//! prefix  magic "SyncVlt\0" (8) | version u16 = 1 | vault id (16) | slot count u8
//! slot    kind u8 | kdf id u8 | m_kib u32 | t u32 | p u32 | salt (16) | nonce (24) | wrapped DEK (32 + 16 tag)
//! trailer BLAKE2b-256 of everything before it
//! ```
//! A slot's DEK is sealed with XChaCha20-Poly1305; its associated data is the prefix plus the
//! slot's bytes up to the nonce, so no parameter, salt or slot can be changed without the unwrap
//! failing. A wrong password is an AEAD failure: no password hash is stored. The trailer only
//! tells accidental damage (`Corrupted`) from a wrong password; it is not a security boundary.

use blake2::{Blake2b, Digest, digest::consts::U32};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::kdf::{KdfError, KdfParams, derive_kek};

const MAGIC: &[u8; 8] = b"SyncVlt\0";
const VERSION: u16 = 1;
const PREFIX_LEN: usize = 8 + 2 + 16 + 1;
const SLOT_AD_LEN: usize = 1 + 1 + 4 + 4 + 4 + 16 + 24;
const WRAPPED_LEN: usize = 32 + 16;
const SLOT_LEN: usize = SLOT_AD_LEN + WRAPPED_LEN;
const TRAILER_LEN: usize = 32;
const KDF_ARGON2ID_13: u8 = 1;
const MAX_SLOTS: usize = 4;

/// The database encryption key, 32 bytes, wiped when dropped.
pub type Dek = Zeroizing<[u8; 32]>;

/// What unlocks a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// The offline password through Argon2id.
    Password = 1,
}

/// One way to unwrap the DEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub kind: SlotKind,
    pub params: KdfParams,
    pub salt: [u8; 16],
    pub nonce: [u8; 24],
    pub wrapped: [u8; WRAPPED_LEN],
}

/// The parsed header file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Random id of this vault; the database binds its pages to it.
    pub vault_id: [u8; 16],
    pub slots: Vec<Slot>,
}

/// Why a header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the vault header is damaged: {0}")]
    Corrupted(&'static str),
    #[error("the vault header has version {0}, which this build does not know")]
    UnsupportedVersion(u16),
    #[error("the vault header asks for KDF parameters outside the allowed range")]
    ParamsOutOfRange,
    #[error("wrong password")]
    WrongPassword,
    #[error(transparent)]
    Kdf(#[from] KdfError),
}

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the OS random number generator must work");
    buf
}

impl Header {
    /// A new vault: fresh id and one password slot wrapping `dek`.
    pub fn create(dek: &Dek, password: &[u8], params: KdfParams) -> Result<Header, HeaderError> {
        let mut header = Header {
            vault_id: random_bytes(),
            slots: Vec::new(),
        };
        header.set_password(dek, password, params)?;
        Ok(header)
    }

    /// Replaces (or adds) the password slot with a new salt and nonce: a password change or a
    /// parameter upgrade re-wraps the same DEK; the database is untouched.
    pub fn set_password(
        &mut self,
        dek: &Dek,
        password: &[u8],
        params: KdfParams,
    ) -> Result<(), HeaderError> {
        self.slots.retain(|s| s.kind != SlotKind::Password);
        self.slots.insert(
            0,
            Slot {
                kind: SlotKind::Password,
                params,
                salt: random_bytes(),
                nonce: random_bytes(),
                wrapped: [0; WRAPPED_LEN],
            },
        );
        // The AD covers the slot count, so every slot is sealed again under its own key; today
        // there is only the password slot.
        let ad = self.slot_ad(0);
        let slot = &mut self.slots[0];
        let kek = derive_kek(password, &slot.salt, params)?;
        let sealed = XChaCha20Poly1305::new(kek.as_ref().into())
            .encrypt(
                XNonce::from_slice(&slot.nonce),
                Payload {
                    msg: dek.as_ref(),
                    aad: &ad,
                },
            )
            .map_err(|_| HeaderError::Corrupted("sealing failed"))?;
        slot.wrapped.copy_from_slice(&sealed);
        Ok(())
    }

    /// The password slot's KDF parameters (to decide on an upgrade).
    pub fn password_params(&self) -> Option<KdfParams> {
        self.password_slot().map(|(_, s)| s.params)
    }

    fn password_slot(&self) -> Option<(usize, &Slot)> {
        self.slots
            .iter()
            .enumerate()
            .find(|(_, s)| s.kind == SlotKind::Password)
    }

    /// Runs the KDF and unwraps the DEK; `WrongPassword` when the AEAD rejects it.
    pub fn unwrap_with_password(&self, password: &[u8]) -> Result<Dek, HeaderError> {
        let (index, slot) = self
            .password_slot()
            .ok_or(HeaderError::Corrupted("no password slot"))?;
        let kek = derive_kek(password, &slot.salt, slot.params)?;
        let ad = self.slot_ad(index);
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new(kek.as_ref().into())
                .decrypt(
                    XNonce::from_slice(&slot.nonce),
                    Payload {
                        msg: &slot.wrapped,
                        aad: &ad,
                    },
                )
                .map_err(|_| HeaderError::WrongPassword)?,
        );
        let mut dek = Zeroizing::new([0u8; 32]);
        dek.copy_from_slice(&plain);
        Ok(dek)
    }

    fn prefix(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PREFIX_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.vault_id);
        out.push(self.slots.len() as u8);
        out
    }

    fn slot_ad(&self, index: usize) -> Vec<u8> {
        let mut ad = self.prefix();
        encode_slot_ad(&self.slots[index], &mut ad);
        ad
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.prefix();
        for slot in &self.slots {
            encode_slot_ad(slot, &mut out);
            out.extend_from_slice(&slot.wrapped);
        }
        let digest = checksum(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses and checks a header file. Parameters are range-checked here, before any KDF.
    pub fn decode(bytes: &[u8]) -> Result<Header, HeaderError> {
        if bytes.len() < PREFIX_LEN + TRAILER_LEN || &bytes[..8] != MAGIC {
            return Err(HeaderError::Corrupted("not a syncvault header"));
        }
        let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
        if checksum(body) != trailer {
            return Err(HeaderError::Corrupted("checksum mismatch"));
        }
        let mut r = Reader { bytes: body, at: 8 };
        let version = u16::from_le_bytes(r.take::<2>());
        if version != VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let vault_id = r.take::<16>();
        let count = r.take::<1>()[0] as usize;
        if count == 0 || count > MAX_SLOTS || body.len() != PREFIX_LEN + count * SLOT_LEN {
            return Err(HeaderError::Corrupted("bad slot count or length"));
        }
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = match r.take::<1>()[0] {
                1 => SlotKind::Password,
                _ => return Err(HeaderError::Corrupted("unknown slot kind")),
            };
            if r.take::<1>()[0] != KDF_ARGON2ID_13 {
                return Err(HeaderError::Corrupted("unknown KDF"));
            }
            let params = KdfParams {
                m_kib: u32::from_le_bytes(r.take()),
                t: u32::from_le_bytes(r.take()),
                p: u32::from_le_bytes(r.take()),
            };
            if !params.in_range() {
                return Err(HeaderError::ParamsOutOfRange);
            }
            slots.push(Slot {
                kind,
                params,
                salt: r.take(),
                nonce: r.take(),
                wrapped: r.take(),
            });
        }
        Ok(Header { vault_id, slots })
    }
}

fn encode_slot_ad(slot: &Slot, out: &mut Vec<u8>) {
    out.push(slot.kind as u8);
    out.push(KDF_ARGON2ID_13);
    out.extend_from_slice(&slot.params.m_kib.to_le_bytes());
    out.extend_from_slice(&slot.params.t.to_le_bytes());
    out.extend_from_slice(&slot.params.p.to_le_bytes());
    out.extend_from_slice(&slot.salt);
    out.extend_from_slice(&slot.nonce);
}

fn checksum(bytes: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(bytes).into()
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// Lengths were checked up front, so this cannot run past the end.
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let out: [u8; N] = self.bytes[self.at..self.at + N]
            .try_into()
            .expect("length checked");
        self.at += N;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dek() -> Dek {
        Zeroizing::new(random_bytes())
    }

    #[test]
    fn round_trip_and_unwrap() {
        let key = dek();
        let header = Header::create(&key, b"correct horse", KdfParams::FLOOR).unwrap();
        let decoded = Header::decode(&header.encode()).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(
            *decoded.unwrap_with_password(b"correct horse").unwrap(),
            *key
        );
        assert_eq!(
            decoded.unwrap_with_password(b"wrong horse"),
            Err(HeaderError::WrongPassword)
        );
    }

    #[test]
    fn rewrap_keeps_the_dek_and_changes_everything_else() {
        let key = dek();
        let mut header = Header::create(&key, b"first password", KdfParams::FLOOR).unwrap();
        let before = header.clone();
        header
            .set_password(&key, b"second password", KdfParams::FLOOR)
            .unwrap();
        assert_eq!(header.slots.len(), 1);
        assert_ne!(header.slots[0].salt, before.slots[0].salt);
        assert_eq!(
            header.unwrap_with_password(b"first password"),
            Err(HeaderError::WrongPassword)
        );
        assert_eq!(
            *header.unwrap_with_password(b"second password").unwrap(),
            *key
        );
    }

    #[test]
    fn every_byte_matters() {
        let key = dek();
        let bytes = Header::create(&key, b"password!", KdfParams::FLOOR)
            .unwrap()
            .encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            match Header::decode(&bad) {
                Err(_) => {}
                Ok(h) => panic!("flip at {i} decoded: {h:?}"),
            }
        }
        assert!(matches!(
            Header::decode(&bytes[..bytes.len() - 1]),
            Err(HeaderError::Corrupted(_))
        ));
        assert!(matches!(
            Header::decode(b""),
            Err(HeaderError::Corrupted(_))
        ));
    }

    #[test]
    fn tampered_params_refused_before_kdf_even_with_valid_checksum() {
        let key = dek();
        let mut header = Header::create(&key, b"password!", KdfParams::FLOOR).unwrap();
        header.slots[0].params = KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        };
        assert_eq!(
            Header::decode(&header.encode()),
            Err(HeaderError::ParamsOutOfRange)
        );
        header.slots[0].params = KdfParams {
            m_kib: 4 * 1024 * 1024,
            t: 3,
            p: 4,
        };
        assert_eq!(
            Header::decode(&header.encode()),
            Err(HeaderError::ParamsOutOfRange)
        );
    }

    #[test]
    fn in_range_param_change_with_recomputed_checksum_is_a_wrong_password() {
        // An attacker can recompute the checksum; the AEAD's associated data still catches it.
        let key = dek();
        let mut header = Header::create(&key, b"password!", KdfParams::FLOOR).unwrap();
        header.slots[0].params.t += 1;
        let decoded = Header::decode(&header.encode()).unwrap();
        assert_eq!(
            decoded.unwrap_with_password(b"password!"),
            Err(HeaderError::WrongPassword)
        );
    }

    #[test]
    fn unknown_version_is_named() {
        let key = dek();
        let mut bytes = Header::create(&key, b"password!", KdfParams::FLOOR)
            .unwrap()
            .encode();
        bytes[8] = 9;
        let body_len = bytes.len() - TRAILER_LEN;
        let digest = checksum(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&digest);
        assert_eq!(
            Header::decode(&bytes),
            Err(HeaderError::UnsupportedVersion(9))
        );
    }
}
