//! The sign-in half of `SyncClient`: discovery, the OAuth begin/complete pair (the app shows the
//! URL in ASWebAuthenticationSession / Custom Tabs and hands back the callback), credentials mode,
//! token refresh, and sign-out.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::account::UserMode;
use crate::auth::oidc::{PendingSignIn, Provider};
use crate::auth::{TokenSet, credentials, tokens};
use crate::ffi::{ClientOptions, SyncClient, SyncError};
use crate::net::Http;
use crate::org::{self, OrganizationInfo};
use crate::runtime;
use crate::store::meta;

/// The login page to show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuthorizationRequest {
    /// Open this in the system browser session.
    pub url: String,
    /// The callback arrives at this URI; pass the full callback URL to `complete_sign_in`.
    pub redirect_uri: String,
}

/// What to show for a device-code sign-in (RFC 8628).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceAuthorization {
    /// Where the person goes on another device.
    pub verification_uri: String,
    /// The same with the code filled in (for a QR code), when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// The code the person types there.
    pub user_code: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignedInUser {
    pub email: Option<String>,
    pub name: Option<String>,
    /// The organization's user id, when the organization was asked (`who_am_i`).
    pub org_user_id: Option<String>,
}

/// Network state of one client: the HTTP client, the discovered provider, the pending sign-in,
/// and the lock that keeps refreshes one at a time.
pub(crate) struct SignInState {
    pub(crate) http: Http,
    oauth_client_id: Option<String>,
    provider: tokio::sync::Mutex<Option<Arc<Provider>>>,
    pending: Mutex<Option<PendingSignIn>>,
    device: Mutex<Option<crate::auth::oidc::DeviceSignIn>>,
    refresh_lock: tokio::sync::Mutex<()>,
}

impl SignInState {
    pub(crate) fn new(options: &ClientOptions) -> Result<Self, SyncError> {
        Ok(SignInState {
            http: Http::new(&options.extra_root_certificates_pem)?,
            oauth_client_id: options.oauth_client_id.clone(),
            provider: tokio::sync::Mutex::new(None),
            pending: Mutex::new(None),
            device: Mutex::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
        })
    }
}

/// Takes the in-progress request out of its slot (each callback completes at most one request).
fn take_pending<T>(slot: &Mutex<Option<T>>, missing: &str) -> Result<T, SyncError> {
    slot.lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| SyncError::InvalidInput {
            reason: missing.into(),
        })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

impl SyncClient {
    /// The organization URL and user mode stored at setup (requires unlocked).
    async fn organization(&self) -> Result<(String, UserMode), SyncError> {
        self.with_account(|a| {
            let conn = a.store()?.conn();
            let url = meta::get(conn, "organization_url")?.ok_or(SyncError::NotConfigured)?;
            let mode = meta::get(conn, "user_mode")?
                .as_deref()
                .and_then(UserMode::parse)
                .unwrap_or(UserMode::Oauth);
            Ok((url, mode))
        })
        .await
    }

    pub(crate) async fn org_info(&self) -> Result<OrganizationInfo, SyncError> {
        let (url, _) = self.organization().await?;
        let http = self.signin.http.clone();
        runtime::spawn(async move { Ok(org::discover(&http, &url).await?) }).await
    }

    /// The organization's provider, discovered once per client.
    pub(crate) async fn provider(&self) -> Result<Arc<Provider>, SyncError> {
        let mut cached = self.signin.provider.lock().await;
        if let Some(p) = cached.as_ref() {
            return Ok(Arc::clone(p));
        }
        let info = self.org_info().await?;
        if !info.user_modes.iter().any(|m| m == "oauth") {
            return Err(SyncError::UserModeNotAllowed {
                mode: "oauth".into(),
            });
        }
        let issuer = info.issuer.ok_or_else(|| SyncError::Server {
            status: 0,
            reason: "the organization names no identity provider".into(),
        })?;
        let client_id = info
            .client_id
            .or_else(|| self.signin.oauth_client_id.clone())
            .ok_or_else(|| SyncError::InvalidInput {
                reason:
                    "the organization names no OAuth client id; set ClientOptions.oauth_client_id"
                        .into(),
            })?;
        let http = self.signin.http.clone();
        let scopes = info.scopes;
        let provider = runtime::spawn(async move {
            Ok(Provider::discover(&http, &issuer, &client_id, &scopes).await?)
        })
        .await?;
        let provider = Arc::new(provider);
        *cached = Some(Arc::clone(&provider));
        Ok(provider)
    }

    async fn save_tokens(&self, set: TokenSet) -> Result<(), SyncError> {
        self.with_account(move |a| Ok(tokens::save(a.store()?.conn(), &set)?))
            .await
    }

