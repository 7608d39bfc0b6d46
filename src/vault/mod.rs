//! The offline vault: the unrecoverable offline password, the Argon2id key hierarchy, the
//! failed-attempt policy, and the crypto-erase wipe. docs/security.md is the specification.
//!
//! Files in an account directory: `vault.header` (wrapped DEK), `vault.attempts` (failure
//! counter), and the encrypted database `store.db` with its `-wal` and `-shm`.

mod attempts;
mod header;
mod kdf;
mod policy;
mod suite;

use std::path::{Path, PathBuf};

pub use attempts::AttemptPolicy;
pub(crate) use header::random_bytes;
pub use header::{Dek, Header, HeaderError, platform_key_alias};
pub use kdf::{KdfError, KdfParams, derive_kek};
pub use policy::{PasswordPolicy, PolicyError};
pub use suite::CipherSuite;

use crate::fsio;
use zeroize::Zeroizing;

/// The knobs an app (or a test) may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultConfig {
    /// KDF parameters for new vaults and for upgrades at unlock.
    pub kdf: KdfParams,
    pub password_policy: PasswordPolicy,
    pub attempts: AttemptPolicy,
    /// The page cipher of new vaults; None: what this CPU runs fastest
    /// ([`CipherSuite::preferred`]).
    pub cipher: Option<CipherSuite>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            kdf: KdfParams::DEFAULT,
            password_policy: PasswordPolicy::default(),
            attempts: AttemptPolicy::default(),
            cipher: None,
        }
    }
}

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("wrong password ({attempts_left} attempts left)")]
    WrongPassword { attempts_left: u32 },
    #[error("too many wrong passwords: the vault was erased")]
    Wiped,
    #[error("no vault in this directory")]
    NotConfigured,
    #[error("a vault already exists in this directory")]
    AlreadyConfigured,
    #[error(transparent)]
    Header(HeaderError),
    #[error("vault I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<HeaderError> for VaultError {
    fn from(e: HeaderError) -> Self {
        VaultError::Header(e)
    }
}

/// The file names inside an account directory.
#[derive(Debug, Clone)]
pub struct VaultPaths {
    pub dir: PathBuf,
}

impl VaultPaths {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        VaultPaths { dir: dir.into() }
    }
    pub fn header(&self) -> PathBuf {
        self.dir.join(crate::VAULT_HEADER_FILE)
    }
    pub fn attempts(&self) -> PathBuf {
        self.dir.join("vault.attempts")
    }
    pub fn database(&self) -> PathBuf {
        self.dir.join("store.db")
    }
    /// The database and every file SQLite may keep beside it.
    pub fn database_files(&self) -> Vec<PathBuf> {
        let db = self.database();
        let mut files = vec![db.clone()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            files.push(PathBuf::from(name));
        }
        files
    }
    pub fn exists(&self) -> bool {
        self.header().exists()
    }
}

/// An unlocked vault: what the store needs to open the database.
pub struct UnlockedVault {
    pub vault_id: [u8; 16],
    pub dek: Dek,
    /// What seals its database pages.
    pub cipher: CipherSuite,
}

/// Creates a vault with a new random DEK. Checks the two entries and the policy first; nothing is
/// written when they fail. Leftover database files from an earlier vault are removed: they could
/// never be decrypted with the new key.
pub fn create(
    paths: &VaultPaths,
    password: &[u8],
    confirmation: &[u8],
    config: &VaultConfig,
) -> Result<UnlockedVault, VaultError> {
    config.password_policy.check(password, confirmation)?;
    if paths.exists() {
        return Err(VaultError::AlreadyConfigured);
    }
    fsio::create_private_dir(&paths.dir)?;
    for file in paths.database_files() {
        fsio::remove_if_exists(&file)?;
    }
    let dek: Dek = Zeroizing::new(random_bytes());
    let cipher = config.cipher.unwrap_or_else(CipherSuite::preferred);
    let header = Header::create(&dek, password, config.kdf, cipher)?;
    attempts::write(&paths.attempts(), 0)?;
    fsio::write_atomic(&paths.header(), &header.encode())?;
    Ok(UnlockedVault {
        vault_id: header.vault_id,
        dek,
        cipher: header.cipher,
    })
}

