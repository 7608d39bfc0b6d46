//! OAuth user mode against an OpenID Connect provider, through `openidconnect` (no bundled
//! reqwest; our client via [`Http::oauth`]): discovery with exact issuer match, authorization code
//! with PKCE S256, state, nonce, the RFC 9207 `iss` check, ID token signature / aud / exp / nonce
//! with clock leeway, and refresh.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken, CoreIdTokenClaims,
    CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse,
};

use super::{AuthError, IdTokenProblem, TokenSet};
use crate::net::{Http, NetError};

/// Tolerated clock difference between the device and the provider.
pub const CLOCK_LEEWAY: Duration = Duration::from_secs(300);

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long discovered metadata is used before it is fetched again.
pub const METADATA_LIFETIME: Duration = Duration::from_secs(3600);
/// How often one key id may make the provider's keys be fetched again.
pub const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The provider's signing keys, and when each key id last made them be fetched again.
struct Keys {
    set: CoreJsonWebKeySet,
    refetched_for: std::collections::HashMap<String, Instant>,
}

/// A provider, discovered and ready for one client id.
pub struct Provider {
    pub issuer: String,
    /// The metadata as discovered (its keys live in `keys`, which can be refreshed).
    metadata: CoreProviderMetadata,
    keys: std::sync::RwLock<Keys>,
    discovered_at: Instant,
    client_id: String,
    scopes: Vec<String>,
    /// The provider promised the RFC 9207 `iss` callback parameter.
    iss_in_callback: bool,
    /// RFC 8628 endpoint (openidconnect does not read it from discovery).
    device_endpoint: Option<String>,
    /// RFC 7009 endpoint.
    revocation_endpoint: Option<String>,
    /// A multi-tenant issuer with a `{tenantid}` placeholder (Entra ID `common`).
    tenant_issuer_template: Option<String>,
}

/// A device-code sign-in in progress: show `user_code` and `verification_uri` to the person.
pub struct DeviceSignIn {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: u64,
    details: openidconnect::core::CoreDeviceAuthorizationResponse,
}

/// A sign-in started with [`Provider::begin`]: kept in memory until the callback arrives.
pub struct PendingSignIn {
    pub url: String,
    pub redirect_uri: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

impl PendingSignIn {
    /// The callback's query parameters, if the callback answers this request: the redirect URI's
    /// scheme, host, port and path, and the `state`. A callback that does not belong to the
    /// request is refused without spending it, so the real callback can still complete it.
    pub fn answer(
        &self,
        callback_url: &str,
    ) -> Result<std::collections::HashMap<String, String>, AuthError> {
        let callback =
            url::Url::parse(callback_url).map_err(|_| AuthError::BadCallback("not a URL"))?;
        let expected = url::Url::parse(&self.redirect_uri)
            .map_err(|_| AuthError::BadCallback("bad redirect"))?;
        if callback.scheme() != expected.scheme()
            || callback.host_str() != expected.host_str()
            || callback.path() != expected.path()
            || callback.port() != expected.port()
        {
            return Err(AuthError::BadCallback(
                "the callback does not match the redirect URI",
            ));
        }
        let params: std::collections::HashMap<String, String> =
            callback.query_pairs().into_owned().collect();
        if params.get("state").map(String::as_str) != Some(self.state.secret().as_str()) {
            return Err(AuthError::BadCallback("state mismatch"));
        }
        Ok(params)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn token_error(
    e: RequestTokenError<NetError, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
) -> AuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            tracing::debug!(
                error = r.error().as_ref(),
                description = r.error_description().map(String::as_str).unwrap_or(""),
                "the token endpoint refused"
            );
            match r.error() {
                CoreErrorResponseType::InvalidGrant => {
                    AuthError::SignInRequired("the provider refused the sign-in (invalid_grant)")
                }
                CoreErrorResponseType::Extension(x)
                    if x == "interaction_required" || x == "login_required" =>
                {
                    AuthError::SignInRequired("the provider asks the person to sign in again")
                }
                other => AuthError::ProviderRefused(super::oauth_code(other.as_ref())),
            }
        }
        RequestTokenError::Request(net) => AuthError::Net(net),
        RequestTokenError::Parse(_, _) => {
            AuthError::ProviderProtocol("an unreadable token response".into())
        }
        RequestTokenError::Other(_) => {
            AuthError::ProviderProtocol("an unexpected token response".into())
        }
    }
}

