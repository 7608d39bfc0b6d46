//! The sign-in half of `SyncClient`: discovery, the OAuth begin/complete pair (the app shows the
//! URL in ASWebAuthenticationSession / Custom Tabs and hands back the callback), device code,
//! credentials mode, `who_am_i` and sign-out. Each method delegates to `auth::Session`.

use crate::ffi::client::secret;
use crate::ffi::{SyncClient, SyncError};
use crate::org::OrganizationInfo;

pub use crate::auth::{AuthorizationRequest, DeviceAuthorization, SignedInUser};

#[uniffi::export]
impl SyncClient {
    /// Asks an organization how to sign in (no setup or unlock needed): the app can show the
    /// organization's name and allowed user modes while the person types the URL.
    pub async fn discover(&self, organization_url: String) -> Result<OrganizationInfo, SyncError> {
        Ok(self.session.discover(organization_url).await?)
    }

    /// Starts OAuth sign-in: returns the provider's login page URL for `redirect_uri` (the app's
    /// custom scheme, or a loopback URI on desktop). Requires setup and unlock.
    pub async fn begin_sign_in(
        &self,
        redirect_uri: String,
    ) -> Result<AuthorizationRequest, SyncError> {
        Ok(self.session.begin_sign_in(redirect_uri).await?)
    }

    /// Finishes OAuth sign-in with the full callback URL the browser session returned. Checks
    /// state, issuer and the ID token, then stores the tokens in the encrypted store.
    pub async fn complete_sign_in(&self, callback_url: String) -> Result<SignedInUser, SyncError> {
        Ok(self.session.complete_sign_in(callback_url).await?)
    }

    /// Starts a device-code sign-in for a device without a usable browser: show the returned
    /// code and URL, then call `complete_device_sign_in`.
    pub async fn begin_device_sign_in(&self) -> Result<DeviceAuthorization, SyncError> {
        Ok(self.session.begin_device_sign_in().await?)
    }

    /// Waits until the person approves the device code (or denies: `SignInCancelled`, or it
    /// expires: `SignInRequired`), then stores the tokens.
    pub async fn complete_device_sign_in(&self) -> Result<SignedInUser, SyncError> {
        Ok(self.session.complete_device_sign_in().await?)
    }

    /// Credentials user mode: signs in with the organization's own user name and password.
    pub async fn sign_in_with_credentials(
        &self,
        username: String,
        password: Vec<u8>,
    ) -> Result<SignedInUser, SyncError> {
        let password = secret(password);
        Ok(self
            .session
            .sign_in_with_credentials(username, password)
            .await?)
    }

    /// Whether tokens are stored (they may still need a refresh).
    pub async fn is_signed_in(&self) -> Result<bool, SyncError> {
        Ok(self.session.is_signed_in().await?)
    }

    /// Asks the organization who the current token belongs to (refreshing it if needed, and once
    /// more when the organization refuses it).
    pub async fn who_am_i(&self) -> Result<SignedInUser, SyncError> {
        Ok(self.session.who_am_i().await?)
    }

    /// Signs out: revokes the refresh token at the provider (best effort: signing out works
    /// offline too), forgets the tokens and, with `wipe`, erases the offline data.
    pub async fn sign_out(&self, wipe: bool) -> Result<(), SyncError> {
        Ok(self.session.sign_out(wipe).await?)
    }
}
