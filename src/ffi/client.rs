//! `SyncClient`: the one object an app holds per account directory.

use std::path::PathBuf;
use std::sync::Arc;

use crate::ffi::{SyncError, SyncObserver, SyncPhase, SyncProgress};
use crate::runtime;

/// Where an account stands, for the app's start screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccountState {
    /// A vault (offline password) exists in the data directory.
    pub configured: bool,
}

/// One account's offline data and sync, rooted at a data directory the app owns.
#[derive(uniffi::Object)]
pub struct SyncClient {
    data_dir: PathBuf,
}

#[uniffi::export]
impl SyncClient {
    /// Opens (creating if needed) the account directory. Cheap and synchronous: no KDF, no
    /// network; unlocking and syncing are separate async calls.
    #[uniffi::constructor]
    pub fn new(data_dir: String) -> Result<Arc<Self>, SyncError> {
        if data_dir.trim().is_empty() {
            return Err(SyncError::InvalidInput {
                reason: "the data directory is empty".into(),
            });
        }
        let data_dir = PathBuf::from(data_dir);
        std::fs::create_dir_all(&data_dir).map_err(|err| SyncError::Storage {
            reason: format!("cannot create the data directory: {err}"),
        })?;
        Ok(Arc::new(SyncClient { data_dir }))
    }

    /// The directory this client keeps its files in.
    pub fn data_dir(&self) -> String {
        self.data_dir.display().to_string()
    }

    /// Reads the account's state from disk (off the caller's thread).
    pub async fn account_state(&self) -> Result<AccountState, SyncError> {
        let dir = self.data_dir.clone();
        runtime::spawn(async move {
            let configured = tokio::fs::try_exists(dir.join(crate::VAULT_HEADER_FILE))
                .await
                .map_err(|err| SyncError::Storage {
                    reason: err.to_string(),
                })?;
            Ok(AccountState { configured })
        })
        .await
    }

    /// Runs a Synchronize, reporting progress to `observer`.
    ///
    /// Today it prepares (reads the account state) and stops with `NotConfigured` when no vault
    /// exists; sign-in and the sync protocol arrive with their issues.
    pub async fn synchronize(&self, observer: Arc<dyn SyncObserver>) -> Result<(), SyncError> {
        observer.on_progress(SyncProgress {
            phase: SyncPhase::Preparing,
            records_done: 0,
            records_estimated: None,
            bytes: 0,
        });
        let state = self.account_state().await?;
        if !state.configured {
            return Err(SyncError::NotConfigured);
        }
        Err(SyncError::SignInRequired {
            reason: "sign-in is not built yet".into(),
        })
    }
}