/// Which check a token's claims failed, in syncvault's words.
fn id_token_problem(e: &openidconnect::ClaimsVerificationError) -> IdTokenProblem {
    use openidconnect::ClaimsVerificationError as C;
    tracing::debug!(error = %e, "the ID token was rejected");
    match e {
        C::Expired(_) => IdTokenProblem::Expired,
        C::InvalidAudience(_) => IdTokenProblem::Audience,
        C::InvalidIssuer(_) => IdTokenProblem::Issuer,
        C::InvalidNonce(_) => IdTokenProblem::Nonce,
        C::SignatureVerification(_) => IdTokenProblem::Signature,
        _ => IdTokenProblem::Claims,
    }
}

fn protocol(what: &str) -> AuthError {
    AuthError::ProviderProtocol(what.to_string())
}

/// The provider's signing keys (JWKS).
async fn fetch_keys(
    http: &Http,
    metadata: &CoreProviderMetadata,
) -> Result<CoreJsonWebKeySet, AuthError> {
    CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &http.oauth())
        .await
        .map_err(|e| match e {
            openidconnect::DiscoveryError::Request(net) => AuthError::Net(net),
            _ => protocol("unreadable provider keys"),
        })
}

/// The `kid` of a JWT's header ("" when it names none).
fn key_id(token: &CoreIdToken) -> String {
    use base64::Engine;
    token
        .to_string()
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["kid"].as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Provider {
    /// OIDC discovery on `issuer`; the metadata's issuer must equal it exactly.
    pub async fn discover(
        http: &Http,
        issuer: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<Provider, AuthError> {
        crate::org::check_endpoint("issuer", issuer)?;
        // One fetch of the raw document: openidconnect's typed metadata drops fields it does not
        // model (RFC 9207, RFC 8628), and multi-tenant providers need a relaxed issuer check.
        let raw = http
            .send(
                http.client()
                    .get(format!("{issuer}/.well-known/openid-configuration")),
                256 * 1024,
            )
            .await?;
        if !raw.status.is_success() {
            return Err(AuthError::ProviderStatus(raw.status.as_u16()));
        }
        let raw: serde_json::Value = serde_json::from_slice(&raw.body)
            .map_err(|_| protocol("unreadable provider metadata"))?;
        let metadata: CoreProviderMetadata = serde_json::from_value(raw.clone())
            .map_err(|_| protocol("unreadable provider metadata"))?;
        // Entra ID's `common` / `organizations` metadata names `{tenantid}` in its issuer: then the
        // ID token's issuer is checked against the template with its own `tid` filled in.
        let tenant_issuer_template =
            Some(metadata.issuer().as_str().to_string()).filter(|i| i.contains("{tenantid}"));
        if tenant_issuer_template.is_none() && metadata.issuer().as_str() != issuer {
            return Err(protocol("the metadata names another issuer"));
        }
        for (what, url) in [
            (
                "authorization endpoint",
                Some(metadata.authorization_endpoint().as_str()),
            ),
            (
                "token endpoint",
                metadata.token_endpoint().map(|u| u.as_str()),
            ),
            ("JWKS", Some(metadata.jwks_uri().as_str())),
        ] {
            let url = url.ok_or_else(|| protocol(&format!("the provider has no {what}")))?;
            crate::org::check_endpoint(what, url)?;
        }
        let jwks = fetch_keys(http, &metadata).await?;
        let iss_in_callback = raw["authorization_response_iss_parameter_supported"]
            .as_bool()
            .unwrap_or(false);
        let endpoint = |key: &str, what: &'static str| {
            raw[key]
                .as_str()
                .map(|u| crate::org::check_endpoint(what, u))
                .transpose()
        };
        let device_endpoint = endpoint("device_authorization_endpoint", "device endpoint")?;
        let revocation_endpoint = endpoint("revocation_endpoint", "revocation endpoint")?;
        let mut scopes: Vec<String> = scopes.to_vec();
        for required in ["openid", "offline_access"] {
            if !scopes.iter().any(|s| s == required) {
                scopes.push(required.into());
            }
        }
        Ok(Provider {
            issuer: issuer.to_string(),
            metadata,
            keys: std::sync::RwLock::new(Keys {
                set: jwks,
                refetched_for: Default::default(),
            }),
            discovered_at: Instant::now(),
            client_id: client_id.to_string(),
            scopes,
            iss_in_callback,
            device_endpoint,
            revocation_endpoint,
            tenant_issuer_template,
        })
    }

    /// Whether the metadata is older than [`METADATA_LIFETIME`] (discover again).
    pub fn is_stale(&self) -> bool {
        self.discovered_at.elapsed() > METADATA_LIFETIME
    }

    /// Fetches the keys again when an ID token names key id `kid` (or fails its signature), unless
    /// that kid did so within [`KEY_REFETCH_INTERVAL`]: providers roll keys without notice.
    /// Returns whether fresh keys are in place.
    async fn refetch_keys_for(&self, http: &Http, kid: &str) -> Result<bool, AuthError> {
        {
            let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
            if keys
                .refetched_for
                .get(kid)
                .is_some_and(|at| at.elapsed() < KEY_REFETCH_INTERVAL)
            {
                return Ok(false);
            }
            keys.refetched_for.insert(kid.to_string(), Instant::now());
        }
        let set = fetch_keys(http, &self.metadata).await?;
        self.keys.write().unwrap_or_else(|p| p.into_inner()).set = set;
        tracing::info!("the provider's signing keys were fetched again");
        Ok(true)
    }

    /// Verifies an ID token's signature and claims; a signature failure (a key id not in the
    /// keys, or keys that no longer match) refetches the keys once and tries again.
    async fn verified_claims(
        &self,
        http: &Http,
        id_token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<CoreIdTokenClaims, AuthError> {
        let verify =
            |client: &Client| -> Result<CoreIdTokenClaims, openidconnect::ClaimsVerificationError> {
                let verifier = self.id_token_verifier(client);
                match nonce {
                    Some(n) => id_token.claims(&verifier, n).cloned(),
                    None => id_token
                        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                        .cloned(),
                }
            };
        match verify(&self.client(None)?) {
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_))
                if self.refetch_keys_for(http, &key_id(id_token)).await? =>
            {
                verify(&self.client(None)?).map_err(|e| AuthError::IdToken(id_token_problem(&e)))
            }
            other => other.map_err(|e| AuthError::IdToken(id_token_problem(&e))),
        }
    }

    fn client(&self, redirect_uri: Option<&str>) -> Result<Client, AuthError> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .set
            .clone();
        let client = CoreClient::from_provider_metadata(
            self.metadata.clone().set_jwks(keys),
            ClientId::new(self.client_id.clone()),
            None,
        );
        Ok(match redirect_uri {
            Some(r) => client.set_redirect_uri(
                RedirectUrl::new(r.to_string())
                    .map_err(|_| AuthError::InvalidRedirect(r.to_string()))?,
            ),
            None => client,
        })
    }

    /// The login page URL (code flow, PKCE S256, fresh state and nonce).
    pub fn begin(&self, redirect_uri: &str) -> Result<PendingSignIn, AuthError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client(Some(redirect_uri))?;
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(PendingSignIn {
            url: url.to_string(),
            redirect_uri: redirect_uri.to_string(),
            state,
            nonce,
            verifier,
        })
    }

    /// Checks the callback (state, `iss`, error) and exchanges the code for verified tokens.
    pub async fn complete(
        &self,
        http: &Http,
        pending: PendingSignIn,
        callback_url: &str,
    ) -> Result<TokenSet, AuthError> {
        let params = pending.answer(callback_url)?;
        match params.get("iss") {
            // A multi-tenant issuer is checked on the ID token instead (tid filled in).
            Some(iss) if self.tenant_issuer_template.is_none() && iss != &self.issuer => {
                return Err(AuthError::BadCallback("iss mismatch (mix-up attack?)"));
            }
            None if self.iss_in_callback => {
                return Err(AuthError::BadCallback("iss missing"));
            }
            _ => {}
        }
        if let Some(error) = params.get("error") {
            return Err(if error == "access_denied" {
                AuthError::Cancelled
            } else {
                AuthError::ProviderRefused(super::oauth_code(error))
            });
        }
        let code = params
            .get("code")
            .ok_or(AuthError::BadCallback("no code"))?;
        let client = self.client(Some(&pending.redirect_uri))?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .map_err(|_| protocol("the provider has no token endpoint"))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&http.oauth())
            .await
            .map_err(token_error)?;
        let id_token = response
            .id_token()
            .ok_or(AuthError::IdToken(IdTokenProblem::Missing))?;
        let claims = self
            .verified_claims(http, id_token, Some(&pending.nonce))
            .await?;
        let tenant = self.check_tenant_issuer(&id_token.to_string(), claims.issuer().as_str())?;
        let mut set = token_set(&response, Some(&claims), None);
        if let Some((tid, oid)) = tenant {
            // Entra ID: the stable user key is the object id within the tenant.
            set.subject = Some(format!("{tid}/{oid}"));
        }
        Ok(set)
    }

    /// Signature, audience, expiry (with CLOCK_LEEWAY) and, unless the issuer is a tenant
    /// template, the exact issuer.
    fn id_token_verifier<'a>(
        &self,
        client: &'a Client,
    ) -> openidconnect::core::CoreIdTokenVerifier<'a> {
        let leeway = chrono::Duration::from_std(CLOCK_LEEWAY).expect("small duration");
        client
            .id_token_verifier()
            .set_time_fn(move || chrono::Utc::now() - leeway)
            .require_issuer_match(self.tenant_issuer_template.is_none())
    }

    /// For a `{tenantid}` issuer template: the token's `iss` must be the template with the
    /// token's own `tid`. Returns (tid, oid) then. Only called after the signature is verified.
    fn check_tenant_issuer(
        &self,
        id_token: &str,
        iss: &str,
    ) -> Result<Option<(String, String)>, AuthError> {
        let Some(template) = &self.tenant_issuer_template else {
            return Ok(None);
        };
        use base64::Engine;
        let payload = id_token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .ok_or(AuthError::IdToken(IdTokenProblem::Claims))?;
        let tid = payload["tid"]
            .as_str()
            .ok_or(AuthError::IdToken(IdTokenProblem::Claims))?;
        if tid.is_empty() || !tid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(AuthError::IdToken(IdTokenProblem::Claims));
        }
        if iss != template.replace("{tenantid}", tid) {
            return Err(AuthError::IdToken(IdTokenProblem::Issuer));
        }
        let oid = payload["oid"]
            .as_str()
            .unwrap_or_else(|| payload["sub"].as_str().unwrap_or_default());
        Ok(Some((tid.to_string(), oid.to_string())))
    }

    /// Starts the device authorization grant (RFC 8628) for a headless desktop.
    pub async fn device_begin(&self, http: &Http) -> Result<DeviceSignIn, AuthError> {
        let endpoint = self
            .device_endpoint
            .clone()
            .ok_or_else(|| protocol("the provider has no device authorization endpoint"))?;
        let client = self.client(None)?.set_device_authorization_url(
            openidconnect::DeviceAuthorizationUrl::new(endpoint)
                .map_err(|_| protocol("an invalid device authorization endpoint"))?,
        );
        let mut request = client.exchange_device_code();
        for scope in self.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let details: openidconnect::core::CoreDeviceAuthorizationResponse = request
            .request_async(&http.oauth())
            .await
            .map_err(token_error)?;
        Ok(DeviceSignIn {
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().to_string()),
            user_code: details.user_code().secret().to_string(),
            expires_in: details.expires_in().as_secs(),
            details,
        })
    }

    /// Polls the token endpoint (honouring `interval` and `slow_down`) until the person approves,
    /// denies (`Cancelled`) or the code expires (`SignInRequired`).
    pub async fn device_complete(
        &self,
        http: &Http,
        pending: DeviceSignIn,
    ) -> Result<TokenSet, AuthError> {
        let client = self.client(None)?;
        let response = client
            .exchange_device_access_token(&pending.details)
            .map_err(|_| protocol("the provider has no token endpoint"))?
            .request_async(&http.oauth(), tokio::time::sleep, None)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) if r.error().as_ref() == "access_denied" => {
                    AuthError::Cancelled
                }
                RequestTokenError::ServerResponse(r) if r.error().as_ref() == "expired_token" => {
                    AuthError::SignInRequired("the device code expired")
                }
                RequestTokenError::ServerResponse(r) => {
                    AuthError::ProviderRefused(super::oauth_code(r.error().as_ref()))
                }
                RequestTokenError::Request(net) => AuthError::Net(net),
                RequestTokenError::Parse(_, _) => protocol("an unreadable token response"),
                RequestTokenError::Other(_) => protocol("an unexpected token response"),
            })?;
        let claims = match response.id_token() {
            Some(token) => {
                // No nonce in the device grant.
                let claims = self.verified_claims(http, token, None).await?;
                self.check_tenant_issuer(&token.to_string(), claims.issuer().as_str())?;
                Some(claims)
            }
            None => None,
        };
        Ok(token_set(&response, claims.as_ref(), None))
    }

    /// Revokes a refresh token (RFC 7009), so a copy of it is useless after sign-out. A provider
    /// without a revocation endpoint is not an error: there is nothing to call.
    pub async fn revoke(&self, http: &Http, refresh_token: &str) -> Result<(), AuthError> {
        let Some(endpoint) = &self.revocation_endpoint else {
            return Ok(());
        };
        let form = [
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.client_id.as_str()),
        ];
        let r = http
            .send(
                http.client().post(endpoint).form(&form),
                crate::net::DEFAULT_BODY_LIMIT,
            )
            .await?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(AuthError::ProviderStatus(r.status.as_u16()))
        }
    }

    /// Uses a refresh token; the provider may rotate it (the new one is in the result).
    pub async fn refresh(&self, http: &Http, refresh_token: &str) -> Result<TokenSet, AuthError> {
        let client = self.client(None)?;
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .map_err(|_| protocol("the provider has no token endpoint"))?
            .request_async(&http.oauth())
            .await
            .map_err(token_error)?;
        Ok(token_set(&response, None, Some(refresh_token)))
    }
}

fn token_set(
    response: &openidconnect::core::CoreTokenResponse,
    claims: Option<&CoreIdTokenClaims>,
    previous_refresh: Option<&str>,
) -> TokenSet {
    TokenSet {
        access_token: response.access_token().secret().clone(),
        // No new refresh token means the old one stays valid (providers that do not rotate).
        refresh_token: response
            .refresh_token()
            .map(|r| r.secret().clone())
            .or_else(|| previous_refresh.map(str::to_string)),
        id_token: response.id_token().map(|t| t.to_string()),
        expires_at: response.expires_in().map(|d| now_secs() + d.as_secs()),
        issued_at: Some(now_secs()),
        subject: claims.map(|c| c.subject().as_str().to_string()),
        email: claims.and_then(|c| c.email().map(|e| e.as_str().to_string())),
        name: claims.and_then(|c| {
            c.name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string())
        }),
    }
}
