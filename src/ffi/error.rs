//! The one public error type, and every mapping to it.
//!
//! Each domain module returns its own error (vault, store, account, org, net, auth, sync); this
//! file turns each into `SyncError` with one `match` per source, and decides there how loudly
//! the failure is logged. Swift sees one `throws` type and Kotlin one exception hierarchy, with
//! cases an app can act on (docs/mobile.md has the table of what the app shows for each).
//!
//! # What a public error's text may contain
//!
//! Only what syncvault itself produced: its own sentences, numbers (HTTP statuses, versions,
//! counts), values it has checked (names that passed identifier validation, OAuth and protocol
//! error codes from the documented lists), and names the app itself passed in. Never text a
//! server, an identity provider, SQLite or the OS supplied (an `error_description`, an SQLite
//! message, a TLS library's alert text), and never a secret (password, key, token, code, callback
//! URL). What the other side said goes to the log at debug level. The tests at the end of this
//! file hold the rule: every slot of a domain error that can carry foreign text is filled with a
//! marker, and no mapped error may show it.

use crate::account::AccountError;
use crate::auth::AuthError;
use crate::net::NetError;
use crate::org::{DiscoveryError, OrgUrlError, UrlProblem};
use crate::runtime::TaskError;
use crate::store::StoreError;
use crate::store::attachments::AttachmentError;
use crate::store::entities::EntityError;
use crate::store::sealed_file::SealedFileError;
use crate::sync::{EngineError, TimeBound, TransportError};
use crate::vault::{HeaderError, PolicyError, VaultError};

/// Everything that can go wrong, as an app needs to tell it apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum SyncError {
    /// The offline password did not unlock the vault; after `attempts_left` more failures the
    /// vault is wiped.
    #[error("wrong offline password ({attempts_left} attempts left)")]
    WrongPassword { attempts_left: u32 },
    /// The two password entries differ.
    #[error("the passwords do not match")]
    PasswordMismatch,
    /// The new password breaks the policy (too short).
    #[error("the password must be at least {min_length} characters")]
    WeakPassword { min_length: u32 },
    /// The organization URL cannot be used; `problem` says which rule it broke.
    #[error("invalid organization URL: {reason}")]
    InvalidOrganizationUrl { problem: UrlProblem, reason: String },
    /// The organization does not allow the chosen user mode.
    #[error("the organization does not allow user mode {mode}")]
    UserModeNotAllowed { mode: String },
    /// Tokens are missing or dead: the login page must be shown again. Nothing local was lost.
    #[error("sign in again: {reason}")]
    SignInRequired { reason: String },
    /// The person closed the login page.
    #[error("sign-in was cancelled")]
    SignInCancelled,
    /// The answer of the login page or the identity provider failed syncvault's checks (a
    /// callback that does not belong to this sign-in, an ID token that fails verification, a
    /// provider that refused). Starting the sign-in again is safe; if it keeps happening, the
    /// organization or its provider is misconfigured.
    #[error("the sign-in was rejected: {reason}")]
    SignInRejected { reason: String },
    /// The app's `AuthorizationUi` failed to show the login page (it threw).
    #[error("the login page could not be shown: {reason}")]
    AuthorizationUiFailed { reason: String },
    /// The organization refuses the access tokens its identity provider issues, even fresh ones:
    /// a configuration error (audience, issuer) only the administrator can fix. No login page can.
    #[error("the organization does not accept this sign-in: {reason}")]
    TokenNotAccepted { reason: String },
    /// No vault exists yet in this data directory: run setup first.
    #[error("this account is not set up yet")]
    NotConfigured,
    /// A vault already exists; wipe it before setting up again.
    #[error("this account is already set up")]
    AlreadyConfigured,
    /// The vault is locked: unlock with the offline password first.
    #[error("the offline data is locked")]
    Locked,
    /// Too many wrong passwords: the offline data was crypto-erased.
    #[error("too many wrong passwords: the offline data was erased")]
    VaultWiped,
    /// The organization's administrator wiped this device: the offline data (and any unsent
    /// edits) were crypto-erased. Set up again to use the app.
    #[error("the organization wiped this device's offline data")]
    RemoteWiped,
    /// Biometric unlock is not enabled for this account: unlock with the offline password.
    #[error("biometric unlock is not enabled")]
    PlatformUnlockNotEnabled,
    /// The person dismissed the biometric prompt: offer the offline password.
    #[error("biometric unlock was cancelled")]
    PlatformKeyCancelled,
    /// The platform key is gone for good (biometrics changed, key deleted, secret rejected).
    /// Biometric unlock has been turned off: unlock with the password, then enable it again.
    #[error("the biometric key is no longer valid")]
    PlatformKeyInvalidated,
    /// The key store cannot be used now (no biometrics enrolled, locked out, no secure hardware).
    #[error("biometric unlock is unavailable: {reason}")]
    PlatformKeyUnavailable { reason: String },
    /// The server could not be reached or the connection broke.
    #[error("network error: {reason}")]
    Network { reason: String },
    /// The server answered with an HTTP error status: try again later.
    #[error("server error {status}: {reason}")]
    Server { status: u16, reason: String },
    /// A server (the organization's or its identity provider) answered something that breaks its
    /// protocol; nothing of that answer was applied. Try again later; if it persists, the server
    /// needs fixing.
    #[error("the server broke the protocol: {reason}")]
    ProtocolViolation { reason: String },
    /// A change conflicts with the server and needs the app's decision.
    #[error("conflict: {reason}")]
    Conflict { reason: String },
    /// Files on disk were tampered with, truncated, or belong to another vault.
    #[error("the offline data is corrupted: {reason}")]
    Corrupted { reason: String },
    /// The attachment's content is not on this device: `downloadAttachment` first.
    #[error("the attachment is not downloaded")]
    NotDownloaded,
    /// The operation was cancelled through its cancel handle.
    #[error("cancelled")]
    Cancelled,
    /// The Synchronize hit a time bound (`bound`: its deadline, or an answer slower than the
    /// minimum transfer rate). What it committed stays; the next Synchronize resumes.
    #[error("the synchronize took too long ({bound:?})")]
    TimedOut { bound: TimeBound },
    /// The app passed something the API cannot use (an unknown entity, a bad field value).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    /// Disk full, permissions, and other local I/O failures.
    #[error("storage error: {reason}")]
    Storage { reason: String },
    /// A bug in syncvault (including a caught panic). Please report it.
    #[error("internal error: {reason}")]
    Internal { reason: String },
    /// The person signed in at the identity provider with an account the organization does not
    /// know as one of its users (`reason` says why). Signing in with another account, or an
    /// administrator importing or assigning this one, fixes it; nothing local was lost.
    #[error(
        "this account is not a user of the organization ({reason}); ask your administrator to import or assign you"
    )]
    NotAMember { reason: String },
}

