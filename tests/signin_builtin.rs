//! Sign-in against the reference server's built-in OpenID Connect provider over real HTTP:
//! discovery, code + PKCE through the login form, ID token checks, refresh rotation, the org's
//! API with the access token, credentials mode, and the refusals of a tampered callback.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use syncvault::{ClientOptions, SyncClient, SyncError, UserMode};
use syncvault_server::admin::identity::SignInPolicy;
use syncvault_server::idp::DEV_PASSWORD;
use syncvault_server::idp::IdpLifetimes;
use syncvault_server::{BoundServer, RunningServer, ServerConfig};
use syncvault_testkit::devlogin;

const PW: &[u8] = b"offline password";
const REDIRECT: &str = "http://127.0.0.1:1/callback";

async fn server(config: ServerConfig) -> RunningServer {
    BoundServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn(config)
        .unwrap()
}

fn options() -> ClientOptions {
    common::org::floor_kdf()
}

async fn client(dir: &std::path::Path, url: &str, mode: UserMode) -> Arc<SyncClient> {
    let c = SyncClient::with_options(dir.display().to_string(), options()).unwrap();
    c.setup_offline_password(url.to_string(), mode, PW.to_vec(), PW.to_vec())
        .await
        .unwrap();
    c
}

/// Starts a sign-in and submits the provider's login form: the callback URL the browser would get.
async fn provider_callback(c: &SyncClient, user: &str, cancel: bool) -> String {
    let request = c.begin_sign_in(REDIRECT.into()).await.unwrap();
    devlogin::login(&request.url, user, DEV_PASSWORD, cancel)
        .await
        .unwrap()
}

