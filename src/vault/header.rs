//! The vault header file: the database key (DEK) wrapped once per *slot* — under the
//! password-derived key (KEK), and optionally under a secret the platform's key store protects
//! with biometrics.
//!
//! Layout (all integers little-endian):
//! ```text
//! prefix  magic "SyncVlt\0" (8) | version u16 = 3 | vault id (16) | page cipher u8
//!         | slot count u8
//! slot    kind u8 | kdf id u8 | m_kib u32 | t u32 | p u32 | salt or key id (16) | nonce (24)
//!         | sealed length u16 | sealed (platform slot: what the key store returned)
//!         | wrapped DEK (32 + 16 tag)
//! trailer BLAKE2b-256 of everything before it
//! ```
//! Version 2 (vaults made before the page cipher was a choice) has no page-cipher byte and means
//! XChaCha20-Poly1305; it is read, and written back as version 2, forever.
//!
//! A slot's DEK is sealed with XChaCha20-Poly1305; its associated data is the magic, version,
//! vault id and page cipher plus every byte of the slot before the wrapped DEK, so no parameter, salt or sealed
//! blob can be changed without the unwrap failing. Slots are sealed independently: one can be
//! added or removed without the others' secrets. A wrong password is an AEAD failure: no password
//! hash is stored. The trailer only tells accidental damage (`Corrupted`) from a wrong password;
//! it is not a security boundary.

use blake2::{Blake2b, Digest, digest::consts::U32};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::kdf::{KdfError, KdfParams, derive_kek};
use super::suite::CipherSuite;

const MAGIC: &[u8; 8] = b"SyncVlt\0";
/// The version new vaults get.
const VERSION: u16 = 3;
/// The version before the page-cipher byte (XChaCha20-Poly1305 pages).
const VERSION_2: u16 = 2;
/// The shortest prefix (version 2).
const PREFIX_LEN: usize = 8 + 2 + 16 + 1;
const WRAPPED_LEN: usize = 32 + 16;
const TRAILER_LEN: usize = 32;
const KDF_NONE: u8 = 0;
const KDF_ARGON2ID_13: u8 = 1;
const MAX_SLOTS: usize = 4;
/// A platform slot runs no KDF: its parameter fields are zero.
const NO_PARAMS: KdfParams = KdfParams {
    m_kib: 0,
    t: 0,
    p: 0,
};
/// Android Keystore's AES-GCM output for a 32-byte secret is ~60 bytes; leave room, refuse junk.
const MAX_SEALED_LEN: usize = 4096;

/// The database encryption key, 32 bytes, wiped when dropped.
pub type Dek = Zeroizing<[u8; 32]>;

/// What unlocks a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotKind {
    /// The offline password through Argon2id with these parameters and salt.
    Password { params: KdfParams, salt: [u8; 16] },
    /// A random 32-byte secret kept by the platform's key store (Keychain with biometry,
    /// Android Keystore with user authentication). `key_id` names the key there; `sealed` is
    /// what the key store gave back to keep (empty when it keeps the secret itself).
    Platform { key_id: [u8; 16], sealed: Vec<u8> },
}

/// One way to unwrap the DEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub kind: SlotKind,
    pub nonce: [u8; 24],
    pub wrapped: [u8; WRAPPED_LEN],
}

/// The parsed header file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version it was read with (kept: the slots' associated data binds it).
    pub version: u16,
    /// Random id of this vault; the database binds its pages to it.
    pub vault_id: [u8; 16],
    /// What seals the database pages.
    pub cipher: CipherSuite,
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
    #[error("the platform key store returned a secret that does not open this vault")]
    PlatformSecretRejected,
    #[error("no platform key slot in this vault")]
    NoPlatformSlot,
    #[error("the key store returned {0} bytes to keep; at most {MAX_SEALED_LEN} fit")]
    SealedTooLong(usize),
    #[error(transparent)]
    Kdf(#[from] KdfError),
}

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the OS random number generator must work");
    buf
}

/// The name of a platform slot's key in the platform key store: unique per enrollment.
pub fn platform_key_alias(key_id: &[u8; 16]) -> String {
    let hex: String = key_id.iter().map(|b| format!("{b:02x}")).collect();
    format!("syncvault-{hex}")
}

impl Header {
    /// A new vault: fresh id, its page cipher, and one password slot wrapping `dek`.
    pub fn create(
        dek: &Dek,
        password: &[u8],
        params: KdfParams,
        cipher: CipherSuite,
    ) -> Result<Header, HeaderError> {
        let mut header = Header {
            version: VERSION,
            vault_id: random_bytes(),
            cipher,
            slots: Vec::new(),
        };
        header.set_password(dek, password, params)?;
        Ok(header)
    }

