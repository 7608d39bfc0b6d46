//! One account directory: its vault and, while unlocked, its open encrypted store. The mobile API
//! and the harness drive accounts through this type; it is synchronous and is run on blocking
//! threads by the callers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::org::OrgUrlError;
use crate::runtime::TaskError;
use crate::store::{
    ChangeHub, Store, StoreError, StoreOptions, attachments, meta, outbox, sync_log,
};
use crate::vault::{self, VaultConfig, VaultError, VaultPaths};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Url(#[from] OrgUrlError),
    /// The store is closed: unlock first.
    #[error("the offline data is locked")]
    Locked,
    /// The store holds no organization (setup never finished).
    #[error("this account is not set up yet")]
    NotConfigured,
    /// The organization wiped this device; its offline data is gone.
    #[error("the organization wiped this device")]
    RemoteWiped,
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// How the person signs in to the organization (the seed's step 2: User Mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
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
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AccountState {
    /// A vault (offline password) exists.
    pub configured: bool,
    /// The offline data is locked (always true when not configured).
    pub locked: bool,
    /// Known only while unlocked: the organization lives inside the encrypted store.
    pub organization_url: Option<String>,
    pub user_mode: Option<UserMode>,
    /// Local edits waiting for the next Synchronize; None while locked (unknown: they live in
    /// the encrypted store), never a false 0.
    pub pending_changes: Option<u64>,
    /// Unix seconds of the last successful Synchronize; None while locked (unknown) or when there
    /// was none (tell them apart with `locked`).
    pub last_sync: Option<i64>,
    /// Consecutive failed unlock attempts.
    pub failed_attempts: u32,
    /// Biometric unlock (a platform key slot) is enabled: show its button.
    pub platform_unlock_enabled: bool,
    /// The organization wiped this device (its administrator's command): tell the person why
    /// the data is gone. Cleared by the next setup.
    pub remotely_wiped: bool,
}

/// An account directory and its open store.
pub struct Account {
    paths: VaultPaths,
    config: VaultConfig,
    store: Option<Store>,
    /// Where the store's commits are published for watched queries (outlives each unlock).
    changes: Arc<ChangeHub>,
}

const ORG_URL: &str = "organization_url";
const USER_MODE: &str = "user_mode";
/// Written (durably) before a remote wipe starts; while it exists the wipe is unfinished.
const REMOTE_WIPE_PENDING: &str = "remote-wipe.pending";
/// Left after a remote wipe, until the next setup: the data is gone because the organization
/// said so.
const REMOTE_WIPE_DONE: &str = "remote-wipe.done";

impl Account {
    /// The account directory `dir`; a remote wipe a crash interrupted is finished here.
    pub fn new(dir: impl Into<PathBuf>, config: VaultConfig) -> Self {
        let account = Account {
            paths: VaultPaths::new(dir),
            config,
            store: None,
            changes: ChangeHub::new(),
        };
        if account.paths.dir.join(REMOTE_WIPE_PENDING).exists()
            && let Err(e) = account.finish_remote_wipe()
        {
            tracing::error!("could not finish the remote wipe: {e}");
        }
        account
    }

    /// Crypto-erases the vault because the organization ordered it: the intent is recorded
    /// first, so a crash in the middle is finished at the next start.
    pub fn wipe_remotely(&mut self) -> Result<(), AccountError> {
        self.lock();
        let pending = self.paths.dir.join(REMOTE_WIPE_PENDING);
        crate::fsio::write_atomic(&pending, b"wipe\n").map_err(VaultError::Io)?;
        self.finish_remote_wipe()
    }

    fn finish_remote_wipe(&self) -> Result<(), AccountError> {
        vault::wipe(&self.paths)?;
        std::fs::rename(
            self.paths.dir.join(REMOTE_WIPE_PENDING),
            self.paths.dir.join(REMOTE_WIPE_DONE),
        )
        .map_err(VaultError::Io)?;
        crate::fsio::sync_dir(&self.paths.dir.join(REMOTE_WIPE_DONE)).map_err(VaultError::Io)?;
        tracing::warn!("the organization wiped this device");
        Ok(())
    }

    fn remotely_wiped(&self) -> bool {
        self.paths.dir.join(REMOTE_WIPE_DONE).exists()
    }

    fn store_options(&self) -> StoreOptions {
        StoreOptions {
            changes: Some(Arc::clone(&self.changes)),
            ..StoreOptions::default()
        }
    }

    /// The change feed and reader of this account's store (docs/architecture.md, "A commit,
    /// from the writer to a watching screen").
    pub fn changes(&self) -> &Arc<ChangeHub> {
        &self.changes
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
    ) -> Result<(), AccountError> {
        let url = crate::org::normalize_organization_url(organization_url)?;
        let unlocked = vault::create(&self.paths, password, confirmation, &self.config)?;
        crate::fsio::remove_if_exists(&self.paths.dir.join(REMOTE_WIPE_DONE))
            .map_err(VaultError::Io)?;
        let result = (|| {
            let store = Store::open(&self.paths.database(), &unlocked, &self.store_options())?;
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
    pub fn unlock(&mut self, password: &[u8]) -> Result<(), AccountError> {
        if self.store.is_some() {
            return Ok(());
        }
        if self.remotely_wiped() && !self.paths.exists() {
            return Err(AccountError::RemoteWiped);
        }
        let unlocked = vault::unlock(&self.paths, password, &self.config)?;
        self.open_store(&unlocked)
    }

    /// Unlocks with the secret the platform key store opened, and opens the store.
    pub fn unlock_with_platform_secret(&mut self, secret: &[u8]) -> Result<(), AccountError> {
        if self.store.is_some() {
            return Ok(());
        }
        let unlocked = vault::unlock_with_platform_secret(&self.paths, secret)?;
        self.open_store(&unlocked)
    }

    fn open_store(&mut self, unlocked: &vault::UnlockedVault) -> Result<(), AccountError> {
        let store = Store::open(&self.paths.database(), unlocked, &self.store_options())?;
        // Attachment files a crash left without their row (or the other way round's leftovers).
        let dir = self.paths.dir.join(attachments::DIR);
        if dir.exists()
            && let Err(e) = attachments::sweep(store.conn(), &dir)
        {
            tracing::warn!("could not sweep attachment files: {e}");
        }
        self.store = Some(store);
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
    pub fn store(&mut self) -> Result<&mut Store, AccountError> {
        self.store.as_mut().ok_or(AccountError::Locked)
    }

    /// The organization URL and user mode recorded at setup (requires unlocked).
    pub fn organization(&mut self) -> Result<(String, UserMode), AccountError> {
        let conn = self.store()?.conn();
        let url = meta::get(conn, ORG_URL)?.ok_or(AccountError::NotConfigured)?;
        let mode = meta::get(conn, USER_MODE)?
            .as_deref()
            .and_then(UserMode::parse)
            .unwrap_or(UserMode::Oauth);
        Ok((url, mode))
    }

    /// Re-wraps the key under a new password; the store stays as it is (open or not).
    pub fn change_password(
        &mut self,
        old: &[u8],
        new: &[u8],
        confirmation: &[u8],
    ) -> Result<(), AccountError> {
        Ok(vault::change_password(
            &self.paths,
            old,
            new,
            confirmation,
            &self.config,
        )?)
    }

    /// Locks and crypto-erases everything in the account directory.
    pub fn wipe(&mut self) -> Result<(), AccountError> {
        self.lock();
        Ok(vault::wipe(&self.paths)?)
    }

    /// The account's state, reading what the lock allows.
    pub fn state(&self) -> Result<AccountState, AccountError> {
        let configured = self.paths.exists();
        let failed_attempts = vault::failed_attempts(&self.paths)?;
        let platform_unlock_enabled = configured && vault::platform_slot(&self.paths)?.is_some();
        let mut state = AccountState {
            configured,
            locked: self.store.is_none(),
            organization_url: None,
            user_mode: None,
            pending_changes: None,
            last_sync: None,
            failed_attempts,
            platform_unlock_enabled,
            remotely_wiped: !configured && self.remotely_wiped(),
        };
        if let Some(store) = &self.store {
            let conn = store.conn();
            state.organization_url = meta::get(conn, ORG_URL)?;
            state.user_mode = meta::get(conn, USER_MODE)?
                .as_deref()
                .and_then(UserMode::parse);
            state.pending_changes = Some(outbox::pending_count(conn)?);
            state.last_sync = sync_log::last_success(conn)?;
        }
        Ok(state)
    }
}
