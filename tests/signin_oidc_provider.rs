//! Interop with a real OpenID Connect provider: npm `oidc-provider`, started by the test on
//! loopback over http and over https with a test CA the client trusts. The full code + PKCE flow
//! is logged in headlessly through the provider's interaction forms, and the device flow through
//! its user-code pages; refresh rotates (the old refresh token is rejected afterwards); the
//! reference server validates the provider's JWT access tokens against its JWKS; ID tokens with
//! the wrong audience, nonce or issuer are refused; no secret reaches a log line.

mod common;

use common::oidc_node::{Node, start_provider, walk_interactions};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use syncvault::auth::oidc::Provider;
use syncvault::net::Http;
use syncvault::{ClientOptions, SyncClient, SyncError, UserMode};
use syncvault_server::admin::identity::SignInPolicy;
use syncvault_server::{BoundServer, ProviderConfig, RunningServer, ServerConfig};

const REDIRECT: &str = "http://127.0.0.1:49152/callback";
const PW: &[u8] = b"offline password";

/// Logs in through oidc-provider's development interaction forms, returning the callback URL.
async fn headless_login(authorization_url: &str, email: &str, ca_pem: Option<&str>) -> String {
    let mut builder = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    let http = builder.build().unwrap();
    let callback = walk_interactions(&http, authorization_url, email, |url| {
        url.starts_with("http://127.0.0.1:49152/callback")
    })
    .await;
    assert!(
        callback.starts_with("http://127.0.0.1:49152/callback"),
        "the login did not reach the callback: {callback}"
    );
    callback
}

struct Setup {
    _node: Node,
    org: RunningServer,
    issuer: String,
    ca_pem: Option<String>,
}

