//! The login page, shown by the app: `synchronize()` calls these when it has to sign in, so the
//! seed's flow (Synchronize → login page → data) is one call for the app.

use crate::auth::DeviceAuthorization;
use crate::ffi::SyncError;

/// Implemented by the app: open `url` in ASWebAuthenticationSession / Custom Tabs (or a browser
/// with a loopback listener on desktop) and return the full callback URL. Throw
/// `SignInCancelled` when the person closes the page; anything else thrown becomes
/// `AuthorizationUiFailed`.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait AuthorizationUi: Send + Sync {
    /// The redirect URI registered for the app (custom scheme or loopback).
    fn redirect_uri(&self) -> String;
    /// Shows the login page and waits for the callback.
    async fn authorize(&self, url: String) -> Result<String, SyncError>;
}

/// Implemented by apps on devices without a usable browser (RFC 8628): show the code and where
/// to enter it, and return; `synchronize()` then waits for the person's approval.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait DeviceCodeUi: Send + Sync {
    async fn show_code(&self, authorization: DeviceAuthorization) -> Result<(), SyncError>;
}
