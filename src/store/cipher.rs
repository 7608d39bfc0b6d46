//! Page sealing: an AEAD with a 24-byte nonce over one 4096-byte SQLite page, with the nonce and
//! tag kept in the page's 40 reserved bytes. Pure and allocation-free on the I/O path, so it is
//! tested on its own and costs nothing but the cipher.
//!
//! Page layout on disk: `[encrypted body | tag (16) | nonce (24)]`. Page 1 of the database keeps
//! its first 24 bytes (magic, page size, reserve size) in clear so tools and our own open checks
//! can read them; those bytes are bound in the associated data instead.
//!
//! The vault's suite (`vault::CipherSuite`, in its header) picks the construction:
//! - XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): HChaCha20(DEK, nonce[..16]) gives a subkey,
//!   then ChaCha20-Poly1305 (RFC 8439) with the 12-byte nonce `0^4 || nonce[16..]`;
//! - XAES-256-GCM (C2SP): a subkey derived from the DEK and nonce[..12] with the spec's
//!   NIST SP 800-108 counter-mode KDF over AES-256 CMAC, then AES-256-GCM with nonce[12..].
//!
//! Either way the bulk cipher is ring's assembly (AES-NI/ARMv8 AES and carry-less multiply for
//! GCM); tests check the results against RustCrypto's XChaCha20Poly1305 and the C2SP vectors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aes::cipher::{BlockEncrypt, KeyInit};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::{Zeroize, Zeroizing};

use crate::vault::{CipherSuite, Dek, random_bytes};

/// SQLite page size of every syncvault database.
pub const PAGE_SIZE: usize = 4096;
/// Bytes SQLite leaves unused at the end of each page for us.
pub const RESERVE: usize = 40;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const _: () = assert!(NONCE_LEN + TAG_LEN == RESERVE);
/// Clear bytes at the start of database page 1.
pub const PAGE1_CLEAR: usize = 24;
/// Subkeys of earlier unlocks kept for reading their pages (a store holds pages of a few).
const FOREIGN_KEYS: usize = 64;

/// Which file a page lives in; part of the associated data so a page cannot move between the
/// database and the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRole {
    /// A database page; `pgno` from its offset.
    Database,
    /// A WAL frame's page; `pgno` and the WAL salts from the frame header.
    Wal { salts: [u8; 8] },
}

/// Holds the DEK's cipher and a nonce source for one open vault.
///
/// Nonces are a random 16-byte prefix (new per unlock) and a 64-bit counter: unique for every
/// seal without a syscall per page, and as unpredictable across unlocks as 24 random bytes. The
/// subkey depends on the prefix only (XAES: on its first 12 bytes), so one is derived per unlock.
pub struct PageCipher {
    suite: CipherSuite,
    dek: Dek,
    /// The subkey for this unlock's nonce prefix: every seal uses it.
    own_key: LessSafeKey,
    /// Subkeys of the prefixes of earlier unlocks, derived once each.
    foreign: RwLock<HashMap<[u8; 16], Arc<LessSafeKey>>>,
    vault_id: [u8; 16],
    nonce_prefix: [u8; 16],
    counter: AtomicU64,
}

/// The suite's subkey for a nonce prefix, as a ring key.
fn subkey(suite: CipherSuite, dek: &Dek, prefix: &[u8; 16]) -> LessSafeKey {
    let (algorithm, mut derived) = match suite {
        CipherSuite::XChaCha20Poly1305 => {
            let key = chacha20::hchacha::<chacha20::cipher::consts::U10>(
                chacha20::Key::from_slice(dek.as_ref()),
                prefix.into(),
            );
            (&CHACHA20_POLY1305, Zeroizing::new(key.into()))
        }
        CipherSuite::Xaes256Gcm => (
            &AES_256_GCM,
            xaes_derive(dek, prefix[..12].try_into().expect("12 bytes")),
        ),
    };
    let key = LessSafeKey::new(UnboundKey::new(algorithm, derived.as_ref()).expect("32-byte key"));
    derived.zeroize();
    key
}

