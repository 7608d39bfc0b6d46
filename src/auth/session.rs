//! `Session`: one account's sign-in state and token lifecycle. It owns the HTTP client, the
//! discovered provider, the sign-in waiting for its callback (browser or device code), the lock
//! that keeps refreshes one at a time, and the rule that a refused access token gets exactly one
//! refresh ([`OneRefresh`]). The mobile API's `SyncClient` delegates every sign-in method here.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::oidc::{DeviceSignIn, PendingSignIn, Provider};
use super::{AuthError, TokenSet, credentials, tokens};
use crate::account::{Account, UserMode};
use crate::net::{DEFAULT_BODY_LIMIT, Http};
use crate::org::{self, OrganizationInfo};
use crate::runtime;

/// The login page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AuthorizationRequest {
    /// Open this in the system browser session.
    pub url: String,
    /// The callback arrives at this URI; pass the full callback URL to `complete_sign_in`.
    pub redirect_uri: String,
}

/// What to show for a device-code sign-in (RFC 8628).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
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
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SignedInUser {
    pub email: Option<String>,
    pub name: Option<String>,
    /// The organization's user id, when the organization was asked (`who_am_i`).
    pub org_user_id: Option<String>,
}

/// Hands out a valid access token; `rejected` is one a server just refused.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn access_token(&self, rejected: Option<&str>) -> Result<String, AuthError>;
}

/// The rule for a token a server refuses (401): refresh once and try again; a refreshed token that
/// is refused too means the organization does not accept the provider's tokens
/// ([`AuthError::NotAccepted`]), which no login page can fix, so no login page is shown.
pub struct OneRefresh {
    token: String,
    refreshed: bool,
}

impl OneRefresh {
    /// Starts a call with the token in hand.
    pub fn new(token: String) -> Self {
        OneRefresh {
            token,
            refreshed: false,
        }
    }

    /// The token to send now.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The server refused [`Self::token`]: the refreshed token to send next, or `NotAccepted`.
    pub async fn refused(&mut self, source: &dyn TokenSource) -> Result<&str, AuthError> {
        if self.refreshed {
            return Err(AuthError::NotAccepted);
        }
        self.refreshed = true;
        self.token = source.access_token(Some(&self.token)).await?;
        Ok(&self.token)
    }
}

/// What an authorized call to the organization answered.
pub enum Answer<T> {
    Done(T),
    /// 401: the token was refused.
    Unauthorized,
}