    /// Stores the tokens of a completed sign-in and says who signed in.
    async fn signed_in(&self, set: TokenSet) -> Result<SignedInUser, SyncError> {
        let user = SignedInUser {
            email: set.email.clone(),
            name: set.name.clone(),
            org_user_id: None,
        };
        self.save_tokens(set).await?;
        tracing::info!("signed in");
        Ok(user)
    }

    async fn load_tokens(&self) -> Result<Option<TokenSet>, SyncError> {
        self.with_account(|a| Ok(tokens::load(a.store()?.conn())?))
            .await
    }

    /// A valid access token: refreshed ahead of expiry (or when the server `rejected` the one we
    /// sent), one refresh at a time, the rotated refresh token committed before the new access
    /// token is used. `SignInRequired` when there is none or the refresh token is dead; nothing
    /// else is touched.
    pub(crate) async fn access_token(&self, rejected: Option<&str>) -> Result<String, SyncError> {
        let signed_out = || SyncError::SignInRequired {
            reason: "not signed in".into(),
        };
        let usable = |t: &TokenSet| {
            !tokens::needs_refresh(t, now()) && rejected != Some(t.access_token.as_str())
        };
        let current = self.load_tokens().await?.ok_or_else(signed_out)?;
        if usable(&current) {
            return Ok(current.access_token);
        }
        let _one_at_a_time = self.signin.refresh_lock.lock().await;
        // Another caller may have refreshed while we waited.
        let current = self.load_tokens().await?.ok_or_else(signed_out)?;
        if usable(&current) {
            return Ok(current.access_token);
        }
        let refresh_token =
            current
                .refresh_token
                .clone()
                .ok_or_else(|| SyncError::SignInRequired {
                    reason: "the session expired".into(),
                })?;
        let provider = self.provider().await?;
        let http = self.signin.http.clone();
        let mut fresh =
            runtime::spawn(async move { Ok(provider.refresh(&http, &refresh_token).await?) })
                .await?;
        fresh.email = fresh.email.or(current.email);
        fresh.subject = fresh.subject.or(current.subject);
        fresh.name = fresh.name.or(current.name);
        fresh.id_token = fresh.id_token.or(current.id_token);
        let access = fresh.access_token.clone();
        self.save_tokens(fresh).await?;
        tracing::info!("access token refreshed");
        Ok(access)
    }
}

#[uniffi::export]
impl SyncClient {
    /// Asks an organization how to sign in (no setup or unlock needed): the app can show the
    /// organization's name and allowed user modes while the person types the URL.
    pub async fn discover(&self, organization_url: String) -> Result<OrganizationInfo, SyncError> {
        let http = self.signin.http.clone();
        runtime::spawn(async move { Ok(org::discover(&http, &organization_url).await?) }).await
    }

    /// Starts OAuth sign-in: returns the provider's login page URL for `redirect_uri` (the app's
    /// custom scheme, or a loopback URI on desktop). Requires setup and unlock.
    pub async fn begin_sign_in(
        &self,
        redirect_uri: String,
    ) -> Result<AuthorizationRequest, SyncError> {
        let (_, mode) = self.organization().await?;
        if mode != UserMode::Oauth {
            return Err(SyncError::UserModeNotAllowed {
                mode: "oauth".into(),
            });
        }
        let provider = self.provider().await?;
        let pending = provider.begin(&redirect_uri)?;
        let request = AuthorizationRequest {
            url: pending.url.clone(),
            redirect_uri: pending.redirect_uri.clone(),
        };
        *self
            .signin
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(pending);
        Ok(request)
    }

    /// Finishes OAuth sign-in with the full callback URL the browser session returned. Checks
    /// state, issuer and the ID token, then stores the tokens in the encrypted store.
    pub async fn complete_sign_in(&self, callback_url: String) -> Result<SignedInUser, SyncError> {
        let pending = take_pending(&self.signin.pending, "no sign-in is in progress")?;
        let provider = self.provider().await?;
        let http = self.signin.http.clone();
        let set =
            runtime::spawn(
                async move { Ok(provider.complete(&http, pending, &callback_url).await?) },
            )
            .await?;
        self.signed_in(set).await
    }

    /// Starts a device-code sign-in for a device without a usable browser: show the returned
    /// code and URL, then call `complete_device_sign_in`.
    pub async fn begin_device_sign_in(&self) -> Result<DeviceAuthorization, SyncError> {
        let provider = self.provider().await?;
        let http = self.signin.http.clone();
        let pending =
            runtime::spawn(async move { Ok(provider.device_begin(&http).await?) }).await?;
        let shown = DeviceAuthorization {
            verification_uri: pending.verification_uri.clone(),
            verification_uri_complete: pending.verification_uri_complete.clone(),
            user_code: pending.user_code.clone(),
            expires_in: pending.expires_in,
        };
        *self.signin.device.lock().unwrap_or_else(|p| p.into_inner()) = Some(pending);
        Ok(shown)
    }

