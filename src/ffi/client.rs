//! `SyncClient`: the one object an app holds per account directory.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::account::{Account, AccountState, UserMode};
use crate::auth::Session;
use crate::ffi::SyncError;
use crate::net::{Http, MinRate};
use crate::runtime;
use crate::store::ChangeHub;
use crate::sync::{CancelToken, ConflictMode, SyncOptions};
use crate::vault::{AttemptPolicy, KdfParams, PasswordPolicy, VaultConfig};

/// Takes a password from the FFI and makes sure it is wiped when dropped.
pub(crate) fn secret(bytes: Vec<u8>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(bytes)
}

/// Tuning an app may choose at construction; `ClientOptions::default()` is right for most.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientOptions {
    /// Argon2id memory in KiB (default 64 MiB; at least 19 MiB).
    #[uniffi(default = 65536)]
    pub kdf_memory_kib: u32,
    /// Argon2id passes (default 3; at least 2).
    #[uniffi(default = 3)]
    pub kdf_iterations: u32,
    /// Argon2id lanes (default 4).
    #[uniffi(default = 4)]
    pub kdf_parallelism: u32,
    /// Shortest accepted offline password, in characters (default 8).
    #[uniffi(default = 8)]
    pub min_password_length: u32,
    /// Wrong passwords in a row before the offline data is erased (default 10).
    #[uniffi(default = 10)]
    pub max_failed_attempts: u32,
    /// Extra trusted CA certificates (PEM), e.g. a company's TLS-inspection CA. Not on Android,
    /// whose verifier takes trust anchors from the app's network security config.
    #[uniffi(default = [])]
    pub extra_root_certificates_pem: Vec<String>,
    /// The app's OAuth client id, for organizations whose discovery does not name one.
    #[uniffi(default = None)]
    pub oauth_client_id: Option<String>,
    /// How conflicts between local edits and server changes are settled (default MergeFields).
    #[uniffi(default = None)]
    pub conflict_mode: Option<ConflictMode>,
    /// Records per downloaded page (default 2000; the server may cap it).
    #[uniffi(default = None)]
    pub sync_page_size: Option<u32>,
    /// The longest one Synchronize may take, in seconds (default 600; 0: no bound). Background
    /// work on a phone gets minutes: pick what the platform grants.
    #[uniffi(default = None)]
    pub sync_deadline_seconds: Option<u32>,
    /// The slowest answer accepted, in bytes per second averaged over 20 seconds (default 2048;
    /// 0: no bound). A server that dribbles its answer fails with `TimedOut` instead of holding
    /// the Synchronize.
    #[uniffi(default = None)]
    pub min_transfer_bytes_per_second: Option<u32>,
    /// The device's name as the organization's device list shows it (e.g. "Ada's Pixel 8").
    #[uniffi(default = None)]
    pub device_name: Option<String>,
    /// The app's version, for the same list.
    #[uniffi(default = None)]
    pub app_version: Option<String>,
    /// The shortest time between two deliveries of one watch, in milliseconds (default 50):
    /// commits in between collapse into one delivery.
    #[uniffi(default = None)]
    pub watch_interval_ms: Option<u32>,
    /// The entities this app syncs, of those the person may read (None: all of them). Changing
    /// it takes effect at the next Synchronize: records of a dropped entity leave the device,
    /// those of an added one arrive, nothing else downloads again.
    #[uniffi(default = None)]
    pub sync_entities: Option<Vec<String>>,
    /// Attachments larger than this stay on the server until `downloadAttachment` (None: the
    /// organization's limit; a larger value than the organization's is not honoured).
    #[uniffi(default = None)]
    pub attachment_auto_download_max_bytes: Option<u64>,
    /// Attachment content this device keeps before it evicts the least recently used (None: the
    /// organization's quota; never more).
    #[uniffi(default = None)]
    pub attachment_quota_bytes: Option<u64>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        let d = KdfParams::DEFAULT;
        ClientOptions {
            kdf_memory_kib: d.m_kib,
            kdf_iterations: d.t,
            kdf_parallelism: d.p,
            min_password_length: PasswordPolicy::default().min_length,
            max_failed_attempts: AttemptPolicy::default().max_attempts,
            extra_root_certificates_pem: Vec::new(),
            oauth_client_id: None,
            conflict_mode: None,
            sync_page_size: None,
            sync_deadline_seconds: None,
            min_transfer_bytes_per_second: None,
            device_name: None,
            app_version: None,
            watch_interval_ms: None,
            sync_entities: None,
            attachment_auto_download_max_bytes: None,
            attachment_quota_bytes: None,
        }
    }
}

/// The default slowest answer accepted, and the window it is averaged over.
pub const DEFAULT_MIN_RATE: MinRate = MinRate {
    bytes_per_second: 2048,
    window: Duration::from_secs(20),
};

