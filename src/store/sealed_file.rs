//! An attachment's content at rest: one file under its own random key, sealed in 64 KiB chunks
//! with the STREAM construction over ring's AES-256-GCM where the CPU has AES instructions,
//! ChaCha20-Poly1305 otherwise (the header names which): each chunk's 96-bit nonce is the file's
//! random 7-byte prefix, the chunk's position (32-bit big endian) and a last-chunk flag, the
//! layout of the `aead` crate's `StreamBE32` (its output is checked against that crate's below), so a swapped, dropped
//! or appended chunk and a truncated file fail to open, and any chunk can be opened alone (ranged
//! reads). The header is bound into every chunk as associated data. No plaintext byte is ever
//! written: callers hand plaintext in memory and get it back in memory (docs/security.md,
//! "Attachments").

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const SEALED_CHUNK: u64 = (CHUNK + TAG) as u64;
const MAGIC: &[u8; 8] = b"SVATT\x00\x01\x00";
/// Random bytes at the start of every chunk's nonce (12 bytes: prefix, index, flag).
const PREFIX: usize = 7;
/// Where the header names the cipher.
const CIPHER_AT: usize = 8 + PREFIX;
/// Magic and version, the nonce prefix, the cipher, reserved zeros.
pub const HEADER: usize = 32;

/// The AEAD under the STREAM construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCipher {
    ChaCha20Poly1305,
    Aes256Gcm,
}

impl FileCipher {
    pub const ALL: [FileCipher; 2] = [FileCipher::ChaCha20Poly1305, FileCipher::Aes256Gcm];

    /// AES-256-GCM where the CPU has AES and carry-less multiply (as the vault's page cipher
    /// is chosen), else ChaCha20-Poly1305.
    pub fn preferred() -> FileCipher {
        FileCipher::matching(crate::vault::CipherSuite::preferred())
    }

    /// The AEAD under a vault's page cipher suite.
    pub fn matching(suite: crate::vault::CipherSuite) -> FileCipher {
        match suite {
            crate::vault::CipherSuite::Xaes256Gcm => FileCipher::Aes256Gcm,
            crate::vault::CipherSuite::XChaCha20Poly1305 => FileCipher::ChaCha20Poly1305,
        }
    }

    fn id(self) -> u8 {
        match self {
            FileCipher::ChaCha20Poly1305 => 1,
            FileCipher::Aes256Gcm => 2,
        }
    }

    fn from_id(id: u8) -> Option<FileCipher> {
        FileCipher::ALL.into_iter().find(|c| c.id() == id)
    }

    /// ring's implementation, for the sealed files here and SQLite's temporary files.
    pub(crate) fn algorithm(self) -> &'static ring::aead::Algorithm {
        match self {
            FileCipher::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            FileCipher::Aes256Gcm => &AES_256_GCM,
        }
    }
}

/// Why a sealed file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SealedFileError {
    #[error("attachment file I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// A flipped bit, a chunk out of place, a truncated file, another key's file.
    #[error("the attachment file is damaged or belongs to another vault")]
    Corrupted,
}

/// One file's key (kept in the encrypted store beside the attachment's metadata).
#[derive(Clone)]
pub struct FileKey(Zeroizing<[u8; 32]>);

impl FileKey {
    /// A fresh random key.
    pub fn generate() -> FileKey {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(k.as_mut()).expect("the OS random source");
        FileKey(k)
    }

    /// A stored key; None unless it is 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<FileKey> {
        let k: [u8; 32] = bytes.try_into().ok()?;
        Some(FileKey(Zeroizing::new(k)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }
}

/// One file's STREAM, under the cipher its header names. ring's AEADs are not generic code, so
/// they run at full speed in the size-optimized mobile library.
struct Stream {
    key: LessSafeKey,
    prefix: [u8; PREFIX],
}

impl Stream {
    fn new(key: &FileKey, header: &[u8; HEADER]) -> Result<Stream, SealedFileError> {
        let cipher = FileCipher::from_id(header[CIPHER_AT]).ok_or(SealedFileError::Corrupted)?;
        let unbound = UnboundKey::new(cipher.algorithm(), key.0.as_ref())
            .map_err(|_| SealedFileError::Corrupted)?;
        let mut prefix = [0u8; PREFIX];
        prefix.copy_from_slice(&header[8..8 + PREFIX]);
        Ok(Stream {
            key: LessSafeKey::new(unbound),
            prefix,
        })
    }

    /// Prefix, position, last-chunk flag.
    fn nonce(&self, i: u32, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[..PREFIX].copy_from_slice(&self.prefix);
        n[PREFIX..PREFIX + 4].copy_from_slice(&i.to_be_bytes());
        n[11] = last as u8;
        Nonce::assume_unique_for_key(n)
    }