    /// Waits until the person approves the device code (or denies: `SignInCancelled`, or it
    /// expires: `SignInRequired`), then stores the tokens.
    pub async fn complete_device_sign_in(&self) -> Result<SignedInUser, SyncError> {
        let pending = take_pending(&self.signin.device, "no device sign-in is in progress")?;
        let provider = self.provider().await?;
        let http = self.signin.http.clone();
        let set =
            runtime::spawn(async move { Ok(provider.device_complete(&http, pending).await?) })
                .await?;
        self.signed_in(set).await
    }

    /// Credentials user mode: signs in with the organization's own user name and password.
    pub async fn sign_in_with_credentials(
        &self,
        username: String,
        password: Vec<u8>,
    ) -> Result<SignedInUser, SyncError> {
        let password = crate::account::secret(password);
        let info = self.org_info().await?;
        if !info.user_modes.iter().any(|m| m == "credentials") {
            return Err(SyncError::UserModeNotAllowed {
                mode: "credentials".into(),
            });
        }
        let endpoint = info
            .credentials_endpoint
            .ok_or(SyncError::UserModeNotAllowed {
                mode: "credentials".into(),
            })?;
        let text = String::from_utf8(password.to_vec()).map_err(|_| SyncError::InvalidInput {
            reason: "the password is not UTF-8".into(),
        })?;
        let text = zeroize::Zeroizing::new(text);
        let http = self.signin.http.clone();
        let user_name = username.clone();
        let set = runtime::spawn(async move {
            Ok(credentials::sign_in(&http, &endpoint, &user_name, &text).await?)
        })
        .await?;
        self.save_tokens(set).await?;
        Ok(SignedInUser {
            email: Some(username),
            name: None,
            org_user_id: None,
        })
    }

    /// Whether tokens are stored (they may still need a refresh).
    pub async fn is_signed_in(&self) -> Result<bool, SyncError> {
        Ok(self.load_tokens().await?.is_some())
    }

    /// Asks the organization who the current token belongs to (refreshing it if needed, and once
    /// more on a 401).
    pub async fn who_am_i(&self) -> Result<SignedInUser, SyncError> {
        let (url, _) = self.organization().await?;
        let mut rejected: Option<String> = None;
        for attempt in 0..2 {
            let token = self.access_token(rejected.as_deref()).await?;
            let token_sent = token.clone();
            let http = self.signin.http.clone();
            let endpoint = format!("{url}/api/me");
            let r = runtime::spawn(async move {
                Ok(http
                    .send(
                        http.client().get(endpoint).bearer_auth(token),
                        crate::net::DEFAULT_BODY_LIMIT,
                    )
                    .await?)
            })
            .await?;
            match r.status.as_u16() {
                200 => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&r.body).map_err(|e| SyncError::Server {
                            status: 200,
                            reason: e.to_string(),
                        })?;
                    return Ok(SignedInUser {
                        email: v["email"].as_str().map(str::to_string),
                        name: v["name"].as_str().map(str::to_string),
                        org_user_id: v["id"].as_str().map(str::to_string),
                    });
                }
                401 if attempt == 0 => rejected = Some(token_sent),
                401 => {
                    return Err(SyncError::SignInRequired {
                        reason: "the organization rejected the token".into(),
                    });
                }
                status => {
                    return Err(SyncError::Server {
                        status,
                        reason: String::from_utf8_lossy(&r.body).chars().take(200).collect(),
                    });
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Signs out: revokes the refresh token at the provider (best effort: signing out works
    /// offline too), forgets the tokens and, with `wipe`, erases the offline data.
    pub async fn sign_out(&self, wipe: bool) -> Result<(), SyncError> {
        let refresh = match self.load_tokens().await {
            Ok(tokens) => tokens.and_then(|t| t.refresh_token),
            Err(_) => None,
        };
        if let Some(refresh_token) = refresh
            && let Ok(provider) = self.provider().await
        {
            let http = self.signin.http.clone();
            let revoked =
                runtime::spawn(async move { Ok(provider.revoke(&http, &refresh_token).await?) })
                    .await;
            if let Err(e) = revoked {
                tracing::warn!(error = %e, "could not revoke the refresh token; signing out locally");
            }
        }
        self.with_account(move |a| {
            if a.is_unlocked() {
                tokens::clear(a.store()?.conn())?;
            }
            if wipe {
                a.wipe()?;
            }
            Ok(())
        })
        .await?;
        *self.signin.provider.lock().await = None;
        Ok(())
    }
}