impl ClientOptions {
    fn sync_options(&self) -> SyncOptions {
        let defaults = SyncOptions::default();
        SyncOptions {
            conflict_mode: self.conflict_mode.unwrap_or(defaults.conflict_mode),
            page_size: self.sync_page_size.unwrap_or(defaults.page_size).max(1),
            deadline: match self.sync_deadline_seconds {
                None => defaults.deadline,
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s.into())),
            },
            device_name: self.device_name.clone(),
            app_version: self.app_version.clone(),
            entities: self.sync_entities.clone(),
            attachment_auto_download_max_bytes: self.attachment_auto_download_max_bytes,
            attachment_quota_bytes: self.attachment_quota_bytes,
            ..defaults
        }
    }

    pub(crate) fn min_rate(&self) -> Option<MinRate> {
        match self.min_transfer_bytes_per_second {
            None => Some(DEFAULT_MIN_RATE),
            Some(0) => None,
            Some(b) => Some(MinRate {
                bytes_per_second: b.into(),
                ..DEFAULT_MIN_RATE
            }),
        }
    }

    fn vault_config(&self) -> Result<VaultConfig, SyncError> {
        let kdf = KdfParams {
            m_kib: self.kdf_memory_kib,
            t: self.kdf_iterations,
            p: self.kdf_parallelism,
        };
        if !kdf.in_range() {
            return Err(SyncError::InvalidInput {
                reason: format!(
                    "KDF parameters must lie between {:?} and {:?}",
                    KdfParams::FLOOR,
                    KdfParams::CEILING
                ),
            });
        }
        if self.max_failed_attempts == 0 || self.min_password_length == 0 {
            return Err(SyncError::InvalidInput {
                reason: "max_failed_attempts and min_password_length must be at least 1".into(),
            });
        }
        Ok(VaultConfig {
            kdf,
            password_policy: PasswordPolicy {
                min_length: self.min_password_length,
            },
            attempts: AttemptPolicy {
                max_attempts: self.max_failed_attempts,
                ..AttemptPolicy::default()
            },
            cipher: None,
        })
    }
}

/// One account's offline data and sync, rooted at a data directory the app owns.
///
/// Every method that touches the disk, the network or the KDF is async and runs on syncvault's
/// own threads; the object is safe to share between threads.
#[derive(uniffi::Object)]
pub struct SyncClient {
    pub(crate) account: Arc<Mutex<Account>>,
    data_dir: PathBuf,
    /// Sign-in state and the token lifecycle (auth::Session).
    pub(crate) session: Arc<Session>,
    pub(crate) ui: Mutex<Option<Arc<dyn super::AuthorizationUi>>>,
    pub(crate) device_ui: Mutex<Option<Arc<dyn super::DeviceCodeUi>>>,
    pub(crate) sync_options: SyncOptions,
    pub(crate) min_rate: Option<MinRate>,
    /// One Synchronize at a time per client.
    pub(crate) sync_lock: Arc<tokio::sync::Mutex<()>>,
    /// The Synchronize runs in progress, so closing the client can stop them.
    pub(crate) runs: Arc<super::synchronize::Runs>,
    /// Where the store's commits are published; watches read through it.
    pub(crate) changes: Arc<ChangeHub>,
    /// What the running Synchronize reports, for the sync status.
    pub(crate) status: Arc<super::watch::StatusBoard>,
    /// The watches started, so closing the client stops them.
    pub(crate) watches: Mutex<Vec<CancelToken>>,
    pub(crate) watch_interval: Duration,
}

/// Closing the client (Kotlin `close()`, the last Swift reference going) cancels a Synchronize in
/// progress and returns once it has stopped at a consistent point; then the store closes and its
/// key is wiped from memory.
impl Drop for SyncClient {
    fn drop(&mut self) {
        self.runs.cancel_and_wait();
        for watch in self
            .watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            watch.cancel();
        }
    }
}

impl SyncClient {
    /// Runs `work` with the account on a blocking thread.
    pub(crate) async fn with_account<T, F>(&self, work: F) -> Result<T, SyncError>
    where
        F: FnOnce(&mut Account) -> Result<T, SyncError> + Send + 'static,
        T: Send + 'static,
    {
        let account = Arc::clone(&self.account);
        runtime::spawn_blocking(move || work(&mut lock(&account))).await
    }
}

fn lock(account: &Mutex<Account>) -> MutexGuard<'_, Account> {
    // A panic while holding the lock was already reported as an error; the account's own state
    // (a closed or open store) is still consistent, so keep going.
    account
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[uniffi::export]
impl SyncClient {
    /// Opens (creating if needed) the account directory with default options. Cheap and
    /// synchronous: no KDF, no network.
    #[uniffi::constructor]
    pub fn new(data_dir: String) -> Result<Arc<Self>, SyncError> {
        Self::with_options(data_dir, ClientOptions::default())
    }