async fn setup(access_ttl: u32, tls: bool) -> Setup {
    let tmp = tempfile::tempdir().unwrap().keep();
    let ca = tls.then(|| test_ca(&tmp));
    let bound = BoundServer::bind("127.0.0.1:0").await.unwrap();
    let org_url = bound.url();
    let node = start_provider(
        &org_url,
        access_ttl,
        ca.as_ref().map(|c| (&c.1, &c.2)),
        false,
    );
    let issuer = node.issuer.clone();
    let config = ServerConfig {
        provider: ProviderConfig::External {
            issuer: issuer.clone(),
            audience: org_url.clone(),
        },
        extra_ca_pem: ca.as_ref().map(|c| c.0.as_bytes().to_vec()),
        // The seeded users have no Domain Name: their first sign-in links them by email.
        sign_in_policy: Some(SignInPolicy {
            match_email: true,
            provision_unknown: false,
        }),
        ..Default::default()
    };
    let org = bound.spawn(config).unwrap();
    Setup {
        _node: node,
        org,
        issuer,
        ca_pem: ca.map(|c| c.0),
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it: (CA PEM, cert file, key file).
fn test_ca(dir: &std::path::Path) -> (String, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "syncvault test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let cert = dir.join("leaf.pem");
    let key = dir.join("leaf.key");
    std::fs::write(&cert, leaf_cert.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (ca_cert.pem(), cert, key)
}

fn client_options(ca_pem: Option<&str>) -> ClientOptions {
    ClientOptions {
        extra_root_certificates_pem: ca_pem.map(|c| vec![c.to_string()]).unwrap_or_default(),
        ..common::org::floor_kdf()
    }
}

async fn full_flow(tls: bool) {
    let s = setup(600, tls).await;
    let dir = tempfile::tempdir().unwrap();
    let c = SyncClient::with_options(
        dir.path().display().to_string(),
        client_options(s.ca_pem.as_deref()),
    )
    .unwrap();
    c.setup_offline_password(s.org.url.clone(), UserMode::Oauth, PW.to_vec(), PW.to_vec())
        .await
        .unwrap();
    let request = c.begin_sign_in(REDIRECT.into()).await.unwrap();
    assert!(request.url.starts_with(&s.issuer), "{}", request.url);
    assert!(request.url.contains("code_challenge_method=S256"));
    let callback = headless_login(&request.url, "ada@contoso.example", s.ca_pem.as_deref()).await;
    let user = c.complete_sign_in(callback).await.unwrap();
    assert_eq!(user.email.as_deref(), Some("ada@contoso.example"));
    // The reference server checks the provider's JWT against its JWKS and maps the email.
    let me = c.who_am_i().await.unwrap();
    assert_eq!(me.org_user_id.as_deref(), Some("u1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_over_http() {
    full_flow(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_over_https_with_a_test_ca() {
    full_flow(true).await;
}

/// The person's side of the device flow on oidc-provider's pages: enter the user code, confirm,
/// then the same login and consent forms as the code flow.
async fn approve_device(verification_uri: &str, user_code: &str, email: &str) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let field = |html: &str, name: &str| -> Option<String> {
        let at = html.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &html[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].to_string())
    };
    let page = http
        .get(verification_uri)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let xsrf = field(&page, "xsrf").expect("the user code form");
    let confirm = http
        .post(verification_uri)
        .form(&[("xsrf", xsrf.as_str()), ("user_code", user_code)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let xsrf = field(&confirm, "xsrf").expect("the confirmation form");
    let answer = http
        .post(verification_uri)
        .form(&[
            ("xsrf", xsrf.as_str()),
            ("user_code", user_code),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    let login = answer.headers().get("location").expect("to the login");
    let login = url::Url::parse(verification_uri)
        .unwrap()
        .join(login.to_str().unwrap())
        .unwrap();
    walk_interactions(&http, login.as_str(), email, |_| false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn device_flow_through_the_providers_pages() {
    let s = setup(600, false).await;
    let dir = tempfile::tempdir().unwrap();
    let c =
        SyncClient::with_options(dir.path().display().to_string(), client_options(None)).unwrap();
    c.setup_offline_password(s.org.url.clone(), UserMode::Oauth, PW.to_vec(), PW.to_vec())
        .await
        .unwrap();
    let device = c.begin_device_sign_in().await.unwrap();
    assert!(
        device.verification_uri.starts_with(&s.issuer),
        "{}",
        device.verification_uri
    );
    assert!(device.expires_in > 0);
    let person = tokio::spawn({
        let (uri, code) = (device.verification_uri.clone(), device.user_code.clone());
        async move { approve_device(&uri, &code, "ada@contoso.example").await }
    });
    let user = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        c.complete_device_sign_in(),
    )
    .await
    .expect("the device sign-in completes")
    .unwrap();
    person.await.unwrap();
    assert_eq!(user.email.as_deref(), Some("ada@contoso.example"));
    let me = c.who_am_i().await.unwrap();
    assert_eq!(me.org_user_id.as_deref(), Some("u1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_a_network_error() {
    let s = setup(600, true).await;
    let dir = tempfile::tempdir().unwrap();
    // No extra CA: the provider's certificate is not trusted.
    let c =
        SyncClient::with_options(dir.path().display().to_string(), client_options(None)).unwrap();
    c.setup_offline_password(s.org.url.clone(), UserMode::Oauth, PW.to_vec(), PW.to_vec())
        .await
        .unwrap();
    let err = c.begin_sign_in(REDIRECT.into()).await.unwrap_err();
    assert!(
        matches!(&err, SyncError::Network { reason } if reason.contains("secure connection")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_the_old_refresh_token_dies() {
    let s = setup(600, false).await;
    let http = Http::new(&[]).unwrap();
    let scopes = vec![
        "openid".to_string(),
        "email".to_string(),
        "offline_access".to_string(),
    ];
    let provider = Provider::discover(&http, &s.issuer, "syncvault-app", &scopes)
        .await
        .unwrap();
    let pending = provider.begin(REDIRECT).unwrap();
    let callback = headless_login(&pending.url, "grace@contoso.example", None).await;
    let first = provider.complete(&http, pending, &callback).await.unwrap();
    let old = first
        .refresh_token
        .clone()
        .expect("a refresh token (offline_access)");
    let second = provider.refresh(&http, &old).await.unwrap();
    let new = second.refresh_token.clone().unwrap();
    assert_ne!(new, old, "the provider rotates refresh tokens");
    assert_ne!(second.access_token, first.access_token);
    // Reusing the rotated token is refused, and (per oidc-provider) revokes its replacement.
    let reuse = provider.refresh(&http, &old).await.unwrap_err();
    assert!(
        matches!(reuse, syncvault::auth::AuthError::SignInRequired(_)),
        "{reuse:?}"
    );
    assert!(provider.refresh(&http, &new).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_discovery_and_callback_checks() {
    let s = setup(600, false).await;
    let http = Http::new(&[]).unwrap();
    let scopes = vec!["openid".to_string()];
    // Issuer mismatch: metadata from the real issuer, asked under another spelling.
    let wrong = format!("{}/", s.issuer);
    assert!(
        Provider::discover(&http, &wrong, "syncvault-app", &scopes)
            .await
            .is_err()
    );
    // An http issuer that is not loopback is refused before any request.
    assert!(
        Provider::discover(&http, "http://idp.example.com", "syncvault-app", &scopes)
            .await
            .is_err()
    );

    // An ID token for another client (wrong aud) is refused.
    let other_client = Provider::discover(&http, &s.issuer, "syncvault-app", &scopes)
        .await
        .unwrap();
    let pending = other_client.begin(REDIRECT).unwrap();
    let callback = headless_login(&pending.url, "ada@contoso.example", None).await;
    let wrong_aud = Provider::discover(&http, &s.issuer, "another-app", &scopes)
        .await
        .unwrap();
    // The token endpoint refuses a code issued to another client before any ID token is seen.
    assert!(wrong_aud.complete(&http, pending, &callback).await.is_err());

    // Error callback from the provider: access_denied is a cancellation.
    let provider = Provider::discover(&http, &s.issuer, "syncvault-app", &scopes)
        .await
        .unwrap();
    let pending = provider.begin(REDIRECT).unwrap();
    let state = url::Url::parse(&pending.url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let denied = format!(
        "{REDIRECT}?error=access_denied&state={state}&iss={}",
        s.issuer
    );
    assert!(matches!(
        provider.complete(&http, pending, &denied).await,
        Err(syncvault::auth::AuthError::Cancelled)
    ));

    // A missing iss is refused when the provider promised it (RFC 9207).
    let pending = provider.begin(REDIRECT).unwrap();
    let callback = headless_login(&pending.url, "ada@contoso.example", None).await;
    let stripped: String = {
        let u = url::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "iss")
            .collect();
        let mut v = u.clone();
        v.query_pairs_mut().clear().extend_pairs(pairs);
        v.to_string()
    };
    let r = provider.complete(&http, pending, &stripped).await;
    assert!(
        matches!(r, Err(syncvault::auth::AuthError::BadCallback(_))),
        "{r:?}"
    );
}

/// Captures every log line (all targets, TRACE) of a whole sign-in and refresh.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_log_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // Global: the work runs on syncvault's own runtime threads. Only this test sets it.
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test installs a subscriber");

    let s = setup(3, false).await; // 3 s tokens: expired (and refreshed) after the pause below
    let dir = tempfile::tempdir().unwrap();
    let c =
        SyncClient::with_options(dir.path().display().to_string(), client_options(None)).unwrap();
    c.setup_offline_password(s.org.url.clone(), UserMode::Oauth, PW.to_vec(), PW.to_vec())
        .await
        .unwrap();
    let request = c.begin_sign_in(REDIRECT.into()).await.unwrap();
    let callback = headless_login(&request.url, "ada@contoso.example", None).await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    c.complete_sign_in(callback.clone()).await.unwrap();
    c.who_am_i().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    c.who_am_i().await.unwrap();
    c.lock().await.unwrap();
    assert!(c.unlock(b"wrong password".to_vec()).await.is_err());
    c.unlock(PW.to_vec()).await.unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("signed in") && logs.contains("refreshed"),
        "the capture saw the flow:\n{logs}"
    );
    let mut secrets = vec![
        code.clone(),
        callback.clone(),
        String::from_utf8(PW.to_vec()).unwrap(),
        "wrong password".into(),
    ];
    // Every token the store holds now, and the state/verifier-bearing authorization URL.
    secrets.push(request.url.clone());
    for secret in secrets {
        assert!(
            !logs.contains(&secret),
            "a secret appeared in the logs: {}...",
            &secret[..secret.len().min(12)]
        );
    }
    // JWTs start with eyJ: no token of any kind may be logged.
    assert!(!logs.contains("eyJ"), "a JWT appeared in the logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_over_https() {
    let s = setup(600, true).await;
    let ca = s.ca_pem.clone().unwrap();
    let http = Http::new(std::slice::from_ref(&ca)).unwrap();
    let scopes = vec![
        "openid".to_string(),
        "email".to_string(),
        "offline_access".to_string(),
    ];
    let provider = Provider::discover(&http, &s.issuer, "syncvault-app", &scopes)
        .await
        .unwrap();
    let pending = provider.begin(REDIRECT).unwrap();
    let callback = headless_login(&pending.url, "ada@contoso.example", Some(&ca)).await;
    let tokens = provider.complete(&http, pending, &callback).await.unwrap();
    let refresh = tokens.refresh_token.unwrap();
    provider.revoke(&http, &refresh).await.unwrap();
    let after = provider.refresh(&http, &refresh).await.unwrap_err();
    assert!(
        matches!(after, syncvault::auth::AuthError::SignInRequired(_)),
        "{after:?}"
    );
}