/// XAES-256-GCM's key derivation (C2SP XAES-256-GCM): with L = AES-256_K(0^128) and K1 = L·x in
/// GF(2^128) (CMAC's first subkey), the subkey is AES-256_K(M1 ⊕ K1) || AES-256_K(M2 ⊕ K1) for
/// M_i = 0x00 || i || "X" || 0x00 || N[..12].
fn xaes_derive(dek: &Dek, n: &[u8; 12]) -> Zeroizing<[u8; 32]> {
    let aes = aes::Aes256::new(dek.as_ref().into());
    let mut l = aes::Block::default();
    aes.encrypt_block(&mut l);
    let l = u128::from_be_bytes(l.into());
    let k1 = (l << 1) ^ if l >> 127 == 1 { 0x87 } else { 0 };
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, half) in out.chunks_exact_mut(16).enumerate() {
        let mut m = [0u8; 16];
        m[1] = i as u8 + 1;
        m[2] = b'X';
        m[4..].copy_from_slice(n);
        let mut block = aes::Block::from((u128::from_be_bytes(m) ^ k1).to_be_bytes());
        aes.encrypt_block(&mut block);
        half.copy_from_slice(&block);
        block.as_mut_slice().zeroize();
    }
    out
}

/// The bulk cipher's 12-byte nonce from the page's 24-byte one.
fn bulk_nonce(suite: CipherSuite, nonce: &[u8]) -> Nonce {
    let mut n = [0u8; 12];
    match suite {
        CipherSuite::XChaCha20Poly1305 => n[4..].copy_from_slice(&nonce[16..NONCE_LEN]),
        CipherSuite::Xaes256Gcm => n.copy_from_slice(&nonce[12..NONCE_LEN]),
    }
    Nonce::assume_unique_for_key(n)
}

impl PageCipher {
    pub fn new(dek: &Dek, vault_id: [u8; 16], suite: CipherSuite) -> Self {
        let nonce_prefix = random_bytes();
        PageCipher {
            suite,
            dek: Zeroizing::new(**dek),
            own_key: subkey(suite, dek, &nonce_prefix),
            foreign: RwLock::default(),
            vault_id,
            nonce_prefix,
            counter: AtomicU64::new(0),
        }
    }

    /// The suite in use, for benchmarks and diagnostics.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The subkey of a prefix written at an earlier unlock, derived at most once per prefix.
    fn foreign_key(&self, prefix: &[u8; 16]) -> Arc<LessSafeKey> {
        let known = self
            .foreign
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(prefix)
            .cloned();
        known.unwrap_or_else(|| {
            let key = Arc::new(subkey(self.suite, &self.dek, prefix));
            let mut keys = self.foreign.write().unwrap_or_else(|p| p.into_inner());
            if keys.len() >= FOREIGN_KEYS {
                keys.clear();
            }
            keys.insert(*prefix, Arc::clone(&key));
            key
        })
    }