    /// As `new`, with explicit options (e.g. cheaper KDF parameters on a constrained device).
    #[uniffi::constructor]
    pub fn with_options(data_dir: String, options: ClientOptions) -> Result<Arc<Self>, SyncError> {
        if data_dir.trim().is_empty() {
            return Err(SyncError::InvalidInput {
                reason: "the data directory is empty".into(),
            });
        }
        #[cfg(target_os = "android")]
        crate::android::check_options(&options)?;
        let config = options.vault_config()?;
        let http = Http::new(&options.extra_root_certificates_pem)?;
        let data_dir = PathBuf::from(data_dir);
        crate::fsio::create_private_dir(&data_dir).map_err(|err| SyncError::Storage {
            reason: format!("cannot create the data directory ({:?})", err.kind()),
        })?;
        let account = Account::new(&data_dir, config);
        let changes = Arc::clone(account.changes());
        let account = Arc::new(Mutex::new(account));
        let session = Arc::new(Session::new(
            http,
            Arc::clone(&account),
            options.oauth_client_id.clone(),
        ));
        Ok(Arc::new(SyncClient {
            account,
            data_dir,
            session,
            ui: Mutex::new(None),
            device_ui: Mutex::new(None),
            sync_options: options.sync_options(),
            min_rate: options.min_rate(),
            sync_lock: Arc::new(tokio::sync::Mutex::new(())),
            runs: Arc::default(),
            changes,
            status: Arc::default(),
            watches: Mutex::default(),
            watch_interval: options
                .watch_interval_ms
                .map_or(crate::live::DEFAULT_MIN_INTERVAL, |ms| {
                    Duration::from_millis(ms.into())
                }),
        }))
    }

    /// The directory this client keeps its files in.
    pub fn data_dir(&self) -> String {
        self.data_dir.display().to_string()
    }

    /// Where the account stands (configured, locked, organization, pending changes).
    pub async fn account_state(&self) -> Result<AccountState, SyncError> {
        self.with_account(|a| Ok(a.state()?)).await
    }

    /// First-run setup (the seed's steps 2-4): the organization URL, the user mode, and the new
    /// offline password entered twice. Creates the encrypted store and leaves it unlocked. The
    /// password cannot be recovered: tell the person so before calling.
    pub async fn setup_offline_password(
        &self,
        organization_url: String,
        user_mode: UserMode,
        password: Vec<u8>,
        confirmation: Vec<u8>,
    ) -> Result<(), SyncError> {
        let (password, confirmation) = (secret(password), secret(confirmation));
        self.with_account(move |a| {
            Ok(a.setup(&organization_url, user_mode, &password, &confirmation)?)
        })
        .await
    }

    /// Unlocks the offline data. `WrongPassword { attempts_left }` on failure; after the last
    /// allowed failure the data is erased (`VaultWiped`). Waits (escalating) after 5 failures.
    pub async fn unlock(&self, password: Vec<u8>) -> Result<(), SyncError> {
        let password = secret(password);
        self.with_account(move |a| Ok(a.unlock(&password)?)).await
    }

    /// Closes the offline data and wipes the key from memory.
    pub async fn lock(&self) -> Result<(), SyncError> {
        self.with_account(|a| {
            a.lock();
            Ok(())
        })
        .await
    }

    /// Changes the offline password (the old one is checked like an unlock attempt).
    pub async fn change_offline_password(
        &self,
        old_password: Vec<u8>,
        new_password: Vec<u8>,
        confirmation: Vec<u8>,
    ) -> Result<(), SyncError> {
        let (old, new, confirmation) = (
            secret(old_password),
            secret(new_password),
            secret(confirmation),
        );
        self.with_account(move |a| Ok(a.change_password(&old, &new, &confirmation)?))
            .await
    }

    /// Erases the offline data (crypto-erase, then delete). Unsent edits are lost: ask first.
    pub async fn wipe(&self) -> Result<(), SyncError> {
        self.with_account(|a| Ok(a.wipe()?)).await
    }

    /// Lets `synchronize()` bring up the login page by itself when it must sign in.
    pub fn set_authorization_ui(&self, ui: Arc<dyn super::AuthorizationUi>) {
        *self.ui.lock().unwrap_or_else(|p| p.into_inner()) = Some(ui);
    }

    /// Lets `synchronize()` sign in with a device code (RFC 8628) when it must and no
    /// `AuthorizationUi` is set: for devices without a usable browser.
    pub fn set_device_code_ui(&self, ui: Arc<dyn super::DeviceCodeUi>) {
        *self.device_ui.lock().unwrap_or_else(|p| p.into_inner()) = Some(ui);
    }
}