impl SyncError {
    /// The case's stable name: what the harness prints as `kind` and the sync log records.
    pub fn kind(&self) -> &'static str {
        use SyncError::*;
        match self {
            WrongPassword { .. } => "WrongPassword",
            PasswordMismatch => "PasswordMismatch",
            WeakPassword { .. } => "WeakPassword",
            InvalidOrganizationUrl { .. } => "InvalidOrganizationUrl",
            UserModeNotAllowed { .. } => "UserModeNotAllowed",
            SignInRequired { .. } => "SignInRequired",
            SignInCancelled => "SignInCancelled",
            SignInRejected { .. } => "SignInRejected",
            AuthorizationUiFailed { .. } => "AuthorizationUiFailed",
            TokenNotAccepted { .. } => "TokenNotAccepted",
            NotConfigured => "NotConfigured",
            AlreadyConfigured => "AlreadyConfigured",
            Locked => "Locked",
            VaultWiped => "VaultWiped",
            RemoteWiped => "RemoteWiped",
            PlatformUnlockNotEnabled => "PlatformUnlockNotEnabled",
            PlatformKeyCancelled => "PlatformKeyCancelled",
            PlatformKeyInvalidated => "PlatformKeyInvalidated",
            PlatformKeyUnavailable { .. } => "PlatformKeyUnavailable",
            Network { .. } => "Network",
            Server { .. } => "Server",
            ProtocolViolation { .. } => "ProtocolViolation",
            Conflict { .. } => "Conflict",
            Corrupted { .. } => "Corrupted",
            NotDownloaded => "NotDownloaded",
            Cancelled => "Cancelled",
            TimedOut { .. } => "TimedOut",
            InvalidInput { .. } => "InvalidInput",
            Storage { .. } => "Storage",
            Internal { .. } => "Internal",
            NotAMember { .. } => "NotAMember",
        }
    }

    /// How loudly a failure of this case is logged when it crosses to the app: bugs and damage
    /// are errors, failures of the network or the other side warnings, the person's own doing
    /// (wrong password, cancel, sign in again) information.
    fn level(&self) -> tracing::Level {
        use SyncError::*;
        match self {
            Internal { .. } | Corrupted { .. } | VaultWiped | RemoteWiped => tracing::Level::ERROR,
            Network { .. }
            | TimedOut { .. }
            | Server { .. }
            | ProtocolViolation { .. }
            | SignInRejected { .. }
            | AuthorizationUiFailed { .. }
            | TokenNotAccepted { .. }
            | Storage { .. }
            | InvalidInput { .. }
            | PlatformKeyUnavailable { .. } => tracing::Level::WARN,
            _ => tracing::Level::INFO,
        }
    }
}

