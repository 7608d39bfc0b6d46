//! One account directory: its vault and, while unlocked, its open encrypted store. The mobile API
//! and the harness drive accounts through this type; it is synchronous and is run on blocking
//! threads by the callers.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::ffi::SyncError;
use crate::store::{Store, StoreError, StoreOptions, meta};
use crate::vault::{self, VaultConfig, VaultError, VaultPaths};

/// How the person signs in to the organization (design.md §1, step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UserMode {
    /// The identity provider's login page (OAuth / OpenID Connect).
    Oauth,
    /// A user name and password sent to the organization server.
    Credentials,
}

impl UserMode {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UserMode::Oauth => "oauth",
            UserMode::Credentials => "credentials",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<UserMode> {
        match s {
            "oauth" => Some(UserMode::Oauth),
            "credentials" => Some(UserMode::Credentials),
            _ => None,
        }
    }
}

/// Where an account stands, for the app's start screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccountState {
    /// A vault (offline password) exists.
    pub configured: bool,
    /// The offline data is locked (always true when not configured).
    pub locked: bool,
    /// Known only while unlocked: the organization lives inside the encrypted store.
    pub organization_url: Option<String>,
    pub user_mode: Option<UserMode>,
    /// Local edits waiting for the next Synchronize (0 while locked).
    pub pending_changes: u64,
    /// Unix seconds of the last successful Synchronize, when unlocked and known.
    pub last_sync: Option<i64>,
    /// Consecutive failed unlock attempts.
    pub failed_attempts: u32,
    /// Biometric unlock (a platform key slot) is enabled: show its button.
    pub platform_unlock_enabled: bool,
}

/// An account directory and its open store.
pub struct Account {
    paths: VaultPaths,
    config: VaultConfig,
    store: Option<Store>,
}

const ORG_URL: &str = "organization_url";
const USER_MODE: &str = "user_mode";