/// One account's sign-in state (see the module docs).
pub struct Session {
    http: Http,
    account: Arc<Mutex<Account>>,
    oauth_client_id: Option<String>,
    provider: tokio::sync::Mutex<Option<Arc<Provider>>>,
    pending: Mutex<Option<PendingSignIn>>,
    device: Mutex<Option<DeviceSignIn>>,
    refresh_lock: tokio::sync::Mutex<()>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn lock<T>(slot: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// A session over `account`'s store, with `http` for every request.
    pub fn new(http: Http, account: Arc<Mutex<Account>>, oauth_client_id: Option<String>) -> Self {
        Session {
            http,
            account,
            oauth_client_id,
            provider: tokio::sync::Mutex::new(None),
            pending: Mutex::new(None),
            device: Mutex::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The HTTP client every request of this account uses.
    pub fn http(&self) -> &Http {
        &self.http
    }

    async fn with_account<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        F: FnOnce(&mut Account) -> Result<T, AuthError> + Send + 'static,
        T: Send + 'static,
    {
        let account = Arc::clone(&self.account);
        runtime::spawn_blocking(move || work(&mut lock(&account))).await
    }

    /// The organization URL and user mode stored at setup (requires unlocked).
    pub async fn organization(&self) -> Result<(String, UserMode), AuthError> {
        self.with_account(|a| Ok(a.organization()?)).await
    }

    /// Asks an organization how to sign in (no account needed).
    pub async fn discover(&self, organization_url: String) -> Result<OrganizationInfo, AuthError> {
        let http = self.http.clone();
        runtime::spawn(async move { Ok(org::discover(&http, &organization_url).await?) }).await
    }

    /// Discovery of this account's organization.
    pub async fn org_info(&self) -> Result<OrganizationInfo, AuthError> {
        let (url, _) = self.organization().await?;
        self.discover(url).await
    }

    /// The organization's provider, discovered once and again when its metadata is older than
    /// `oidc::METADATA_LIFETIME` (its keys are refetched sooner, when a token needs it).
    pub async fn provider(&self) -> Result<Arc<Provider>, AuthError> {
        let mut cached = self.provider.lock().await;
        if let Some(p) = cached.as_ref().filter(|p| !p.is_stale()) {
            return Ok(Arc::clone(p));
        }
        let info = self.org_info().await?;
        if !info.user_modes.iter().any(|m| m == "oauth") {
            return Err(AuthError::ModeNotAllowed("oauth"));
        }
        let issuer = info.issuer.ok_or_else(|| {
            AuthError::OrgProtocol("the organization names no identity provider".into())
        })?;
        let client_id = info
            .client_id
            .or_else(|| self.oauth_client_id.clone())
            .ok_or(AuthError::NoClientId)?;
        let http = self.http.clone();
        let scopes = info.scopes;
        let provider =
            runtime::spawn(
                async move { Provider::discover(&http, &issuer, &client_id, &scopes).await },
            )
            .await?;
        let provider = Arc::new(provider);
        *cached = Some(Arc::clone(&provider));
        Ok(provider)
    }

    async fn save_tokens(&self, set: TokenSet) -> Result<(), AuthError> {
        self.with_account(move |a| Ok(tokens::save(a.store()?.conn(), &set)?))
            .await
    }

    async fn load_tokens(&self) -> Result<Option<TokenSet>, AuthError> {
        self.with_account(|a| Ok(tokens::load(a.store()?.conn())?))
            .await
    }

    /// Stores the tokens of a completed sign-in and says who signed in.
    async fn signed_in(&self, set: TokenSet) -> Result<SignedInUser, AuthError> {
        let user = SignedInUser {
            email: set.email.clone(),
            name: set.name.clone(),
            org_user_id: None,
        };
        self.save_tokens(set).await?;
        tracing::info!("signed in");
        Ok(user)
    }

    /// Whether tokens are stored (they may still need a refresh).
    pub async fn is_signed_in(&self) -> Result<bool, AuthError> {
        Ok(self.load_tokens().await?.is_some())
    }

    /// Starts OAuth sign-in: the provider's login page URL for `redirect_uri`.
    pub async fn begin_sign_in(
        &self,
        redirect_uri: String,
    ) -> Result<AuthorizationRequest, AuthError> {
        let (_, mode) = self.organization().await?;
        if mode != UserMode::Oauth {
            return Err(AuthError::ModeNotAllowed("oauth"));
        }
        let pending = self.provider().await?.begin(&redirect_uri)?;
        let request = AuthorizationRequest {
            url: pending.url.clone(),
            redirect_uri: pending.redirect_uri.clone(),
        };
        *lock(&self.pending) = Some(pending);
        Ok(request)
    }

    /// Finishes OAuth sign-in with the full callback URL; checks state, issuer and the ID token,
    /// then stores the tokens.
    /// A callback that does not belong to the request (another redirect URI, a forged state)
    /// leaves the request waiting for the real one.
    pub async fn complete_sign_in(&self, callback_url: String) -> Result<SignedInUser, AuthError> {
        let pending = {
            let mut slot = lock(&self.pending);
            slot.as_ref()
                .ok_or(AuthError::NoSignInInProgress)?
                .answer(&callback_url)?;
            slot.take().ok_or(AuthError::NoSignInInProgress)?
        };
        let provider = self.provider().await?;
        let http = self.http.clone();
        let set =
            runtime::spawn(async move { provider.complete(&http, pending, &callback_url).await })
                .await?;
        self.signed_in(set).await
    }

    /// Starts a device-code sign-in (RFC 8628).
    pub async fn begin_device_sign_in(&self) -> Result<DeviceAuthorization, AuthError> {
        let provider = self.provider().await?;
        let http = self.http.clone();
        let pending = runtime::spawn(async move { provider.device_begin(&http).await }).await?;
        let shown = DeviceAuthorization {
            verification_uri: pending.verification_uri.clone(),
            verification_uri_complete: pending.verification_uri_complete.clone(),
            user_code: pending.user_code.clone(),
            expires_in: pending.expires_in,
        };
        *lock(&self.device) = Some(pending);
        Ok(shown)
    }

    /// Waits until the person approves the device code, then stores the tokens.
    pub async fn complete_device_sign_in(&self) -> Result<SignedInUser, AuthError> {
        let pending = lock(&self.device)
            .take()
            .ok_or(AuthError::NoSignInInProgress)?;
        let provider = self.provider().await?;
        let http = self.http.clone();
        let set =
            runtime::spawn(async move { provider.device_complete(&http, pending).await }).await?;
        self.signed_in(set).await
    }

    /// Credentials user mode: the organization's own user name and password.
    pub async fn sign_in_with_credentials(
        &self,
        username: String,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<SignedInUser, AuthError> {
        let info = self.org_info().await?;
        let endpoint = info
            .credentials_endpoint
            .filter(|_| info.user_modes.iter().any(|m| m == "credentials"))
            .ok_or(AuthError::ModeNotAllowed("credentials"))?;
        let text = Zeroizing::new(
            String::from_utf8(password.to_vec()).map_err(|_| AuthError::PasswordNotUtf8)?,
        );
        let http = self.http.clone();
        let user_name = username.clone();
        let set = runtime::spawn(async move {
            credentials::sign_in(&http, &endpoint, &user_name, &text).await
        })
        .await?;
        self.save_tokens(set).await?;
        Ok(SignedInUser {
            email: Some(username),
            name: None,
            org_user_id: None,
        })
    }

    /// A valid access token: refreshed ahead of expiry (or when a server refused `rejected`), one
    /// refresh at a time, the rotated refresh token committed before the new access token is
    /// used. `SignInRequired` when there is none or the refresh token is dead.
    pub async fn access_token(&self, rejected: Option<&str>) -> Result<String, AuthError> {
        let usable = |t: &TokenSet| {
            !tokens::needs_refresh(t, now()) && rejected != Some(t.access_token.as_str())
        };
        let current = self
            .load_tokens()
            .await?
            .ok_or(AuthError::SignInRequired("not signed in"))?;
        if usable(&current) {
            return Ok(current.access_token);
        }
        let _one_at_a_time = self.refresh_lock.lock().await;
        // Another caller may have refreshed while we waited.
        let current = self
            .load_tokens()
            .await?
            .ok_or(AuthError::SignInRequired("not signed in"))?;
        if usable(&current) {
            return Ok(current.access_token);
        }
        let refresh_token = current
            .refresh_token
            .clone()
            .ok_or(AuthError::SignInRequired("the session expired"))?;
        let provider = self.provider().await?;
        let http = self.http.clone();
        let mut fresh =
            runtime::spawn(async move { provider.refresh(&http, &refresh_token).await }).await?;
        fresh.email = fresh.email.or(current.email);
        fresh.subject = fresh.subject.or(current.subject);
        fresh.name = fresh.name.or(current.name);
        fresh.id_token = fresh.id_token.or(current.id_token);
        let access = fresh.access_token.clone();
        self.save_tokens(fresh).await?;
        tracing::info!("access token refreshed");
        Ok(access)
    }

    /// Runs `call` with a valid access token under the [`OneRefresh`] rule.
    pub async fn authorized<T, F, Fut>(&self, call: F) -> Result<T, AuthError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Answer<T>, AuthError>>,
    {
        let mut attempt = OneRefresh::new(self.access_token(None).await?);
        loop {
            match call(attempt.token().to_string()).await? {
                Answer::Done(value) => return Ok(value),
                Answer::Unauthorized => {
                    attempt.refused(self).await?;
                }
            }
        }
    }

    /// Asks the organization who the current token belongs to.
    pub async fn who_am_i(&self) -> Result<SignedInUser, AuthError> {
        let (url, _) = self.organization().await?;
        let endpoint = format!("{url}/api/me");
        self.authorized(|token| {
            let (http, endpoint) = (self.http.clone(), endpoint.clone());
            async move {
                let r = runtime::spawn(async move {
                    let request = http.client().get(endpoint).bearer_auth(token);
                    Ok::<_, AuthError>(http.send(request, DEFAULT_BODY_LIMIT).await?)
                })
                .await?;
                match r.status.as_u16() {
                    200 => {
                        let v: serde_json::Value = serde_json::from_slice(&r.body)
                            .map_err(|_| AuthError::OrgProtocol("an unreadable /api/me".into()))?;
                        Ok(Answer::Done(SignedInUser {
                            email: v["email"].as_str().map(str::to_string),
                            name: v["name"].as_str().map(str::to_string),
                            org_user_id: v["id"].as_str().map(str::to_string),
                        }))
                    }
                    401 => Ok(Answer::Unauthorized),
                    403 => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.body).unwrap_or_default();
                        match v["error"].as_str() {
                            Some("user_disabled") => Err(AuthError::UserDisabled),
                            Some("not_a_member") => Err(AuthError::NotAMember(
                                super::not_a_member_reason(v["reason"].as_str()),
                            )),
                            _ => Err(AuthError::OrgStatus(403)),
                        }
                    }
                    status => Err(AuthError::OrgStatus(status)),
                }
            }
        })
        .await
    }

    /// Signs out: revokes the refresh token at the provider (best effort: signing out works
    /// offline too) and forgets the tokens; with `wipe`, erases the offline data.
    pub async fn sign_out(&self, wipe: bool) -> Result<(), AuthError> {
        let refresh = self
            .load_tokens()
            .await
            .ok()
            .flatten()
            .and_then(|t| t.refresh_token);
        if let Some(refresh_token) = refresh
            && let Ok(provider) = self.provider().await
        {
            let http = self.http.clone();
            let revoked =
                runtime::spawn(async move { provider.revoke(&http, &refresh_token).await }).await;
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
        *self.provider.lock().await = None;
        Ok(())
    }
}

#[async_trait]
impl TokenSource for Session {
    async fn access_token(&self, rejected: Option<&str>) -> Result<String, AuthError> {
        Session::access_token(self, rejected).await
    }
}