/// Logs a mapped failure once, at its case's level: failures of syncvault or the other side with
/// the domain error's own words (which may quote the other side, and so never reach the app);
/// the person's own doing by its kind alone.
fn surfaced(cause: &dyn std::fmt::Display, error: SyncError) -> SyncError {
    let kind = error.kind();
    match error.level() {
        tracing::Level::ERROR => tracing::error!(kind, "{cause}"),
        tracing::Level::WARN => tracing::warn!(kind, "{cause}"),
        _ => tracing::info!(kind, "the call ended"),
    }
    error
}

fn internal(reason: impl Into<String>) -> SyncError {
    SyncError::Internal {
        reason: reason.into(),
    }
}

fn invalid_input(reason: impl Into<String>) -> SyncError {
    SyncError::InvalidInput {
        reason: reason.into(),
    }
}

fn storage(reason: impl Into<String>) -> SyncError {
    SyncError::Storage {
        reason: reason.into(),
    }
}

fn protocol(reason: impl Into<String>) -> SyncError {
    SyncError::ProtocolViolation {
        reason: reason.into(),
    }
}

/// An I/O failure in syncvault's words: the kind of failure and the OS code, not the OS text.
fn io_reason(what: &str, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("{what} failed: {:?} (os error {code})", e.kind()),
        None => format!("{what} failed: {:?}", e.kind()),
    }
}

/// An SQLite failure by its result code, never its message.
fn sqlite_reason(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            format!(
                "the database failed ({:?}, code {})",
                f.code, f.extended_code
            )
        }
        _ => "the database refused the operation".to_string(),
    }
}

impl From<VaultError> for SyncError {
    fn from(e: VaultError) -> Self {
        let mapped = match &e {
            VaultError::Policy(PolicyError::Mismatch) => SyncError::PasswordMismatch,
            VaultError::Policy(PolicyError::TooShort { min_length }) => SyncError::WeakPassword {
                min_length: *min_length,
            },
            VaultError::Policy(PolicyError::NotUtf8) => {
                invalid_input("the password is not valid UTF-8")
            }
            VaultError::WrongPassword { attempts_left } => SyncError::WrongPassword {
                attempts_left: *attempts_left,
            },
            VaultError::Wiped => SyncError::VaultWiped,
            VaultError::NotConfigured => SyncError::NotConfigured,
            VaultError::AlreadyConfigured => SyncError::AlreadyConfigured,
            VaultError::Header(HeaderError::PlatformSecretRejected) => {
                SyncError::PlatformKeyInvalidated
            }
            VaultError::Header(HeaderError::NoPlatformSlot) => SyncError::PlatformUnlockNotEnabled,
            VaultError::Header(h @ HeaderError::SealedTooLong(_)) => invalid_input(h.to_string()),
            VaultError::Header(HeaderError::Kdf(k)) => internal(k.to_string()),
            VaultError::Header(h) => SyncError::Corrupted {
                reason: h.to_string(),
            },
            VaultError::Io(io) => storage(io_reason("vault I/O", io)),
        };
        surfaced(&e, mapped)
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        let mapped = match &e {
            StoreError::Corrupted(reason) => SyncError::Corrupted {
                reason: reason.clone(),
            },
            StoreError::NotEncrypted => SyncError::Corrupted {
                reason: e.to_string(),
            },
            StoreError::Sqlite(s) => storage(sqlite_reason(s)),
            StoreError::Io(io) => storage(io_reason("store I/O", io)),
            StoreError::Vfs(v) => internal(v.to_string()),
        };
        surfaced(&e, mapped)
    }
}