impl Account {
    pub fn new(dir: impl Into<PathBuf>, config: VaultConfig) -> Self {
        Account {
            paths: VaultPaths::new(dir),
            config,
            store: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.paths.dir
    }

    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// Creates the vault and the store, and records the organization. The URL is normalized
    /// first: nothing is written for a bad URL or a refused password.
    pub fn setup(
        &mut self,
        organization_url: &str,
        user_mode: UserMode,
        password: &[u8],
        confirmation: &[u8],
    ) -> Result<(), SyncError> {
        let url = crate::org::normalize_organization_url(organization_url)?;
        let unlocked = vault::create(&self.paths, password, confirmation, &self.config)?;
        let result = (|| {
            let store = Store::open(&self.paths.database(), &unlocked, &StoreOptions::default())?;
            meta::set(store.conn(), ORG_URL, &url)?;
            meta::set(store.conn(), USER_MODE, user_mode.as_str())?;
            Ok::<_, StoreError>(store)
        })();
        match result {
            Ok(store) => {
                self.store = Some(store);
                Ok(())
            }
            Err(e) => {
                // Half a setup is no setup: remove the vault so the person can start again.
                let _ = vault::wipe(&self.paths);
                Err(e.into())
            }
        }
    }

    /// Unlocks with the offline password and opens the store.
    pub fn unlock(&mut self, password: &[u8]) -> Result<(), SyncError> {
        if self.store.is_some() {
            return Ok(());
        }
        let unlocked = vault::unlock(&self.paths, password, &self.config)?;
        self.open_store(&unlocked)
    }

    /// Unlocks with the secret the platform key store opened, and opens the store.
    pub fn unlock_with_platform_secret(&mut self, secret: &[u8]) -> Result<(), SyncError> {
        if self.store.is_some() {
            return Ok(());
        }
        let unlocked = vault::unlock_with_platform_secret(&self.paths, secret)?;
        self.open_store(&unlocked)
    }

    fn open_store(&mut self, unlocked: &vault::UnlockedVault) -> Result<(), SyncError> {
        self.store = Some(Store::open(
            &self.paths.database(),
            unlocked,
            &StoreOptions::default(),
        )?);
        Ok(())
    }

    /// The vault's files, for the platform-slot steps that run between foreign calls.
    pub fn vault_paths(&self) -> &VaultPaths {
        &self.paths
    }

    /// Closes the store; the key is wiped from memory with it.
    pub fn lock(&mut self) {
        self.store = None;
    }

    pub fn is_unlocked(&self) -> bool {
        self.store.is_some()
    }

    /// The open store, or `Locked`.
    pub fn store(&mut self) -> Result<&mut Store, SyncError> {
        self.store.as_mut().ok_or(SyncError::Locked)
    }

    /// Re-wraps the key under a new password; the store stays as it is (open or not).
    pub fn change_password(
        &mut self,
        old: &[u8],
        new: &[u8],
        confirmation: &[u8],
    ) -> Result<(), SyncError> {
        Ok(vault::change_password(
            &self.paths,
            old,
            new,
            confirmation,
            &self.config,
        )?)
    }

    /// Locks and crypto-erases everything in the account directory.
    pub fn wipe(&mut self) -> Result<(), SyncError> {
        self.lock();
        Ok(vault::wipe(&self.paths)?)
    }

    /// The account's state, reading what the lock allows.
    pub fn state(&self) -> Result<AccountState, SyncError> {
        let configured = self.paths.exists();
        let failed_attempts = vault::failed_attempts(&self.paths)?;
        let platform_unlock_enabled = configured && vault::platform_slot(&self.paths)?.is_some();
        let mut state = AccountState {
            configured,
            locked: self.store.is_none(),
            organization_url: None,
            user_mode: None,
            pending_changes: 0,
            last_sync: None,
            failed_attempts,
            platform_unlock_enabled,
        };
        if let Some(store) = &self.store {
            let conn = store.conn();
            state.organization_url = meta::get(conn, ORG_URL)?;
            state.user_mode = meta::get(conn, USER_MODE)?
                .as_deref()
                .and_then(UserMode::parse);
            let pending: i64 = conn
                .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                .map_err(StoreError::from)?;
            state.pending_changes = pending as u64;
            state.last_sync = conn
                .query_row(
                    "SELECT max(finished_at) FROM sync_log WHERE outcome = 'ok'",
                    [],
                    |r| r.get(0),
                )
                .map_err(StoreError::from)?;
        }
        Ok(state)
    }
}

/// Takes a password from the FFI and makes sure it is wiped when dropped.
pub(crate) fn secret(bytes: Vec<u8>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(bytes)
}

impl From<VaultError> for SyncError {
    fn from(e: VaultError) -> Self {
        use crate::vault::{HeaderError, PolicyError};
        match e {
            VaultError::Policy(PolicyError::Mismatch) => SyncError::PasswordMismatch,
            VaultError::Policy(PolicyError::TooShort { min_length }) => {
                SyncError::WeakPassword { min_length }
            }
            VaultError::Policy(PolicyError::NotUtf8) => SyncError::InvalidInput {
                reason: "the password is not valid UTF-8".into(),
            },
            VaultError::WrongPassword { attempts_left } => {
                SyncError::WrongPassword { attempts_left }
            }
            VaultError::Wiped => SyncError::VaultWiped,
            VaultError::NotConfigured => SyncError::NotConfigured,
            VaultError::AlreadyConfigured => SyncError::AlreadyConfigured,
            VaultError::Header(HeaderError::PlatformSecretRejected) => {
                SyncError::PlatformKeyInvalidated
            }
            VaultError::Header(HeaderError::NoPlatformSlot) => SyncError::PlatformUnlockNotEnabled,
            VaultError::Header(e @ HeaderError::SealedTooLong(_)) => SyncError::InvalidInput {
                reason: e.to_string(),
            },
            VaultError::Header(HeaderError::Kdf(k)) => SyncError::Internal {
                reason: k.to_string(),
            },
            VaultError::Header(h) => SyncError::Corrupted {
                reason: h.to_string(),
            },
            VaultError::Io(io) => SyncError::Storage {
                reason: io.to_string(),
            },
        }
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupted(_) | StoreError::NotEncrypted => SyncError::Corrupted {
                reason: e.to_string(),
            },
            StoreError::Sqlite(_) | StoreError::Io(_) => SyncError::Storage {
                reason: e.to_string(),
            },
            StoreError::Vfs(_) => SyncError::Internal {
                reason: e.to_string(),
            },
        }
    }
}

impl From<crate::store::entities::EntityError> for SyncError {
    fn from(e: crate::store::entities::EntityError) -> Self {
        match e {
            crate::store::entities::EntityError::Store(s) => s.into(),
            other => SyncError::InvalidInput {
                reason: other.to_string(),
            },
        }
    }
}