    /// Replaces (or adds) the password slot with a new salt and nonce: a password change or a
    /// parameter upgrade re-wraps the same DEK; the database and other slots are untouched.
    pub fn set_password(
        &mut self,
        dek: &Dek,
        password: &[u8],
        params: KdfParams,
    ) -> Result<(), HeaderError> {
        let salt = random_bytes();
        let kek = derive_kek(password, &salt, params)?;
        self.slots
            .retain(|s| !matches!(s.kind, SlotKind::Password { .. }));
        let slot = self.seal_slot(SlotKind::Password { params, salt }, &kek, dek)?;
        self.slots.insert(0, slot);
        Ok(())
    }

    /// Replaces (or adds) the platform slot: `dek` wrapped under `secret`, which the platform
    /// key store protects under the alias of `key_id` and gave back as `sealed`.
    pub fn set_platform(
        &mut self,
        dek: &Dek,
        secret: &[u8; 32],
        key_id: [u8; 16],
        sealed: Vec<u8>,
    ) -> Result<(), HeaderError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(HeaderError::SealedTooLong(sealed.len()));
        }
        self.remove_platform();
        let slot = self.seal_slot(SlotKind::Platform { key_id, sealed }, secret, dek)?;
        self.slots.push(slot);
        Ok(())
    }

    /// Drops the platform slot; returns its key id so the key store's key can be deleted too.
    pub fn remove_platform(&mut self) -> Option<[u8; 16]> {
        let (key_id, _) = self.platform_slot()?;
        let key_id = *key_id;
        self.slots
            .retain(|s| !matches!(s.kind, SlotKind::Platform { .. }));
        Some(key_id)
    }

    /// The password slot's KDF parameters (to decide on an upgrade).
    pub fn password_params(&self) -> Option<KdfParams> {
        self.slots.iter().find_map(|s| match s.kind {
            SlotKind::Password { params, .. } => Some(params),
            SlotKind::Platform { .. } => None,
        })
    }

    /// The platform slot's key id and sealed secret, when biometric unlock is enabled.
    pub fn platform_slot(&self) -> Option<(&[u8; 16], &[u8])> {
        self.slots.iter().find_map(|s| match &s.kind {
            SlotKind::Platform { key_id, sealed } => Some((key_id, sealed.as_slice())),
            SlotKind::Password { .. } => None,
        })
    }

    /// Runs the KDF and unwraps the DEK; `WrongPassword` when the AEAD rejects it.
    pub fn unwrap_with_password(&self, password: &[u8]) -> Result<Dek, HeaderError> {
        let (slot, params, salt) = self
            .slots
            .iter()
            .find_map(|s| match &s.kind {
                SlotKind::Password { params, salt } => Some((s, *params, salt)),
                SlotKind::Platform { .. } => None,
            })
            .ok_or(HeaderError::Corrupted("no password slot"))?;
        let kek = derive_kek(password, salt, params)?;
        self.open_slot(slot, &kek).ok_or(HeaderError::WrongPassword)
    }

    /// Unwraps the DEK with the secret the platform key store gave back.
    pub fn unwrap_with_platform_secret(&self, secret: &[u8]) -> Result<Dek, HeaderError> {
        let slot = self
            .slots
            .iter()
            .find(|s| matches!(s.kind, SlotKind::Platform { .. }))
            .ok_or(HeaderError::NoPlatformSlot)?;
        let key: &[u8; 32] = secret
            .try_into()
            .map_err(|_| HeaderError::PlatformSecretRejected)?;
        self.open_slot(slot, key)
            .ok_or(HeaderError::PlatformSecretRejected)
    }

    fn seal_slot(&self, kind: SlotKind, key: &[u8; 32], dek: &Dek) -> Result<Slot, HeaderError> {
        let mut slot = Slot {
            kind,
            nonce: random_bytes(),
            wrapped: [0; WRAPPED_LEN],
        };
        let ad = self.slot_ad(&slot);
        let sealed = XChaCha20Poly1305::new(key.into())
            .encrypt(
                XNonce::from_slice(&slot.nonce),
                Payload {
                    msg: dek.as_ref(),
                    aad: &ad,
                },
            )
            .map_err(|_| HeaderError::Corrupted("sealing failed"))?;
        slot.wrapped.copy_from_slice(&sealed);
        Ok(slot)
    }

    fn open_slot(&self, slot: &Slot, key: &[u8; 32]) -> Option<Dek> {
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new(key.into())
                .decrypt(
                    XNonce::from_slice(&slot.nonce),
                    Payload {
                        msg: &slot.wrapped,
                        aad: &self.slot_ad(slot),
                    },
                )
                .ok()?,
        );
        let mut dek = Zeroizing::new([0u8; 32]);
        dek.copy_from_slice(&plain);
        Some(dek)
    }

    /// Magic, version, vault id and (from version 3) the page cipher: what every slot's
    /// associated data starts with.
    fn identity(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.vault_id);
        if self.version >= VERSION {
            out.push(self.cipher.id());
        }
    }

    fn slot_ad(&self, slot: &Slot) -> Vec<u8> {
        let mut ad = Vec::with_capacity(128);
        self.identity(&mut ad);
        encode_slot_ad(slot, &mut ad);
        ad
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.identity(&mut out);
        out.push(self.slots.len() as u8);
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
        let version = u16::from_le_bytes(r.take()?);
        if version != VERSION && version != VERSION_2 {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let vault_id = r.take()?;
        let cipher = if version == VERSION_2 {
            CipherSuite::XChaCha20Poly1305
        } else {
            let [id] = r.take()?;
            CipherSuite::from_id(id).ok_or(HeaderError::Corrupted("unknown page cipher"))?
        };
        let [count] = r.take()?;
        if count == 0 || count as usize > MAX_SLOTS {
            return Err(HeaderError::Corrupted("bad slot count"));
        }
        let mut slots = Vec::with_capacity(count as usize);
        for _ in 0..count {
            slots.push(decode_slot(&mut r)?);
        }
        if r.at != body.len() {
            return Err(HeaderError::Corrupted("bytes after the last slot"));
        }
        let passwords = slots
            .iter()
            .filter(|s| matches!(s.kind, SlotKind::Password { .. }))
            .count();
        if passwords != 1 || slots.len() - passwords > 1 {
            return Err(HeaderError::Corrupted(
                "a vault has one password slot and at most one platform slot",
            ));
        }
        Ok(Header {
            version,
            vault_id,
            cipher,
            slots,
        })
    }
}

