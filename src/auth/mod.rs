//! Signing in: OAuth user mode (oidc.rs), credentials user mode (credentials.rs), and the token
//! lifecycle (tokens.rs: stored in the encrypted store, refreshed one at a time, rotation
//! persisted before use).

pub mod credentials;
pub mod loopback;
pub mod oidc;
pub mod tokens;

use crate::ffi::SyncError;
use crate::net::NetError;

/// Tokens from one sign-in or refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub subject: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Never print tokens, even in debug output.
impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Why signing in or refreshing failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Tokens are dead (invalid_grant, interaction_required, missing): show the login page.
    #[error("sign in again: {0}")]
    SignInRequired(String),
    #[error("the person cancelled the sign-in")]
    Cancelled,
    /// The callback URL is not the answer to our request (state, iss, redirect mismatch).
    #[error("the sign-in response was rejected: {0}")]
    BadCallback(String),
    #[error("the ID token was rejected: {0}")]
    IdToken(String),
    #[error("the identity provider failed: {0}")]
    Provider(String),
    #[error("invalid redirect URI: {0}")]
    InvalidRedirect(String),
    #[error("the organization does not allow user mode {0}")]
    ModeNotAllowed(String),
    #[error("wrong user name or password")]
    BadCredentials,
    #[error(transparent)]
    Net(#[from] NetError),
}

impl From<AuthError> for SyncError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::SignInRequired(reason) => SyncError::SignInRequired { reason },
            AuthError::Cancelled => SyncError::SignInCancelled,
            AuthError::ModeNotAllowed(mode) => SyncError::UserModeNotAllowed { mode },
            AuthError::BadCredentials => SyncError::SignInRequired {
                reason: e.to_string(),
            },
            AuthError::InvalidRedirect(_) => SyncError::InvalidInput {
                reason: e.to_string(),
            },
            AuthError::Net(n) => n.into(),
            AuthError::BadCallback(_) | AuthError::IdToken(_) | AuthError::Provider(_) => {
                SyncError::Server {
                    status: 0,
                    reason: e.to_string(),
                }
            }
        }
    }
}

impl From<NetError> for SyncError {
    fn from(e: NetError) -> Self {
        SyncError::Network {
            reason: e.to_string(),
        }
    }
}

impl From<crate::org::DiscoveryError> for SyncError {
    fn from(e: crate::org::DiscoveryError) -> Self {
        use crate::org::{DiscoveryError, UrlProblem};
        match e {
            DiscoveryError::Url(u) => u.into(),
            DiscoveryError::NotAnOrganization(_) => SyncError::InvalidOrganizationUrl {
                problem: UrlProblem::NotAnOrganization,
                reason: e.to_string(),
            },
            DiscoveryError::InsecureEndpoint { .. } => SyncError::Server {
                status: 0,
                reason: e.to_string(),
            },
            DiscoveryError::Net(n) => n.into(),
        }
    }
}