/// The app asked for something the store does not have (its texts name only identifiers that
/// passed validation, or the app's own input).
impl From<EntityError> for SyncError {
    fn from(e: EntityError) -> Self {
        match e {
            EntityError::Store(s) => s.into(),
            other => surfaced(&other, invalid_input(other.to_string())),
        }
    }
}

impl From<AttachmentError> for SyncError {
    fn from(e: AttachmentError) -> Self {
        let e = match e {
            AttachmentError::Store(s) => return s.into(),
            AttachmentError::Entity(x) => return x.into(),
            other => other,
        };
        let mapped = match &e {
            AttachmentError::Store(_) | AttachmentError::Entity(_) => internal("unmapped"),
            AttachmentError::File(SealedFileError::Corrupted) => SyncError::Corrupted {
                reason: e.to_string(),
            },
            AttachmentError::File(SealedFileError::Io(io)) => {
                storage(io_reason("attachment file I/O", io))
            }
            AttachmentError::NoSuchAttachment => invalid_input(e.to_string()),
            AttachmentError::NotDownloaded => SyncError::NotDownloaded,
            AttachmentError::AppFile(io) => invalid_input(io_reason("the app's file", io)),
        };
        surfaced(&e, mapped)
    }
}

impl From<OrgUrlError> for SyncError {
    fn from(e: OrgUrlError) -> Self {
        SyncError::InvalidOrganizationUrl {
            problem: e.problem,
            reason: e.to_string(),
        }
    }
}

impl From<DiscoveryError> for SyncError {
    fn from(e: DiscoveryError) -> Self {
        match e {
            DiscoveryError::Url(u) => u.into(),
            DiscoveryError::NotAnOrganization(_) => {
                OrgUrlError {
                    problem: UrlProblem::NotAnOrganization,
                }
            }
            .into(),
            DiscoveryError::InsecureEndpoint { what, .. } => surfaced(
                &e,
                protocol(format!(
                    "the organization named an insecure or invalid {what}"
                )),
            ),
            DiscoveryError::UnsupportedProtocol(_) => surfaced(&e, protocol(e.to_string())),
            DiscoveryError::Net(n) => n.into(),
        }
    }
}

impl From<NetError> for SyncError {
    fn from(e: NetError) -> Self {
        let mapped = SyncError::Network {
            reason: e.to_string(),
        };
        surfaced(&e, mapped)
    }
}

impl From<TaskError> for SyncError {
    fn from(e: TaskError) -> Self {
        surfaced(&e, internal(e.to_string()))
    }
}

impl From<AccountError> for SyncError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Vault(v) => v.into(),
            AccountError::Store(s) => s.into(),
            AccountError::Url(u) => u.into(),
            AccountError::Locked => SyncError::Locked,
            AccountError::NotConfigured => SyncError::NotConfigured,
            AccountError::RemoteWiped => SyncError::RemoteWiped,
            AccountError::Task(t) => t.into(),
        }
    }
}