fn decode_slot(r: &mut Reader<'_>) -> Result<Slot, HeaderError> {
    let [kind] = r.take()?;
    let [kdf] = r.take()?;
    let params = KdfParams {
        m_kib: u32::from_le_bytes(r.take()?),
        t: u32::from_le_bytes(r.take()?),
        p: u32::from_le_bytes(r.take()?),
    };
    let salt_or_id = r.take()?;
    let nonce = r.take()?;
    let sealed_len = u16::from_le_bytes(r.take()?) as usize;
    if sealed_len > MAX_SEALED_LEN {
        return Err(HeaderError::Corrupted("sealed secret too long"));
    }
    let sealed = r.take_slice(sealed_len)?.to_vec();
    let kind = match (kind, kdf) {
        (1, KDF_ARGON2ID_13) if sealed.is_empty() => {
            if !params.in_range() {
                return Err(HeaderError::ParamsOutOfRange);
            }
            SlotKind::Password {
                params,
                salt: salt_or_id,
            }
        }
        (2, KDF_NONE) if params == NO_PARAMS => SlotKind::Platform {
            key_id: salt_or_id,
            sealed,
        },
        (1 | 2, _) => return Err(HeaderError::Corrupted("slot fields do not fit its kind")),
        _ => return Err(HeaderError::Corrupted("unknown slot kind")),
    };
    Ok(Slot {
        kind,
        nonce,
        wrapped: r.take()?,
    })
}

/// Every slot byte except the wrapped DEK: its associated data (after the vault's identity).
fn encode_slot_ad(slot: &Slot, out: &mut Vec<u8>) {
    let (kind, kdf, params, salt_or_id, sealed): (u8, u8, KdfParams, &[u8; 16], &[u8]) =
        match &slot.kind {
            SlotKind::Password { params, salt } => (1, KDF_ARGON2ID_13, *params, salt, &[]),
            SlotKind::Platform { key_id, sealed } => (2, KDF_NONE, NO_PARAMS, key_id, sealed),
        };
    out.push(kind);
    out.push(kdf);
    out.extend_from_slice(&params.m_kib.to_le_bytes());
    out.extend_from_slice(&params.t.to_le_bytes());
    out.extend_from_slice(&params.p.to_le_bytes());
    out.extend_from_slice(salt_or_id);
    out.extend_from_slice(&slot.nonce);
    out.extend_from_slice(&(sealed.len() as u16).to_le_bytes());
    out.extend_from_slice(sealed);
}