    fn seal(
        &self,
        i: u32,
        last: bool,
        ad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), SealedFileError> {
        self.key
            .seal_in_place_append_tag(self.nonce(i, last), Aad::from(ad), buf)
            .map_err(|_| SealedFileError::Corrupted)
    }

    fn open(
        &self,
        i: u32,
        last: bool,
        ad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), SealedFileError> {
        let plain = self
            .key
            .open_in_place(self.nonce(i, last), Aad::from(ad), buf)
            .map_err(|_| SealedFileError::Corrupted)?
            .len();
        buf.truncate(plain);
        Ok(())
    }
}

fn read_header(file: &mut File) -> Result<[u8; HEADER], SealedFileError> {
    let mut header = [0u8; HEADER];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)
        .map_err(|_| SealedFileError::Corrupted)?;
    if &header[..8] != MAGIC {
        return Err(SealedFileError::Corrupted);
    }
    Ok(header)
}

fn chunk_index(i: u64) -> Result<u32, SealedFileError> {
    u32::try_from(i).map_err(|_| SealedFileError::Corrupted)
}

/// Writes a sealed file as plaintext arrives (an app's bytes, a file it names, a download).
pub struct SealedWriter {
    file: File,
    stream: Stream,
    header: [u8; HEADER],
    buf: Zeroizing<Vec<u8>>,
    chunk: u64,
}

impl SealedWriter {
    /// Starts a new file at `path` (which must not exist) under this CPU's preferred cipher.
    pub fn create(path: &Path, key: &FileKey) -> Result<SealedWriter, SealedFileError> {
        Self::create_with(path, key, FileCipher::preferred())
    }