impl From<AuthError> for SyncError {
    fn from(e: AuthError) -> Self {
        let e = match e {
            AuthError::Net(n) => return n.into(),
            AuthError::Discovery(d) => return d.into(),
            AuthError::Account(a) => return a.into(),
            AuthError::Store(s) => return s.into(),
            AuthError::Task(t) => return t.into(),
            other => other,
        };
        let mapped = match &e {
            AuthError::SignInRequired(reason) => SyncError::SignInRequired {
                reason: reason.to_string(),
            },
            AuthError::Cancelled => SyncError::SignInCancelled,
            AuthError::BadCallback(what) => SyncError::SignInRejected {
                reason: format!("the callback does not belong to this sign-in ({what})"),
            },
            AuthError::IdToken(problem) => SyncError::SignInRejected {
                reason: format!("the provider's ID token failed verification: {problem}"),
            },
            AuthError::ProviderRefused(code) => SyncError::SignInRejected {
                reason: format!("the identity provider refused ({code})"),
            },
            AuthError::ProviderProtocol(reason) => {
                protocol(format!("the identity provider: {reason}"))
            }
            AuthError::ProviderStatus(status) => SyncError::Server {
                status: *status,
                reason: "the identity provider answered an error".into(),
            },
            AuthError::ModeNotAllowed(mode) => SyncError::UserModeNotAllowed {
                mode: mode.to_string(),
            },
            AuthError::BadCredentials => SyncError::SignInRequired {
                reason: e.to_string(),
            },
            AuthError::NotAccepted => SyncError::TokenNotAccepted {
                reason: "it refused a freshly issued access token".into(),
            },
            AuthError::OrgStatus(status) => SyncError::Server {
                status: *status,
                reason: "the organization answered an error".into(),
            },
            AuthError::OrgProtocol(reason) => protocol(reason.clone()),
            AuthError::UserDisabled => SyncError::SignInRequired {
                reason: e.to_string(),
            },
            AuthError::NotAMember(reason) => SyncError::NotAMember {
                reason: reason.to_string(),
            },
            _ => invalid_input(e.to_string()),
        };
        surfaced(&e, mapped)
    }
}

/// Error codes of sync protocol v2 (docs/protocol.md, "Errors"); others show as `unknown_error`.
const PROTOCOL_CODES: &[&str] = &[
    "protocol_version_unsupported",
    "invalid_request",
    "invalid_page_token",
    "invalid_cursor",
    "invalid_token",
    "schema_changed",
    "too_many_mutations",
    "user_disabled",
    "not_a_member",
    "device_wiped",
    "device_signed_out",
    "attachment_too_large",
    "not_found",
];

impl From<EngineError> for SyncError {
    fn from(e: EngineError) -> Self {
        let mapped = match e {
            EngineError::Cancelled => return SyncError::Cancelled,
            EngineError::Auth(a) => return a.into(),
            EngineError::Store(s) => return s.into(),
            EngineError::Account(a) => return a.into(),
            EngineError::Task(t) => return t.into(),
            EngineError::Attachment(a) => return a.into(),
            EngineError::Protocol(ref p) => protocol(p.0.clone()),
            EngineError::RemoteWiped => SyncError::RemoteWiped,
            EngineError::SignedOutRemotely => SyncError::SignInRequired {
                reason: "the organization signed this device out".into(),
            },
            EngineError::TimedOut(bound) => SyncError::TimedOut { bound },
            EngineError::ServerBusy(asked) => SyncError::Server {
                status: 429,
                reason: format!(
                    "the organization asked to wait {} s before trying again, longer than this \
                     Synchronize's deadline leaves; nothing was lost, try again later",
                    asked.as_secs()
                ),
            },
            EngineError::CursorRefused => {
                protocol("the server refused the sync cursor, even for a full download")
            }
            EngineError::Transport(ref t) => match t {
                TransportError::Unauthorized => SyncError::TokenNotAccepted {
                    reason: "it refused the access token".into(),
                },
                TransportError::Retryable { reason, .. } | TransportError::Tls(reason) => {
                    SyncError::Network {
                        reason: reason.clone(),
                    }
                }
                TransportError::Status {
                    status: 403,
                    code: Some(code),
                    ..
                } if code == "user_disabled" => SyncError::SignInRequired {
                    reason: "the organization disabled this user".into(),
                },
                TransportError::Status {
                    status: 403,
                    code: Some(code),
                    reason,
                } if code == "not_a_member" => SyncError::NotAMember {
                    reason: crate::auth::not_a_member_reason(Some(reason)).into(),
                },
                TransportError::Status { status, code, .. } => {
                    let code = code
                        .as_deref()
                        .and_then(|c| PROTOCOL_CODES.iter().find(|k| **k == c))
                        .copied()
                        .unwrap_or("unknown_error");
                    SyncError::Server {
                        status: *status,
                        reason: format!("the server refused the request ({code})"),
                    }
                }
                TransportError::Protocol(reason) => protocol(reason.clone()),
                TransportError::TooSlow(_) => SyncError::TimedOut {
                    bound: TimeBound::MinimumTransferRate,
                },
            },
        };
        surfaced(&e, mapped)
    }
}