    fn associated_data<'a>(
        &self,
        buf: &'a mut [u8; 64],
        role: PageRole,
        pgno: u32,
        clear: &[u8],
    ) -> &'a [u8] {
        let tag: &[u8; 8] = match role {
            PageRole::Database => b"svdbpage",
            PageRole::Wal { .. } => b"svwalpag",
        };
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            buf[n..n + bytes.len()].copy_from_slice(bytes);
            n += bytes.len();
        };
        put(tag);
        put(&self.vault_id);
        put(&pgno.to_be_bytes());
        if let PageRole::Wal { salts } = role {
            put(&salts);
        }
        put(clear);
        &buf[..n]
    }

    fn clear_len(role: PageRole, pgno: u32) -> usize {
        if role == PageRole::Database && pgno == 1 {
            PAGE1_CLEAR
        } else {
            0
        }
    }

    /// Encrypts `page` in place and writes nonce and tag into its reserve.
    pub fn seal(&self, page: &mut [u8], role: PageRole, pgno: u32) {
        assert_eq!(page.len(), PAGE_SIZE, "only whole pages are sealed");
        let clear = Self::clear_len(role, pgno);
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let (body, reserve) = page.split_at_mut(PAGE_SIZE - RESERVE);
        let (tag_out, nonce) = reserve.split_at_mut(TAG_LEN);
        nonce[..16].copy_from_slice(&self.nonce_prefix);
        nonce[16..].copy_from_slice(&count.to_le_bytes());
        let mut ad_buf = [0u8; 64];
        let (clear_bytes, secret) = body.split_at_mut(clear);
        let ad = self.associated_data(&mut ad_buf, role, pgno, clear_bytes);
        let tag = self
            .own_key
            .seal_in_place_separate_tag(bulk_nonce(self.suite, nonce), Aad::from(ad), secret)
            .expect("a page is far below the cipher's length limit");
        tag_out.copy_from_slice(tag.as_ref());
    }

    /// Decrypts `page` in place and zeroes its reserve (SQLite checksums WAL frames over the page
    /// as it sees it). Returns false, leaving garbage, when the page fails authentication.
    #[must_use]
    pub fn open(&self, page: &mut [u8], role: PageRole, pgno: u32) -> bool {
        if page.len() != PAGE_SIZE {
            return false;
        }
        let clear = Self::clear_len(role, pgno);
        let mut ad_buf = [0u8; 64];
        let ad_len = self
            .associated_data(&mut ad_buf, role, pgno, &page[..clear])
            .len();
        let nonce: [u8; NONCE_LEN] = page[PAGE_SIZE - NONCE_LEN..].try_into().expect("24 bytes");
        let prefix: [u8; 16] = nonce[..16].try_into().expect("16 bytes");
        let foreign;
        let key = if prefix == self.nonce_prefix {
            &self.own_key
        } else {
            // Written at an earlier unlock.
            foreign = self.foreign_key(&prefix);
            &*foreign
        };
        // Ciphertext and tag are adjacent, as ring's in-place open wants them.
        let sealed = &mut page[clear..PAGE_SIZE - NONCE_LEN];
        let ok = key
            .open_in_place(
                bulk_nonce(self.suite, &nonce),
                Aad::from(&ad_buf[..ad_len]),
                sealed,
            )
            .is_ok();
        page[PAGE_SIZE - RESERVE..].fill(0);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn cipher(suite: CipherSuite) -> PageCipher {
        PageCipher::new(&Zeroizing::new([7u8; 32]), [9u8; 16], suite)
    }

    fn page(fill: u8) -> Vec<u8> {
        let mut p = vec![fill; PAGE_SIZE];
        p[PAGE_SIZE - RESERVE..].fill(0);
        p
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        for suite in CipherSuite::ALL {
            let c = cipher(suite);
            let plain = page(0x5a);
            let mut a = plain.clone();
            let mut b = plain.clone();
            c.seal(&mut a, PageRole::Database, 3);
            c.seal(&mut b, PageRole::Database, 3);
            assert_ne!(a, b, "same plaintext must not give the same ciphertext");
            assert!(!a.windows(16).any(|w| w == [0x5a; 16]), "plaintext visible");
            assert!(c.open(&mut a, PageRole::Database, 3));
            assert_eq!(a, plain);
        }
    }

    #[test]
    fn is_standard_xchacha20_poly1305() {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let dek = Zeroizing::new([7u8; 32]);
        let c = PageCipher::new(&dek, [9u8; 16], CipherSuite::XChaCha20Poly1305);
        let plain = page(0x42);
        let mut sealed = plain.clone();
        c.seal(&mut sealed, PageRole::Database, 2);
        let mut ad_buf = [0u8; 64];
        let ad = c
            .associated_data(&mut ad_buf, PageRole::Database, 2, &[])
            .to_vec();
        let (body, reserve) = sealed.split_at_mut(PAGE_SIZE - RESERVE);
        let tag = chacha20poly1305::Tag::clone_from_slice(&reserve[..TAG_LEN]);
        let nonce = chacha20poly1305::XNonce::clone_from_slice(&reserve[TAG_LEN..]);
        chacha20poly1305::XChaCha20Poly1305::new(dek.as_ref().into())
            .decrypt_in_place_detached(&nonce, &ad, body, &tag)
            .expect("RustCrypto opens what ring sealed");
        assert_eq!(body, &plain[..PAGE_SIZE - RESERVE]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The two vectors of the C2SP XAES-256-GCM specification, through the page cipher's own
    /// subkey derivation and bulk nonce.
    #[test]
    fn is_standard_xaes_256_gcm() {
        let vectors = [
            (
                [0x01u8; 32],
                &b""[..],
                "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
            ),
            (
                [0x03u8; 32],
                &b"c2sp.org/XAES-256-GCM"[..],
                "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
            ),
        ];
        let nonce: &[u8; 24] = b"ABCDEFGHIJKLMNOPQRSTUVWX";
        for (key, ad, expected) in vectors {
            let prefix: [u8; 16] = nonce[..16].try_into().unwrap();
            let key = subkey(CipherSuite::Xaes256Gcm, &Zeroizing::new(key), &prefix);
            let mut msg = b"XAES-256-GCM".to_vec();
            key.seal_in_place_append_tag(
                bulk_nonce(CipherSuite::Xaes256Gcm, nonce),
                Aad::from(ad),
                &mut msg,
            )
            .unwrap();
            assert_eq!(msg, hex(expected));
        }
    }

    #[test]
    fn pages_from_an_earlier_unlock_open() {
        for suite in CipherSuite::ALL {
            let dek = Zeroizing::new([3u8; 32]);
            let mut p = page(0x24);
            PageCipher::new(&dek, [1; 16], suite).seal(&mut p, PageRole::Database, 9);
            let later = PageCipher::new(&dek, [1; 16], suite);
            assert!(later.open(&mut p.clone(), PageRole::Database, 9));
            // Again, from the derived-key cache.
            assert!(later.open(&mut p, PageRole::Database, 9));
            assert_eq!(p, page(0x24));
        }
    }

    #[test]
    fn a_page_of_one_suite_does_not_open_under_the_other() {
        let dek = Zeroizing::new([3u8; 32]);
        let mut p = page(0x24);
        PageCipher::new(&dek, [1; 16], CipherSuite::Xaes256Gcm).seal(&mut p, PageRole::Database, 9);
        let chacha = PageCipher::new(&dek, [1; 16], CipherSuite::XChaCha20Poly1305);
        assert!(!chacha.open(&mut p, PageRole::Database, 9));
    }

    #[test]
    fn page_one_keeps_its_header_clear_and_bound() {
        for suite in CipherSuite::ALL {
            let c = cipher(suite);
            let mut p = page(0x11);
            p[..16].copy_from_slice(b"SQLite format 3\0");
            let plain = p.clone();
            c.seal(&mut p, PageRole::Database, 1);
            assert_eq!(&p[..PAGE1_CLEAR], &plain[..PAGE1_CLEAR]);
            let mut tampered = p.clone();
            tampered[20] ^= 1; // the reserve-size byte
            assert!(!c.open(&mut tampered, PageRole::Database, 1));
            assert!(c.open(&mut p, PageRole::Database, 1));
            assert_eq!(p, plain);
        }
    }

    #[test]
    fn any_change_of_bytes_place_or_key_is_detected() {
        for suite in CipherSuite::ALL {
            let c = cipher(suite);
            let mut sealed = page(0x33);
            c.seal(&mut sealed, PageRole::Wal { salts: [1; 8] }, 5);
            for i in
                (0..PAGE_SIZE)
                    .step_by(97)
                    .chain([PAGE_SIZE - 40, PAGE_SIZE - 17, PAGE_SIZE - 1])
            {
                let mut bad = sealed.clone();
                bad[i] ^= 0x80;
                assert!(
                    !c.open(&mut bad, PageRole::Wal { salts: [1; 8] }, 5),
                    "{suite:?}: flip at {i}"
                );
            }
            let wrong_place = [
                (PageRole::Wal { salts: [1; 8] }, 6),
                (PageRole::Wal { salts: [2; 8] }, 5),
                (PageRole::Database, 5),
            ];
            for (role, pgno) in wrong_place {
                assert!(!c.open(&mut sealed.clone(), role, pgno), "{role:?} {pgno}");
            }
            let other_vault = PageCipher::new(&Zeroizing::new([7u8; 32]), [8u8; 16], suite);
            assert!(!other_vault.open(&mut sealed.clone(), PageRole::Wal { salts: [1; 8] }, 5));
            let other_key = PageCipher::new(&Zeroizing::new([6u8; 32]), [9u8; 16], suite);
            assert!(!other_key.open(&mut sealed.clone(), PageRole::Wal { salts: [1; 8] }, 5));
            assert!(c.open(&mut sealed, PageRole::Wal { salts: [1; 8] }, 5));
        }
    }
}
