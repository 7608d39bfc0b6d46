//! Signing in at the reference server's development provider without a browser: what `syncvault
//! sync --dev-login` and the tests do in place of a person at the login page. It submits the same
//! form the page shows (fields `request_id`, `username`, `password`, `action`) and returns the
//! callback URL the browser would have been sent to. The provider's password is the caller's to
//! give (`syncvault_server::idp::DEV_PASSWORD`).

/// Why the headless login failed.
#[derive(Debug, thiserror::Error)]
pub enum DevLoginError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the provider answered unexpectedly: {0}")]
    Unexpected(String),
}

/// An HTTP client that does not follow redirects (the callback is read from `Location`), with
/// rustls on ring installed for the process when nothing else chose a provider.
pub fn client() -> Result<reqwest::Client, DevLoginError> {
    // reqwest is built without a default TLS provider: use ring unless the process chose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Opens `authorization_url`, submits `user` / `password`, and returns the redirect target: the
/// callback URL with `code`, `state` and `iss`. With `cancel`, presses Cancel instead.
pub async fn login(
    authorization_url: &str,
    user: &str,
    password: &str,
    cancel: bool,
) -> Result<String, DevLoginError> {
    let http = client()?;
    let page = http.get(authorization_url).send().await?;
    if !page.status().is_success() {
        return Err(DevLoginError::Unexpected(format!(
            "login page: HTTP {}",
            page.status()
        )));
    }
    let html = page.text().await?;
    let request_id = html
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| DevLoginError::Unexpected("no login form".into()))?
        .to_string();
    let form_action = authorization_url
        .split('?')
        .next()
        .unwrap_or(authorization_url);
    let answer = http
        .post(form_action)
        .form(&[
            ("request_id", request_id.as_str()),
            ("username", user),
            ("password", password),
            ("action", if cancel { "cancel" } else { "login" }),
        ])
        .send()
        .await?;
    match answer.headers().get(reqwest::header::LOCATION) {
        Some(location) if answer.status().is_redirection() => Ok(location
            .to_str()
            .map_err(|e| DevLoginError::Unexpected(e.to_string()))?
            .to_string()),
        _ => Err(DevLoginError::Unexpected(format!(
            "login answered HTTP {} without a redirect (wrong password?)",
            answer.status()
        ))),
    }
}

/// Approves a device-code sign-in at the provider's verification page.
pub async fn approve_device(
    verification_uri: &str,
    user_code: &str,
    user: &str,
    password: &str,
) -> Result<(), DevLoginError> {
    let r = client()?
        .post(verification_uri)
        .form(&[
            ("user_code", user_code),
            ("username", user),
            ("password", password),
            ("action", "approve"),
        ])
        .send()
        .await?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(DevLoginError::Unexpected(format!(
            "device approval: HTTP {}",
            r.status()
        )))
    }
}