/// A foreign callback threw something that is not a `SyncError` (an app's own exception). Its
/// text is the app's, so it is logged, not shown; the call sites that know which callback failed
/// turn this into their own case (`AuthorizationUiFailed`, `PlatformKeyUnavailable`).
impl From<uniffi::UnexpectedUniFFICallbackError> for SyncError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        tracing::warn!("an app callback failed: {}", err.reason);
        internal("an app callback threw an unexpected exception")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &str = "FOREIGN-TEXT-7731";

    /// Every string a mapped error can show, for the rule's check.
    fn texts(e: &SyncError) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let field = match e {
            SyncError::InvalidOrganizationUrl { reason, .. }
            | SyncError::SignInRequired { reason }
            | SyncError::SignInRejected { reason }
            | SyncError::AuthorizationUiFailed { reason }
            | SyncError::TokenNotAccepted { reason }
            | SyncError::PlatformKeyUnavailable { reason }
            | SyncError::Network { reason }
            | SyncError::Server { reason, .. }
            | SyncError::ProtocolViolation { reason }
            | SyncError::Conflict { reason }
            | SyncError::Corrupted { reason }
            | SyncError::InvalidInput { reason }
            | SyncError::Storage { reason }
            | SyncError::NotAMember { reason }
            | SyncError::Internal { reason } => Some(reason.clone()),
            SyncError::UserModeNotAllowed { mode } => Some(mode.clone()),
            _ => None,
        };
        out.extend(field);
        out
    }

    fn assert_clean(e: SyncError) {
        for t in texts(&e) {
            assert!(
                !t.contains(MARKER),
                "{:?} shows foreign text: {t}",
                e.kind()
            );
        }
    }

    #[test]
    fn a_wait_longer_than_the_deadline_says_so() {
        let e = SyncError::from(EngineError::ServerBusy(std::time::Duration::from_secs(
            86400,
        )));
        match &e {
            SyncError::Server {
                status: 429,
                reason,
            } => {
                assert!(reason.contains("asked to wait 86400 s"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn foreign_text_never_reaches_a_public_error() {
        let sqlite = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some(MARKER.into()),
        );
        let io = std::io::Error::other(MARKER);
        assert_clean(StoreError::Sqlite(sqlite).into());
        assert_clean(StoreError::Io(std::io::Error::other(MARKER)).into());
        assert_clean(VaultError::Io(io).into());
        assert_clean(EntityError::UnknownEntity(MARKER.into()).into());
        assert_clean(
            EntityError::UnknownField {
                entity: MARKER.into(),
                field: MARKER.into(),
            }
            .into(),
        );
        assert_clean(
            DiscoveryError::InsecureEndpoint {
                what: "issuer",
                url: MARKER.into(),
            }
            .into(),
        );
        assert_clean(DiscoveryError::NotAnOrganization(MARKER.into()).into());
        let status = TransportError::Status {
            status: 400,
            code: Some(MARKER.into()),
            reason: MARKER.into(),
        };
        assert_clean(EngineError::Transport(status).into());
        let refused = TransportError::Status {
            status: 403,
            code: Some("not_a_member".into()),
            reason: MARKER.into(),
        };
        assert_clean(EngineError::Transport(refused).into());
        assert_clean(
            EngineError::from(crate::sync::plan::PlanError::UnknownEntity(MARKER.into())).into(),
        );
        assert_clean(
            EngineError::from(crate::sync::plan::PlanError::DuplicateRecord(
                MARKER.into(),
                MARKER.into(),
            ))
            .into(),
        );
        assert_clean(AuthError::ProviderRefused(crate::auth::oauth_code(MARKER)).into());
        assert_clean(
            uniffi::UnexpectedUniFFICallbackError {
                reason: MARKER.into(),
            }
            .into(),
        );
    }

    #[test]
    fn kinds_are_the_case_names() {
        assert_eq!(SyncError::Cancelled.kind(), "Cancelled");
        assert_eq!(SyncError::Network { reason: "x".into() }.kind(), "Network");
        let debug = format!("{:?}", SyncError::ProtocolViolation { reason: "x".into() });
        assert!(debug.starts_with(SyncError::ProtocolViolation { reason: "x".into() }.kind()));
    }
}