    /// Starts a new file under `cipher`.
    pub fn create_with(
        path: &Path,
        key: &FileKey,
        cipher: FileCipher,
    ) -> Result<SealedWriter, SealedFileError> {
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        getrandom::fill(&mut header[8..8 + PREFIX]).expect("the OS random source");
        header[CIPHER_AT] = cipher.id();
        let mut file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(path)?;
        file.write_all(&header)?;
        Ok(SealedWriter {
            file,
            stream: Stream::new(key, &header)?,
            header,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK + TAG)),
            chunk: 0,
        })
    }

    /// Continues an unfinished file (a download a crash or a cancel stopped): keeps its whole
    /// chunks that open (their plaintext goes to `kept`, to hash it again), drops the rest, and
    /// returns the writer and how many plaintext bytes it kept.
    pub fn resume(
        path: &Path,
        key: &FileKey,
        mut kept: impl FnMut(&[u8]),
    ) -> Result<(SealedWriter, u64), SealedFileError> {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let header = read_header(&mut file)?;
        let stream = Stream::new(key, &header)?;
        let whole = (file.metadata()?.len() - HEADER as u64) / SEALED_CHUNK;
        let mut buf = Zeroizing::new(Vec::with_capacity(CHUNK + TAG));
        let mut good = 0;
        while good < whole {
            buf.resize(CHUNK + TAG, 0);
            file.read_exact(&mut buf)?;
            if stream
                .open(chunk_index(good)?, false, &header, &mut buf)
                .is_err()
            {
                break;
            }
            kept(&buf);
            good += 1;
        }
        file.set_len(HEADER as u64 + good * SEALED_CHUNK)?;
        file.seek(SeekFrom::End(0))?;
        buf.clear();
        let writer = SealedWriter {
            file,
            stream,
            header,
            buf,
            chunk: good,
        };
        Ok((writer, good * CHUNK as u64))
    }

    fn seal(&mut self, last: bool) -> Result<(), SealedFileError> {
        let position = chunk_index(self.chunk)?;
        self.stream
            .seal(position, last, &self.header, &mut self.buf)?;
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        self.chunk += 1;
        Ok(())
    }

    /// Appends plaintext; a chunk is sealed once a byte past it arrives (so the last chunk is
    /// always sealed by `finish`, flagged as last).
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), SealedFileError> {
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                self.seal(false)?;
            }
            let take = data.len().min(CHUNK - self.buf.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Writes out the whole chunks sealed so far (a download's progress survives a crash).
    pub fn flush(&mut self) -> Result<(), SealedFileError> {
        Ok(self.file.flush()?)
    }

    /// Seals the last chunk and makes the file durable; returns the plaintext length.
    pub fn finish(mut self) -> Result<u64, SealedFileError> {
        let len = self.chunk * CHUNK as u64 + self.buf.len() as u64;
        self.seal(true)?;
        self.file.sync_all()?;
        Ok(len)
    }
}

/// Reads any range of a sealed file, one chunk at a time.
pub struct SealedReader {
    file: File,
    stream: Stream,
    header: [u8; HEADER],
    len: u64,
    chunks: u64,
    /// The chunk opened last: its index and plaintext.
    cached: Option<(u64, Zeroizing<Vec<u8>>)>,
}

impl SealedReader {
    /// Opens `path`; a file whose length does not match `expected_len` (the attachment's
    /// recorded size) is `Corrupted` before any byte is read.
    pub fn open(
        path: &Path,
        key: &FileKey,
        expected_len: u64,
    ) -> Result<SealedReader, SealedFileError> {
        let mut file = File::open(path)?;
        let header = read_header(&mut file)?;
        let body = file.metadata()?.len() - HEADER as u64;
        let chunks = body.div_ceil(SEALED_CHUNK).max(1);
        let last = body
            .checked_sub((chunks - 1) * SEALED_CHUNK + TAG as u64)
            .ok_or(SealedFileError::Corrupted)?;
        let len = (chunks - 1) * CHUNK as u64 + last;
        if len != expected_len {
            return Err(SealedFileError::Corrupted);
        }
        Ok(SealedReader {
            file,
            stream: Stream::new(key, &header)?,
            header,
            len,
            chunks,
            cached: None,
        })
    }

    /// The plaintext length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn open_chunk(&mut self, i: u64) -> Result<&[u8], SealedFileError> {
        if self.cached.as_ref().is_none_or(|(c, _)| *c != i) {
            let last = i + 1 == self.chunks;
            let size = if last {
                (self.len - i * CHUNK as u64) as usize + TAG
            } else {
                CHUNK + TAG
            };
            let mut buf = match self.cached.take() {
                Some((_, buf)) => buf,
                None => Zeroizing::new(Vec::with_capacity(CHUNK + TAG)),
            };
            buf.resize(size, 0);
            self.file
                .seek(SeekFrom::Start(HEADER as u64 + i * SEALED_CHUNK))?;
            self.file.read_exact(&mut buf)?;
            self.stream
                .open(chunk_index(i)?, last, &self.header, &mut buf)?;
            self.cached = Some((i, buf));
        }
        Ok(&self.cached.as_ref().expect("just opened").1)
    }

    /// Fills `out` from plaintext `offset`; returns how many bytes (0 at the end).
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize, SealedFileError> {
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            if at >= self.len {
                break;
            }
            let i = at / CHUNK as u64;
            let within = (at % CHUNK as u64) as usize;
            let plain = self.open_chunk(i)?;
            let n = (plain.len() - within).min(out.len() - done);
            out[done..done + n].copy_from_slice(&plain[within..within + n]);
            done += n;
        }
        Ok(done)
    }

    /// Opens the last chunk: a file cut at a chunk boundary fails here.
    pub fn verify_end(&mut self) -> Result<(), SealedFileError> {
        self.open_chunk(self.chunks - 1).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn write(path: &Path, key: &FileKey, data: &[u8], piece: usize, cipher: FileCipher) {
        let mut w = SealedWriter::create_with(path, key, cipher).unwrap();
        for p in data.chunks(piece.max(1)) {
            w.write(p).unwrap();
        }
        assert_eq!(w.finish().unwrap(), data.len() as u64);
    }

    fn read_all(path: &Path, key: &FileKey, len: u64) -> Result<Vec<u8>, SealedFileError> {
        let mut r = SealedReader::open(path, key, len)?;
        r.verify_end()?;
        let mut out = vec![0; len as usize];
        let n = r.read_at(0, &mut out)?;
        assert_eq!(n as u64, len);
        Ok(out)
    }

    #[test]
    fn round_trips_every_size_and_range() {
        for cipher in FileCipher::ALL {
            round_trips(cipher);
        }
    }

    fn round_trips(cipher: FileCipher) {
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey::generate();
        for (k, len) in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 77]
            .into_iter()
            .enumerate()
        {
            let data = pattern(len);
            let path = dir.path().join(format!("f{k}"));
            write(&path, &key, &data, 10_000, cipher);
            assert_eq!(read_all(&path, &key, len as u64).unwrap(), data);
            let mut r = SealedReader::open(&path, &key, len as u64).unwrap();
            for (off, n) in [(0, 5), (CHUNK - 3, 7), (len / 2, CHUNK + 9)] {
                let mut out = vec![0; n];
                let got = r.read_at(off as u64, &mut out).unwrap();
                let want = &data[off.min(len)..(off + n).min(len)];
                assert_eq!(&out[..got], want, "len {len} off {off}");
            }
        }
    }

    #[test]
    fn tampering_is_corrupted_never_wrong_bytes() {
        for cipher in FileCipher::ALL {
            tampering(cipher);
        }
    }

    fn tampering(cipher: FileCipher) {
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey::generate();
        let data = pattern(3 * CHUNK + 100);
        let good = dir.path().join("good");
        write(&good, &key, &data, CHUNK, cipher);
        let bytes = std::fs::read(&good).unwrap();
        let len = data.len() as u64;
        let case = |name: &str, tampered: Vec<u8>, len: u64| {
            let p = dir.path().join(name);
            std::fs::write(&p, tampered).unwrap();
            assert!(
                matches!(read_all(&p, &key, len), Err(SealedFileError::Corrupted)),
                "{name}"
            );
        };
        let mut flipped = bytes.clone();
        flipped[HEADER + CHUNK + 40] ^= 1;
        case("flipped", flipped, len);
        let mut header = bytes.clone();
        header[10] ^= 1;
        case("header", header, len);
        let mut other_cipher = bytes.clone();
        other_cipher[CIPHER_AT] ^= 3;
        case("cipher byte", other_cipher, len);
        let mut swapped = bytes.clone();
        let (a, b) = (HEADER, HEADER + SEALED_CHUNK as usize);
        let first = bytes[a..b].to_vec();
        swapped[a..b].copy_from_slice(&bytes[b..b + SEALED_CHUNK as usize]);
        swapped[b..b + SEALED_CHUNK as usize].copy_from_slice(&first);
        case("swapped", swapped, len);
        // Cut at a chunk boundary, with the size that length implies: the new last chunk was
        // not sealed as the last one.
        let cut = bytes[..HEADER + 2 * SEALED_CHUNK as usize].to_vec();
        case("truncated", cut, 2 * CHUNK as u64);
        case("short", bytes[..bytes.len() - 1].to_vec(), len);
        let other = dir.path().join("other");
        write(&other, &FileKey::generate(), &data, CHUNK, cipher);
        assert!(matches!(
            read_all(&other, &key, len),
            Err(SealedFileError::Corrupted)
        ));
    }

    /// The chunks are exactly what the `aead` crate's STREAM (`StreamBE32`) makes of the same
    /// key, prefix and header: the nonce layout is the construction's.
    #[test]
    fn chunks_match_the_aead_crates_stream() {
        use aes_gcm::Aes256Gcm;
        use chacha20poly1305::ChaCha20Poly1305;
        use chacha20poly1305::aead::KeyInit;
        use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey::generate();
        let data = pattern(CHUNK + 1000);
        for cipher in FileCipher::ALL {
            let path = dir.path().join(format!("{cipher:?}"));
            write(&path, &key, &data, CHUNK, cipher);
            let bytes = std::fs::read(&path).unwrap();
            let header = &bytes[..HEADER];
            let prefix = &header[8..8 + PREFIX];
            let expect = |i: u32, last: bool, plain: &[u8]| -> Vec<u8> {
                let mut buf = plain.to_vec();
                match cipher {
                    FileCipher::Aes256Gcm => {
                        StreamBE32::from_aead(Aes256Gcm::new(key.as_bytes().into()), prefix.into())
                            .encrypt_in_place(i, last, header, &mut buf)
                    }
                    FileCipher::ChaCha20Poly1305 => StreamBE32::from_aead(
                        ChaCha20Poly1305::new(key.as_bytes().into()),
                        prefix.into(),
                    )
                    .encrypt_in_place(i, last, header, &mut buf),
                }
                .unwrap();
                buf
            };
            let first = &bytes[HEADER..HEADER + SEALED_CHUNK as usize];
            assert_eq!(first, expect(0, false, &data[..CHUNK]), "{cipher:?}");
            let second = &bytes[HEADER + SEALED_CHUNK as usize..];
            assert_eq!(second, expect(1, true, &data[CHUNK..]), "{cipher:?}");
        }
    }

    #[test]
    fn an_unfinished_file_resumes_from_its_last_whole_chunk() {
        for cipher in FileCipher::ALL {
            resumes(cipher);
        }
    }

    fn resumes(cipher: FileCipher) {
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey::generate();
        let data = pattern(5 * CHUNK + 3);
        let path = dir.path().join("part");
        let mut w = SealedWriter::create_with(&path, &key, cipher).unwrap();
        w.write(&data[..2 * CHUNK + 500]).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut seen = Vec::new();
        let (mut w, kept) =
            SealedWriter::resume(&path, &key, |p| seen.extend_from_slice(p)).unwrap();
        // Two chunks were sealed (the third was still in memory).
        assert_eq!(kept, 2 * CHUNK as u64);
        assert_eq!(seen, &data[..2 * CHUNK]);
        w.write(&data[kept as usize..]).unwrap();
        w.finish().unwrap();
        assert_eq!(read_all(&path, &key, data.len() as u64).unwrap(), data);
    }
}
