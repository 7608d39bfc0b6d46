//! SQLite's temporary files (a sort that outgrows its memory budget, such as an index built at
//! the end of an initial download; statement journals; temporary tables), sealed under a key
//! that exists only in memory for the life of the file (docs/security.md, "Temporary files").
//!
//! SQLite reads and writes them at any offset and length, so the file is cut into 4096-byte
//! blocks, each stored as `[ciphertext (4096) | tag (16) | counter (8)]` and sealed with
//! AES-256-GCM or ChaCha20-Poly1305, whichever the vault's pages use. The nonce is the
//! file's write counter (never repeats under one key, so rewriting a block never reuses one); the
//! block's index is the associated data, so blocks cannot be moved. A partial write reads,
//! patches and reseals its block. Blocks never written (a hole, or past the end) read as zeros,
//! as a plain file's would. The logical size lives in memory: the file is this process's alone
//! and is unlinked as soon as it is opened.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::Zeroizing;

use super::sealed_file::{FileCipher, FileKey};

/// Plaintext bytes per block (SQLite's page size, the unit its sorter writes in).
pub const BLOCK: usize = 4096;
const TAG: usize = 16;
const COUNTER: usize = 8;
/// Bytes a block takes on disk.
pub const SEALED_BLOCK: usize = BLOCK + TAG + COUNTER;

/// Why a temporary file cannot be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TempFileError {
    /// The file underneath failed with this SQLite result code.
    #[error("temporary file I/O failed with SQLite code {0}")]
    Io(i32),
    /// A block failed authentication: changed on disk behind SQLite's back.
    #[error("a temporary file block failed authentication")]
    Corrupted,
}

/// The sealed bytes underneath: the inner VFS's file (a vector in the tests).
pub trait SealedBytes {
    /// Fills `buf` from `offset`; past the end of the file the rest is zeros.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<(), TempFileError>;
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<(), TempFileError>;
    fn truncate(&mut self, size: u64) -> Result<(), TempFileError>;
}

/// One open temporary file's key, counter and logical size.
pub struct TempFile {
    key: LessSafeKey,
    counter: u64,
    size: u64,
    /// One sealed block, and the plaintext of the block being patched (wiped on drop).
    sealed: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
}

impl TempFile {
    /// A new empty file under a fresh random key, sealed with `cipher` (the vault's kind).
    pub fn new(cipher: FileCipher) -> TempFile {
        let key = FileKey::generate();
        let unbound = UnboundKey::new(cipher.algorithm(), key.as_bytes()).expect("a 32-byte key");
        TempFile {
            key: LessSafeKey::new(unbound),
            counter: 0,
            size: 0,
            sealed: vec![0; SEALED_BLOCK],
            plain: Zeroizing::new(vec![0; BLOCK]),
        }
    }