async fn sign_in(c: &SyncClient, user: &str) -> syncvault::ffi::SignedInUser {
    let callback = provider_callback(c, user, false).await;
    c.complete_sign_in(callback).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_refresh_and_the_org_api() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;

    let info = c.discover(srv.url.clone()).await.unwrap();
    assert_eq!(info.name, "Contoso Field Service");
    assert_eq!(
        info.issuer.as_deref(),
        Some(format!("{}/idp", srv.url).as_str())
    );
    assert!(info.user_modes.contains(&"oauth".to_string()));

    assert!(matches!(
        c.who_am_i().await,
        Err(SyncError::SignInRequired { .. })
    ));
    let user = sign_in(&c, "Ada@Contoso.example").await;
    assert_eq!(user.email.as_deref(), Some("ada@contoso.example"));
    // The seed's rule: same email as an existing org user -> that user.
    let me = c.who_am_i().await.unwrap();
    assert_eq!(me.org_user_id.as_deref(), Some("u1"));

    // A provider user unknown to the org is no member: nobody imported or assigned them, and
    // this organization does not create users at a first sign-in.
    let dir2 = tempfile::tempdir().unwrap();
    let c2 = client(dir2.path(), &srv.url, UserMode::Oauth).await;
    sign_in(&c2, "newhire@contoso.example").await;
    match c2.who_am_i().await {
        Err(SyncError::NotAMember { reason }) => {
            assert!(reason.contains("neither imported nor assigned"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        srv.org
            .store
            .user_by_email("newhire@contoso.example")
            .unwrap()
            .is_none(),
        "nobody was created"
    );

    // Tokens survive lock / unlock (they live in the encrypted store).
    c.lock().await.unwrap();
    assert!(matches!(c.who_am_i().await, Err(SyncError::Locked)));
    c.unlock(PW.to_vec()).await.unwrap();
    assert!(c.is_signed_in().await.unwrap());
    assert_eq!(
        c.who_am_i().await.unwrap().org_user_id.as_deref(),
        Some("u1")
    );

    c.sign_out(false).await.unwrap();
    assert!(matches!(
        c.who_am_i().await,
        Err(SyncError::SignInRequired { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_tokens_refresh_with_rotation_one_at_a_time() {
    // Two-second access tokens: once one has expired, every call needs a refresh.
    let config = ServerConfig {
        lifetimes: IdpLifetimes {
            access_token: Duration::from_secs(2),
            ..Default::default()
        },
        ..Default::default()
    };
    let srv = server(config).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    sign_in(&c, "grace@contoso.example").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Eight concurrent calls: refreshes are serialized, none reuses a rotated refresh token
    // (which would revoke the family and end in SignInRequired).
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.who_am_i().await })
        })
        .collect();
    for call in calls {
        assert_eq!(
            call.await.unwrap().unwrap().email.as_deref(),
            Some("grace@contoso.example")
        );
    }
    assert!(c.who_am_i().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_or_cancelled_callbacks_are_refused() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;

    // Cancel on the login page.
    let callback = provider_callback(&c, "ada@contoso.example", true).await;
    assert_eq!(
        c.complete_sign_in(callback).await,
        Err(SyncError::SignInCancelled)
    );

    let tamper = |callback: &str, key: &str, value: &str| {
        let mut u = url::Url::parse(callback).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                if k == key {
                    (k, value.to_string())
                } else {
                    (k, v)
                }
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u.to_string()
    };
    for (key, value, what) in [
        ("state", "forged", "state"),
        ("iss", "https://evil.example", "iss"),
        ("code", "forged", "code"),
    ] {
        let callback = provider_callback(&c, "ada@contoso.example", false).await;
        let err = c
            .complete_sign_in(tamper(&callback, key, value))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                SyncError::SignInRejected { .. } | SyncError::SignInRequired { .. }
            ),
            "{what}: {err:?}"
        );
        assert!(!c.is_signed_in().await.unwrap(), "{what} signed in");
    }
    // A callback to another redirect URI is refused before any exchange.
    let callback = provider_callback(&c, "ada@contoso.example", false).await;
    let moved = callback.replace("127.0.0.1:1", "127.0.0.1:2");
    assert!(c.complete_sign_in(moved).await.is_err());
    // The code replayed after a successful exchange is refused.
    let callback = provider_callback(&c, "ada@contoso.example", false).await;
    c.complete_sign_in(callback.clone()).await.unwrap();
    let _ = c.begin_sign_in(REDIRECT.into()).await.unwrap();
    assert!(
        c.complete_sign_in(callback).await.is_err(),
        "state of the new request differs; the old code is dead anyway"
    );
    // A callback that does not belong to the request (forged state, another redirect) leaves the
    // request waiting: the real callback still completes it.
    let callback = provider_callback(&c, "ada@contoso.example", false).await;
    let forged = tamper(&callback, "state", "forged");
    assert!(matches!(
        c.complete_sign_in(forged).await,
        Err(SyncError::SignInRejected { .. })
    ));
    assert!(matches!(
        c.complete_sign_in(callback.replace("127.0.0.1:1", "127.0.0.1:2"))
            .await,
        Err(SyncError::SignInRejected { .. })
    ));
    c.complete_sign_in(callback).await.unwrap();
    assert!(c.is_signed_in().await.unwrap());
    // Completing without a pending request is an input error.
    assert!(matches!(
        c.complete_sign_in(REDIRECT.into()).await,
        Err(SyncError::InvalidInput { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_mode() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Credentials).await;
    assert!(matches!(
        c.sign_in_with_credentials("ada@contoso.example".into(), b"wrong".to_vec())
            .await,
        Err(SyncError::SignInRequired { .. })
    ));
    c.sign_in_with_credentials("ada@contoso.example".into(), b"ada-credentials".to_vec())
        .await
        .unwrap();
    assert_eq!(
        c.who_am_i().await.unwrap().org_user_id.as_deref(),
        Some("u1")
    );
    assert!(matches!(
        c.begin_sign_in(REDIRECT.into()).await,
        Err(SyncError::UserModeNotAllowed { .. })
    ));

    let oauth_only = server(ServerConfig {
        allow_credentials: false,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &oauth_only.url, UserMode::Credentials).await;
    assert_eq!(
        c.sign_in_with_credentials("ada@contoso.example".into(), b"ada-credentials".to_vec())
            .await,
        Err(SyncError::UserModeNotAllowed {
            mode: "credentials".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_errors_are_typed() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = SyncClient::with_options(dir.path().display().to_string(), options()).unwrap();
    // Nothing listens on port 1.
    assert!(matches!(
        c.discover("http://127.0.0.1:1".into()).await,
        Err(SyncError::Network { .. })
    ));
    assert!(matches!(
        c.discover("http://contoso.example.com".into()).await,
        Err(SyncError::InvalidOrganizationUrl { .. })
    ));
    *srv.org.discovery_override.lock().unwrap() =
        Some((axum::http::StatusCode::NOT_FOUND, "nope".into()));
    // Without discovery, the API root's Bearer challenge still names the provider.
    let info = c.discover(srv.url.clone()).await.unwrap();
    assert_eq!(
        info.issuer.as_deref(),
        Some(format!("{}/idp", srv.url).as_str())
    );
    assert_eq!(info.resource_id.as_deref(), Some(srv.url.as_str()));
    // An issuer over plain http to a remote host is refused.
    *srv.org.discovery_override.lock().unwrap() = Some((
        axum::http::StatusCode::OK,
        r#"{"name": "x", "user_modes": ["oauth"], "oidc": {"issuer": "http://idp.example.com", "client_id": "a"}}"#.into(),
    ));
    assert!(matches!(
        c.discover(srv.url.clone()).await,
        Err(SyncError::ProtocolViolation { .. })
    ));
    // A server on another protocol version is refused before any sign-in, with the reason.
    *srv.org.discovery_override.lock().unwrap() = Some((
        axum::http::StatusCode::OK,
        format!(
            r#"{{"protocol_version": 3, "name": "x", "user_modes": ["oauth"], "sync_api": "{}/api/sync/v3"}}"#,
            srv.url
        ),
    ));
    match c.discover(srv.url.clone()).await {
        Err(SyncError::ProtocolViolation { reason }) => assert!(reason.contains("v3"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let _ = Mutex::new(());
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_flow_approve_and_deny() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;

    let device = c.begin_device_sign_in().await.unwrap();
    assert!(device.verification_uri.starts_with(&srv.url));
    assert!(device.expires_in > 0);
    let waiting = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.complete_device_sign_in().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    devlogin::approve_device(
        &device.verification_uri,
        &device.user_code,
        "grace@contoso.example",
        DEV_PASSWORD,
    )
    .await
    .unwrap();
    let user = waiting.await.unwrap().unwrap();
    assert_eq!(user.email.as_deref(), Some("grace@contoso.example"));
    assert_eq!(
        c.who_am_i().await.unwrap().email.as_deref(),
        Some("grace@contoso.example")
    );

    c.sign_out(false).await.unwrap();
    let device = c.begin_device_sign_in().await.unwrap();
    let waiting = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.complete_device_sign_in().await })
    };
    let deny = reqwest::Client::new()
        .post(&device.verification_uri)
        .form(&[("user_code", device.user_code.as_str()), ("action", "deny")])
        .send()
        .await
        .unwrap();
    assert!(deny.status().is_success());
    assert_eq!(waiting.await.unwrap(), Err(SyncError::SignInCancelled));
    assert!(!c.is_signed_in().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_id_tokens_are_refused() {
    use syncvault_server::idp::IdTokenFault;
    for fault in [
        IdTokenFault::WrongAudience,
        IdTokenFault::WrongNonce,
        IdTokenFault::WrongIssuer,
        IdTokenFault::UnknownKey,
        IdTokenFault::Expired,
    ] {
        let srv = server(ServerConfig {
            id_token_fault: Some(fault),
            ..Default::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
        let callback = provider_callback(&c, "ada@contoso.example", false).await;
        let err = c.complete_sign_in(callback).await.unwrap_err();
        assert!(
            matches!(&err, SyncError::SignInRejected { reason } if reason.contains("ID token")),
            "{fault:?}: {err:?}"
        );
        assert!(!c.is_signed_in().await.unwrap(), "{fault:?} signed in");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provider_enforces_pkce() {
    // The client always sends a verifier; this proves the reference provider refuses a code
    // exchange without one (a stolen code alone is useless).
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    let callback = provider_callback(&c, "ada@contoso.example", false).await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let answer = reqwest::Client::new()
        .post(format!("{}/idp/token", srv.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", syncvault_server::CLIENT_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_kills_the_refresh_token() {
    use syncvault::auth::oidc::Provider;
    let srv = server(ServerConfig::default()).await;
    let http = syncvault::net::Http::new(&[]).unwrap();
    let scopes = vec!["openid".to_string(), "offline_access".to_string()];
    let provider = Provider::discover(
        &http,
        &format!("{}/idp", srv.url),
        syncvault_server::CLIENT_ID,
        &scopes,
    )
    .await
    .unwrap();
    let pending = provider.begin(REDIRECT).unwrap();
    let callback = devlogin::login(&pending.url, "ada@contoso.example", DEV_PASSWORD, false)
        .await
        .unwrap();
    let tokens = provider.complete(&http, pending, &callback).await.unwrap();
    let refresh = tokens.refresh_token.unwrap();
    provider.revoke(&http, &refresh).await.unwrap();
    assert!(matches!(
        provider.refresh(&http, &refresh).await,
        Err(syncvault::auth::AuthError::SignInRequired(_))
    ));

    // Through the mobile API: sign-out revokes and forgets; the next call needs a sign-in.
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    sign_in(&c, "ada@contoso.example").await;
    c.sign_out(false).await.unwrap();
    assert!(!c.is_signed_in().await.unwrap());
    assert!(matches!(
        c.who_am_i().await,
        Err(SyncError::SignInRequired { .. })
    ));
    // Sign-out with wipe erases the vault.
    sign_in(&c, "ada@contoso.example").await;
    c.sign_out(true).await.unwrap();
    assert!(!c.account_state().await.unwrap().configured);
}

struct DevUi {
    user: &'static str,
    cancel: bool,
}

#[async_trait::async_trait]
impl syncvault::AuthorizationUi for DevUi {
    fn redirect_uri(&self) -> String {
        REDIRECT.into()
    }
    async fn authorize(&self, url: String) -> Result<String, SyncError> {
        devlogin::login(&url, self.user, DEV_PASSWORD, self.cancel)
            .await
            .map_err(|e| SyncError::Internal {
                reason: e.to_string(),
            })
    }
}

#[derive(Default)]
struct Phases(Mutex<Vec<syncvault::SyncPhase>>);

impl syncvault::SyncObserver for Phases {
    fn on_progress(&self, progress: syncvault::SyncProgress) {
        self.0.lock().unwrap().push(progress.phase);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn synchronize_brings_up_the_login_page_itself() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    let observer = Arc::new(Phases::default());
    // No UI: a clear SignInRequired.
    assert!(matches!(
        Arc::clone(&c).synchronize(observer.clone(), None).await,
        Err(SyncError::SignInRequired { .. })
    ));
    // The person cancels on the login page.
    c.set_authorization_ui(Arc::new(DevUi {
        user: "ada@contoso.example",
        cancel: true,
    }));
    assert_eq!(
        Arc::clone(&c).synchronize(observer.clone(), None).await,
        Err(SyncError::SignInCancelled)
    );
    assert!(!c.is_signed_in().await.unwrap());
    // The person signs in; the organization's records come down.
    c.set_authorization_ui(Arc::new(DevUi {
        user: "ada@contoso.example",
        cancel: false,
    }));
    let report = Arc::clone(&c)
        .synchronize(observer.clone(), None)
        .await
        .unwrap();
    assert_eq!(report.records_downloaded, 1000);
    assert!(c.is_signed_in().await.unwrap());
    let signing_in = |o: &Phases| {
        o.0.lock()
            .unwrap()
            .iter()
            .filter(|p| **p == syncvault::SyncPhase::SigningIn)
            .count()
    };
    // Once for the cancelled login page, once for this one.
    assert_eq!(signing_in(&observer), 2);
    // The session dies on the provider: the next Synchronize brings the login page back once,
    // then syncs.
    srv.idp.as_ref().unwrap().revoke_all_sessions();
    srv.org.verifier.expire_seen_tokens();
    c.update_record(
        "contact".into(),
        "c000000001".into(),
        [(
            "notes".to_string(),
            syncvault::FieldValue::Text {
                value: "kept".into(),
            },
        )]
        .into(),
    )
    .await
    .unwrap();
    let report = Arc::clone(&c)
        .synchronize(observer.clone(), None)
        .await
        .unwrap();
    assert_eq!(report.records_uploaded, 1);
    assert_eq!(signing_in(&observer), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_tenant_issuer_is_checked_through_tid() {
    // Like Entra ID's `common` endpoint: the metadata's issuer is `.../{tenantid}`; the ID token's
    // issuer must be that template with the token's own `tid`.
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let srv = server(ServerConfig {
        tenant: Some(tenant.into()),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    let info = c.discover(srv.url.clone()).await.unwrap();
    assert!(info.issuer.as_deref().unwrap().ends_with("/idp/common"));
    let user = sign_in(&c, "ada@contoso.example").await;
    assert_eq!(user.email.as_deref(), Some("ada@contoso.example"));
    assert_eq!(
        c.who_am_i().await.unwrap().org_user_id.as_deref(),
        Some("u1")
    );

    // The same provider issuing a token whose issuer is not the tenant's: refused.
    let bad = server(ServerConfig {
        tenant: Some(tenant.into()),
        id_token_fault: Some(syncvault_server::idp::IdTokenFault::WrongIssuer),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &bad.url, UserMode::Oauth).await;
    let callback = provider_callback(&c, "ada@contoso.example", false).await;
    assert!(matches!(
        c.complete_sign_in(callback).await,
        Err(SyncError::SignInRejected { .. })
    ));
}

fn refreshes(srv: &RunningServer) -> u64 {
    srv.idp
        .as_ref()
        .unwrap()
        .refresh_grants
        .load(std::sync::atomic::Ordering::SeqCst)
}

fn sign_ins(srv: &RunningServer) -> u64 {
    srv.idp
        .as_ref()
        .unwrap()
        .code_grants
        .load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_shorter_than_the_margin_is_used_and_no_refresh_token_is_fine() {
    // 30-second access tokens with refresh tokens: usable when they arrive (no refresh right
    // after the code exchange).
    let srv = server(ServerConfig {
        lifetimes: IdpLifetimes {
            access_token: Duration::from_secs(30),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    sign_in(&c, "ada@contoso.example").await;
    c.who_am_i().await.unwrap();
    assert_eq!(
        common::org::sync(&c).await.unwrap().records_downloaded,
        1000
    );
    assert_eq!(refreshes(&srv), 0, "a fresh 30-second token is not due");

    // No refresh token at all (as providers that drop offline_access): the access token is
    // used until it expires, then the login page comes back.
    let srv = server(ServerConfig {
        lifetimes: IdpLifetimes {
            access_token: Duration::from_secs(2),
            ..Default::default()
        },
        refresh_tokens: false,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    c.set_authorization_ui(Arc::new(DevUi {
        user: "ada@contoso.example",
        cancel: false,
    }));
    assert_eq!(
        common::org::sync(&c).await.unwrap().records_downloaded,
        1000
    );
    c.who_am_i().await.unwrap();
    assert_eq!(sign_ins(&srv), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(matches!(
        c.who_am_i().await,
        Err(SyncError::SignInRequired { .. })
    ));
    common::org::sync(&c).await.unwrap();
    assert_eq!(sign_ins(&srv), 2, "the login page came back once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_lived_client_survives_provider_key_rotation() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    sign_in(&c, "ada@contoso.example").await;
    let idp = srv.idp.as_ref().unwrap();
    // The provider rolls its keys twice, a moment apart: each sign-in of the same client
    // verifies the ID token with keys fetched again for the new key id.
    for _ in 0..2 {
        idp.rotate_keys();
        let user = sign_in(&c, "ada@contoso.example").await;
        assert_eq!(user.email.as_deref(), Some("ada@contoso.example"));
        c.who_am_i().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_org_refetches_an_external_issuers_rotated_keys() {
    // Organization B trusts organization A's provider as an external issuer (its JWKS over
    // HTTP), as an org trusts Entra ID.
    let a = server(ServerConfig::default()).await;
    let b = server(ServerConfig {
        provider: syncvault_server::ProviderConfig::External {
            issuer: format!("{}/idp", a.url),
            audience: a.url.clone(),
        },
        // B's seeded users have no Domain Name: their first sign-in links them by email.
        sign_in_policy: Some(SignInPolicy {
            match_email: true,
            provision_unknown: false,
        }),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &b.url, UserMode::Oauth).await;
    sign_in(&c, "ada@contoso.example").await;
    c.who_am_i().await.unwrap();
    // Two rotations within seconds: B refetches for each unknown key id.
    for _ in 0..2 {
        a.idp.as_ref().unwrap().rotate_keys();
        sign_in(&c, "ada@contoso.example").await;
        let me = c.who_am_i().await.unwrap();
        assert_eq!(me.email.as_deref(), Some("ada@contoso.example"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entra_like_access_tokens_pick_the_user_by_identity_and_email() {
    // Access tokens without `email`: `oid`/`tid`, and `preferred_username` in another case.
    let srv = server(ServerConfig {
        entra_access_tokens: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    sign_in(&c, "ada@contoso.example").await;
    let me = c.who_am_i().await.unwrap();
    // The existing org user Ada (the server creates her first), matched by case-folded email.
    assert_eq!(me.org_user_id.as_deref(), Some("u1"));
    assert_eq!(me.email.as_deref(), Some("ada@contoso.example"));
    // Ada, Grace, the System Administrator and the generated organization's 20 field
    // technicians: nobody new.
    assert_eq!(srv.org.store.count(), 23, "no new user was created");
    assert_eq!(
        common::org::sync(&c).await.unwrap().records_downloaded,
        1000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_org_that_refuses_fresh_tokens_is_a_configuration_error_not_a_login_loop() {
    // The provider issues tokens for another audience than the organization accepts.
    let srv = server(ServerConfig {
        provider_audience: Some("https://another-org.example".into()),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    c.set_authorization_ui(Arc::new(DevUi {
        user: "ada@contoso.example",
        cancel: false,
    }));
    for _ in 0..2 {
        let err = common::org::sync(&c).await.unwrap_err();
        assert!(matches!(err, SyncError::TokenNotAccepted { .. }), "{err:?}");
    }
    assert_eq!(sign_ins(&srv), 1, "one login page, no loop");
    assert!(refreshes(&srv) <= 2, "one refresh per run at most");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_plain_http_server_says_so() {
    // `setup --org 127.0.0.1:8080` becomes https://...; a local development server speaks http.
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = SyncClient::with_options(dir.path().display().to_string(), options()).unwrap();
    let typed = srv.url.trim_start_matches("http://").to_string();
    let err = c.discover(typed).await.unwrap_err();
    match err {
        SyncError::Network { reason } => {
            assert!(reason.contains("does not speak HTTPS"), "{reason}");
            assert!(reason.contains("http://"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_page_is_readable_on_a_phone_and_escapes_what_it_shows() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    let request = c.begin_sign_in(REDIRECT.into()).await.unwrap();
    let http = devlogin::client().unwrap();
    let page = http
        .get(&request.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    for field in [
        r#"name="request_id""#,
        r#"name="username""#,
        r#"name="password""#,
        r#"name="action""#,
    ] {
        assert!(page.contains(field), "{field}");
    }
    // The device page shows a code from its URL: escaped, never markup.
    let device = http
        .get(format!(
            "{}/idp/device?user_code=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
            srv.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!device.contains("<script>"), "{device}");
    assert!(device.contains("&lt;script&gt;"));
}

/// A login page that cannot be shown (no browser on the device).
struct BrokenUi;

#[async_trait::async_trait]
impl syncvault::AuthorizationUi for BrokenUi {
    fn redirect_uri(&self) -> String {
        REDIRECT.into()
    }
    async fn authorize(&self, _url: String) -> Result<String, SyncError> {
        Err(SyncError::Internal {
            reason: "no browser".into(),
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_login_page_is_the_uis_failure_and_a_retry_works() {
    let srv = server(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path(), &srv.url, UserMode::Oauth).await;
    c.set_authorization_ui(Arc::new(BrokenUi));
    let err = common::org::sync(&c).await.unwrap_err();
    assert!(
        matches!(err, SyncError::AuthorizationUiFailed { .. }),
        "{err:?}"
    );
    // The next Synchronize with a working page simply signs in.
    c.set_authorization_ui(Arc::new(DevUi {
        user: "ada@contoso.example",
        cancel: false,
    }));
    assert_eq!(
        common::org::sync(&c).await.unwrap().records_downloaded,
        1000
    );
}
