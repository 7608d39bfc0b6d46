//! Signing in: OAuth user mode (oidc.rs), credentials user mode (credentials.rs), the token
//! lifecycle at rest (tokens.rs), and the [`Session`] that owns all of it for one account: HTTP,
//! the discovered provider, pending sign-ins, the single-flight refresh and the one refresh a
//! refused token gets (session.rs).

pub mod credentials;
pub mod loopback;
pub mod oidc;
mod session;
pub mod tokens;

pub use session::{
    AuthorizationRequest, DeviceAuthorization, OneRefresh, Session, SignedInUser, TokenSource,
};

use crate::account::AccountError;
use crate::net::NetError;
use crate::org::DiscoveryError;
use crate::runtime::TaskError;
use crate::store::StoreError;

/// Tokens from one sign-in or refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Unix seconds when the access token was received (its lifetime scales the refresh margin).
    pub issued_at: Option<u64>,
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

/// Which check an ID token failed (the provider's own wording never reaches the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenProblem {
    Missing,
    Signature,
    Audience,
    Issuer,
    Expired,
    Nonce,
    /// A claim the token must carry (tid, sub) is missing or malformed.
    Claims,
}

impl std::fmt::Display for IdTokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdTokenProblem::Missing => "the provider sent no ID token",
            IdTokenProblem::Signature => "signature verification failed",
            IdTokenProblem::Audience => "it was issued for another application",
            IdTokenProblem::Issuer => "it was issued by another provider",
            IdTokenProblem::Expired => "it has expired",
            IdTokenProblem::Nonce => "its nonce does not match this sign-in",
            IdTokenProblem::Claims => "a required claim is missing or malformed",
        })
    }
}

/// The OAuth error codes of RFC 6749, RFC 8628 and OpenID Connect. A provider's `error` value is
/// shown only when it is one of these; anything else becomes `unknown_error`.
const OAUTH_CODES: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "unsupported_response_type",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
    "authorization_pending",
    "slow_down",
    "expired_token",
    "invalid_token",
    "insufficient_scope",
];

/// A provider's OAuth `error` value as syncvault may repeat it.
pub fn oauth_code(error: &str) -> &'static str {
    OAUTH_CODES
        .iter()
        .find(|c| **c == error)
        .copied()
        .unwrap_or("unknown_error")
}

/// Why signing in, refreshing or calling the organization failed. Every text is syncvault's own:
/// what a provider or server said is logged at debug level, never carried here.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Tokens are dead (invalid_grant, interaction_required, missing): show the login page.
    #[error("sign in again: {0}")]
    SignInRequired(&'static str),
    #[error("the person cancelled the sign-in")]
    Cancelled,
    /// The callback URL is not the answer to our request (state, iss, redirect mismatch).
    #[error("the sign-in answer was rejected: {0}")]
    BadCallback(&'static str),
    #[error("the ID token was rejected: {0}")]
    IdToken(IdTokenProblem),
    /// The provider's metadata or answers break OpenID Connect / OAuth.
    #[error("the identity provider broke the protocol: {0}")]
    ProviderProtocol(String),
    /// The provider answered an OAuth error (the code is one of RFC 6749's, or unknown_error).
    #[error("the identity provider refused the request ({0})")]
    ProviderRefused(&'static str),
    /// A provider endpoint answered an HTTP error.
    #[error("the identity provider answered HTTP {0}")]
    ProviderStatus(u16),
    #[error("invalid redirect URI: {0}")]
    InvalidRedirect(String),
    #[error("the password is not valid UTF-8")]
    PasswordNotUtf8,
    #[error("the organization does not allow user mode {0}")]
    ModeNotAllowed(&'static str),
    #[error("wrong user name or password")]
    BadCredentials,
    /// The organization refused an access token the provider had just issued or refreshed.
    #[error("the organization does not accept the identity provider's tokens")]
    NotAccepted,
    /// An organization endpoint answered an HTTP error.
    #[error("the organization answered HTTP {0}")]
    OrgStatus(u16),
    /// The organization's answers break its protocol (discovery, `/api/me`).
    #[error("the organization broke the protocol: {0}")]
    OrgProtocol(String),
    /// The organization disabled the signed-in user.
    #[error("the organization disabled this user")]
    UserDisabled,
    /// The signed-in provider account is no user of the organization (the words say why).
    #[error("this account is not a user of the organization: {0}")]
    NotAMember(&'static str),
    #[error("no sign-in is in progress")]
    NoSignInInProgress,
    #[error("the organization names no OAuth client id; set ClientOptions.oauth_client_id")]
    NoClientId,
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// syncvault's own words for the `reason` code of the organization's `not_a_member` error
/// (docs/protocol.md, "Errors"); an unknown or missing code reads as the common case.
pub fn not_a_member_reason(code: Option<&str>) -> &'static str {
    match code {
        Some("other_tenant") => "the account belongs to another tenant of the identity provider",
        Some("email_taken") => {
            "the organization's user with this email is linked to another provider account"
        }
        _ => "the account was neither imported nor assigned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_oauth_codes_are_repeated() {
        assert_eq!(oauth_code("invalid_grant"), "invalid_grant");
        assert_eq!(oauth_code("call +1 555 0100 now"), "unknown_error");
    }
}