    /// The logical size: what SQLite wrote, not what the sealed blocks take.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills `buf` from `offset`; false when the file ended first (the rest is zeros, which
    /// SQLite expects with `SQLITE_IOERR_SHORT_READ`).
    pub fn read(
        &mut self,
        io: &mut impl SealedBytes,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<bool, TempFileError> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let (index, within) = (at / BLOCK as u64, (at % BLOCK as u64) as usize);
            let n = (BLOCK - within).min(buf.len() - done);
            self.load(io, index)?;
            buf[done..done + n].copy_from_slice(&self.plain[within..within + n]);
            done += n;
        }
        Ok(offset + buf.len() as u64 <= self.size)
    }

    /// Writes `data` at `offset`, extending the file as needed.
    pub fn write(
        &mut self,
        io: &mut impl SealedBytes,
        data: &[u8],
        offset: u64,
    ) -> Result<(), TempFileError> {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (index, within) = (at / BLOCK as u64, (at % BLOCK as u64) as usize);
            let n = (BLOCK - within).min(data.len() - done);
            if n < BLOCK {
                self.load(io, index)?;
            }
            self.plain[within..within + n].copy_from_slice(&data[done..done + n]);
            self.store(io, index)?;
            done += n;
        }
        self.size = self.size.max(offset + data.len() as u64);
        Ok(())
    }

    /// Cuts the file to `size` bytes; what a later extension exposes reads as zeros.
    pub fn truncate(&mut self, io: &mut impl SealedBytes, size: u64) -> Result<(), TempFileError> {
        if size >= self.size {
            self.size = size;
            return Ok(());
        }
        self.size = size;
        let (whole, tail) = (size / BLOCK as u64, size % BLOCK as u64);
        if tail != 0 {
            // Reseal the last block with its bytes past the new end zeroed.
            self.load(io, whole)?;
            self.store(io, whole)?;
        }
        io.truncate((whole + u64::from(tail != 0)) * SEALED_BLOCK as u64)
    }

    /// Decrypts block `index` into `plain`, with zeros past the logical end and for a block never
    /// written.
    fn load(&mut self, io: &mut impl SealedBytes, index: u64) -> Result<(), TempFileError> {
        let start = index * BLOCK as u64;
        if start >= self.size {
            self.plain.fill(0);
            return Ok(());
        }
        io.read_at(&mut self.sealed, index * SEALED_BLOCK as u64)?;
        if self.sealed.iter().all(|&b| b == 0) {
            self.plain.fill(0);
        } else {
            let (text, rest) = self.sealed.split_at(BLOCK);
            let tag: [u8; TAG] = rest[..TAG].try_into().expect("16 bytes");
            let counter = u64::from_le_bytes(rest[TAG..].try_into().expect("8 bytes"));
            self.plain.copy_from_slice(text);
            self.key
                .open_in_place_separate_tag(
                    nonce(counter),
                    Aad::from(index.to_be_bytes()),
                    Tag::from(tag),
                    &mut self.plain,
                    0..,
                )
                .map_err(|_| TempFileError::Corrupted)?;
        }
        let valid = (self.size - start).min(BLOCK as u64) as usize;
        self.plain[valid..].fill(0);
        Ok(())
    }

    /// Seals `plain` as block `index` under the next counter and writes it.
    fn store(&mut self, io: &mut impl SealedBytes, index: u64) -> Result<(), TempFileError> {
        self.counter += 1;
        let (text, rest) = self.sealed.split_at_mut(BLOCK);
        text.copy_from_slice(&self.plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(self.counter), Aad::from(index.to_be_bytes()), text)
            .map_err(|_| TempFileError::Corrupted)?;
        rest[..TAG].copy_from_slice(tag.as_ref());
        rest[TAG..].copy_from_slice(&self.counter.to_le_bytes());
        io.write_at(&self.sealed, index * SEALED_BLOCK as u64)
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..COUNTER].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncvault_testkit::rng::Rng;

    #[derive(Default)]
    struct Disk(Vec<u8>);

    impl SealedBytes for Disk {
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<(), TempFileError> {
            buf.fill(0);
            let start = (offset as usize).min(self.0.len());
            let end = (start + buf.len()).min(self.0.len());
            buf[..end - start].copy_from_slice(&self.0[start..end]);
            Ok(())
        }
        fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<(), TempFileError> {
            let end = offset as usize + buf.len();
            if self.0.len() < end {
                self.0.resize(end, 0);
            }
            self.0[offset as usize..end].copy_from_slice(buf);
            Ok(())
        }
        fn truncate(&mut self, size: u64) -> Result<(), TempFileError> {
            self.0.resize(size as usize, 0);
            Ok(())
        }
    }

    /// Random writes, reads and truncations match a plain vector byte for byte, and no 16-byte
    /// run of what was written appears on the disk.
    #[test]
    fn behaves_like_a_plain_file_and_stores_no_plaintext() {
        for cipher in FileCipher::ALL {
            differential(cipher);
        }
    }

    fn differential(cipher: FileCipher) {
        let mut rng = Rng(7);
        let (mut file, mut disk, mut plain) =
            (TempFile::new(cipher), Disk::default(), Vec::<u8>::new());
        let marker = b"PLAINTEXT-MARKER";
        for _ in 0..3000 {
            let offset = rng.below(6 * BLOCK as u64) as usize;
            let len = 1 + rng.below(3 * BLOCK as u64) as usize;
            match rng.below(10) {
                0..=4 => {
                    let data: Vec<u8> = (0..len).map(|i| marker[i % marker.len()]).collect();
                    file.write(&mut disk, &data, offset as u64).unwrap();
                    if plain.len() < offset + len {
                        plain.resize(offset + len, 0);
                    }
                    plain[offset..offset + len].copy_from_slice(&data);
                }
                5..=8 => {
                    let mut got = vec![0xAA; len];
                    let whole = file.read(&mut disk, &mut got, offset as u64).unwrap();
                    let mut want = vec![0u8; len];
                    let end = (offset + len).min(plain.len()).max(offset);
                    if offset < plain.len() {
                        want[..end - offset].copy_from_slice(&plain[offset..end]);
                    }
                    assert_eq!(got, want, "read {len} at {offset}");
                    assert_eq!(whole, offset + len <= plain.len());
                }
                _ => {
                    let size = rng.below(plain.len() as u64 + 1) as usize;
                    file.truncate(&mut disk, size as u64).unwrap();
                    plain.truncate(size);
                }
            }
            assert_eq!(file.size(), plain.len() as u64);
        }
        assert!(!disk.0.windows(marker.len()).any(|w| w == marker));
    }

    #[test]
    fn a_changed_or_moved_block_is_corrupted() {
        let (mut file, mut disk) = (TempFile::new(FileCipher::preferred()), Disk::default());
        file.write(&mut disk, &[7u8; 3 * BLOCK], 0).unwrap();
        let good = disk.0.clone();
        let mut buf = vec![0u8; BLOCK];
        disk.0[SEALED_BLOCK + 10] ^= 1;
        assert_eq!(
            file.read(&mut disk, &mut buf, BLOCK as u64),
            Err(TempFileError::Corrupted)
        );
        disk.0 = good.clone();
        disk.0.copy_within(0..SEALED_BLOCK, SEALED_BLOCK);
        assert_eq!(
            file.read(&mut disk, &mut buf, BLOCK as u64),
            Err(TempFileError::Corrupted)
        );
        disk.0 = good;
        assert!(file.read(&mut disk, &mut buf, BLOCK as u64).unwrap());
        assert_eq!(buf, vec![7u8; BLOCK]);
    }
}
