//! A file-backed `PlatformKeyStore` for tests and scripts: the directory stands in for the
//! Keychain / Android Keystore. It keeps each secret in its own file (mode 0600), so it protects
//! nothing a real key store would; it exists to drive the biometric-unlock slot end to end.

use std::path::PathBuf;

use syncvault::{PlatformKeyStore, SyncError};

/// Keeps secrets in `dir/<alias>.key`, as the Keychain keeps an item (nothing sealed to return).
pub struct FileKeyStore {
    pub dir: PathBuf,
}

impl FileKeyStore {
    fn path(&self, alias: &str) -> Result<PathBuf, SyncError> {
        // Aliases come from the core ("syncvault-<hex>"); refuse anything that could escape.
        if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(SyncError::InvalidInput {
                reason: format!("bad key alias {alias:?}"),
            });
        }
        Ok(self.dir.join(format!("{alias}.key")))
    }
}

fn unavailable(err: std::io::Error) -> SyncError {
    SyncError::PlatformKeyUnavailable {
        reason: err.to_string(),
    }
}

#[async_trait::async_trait]
impl PlatformKeyStore for FileKeyStore {
    async fn seal_secret(&self, key_alias: String, secret: Vec<u8>) -> Result<Vec<u8>, SyncError> {
        let path = self.path(&key_alias)?;
        std::fs::create_dir_all(&self.dir).map_err(unavailable)?;
        write_private(&path, &secret).map_err(unavailable)?;
        Ok(Vec::new())
    }

    async fn open_secret(&self, key_alias: String, _sealed: Vec<u8>) -> Result<Vec<u8>, SyncError> {
        match std::fs::read(self.path(&key_alias)?) {
            Ok(secret) => Ok(secret),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err(SyncError::PlatformKeyInvalidated)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn delete_secret(&self, key_alias: String) -> Result<(), SyncError> {
        match std::fs::remove_file(self.path(&key_alias)?) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(unavailable(err)),
            _ => Ok(()),
        }
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
