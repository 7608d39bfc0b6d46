//! Biometric unlock: a second vault slot whose secret the platform's key store protects
//! (Keychain item with biometry access control, Android Keystore key requiring user
//! authentication). The offline password keeps working beside it; docs/security.md says what it
//! does and does not protect.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::ffi::{SyncClient, SyncError};
use crate::vault;

/// Implemented by the app over the platform's key store. Each call may show the system's
/// biometric prompt, so each is async; run the prompt on the UI as the platform requires.
///
/// Throw `PlatformKeyCancelled` when the person dismisses the prompt, `PlatformKeyInvalidated`
/// when the key is gone for good (e.g. biometrics were re-enrolled), and
/// `PlatformKeyUnavailable` when it cannot be used right now.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait PlatformKeyStore: Send + Sync {
    /// Protects `secret` under a new key named `key_alias` and returns what syncvault should keep
    /// (e.g. IV + ciphertext from Android Keystore; empty when the Keychain keeps the secret).
    async fn seal_secret(&self, key_alias: String, secret: Vec<u8>) -> Result<Vec<u8>, SyncError>;
    /// Authenticates the person and returns the secret `seal_secret` protected.
    async fn open_secret(&self, key_alias: String, sealed: Vec<u8>) -> Result<Vec<u8>, SyncError>;
    /// Deletes the key; deleting a key that does not exist is not an error.
    async fn delete_secret(&self, key_alias: String) -> Result<(), SyncError>;
}

#[uniffi::export]
impl SyncClient {
    /// Turns on biometric unlock. The offline password proves the person (counted like an
    /// unlock attempt); a fresh random secret then goes to the key store, and the vault gets a
    /// second slot. Enabling again replaces the earlier key.
    pub async fn enable_platform_unlock(
        &self,
        password: Vec<u8>,
        key_store: Arc<dyn PlatformKeyStore>,
    ) -> Result<(), SyncError> {
        let password = Zeroizing::new(password);
        let enrollment = self
            .with_account(move |a| {
                Ok(vault::begin_platform_enrollment(
                    a.vault_paths(),
                    &password,
                    a.config(),
                )?)
            })
            .await?;
        let sealed = key_store
            .seal_secret(enrollment.key_alias.clone(), enrollment.secret.to_vec())
            .await?;
        let alias = enrollment.key_alias.clone();
        let replaced = self
            .with_account(move |a| {
                Ok(vault::finish_platform_enrollment(
                    a.vault_paths(),
                    enrollment,
                    sealed,
                )?)
            })
            .await;
        match replaced {
            Ok(Some(old)) => forget_key(&key_store, old).await,
            Ok(None) => {}
            Err(err) => {
                forget_key(&key_store, alias).await;
                return Err(err);
            }
        }
        tracing::info!("biometric unlock enabled");
        Ok(())
    }

    /// Unlocks with biometrics: the key store authenticates the person and gives back the
    /// secret. When the key is gone for good, the slot is removed (`PlatformKeyInvalidated`) so
    /// the app can fall back to the password and offer to enable biometrics again.
    pub async fn unlock_with_platform_key(
        &self,
        key_store: Arc<dyn PlatformKeyStore>,
    ) -> Result<(), SyncError> {
        let slot = self
            .with_account(|a| {
                if a.is_unlocked() {
                    return Ok(None);
                }
                vault::platform_slot(a.vault_paths())?
                    .map(Some)
                    .ok_or(SyncError::PlatformUnlockNotEnabled)
            })
            .await?;
        let Some((alias, sealed)) = slot else {
            return Ok(());
        };
        let opened = match key_store.open_secret(alias.clone(), sealed).await {
            Ok(secret) => {
                let secret = Zeroizing::new(secret);
                self.with_account(move |a| Ok(a.unlock_with_platform_secret(&secret)?))
                    .await
            }
            Err(err) => Err(err),
        };
        if opened == Err(SyncError::PlatformKeyInvalidated) {
            tracing::warn!("the platform key is no longer valid: biometric unlock turned off");
            self.with_account(|a| Ok(vault::remove_platform_slot(a.vault_paths())?))
                .await?;
            forget_key(&key_store, alias).await;
        }
        opened
    }

    /// Turns biometric unlock off and deletes the key from the key store. The password slot is
    /// untouched; nothing needs to be unlocked.
    pub async fn disable_platform_unlock(
        &self,
        key_store: Arc<dyn PlatformKeyStore>,
    ) -> Result<(), SyncError> {
        let removed = self
            .with_account(|a| Ok(vault::remove_platform_slot(a.vault_paths())?))
            .await?;
        if let Some(alias) = removed {
            forget_key(&key_store, alias).await;
        }
        Ok(())
    }
}

/// A key left in the key store opens nothing once its slot is gone, so failing to delete it is
/// logged, not returned.
async fn forget_key(key_store: &Arc<dyn PlatformKeyStore>, alias: String) {
    if let Err(err) = key_store.delete_secret(alias).await {
        tracing::warn!("could not delete an unused platform key: {err}");
    }
}
