//! The login page, shown by the app: `synchronize()` calls this when it has to sign in, so the
//! seed's flow (Synchronize → login page → data) is one call for the app.

use crate::ffi::SyncError;

/// Implemented by the app: open `url` in ASWebAuthenticationSession / Custom Tabs (or a browser
/// with a loopback listener on desktop) and return the full callback URL. Throw
/// `SignInCancelled` when the person closes the page.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait AuthorizationUi: Send + Sync {
    /// The redirect URI registered for the app (custom scheme or loopback).
    fn redirect_uri(&self) -> String;
    /// Shows the login page and waits for the callback.
    async fn authorize(&self, url: String) -> Result<String, SyncError>;
}