fn checksum(bytes: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(bytes).into()
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take_slice(&mut self, n: usize) -> Result<&[u8], HeaderError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(HeaderError::Corrupted("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], HeaderError> {
        Ok(self.take_slice(N)?.try_into().expect("length taken"))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn dek() -> Dek {
        Zeroizing::new(random_bytes())
    }

    /// A new header at the floor KDF (the page cipher does not matter to these tests).
    fn new_header(key: &Dek, password: &[u8]) -> Header {
        Header::create(key, password, KdfParams::FLOOR, CipherSuite::Xaes256Gcm).unwrap()
    }

    fn set_params(header: &mut Header, new: KdfParams) {
        match &mut header.slots[0].kind {
            SlotKind::Password { params, .. } => *params = new,
            SlotKind::Platform { .. } => panic!("slot 0 is the password slot"),
        }
    }

    fn with_platform_slot(key: &Dek) -> (Header, [u8; 32]) {
        let mut header = new_header(key, b"password!");
        let secret = random_bytes();
        header
            .set_platform(
                key,
                &secret,
                random_bytes(),
                b"sealed by the platform".to_vec(),
            )
            .unwrap();
        (header, secret)
    }

    #[test]
    fn platform_slot_unwraps_beside_the_password_and_survives_a_password_change() {
        let key = dek();
        let (mut header, secret) = with_platform_slot(&key);
        let decoded = Header::decode(&header.encode()).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(
            decoded.platform_slot().unwrap().1,
            b"sealed by the platform"
        );
        assert_eq!(*decoded.unwrap_with_platform_secret(&secret).unwrap(), *key);
        assert_eq!(*decoded.unwrap_with_password(b"password!").unwrap(), *key);
        let mut wrong = secret;
        wrong[0] ^= 1;
        assert_eq!(
            decoded.unwrap_with_platform_secret(&wrong),
            Err(HeaderError::PlatformSecretRejected)
        );
        assert_eq!(
            decoded.unwrap_with_platform_secret(&secret[..31]),
            Err(HeaderError::PlatformSecretRejected)
        );

        header
            .set_password(&key, b"new password", KdfParams::FLOOR)
            .unwrap();
        let decoded = Header::decode(&header.encode()).unwrap();
        assert_eq!(*decoded.unwrap_with_platform_secret(&secret).unwrap(), *key);
        assert_eq!(
            *decoded.unwrap_with_password(b"new password").unwrap(),
            *key
        );

        assert_eq!(
            header.set_platform(&key, &secret, random_bytes(), vec![0; MAX_SEALED_LEN + 1]),
            Err(HeaderError::SealedTooLong(MAX_SEALED_LEN + 1))
        );
        let key_id = *header.platform_slot().unwrap().0;
        assert_eq!(header.remove_platform(), Some(key_id));
        let decoded = Header::decode(&header.encode()).unwrap();
        assert_eq!(decoded.platform_slot(), None);
        assert_eq!(
            decoded.unwrap_with_platform_secret(&secret),
            Err(HeaderError::NoPlatformSlot)
        );
        assert_eq!(
            *decoded.unwrap_with_password(b"new password").unwrap(),
            *key
        );
    }

    #[test]
    fn a_changed_sealed_blob_or_key_id_fails_the_unwrap_even_with_a_valid_checksum() {
        let key = dek();
        let (header, secret) = with_platform_slot(&key);
        for change in 0..2 {
            let mut bad = header.clone();
            match &mut bad.slots[1].kind {
                SlotKind::Platform { key_id, .. } if change == 0 => key_id[3] ^= 1,
                SlotKind::Platform { sealed, .. } => sealed.push(0),
                SlotKind::Password { .. } => unreachable!(),
            }
            let decoded = Header::decode(&bad.encode()).unwrap();
            assert_eq!(
                decoded.unwrap_with_platform_secret(&secret),
                Err(HeaderError::PlatformSecretRejected)
            );
        }
    }

    #[test]
    fn round_trip_and_unwrap() {
        let key = dek();
        let header = new_header(&key, b"correct horse");
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
        let mut header = new_header(&key, b"first password");
        let before = header.clone();
        header
            .set_password(&key, b"second password", KdfParams::FLOOR)
            .unwrap();
        assert_eq!(header.slots.len(), 1);
        assert_ne!(header.slots[0].kind, before.slots[0].kind);
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
        let bytes = new_header(&key, b"password!").encode();
        let with_platform = with_platform_slot(&key).0.encode();
        for i in 0..with_platform.len() {
            let mut bad = with_platform.clone();
            bad[i] ^= 0x01;
            assert!(Header::decode(&bad).is_err(), "flip at {i} decoded");
        }
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
        let mut header = new_header(&key, b"password!");
        set_params(
            &mut header,
            KdfParams {
                m_kib: 8,
                t: 1,
                p: 1,
            },
        );
        assert_eq!(
            Header::decode(&header.encode()),
            Err(HeaderError::ParamsOutOfRange)
        );
        set_params(
            &mut header,
            KdfParams {
                m_kib: 4 * 1024 * 1024,
                t: 3,
                p: 4,
            },
        );
        assert_eq!(
            Header::decode(&header.encode()),
            Err(HeaderError::ParamsOutOfRange)
        );
    }

    #[test]
    fn in_range_param_change_with_recomputed_checksum_is_a_wrong_password() {
        // An attacker can recompute the checksum; the AEAD's associated data still catches it.
        let key = dek();
        let mut header = new_header(&key, b"password!");
        let mut params = header.password_params().unwrap();
        params.t += 1;
        set_params(&mut header, params);
        let decoded = Header::decode(&header.encode()).unwrap();
        assert_eq!(
            decoded.unwrap_with_password(b"password!"),
            Err(HeaderError::WrongPassword)
        );
    }

    /// What an attacker can do to a header file: change bytes and fix the trailer.
    fn recompute_checksum(bytes: &mut [u8]) {
        let body_len = bytes.len() - TRAILER_LEN;
        let digest = checksum(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&digest);
    }

    #[test]
    fn unknown_version_is_named() {
        let key = dek();
        let mut bytes = new_header(&key, b"password!").encode();
        bytes[8] = 9;
        recompute_checksum(&mut bytes);
        assert_eq!(
            Header::decode(&bytes),
            Err(HeaderError::UnsupportedVersion(9))
        );
    }

    /// A version-2 header (before the page-cipher byte), sealed as such.
    fn version_2(key: &Dek, password: &[u8]) -> Header {
        let mut header = Header {
            version: VERSION_2,
            vault_id: random_bytes(),
            cipher: CipherSuite::XChaCha20Poly1305,
            slots: Vec::new(),
        };
        header
            .set_password(key, password, KdfParams::FLOOR)
            .unwrap();
        header
    }

    #[test]
    fn version_2_headers_read_as_xchacha_and_stay_version_2() {
        let key = dek();
        let v2 = version_2(&key, b"password!");
        let bytes = v2.encode();
        assert_eq!(&bytes[8..10], &2u16.to_le_bytes());
        assert_eq!(bytes.len(), v2_len_for_one_password_slot());
        let mut decoded = Header::decode(&bytes).unwrap();
        assert_eq!(decoded.cipher, CipherSuite::XChaCha20Poly1305);
        assert_eq!(*decoded.unwrap_with_password(b"password!").unwrap(), *key);
        // A slot added later keeps the format (the first slot's associated data binds it).
        decoded
            .set_platform(&key, &[5; 32], [6; 16], vec![1, 2, 3])
            .unwrap();
        let again = Header::decode(&decoded.encode()).unwrap();
        assert_eq!(again.version, VERSION_2);
        assert_eq!(*again.unwrap_with_password(b"password!").unwrap(), *key);
        assert_eq!(*again.unwrap_with_platform_secret(&[5; 32]).unwrap(), *key);
    }

    fn v2_len_for_one_password_slot() -> usize {
        PREFIX_LEN + (1 + 1 + 12 + 16 + 24 + 2) + WRAPPED_LEN + TRAILER_LEN
    }

    #[test]
    fn the_page_cipher_is_bound_to_the_slots() {
        // Switching the cipher byte, even with a recomputed checksum, unwraps nothing.
        for cipher in CipherSuite::ALL {
            let key = dek();
            let mut header = Header::create(&key, b"password!", KdfParams::FLOOR, cipher).unwrap();
            assert_eq!(Header::decode(&header.encode()).unwrap().cipher, cipher);
            header.cipher = CipherSuite::ALL.into_iter().find(|c| *c != cipher).unwrap();
            let decoded = Header::decode(&header.encode()).unwrap();
            assert_eq!(
                decoded.unwrap_with_password(b"password!"),
                Err(HeaderError::WrongPassword)
            );
        }
        let key = dek();
        let mut bytes = new_header(&key, b"password!").encode();
        bytes[PREFIX_LEN - 1] = 9; // the cipher byte
        recompute_checksum(&mut bytes);
        assert_eq!(
            Header::decode(&bytes),
            Err(HeaderError::Corrupted("unknown page cipher"))
        );
    }
}