fn read_header(paths: &VaultPaths) -> Result<Header, VaultError> {
    match std::fs::read(paths.header()) {
        Ok(bytes) => Ok(Header::decode(&bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(VaultError::NotConfigured),
        Err(e) => Err(e.into()),
    }
}

/// Unlocks with the offline password, enforcing the attempt policy:
/// the failure is counted (durably) before the KDF runs, the escalating delay is slept on the
/// calling (blocking) thread, the counter resets on success, and the vault is wiped when the
/// limit is reached. Weaker stored KDF parameters are upgraded to `config.kdf` on success.
pub fn unlock(
    paths: &VaultPaths,
    password: &[u8],
    config: &VaultConfig,
) -> Result<UnlockedVault, VaultError> {
    let mut header = read_header(paths)?;
    let policy = config.attempts;
    let failures = attempts::read(&paths.attempts())?;
    if failures >= policy.max_attempts {
        wipe(paths)?;
        return Err(VaultError::Wiped);
    }
    attempts::write(&paths.attempts(), failures + 1)?;
    std::thread::sleep(policy.delay_before(failures));
    match header.unwrap_with_password(password) {
        Ok(dek) => {
            attempts::write(&paths.attempts(), 0)?;
            if let Some(stored) = header.password_params()
                && is_upgrade(stored, config.kdf)
            {
                header.set_password(&dek, password, config.kdf)?;
                fsio::write_atomic(&paths.header(), &header.encode())?;
                tracing::info!("vault KDF parameters upgraded");
            }
            Ok(UnlockedVault {
                vault_id: header.vault_id,
                dek,
                cipher: header.cipher,
            })
        }
        Err(HeaderError::WrongPassword) => {
            let failures = failures + 1;
            if failures >= policy.max_attempts {
                wipe(paths)?;
                return Err(VaultError::Wiped);
            }
            Err(VaultError::WrongPassword {
                attempts_left: policy.max_attempts - failures,
            })
        }
        Err(other) => Err(other.into()),
    }
}

fn is_upgrade(stored: KdfParams, wanted: KdfParams) -> bool {
    stored != wanted && wanted.in_range() && wanted.m_kib >= stored.m_kib && wanted.t >= stored.t
}

/// A new platform slot's key, before the platform key store has sealed its secret.
pub struct PlatformEnrollment {
    /// The key store's alias for this enrollment.
    pub key_alias: String,
    key_id: [u8; 16],
    /// The random secret the key store must protect; it unwraps the DEK.
    pub secret: Zeroizing<[u8; 32]>,
    dek: Dek,
}

/// First half of enabling biometric unlock: the offline password proves the person (counted like
/// an unlock attempt) and a fresh random secret is made for the platform key store to seal.
pub fn begin_platform_enrollment(
    paths: &VaultPaths,
    password: &[u8],
    config: &VaultConfig,
) -> Result<PlatformEnrollment, VaultError> {
    let unlocked = unlock(paths, password, config)?;
    let key_id = random_bytes();
    Ok(PlatformEnrollment {
        key_alias: platform_key_alias(&key_id),
        key_id,
        secret: Zeroizing::new(random_bytes()),
        dek: unlocked.dek,
    })
}

/// Second half: stores the DEK wrapped under the enrollment's secret with what the key store
/// returned, replacing any earlier platform slot (whose alias is returned for deletion).
pub fn finish_platform_enrollment(
    paths: &VaultPaths,
    enrollment: PlatformEnrollment,
    sealed: Vec<u8>,
) -> Result<Option<String>, VaultError> {
    let mut header = read_header(paths)?;
    let replaced = header.remove_platform();
    header.set_platform(
        &enrollment.dek,
        &enrollment.secret,
        enrollment.key_id,
        sealed,
    )?;
    fsio::write_atomic(&paths.header(), &header.encode())?;
    Ok(replaced.as_ref().map(platform_key_alias))
}

/// The platform slot's key alias and sealed secret, or `None` when biometric unlock is off.
pub fn platform_slot(paths: &VaultPaths) -> Result<Option<(String, Vec<u8>)>, VaultError> {
    let header = read_header(paths)?;
    Ok(header
        .platform_slot()
        .map(|(key_id, sealed)| (platform_key_alias(key_id), sealed.to_vec())))
}

/// Unlocks with the secret the platform key store opened (after the OS authenticated the
/// person). A success proves the person, so it resets the password-failure counter.
pub fn unlock_with_platform_secret(
    paths: &VaultPaths,
    secret: &[u8],
) -> Result<UnlockedVault, VaultError> {
    let header = read_header(paths)?;
    let dek = header.unwrap_with_platform_secret(secret)?;
    attempts::write(&paths.attempts(), 0)?;
    Ok(UnlockedVault {
        vault_id: header.vault_id,
        dek,
        cipher: header.cipher,
    })
}

/// Removes the platform slot; returns its key alias so the key store can delete the key.
pub fn remove_platform_slot(paths: &VaultPaths) -> Result<Option<String>, VaultError> {
    let mut header = read_header(paths)?;
    let Some(key_id) = header.remove_platform() else {
        return Ok(None);
    };
    fsio::write_atomic(&paths.header(), &header.encode())?;
    Ok(Some(platform_key_alias(&key_id)))
}

/// Changes the offline password: the old one unlocks (counting as an attempt), the new one is
/// checked against the policy, and only the DEK's wrapping changes (temp file, fsync, rename).
pub fn change_password(
    paths: &VaultPaths,
    old: &[u8],
    new: &[u8],
    confirmation: &[u8],
    config: &VaultConfig,
) -> Result<(), VaultError> {
    config.password_policy.check(new, confirmation)?;
    let unlocked = unlock(paths, old, config)?;
    let mut header = read_header(paths)?;
    header.set_password(&unlocked.dek, new, config.kdf)?;
    fsio::write_atomic(&paths.header(), &header.encode())?;
    Ok(())
}

/// Crypto-erases the vault: the wrapped key is overwritten with random bytes and synced first,
/// so the database is undecryptable even if deleting its files fails; then every file goes.
pub fn wipe(paths: &VaultPaths) -> Result<(), VaultError> {
    let header = paths.header();
    if let Ok(meta) = std::fs::metadata(&header) {
        let noise: Vec<u8> = (0..meta.len()).map(|_| random_bytes::<1>()[0]).collect();
        // Overwrite in place (not rename): the old bytes' blocks are what must be destroyed.
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().write(true).open(&header)?;
        file.write_all(&noise)?;
        file.sync_all()?;
    }
    fsio::remove_if_exists(&header)?;
    for file in paths.database_files() {
        fsio::remove_if_exists(&file)?;
    }
    fsio::remove_if_exists(&paths.attempts())?;
    // Attachment files (store::attachments::DIR): their keys lived in the store, gone with the
    // key above; the files go too.
    // Temporary files (store::TEMP_DIR) are unlinked when opened; anything left goes as well.
    for dir in ["attachments", "tmp"] {
        match std::fs::remove_dir_all(paths.dir.join(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    fsio::sync_dir(&header)?;
    Ok(())
}

/// Consecutive failed unlock attempts so far.
pub fn failed_attempts(paths: &VaultPaths) -> Result<u32, VaultError> {
    Ok(attempts::read(&paths.attempts())?)
}

/// Whether `dir` holds a vault.
pub fn exists(dir: &Path) -> bool {
    VaultPaths::new(dir).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fast_config() -> VaultConfig {
        VaultConfig {
            kdf: KdfParams::FLOOR,
            password_policy: PasswordPolicy::default(),
            attempts: AttemptPolicy {
                max_attempts: 4,
                free_attempts: 2,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
            },
            cipher: None,
        }
    }

    #[test]
    fn create_unlock_wrong_password_and_wipe_at_limit() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VaultPaths::new(dir.path());
        let config = fast_config();
        let created = create(&paths, b"offline pw 1", b"offline pw 1", &config).unwrap();
        assert!(matches!(
            create(&paths, b"offline pw 1", b"offline pw 1", &config),
            Err(VaultError::AlreadyConfigured)
        ));
        let unlocked = unlock(&paths, b"offline pw 1", &config).unwrap();
        assert_eq!(*unlocked.dek, *created.dek);
        assert_eq!(unlocked.vault_id, created.vault_id);

        for left in [3, 2, 1] {
            match unlock(&paths, b"nope nope", &config) {
                Err(VaultError::WrongPassword { attempts_left }) => assert_eq!(attempts_left, left),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
        // A success in between resets the counter.
        unlock(&paths, b"offline pw 1", &config).unwrap();
        assert_eq!(attempts::read(&paths.attempts()).unwrap(), 0);
        for _ in 0..3 {
            assert!(unlock(&paths, b"nope nope", &config).is_err());
        }
        std::fs::write(paths.database(), b"pretend database").unwrap();
        assert!(matches!(
            unlock(&paths, b"nope nope", &config),
            Err(VaultError::Wiped)
        ));
        assert!(!paths.exists());
        assert!(!paths.database().exists());
        assert!(matches!(
            unlock(&paths, b"offline pw 1", &config),
            Err(VaultError::NotConfigured)
        ));
    }

    #[test]
    fn a_damaged_header_burns_no_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VaultPaths::new(dir.path());
        let config = fast_config();
        create(&paths, b"offline pw 1", b"offline pw 1", &config).unwrap();
        // The header is decoded before the counter moves: damage is Corrupted, not a guess.
        std::fs::write(paths.header(), b"garbage").unwrap();
        assert!(matches!(
            unlock(&paths, b"offline pw 1", &config),
            Err(VaultError::Header(HeaderError::Corrupted(_)))
        ));
        assert_eq!(attempts::read(&paths.attempts()).unwrap(), 0);
    }

    #[test]
    fn policy_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VaultPaths::new(dir.path().join("acct"));
        let config = fast_config();
        assert!(matches!(
            create(&paths, b"password1", b"password2", &config),
            Err(VaultError::Policy(PolicyError::Mismatch))
        ));
        assert!(matches!(
            create(&paths, b"short", b"short", &config),
            Err(VaultError::Policy(PolicyError::TooShort { min_length: 8 }))
        ));
        assert!(!paths.dir.exists());
    }

    #[test]
    fn change_password_rewraps_only() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VaultPaths::new(dir.path());
        let config = fast_config();
        let created = create(&paths, b"old password", b"old password", &config).unwrap();
        assert!(matches!(
            change_password(
                &paths,
                b"old password",
                b"new password",
                b"new passw0rd",
                &config
            ),
            Err(VaultError::Policy(PolicyError::Mismatch))
        ));
        assert!(matches!(
            change_password(
                &paths,
                b"bad password",
                b"new password",
                b"new password",
                &config
            ),
            Err(VaultError::WrongPassword { attempts_left: 3 })
        ));
        change_password(
            &paths,
            b"old password",
            b"new password",
            b"new password",
            &config,
        )
        .unwrap();
        assert!(matches!(
            unlock(&paths, b"old password", &config),
            Err(VaultError::WrongPassword { .. })
        ));
        let unlocked = unlock(&paths, b"new password", &config).unwrap();
        assert_eq!(*unlocked.dek, *created.dek);
    }

    #[test]
    fn platform_slot_unlocks_resets_failures_and_outlives_a_password_change() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VaultPaths::new(dir.path());
        let config = fast_config();
        let created = create(&paths, b"password!!", b"password!!", &config).unwrap();
        assert!(platform_slot(&paths).unwrap().is_none());
        assert!(matches!(
            begin_platform_enrollment(&paths, b"not it!!!", &config),
            Err(VaultError::WrongPassword { attempts_left: 3 })
        ));
        let enrollment = begin_platform_enrollment(&paths, b"password!!", &config).unwrap();
        let (alias, secret) = (enrollment.key_alias.clone(), *enrollment.secret);
        assert_eq!(
            finish_platform_enrollment(&paths, enrollment, vec![7; 60]).unwrap(),
            None
        );
        assert_eq!(
            platform_slot(&paths).unwrap(),
            Some((alias.clone(), vec![7; 60]))
        );

        assert!(unlock(&paths, b"not it!!!", &config).is_err());
        let unlocked = unlock_with_platform_secret(&paths, &secret).unwrap();
        assert_eq!(*unlocked.dek, *created.dek);
        assert_eq!(failed_attempts(&paths).unwrap(), 0);
        assert!(matches!(
            unlock_with_platform_secret(&paths, &[0; 32]),
            Err(VaultError::Header(HeaderError::PlatformSecretRejected))
        ));

        change_password(&paths, b"password!!", b"another pw", b"another pw", &config).unwrap();
        assert_eq!(
            *unlock_with_platform_secret(&paths, &secret).unwrap().dek,
            *created.dek
        );
        // Enrolling again replaces the slot and names the old key for deletion.
        let again = begin_platform_enrollment(&paths, b"another pw", &config).unwrap();
        assert_eq!(
            finish_platform_enrollment(&paths, again, Vec::new()).unwrap(),
            Some(alias)
        );
        assert!(unlock_with_platform_secret(&paths, &secret).is_err());
        let (alias, _) = platform_slot(&paths).unwrap().unwrap();
        assert_eq!(remove_platform_slot(&paths).unwrap(), Some(alias));
        assert_eq!(remove_platform_slot(&paths).unwrap(), None);
        assert_eq!(
            *unlock(&paths, b"another pw", &config).unwrap().dek,
            *created.dek
        );
    }

    #[test]
    fn weaker_params_are_upgraded_on_unlock() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VaultPaths::new(dir.path());
        let mut config = fast_config();
        create(&paths, b"password!!", b"password!!", &config).unwrap();
        config.kdf = KdfParams {
            m_kib: 20 * 1024,
            t: 2,
            p: 1,
        };
        unlock(&paths, b"password!!", &config).unwrap();
        let header = read_header(&paths).unwrap();
        assert_eq!(header.password_params(), Some(config.kdf));
        // Never downgraded.
        config.kdf = KdfParams::FLOOR;
        unlock(&paths, b"password!!", &config).unwrap();
        assert_eq!(
            read_header(&paths)
                .unwrap()
                .password_params()
                .unwrap()
                .m_kib,
            20 * 1024
        );
    }
}
