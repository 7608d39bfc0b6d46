//! How the harness shows the login page: three implementations of the core's sign-in UI traits,
//! so `sync` calls `synchronize()` and takes the core's own sign-in and re-sign-in paths.
//!
//! - [`LoopbackBrowser`]: prints `{"authorization_url": ...}` (and opens a browser without
//!   `--json`), then waits for the callback on a 127.0.0.1 listener (RFC 8252).
//! - [`DevLogin`]: fills in the reference server's development login form as the given user
//!   (`--dev-login`): what a person would type, without a browser.
//! - [`DeviceCodeScreen`]: prints `{"device_code": {...}}` for a sign-in on another device.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use syncvault::auth::DeviceAuthorization;
use syncvault::auth::loopback::LoopbackRedirect;
use syncvault::{AuthorizationUi, DeviceCodeUi, SyncError};
use syncvault_testkit::devlogin;

use crate::output::Output;

/// How long the harness waits for a person at the login page.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);

fn ui_error(reason: impl Into<String>) -> SyncError {
    SyncError::AuthorizationUiFailed {
        reason: reason.into(),
    }
}

/// A fresh loopback listener per sign-in: `redirect_uri` binds it, `authorize` waits on it.
#[derive(Default)]
struct Listener(Mutex<Option<LoopbackRedirect>>);

impl Listener {
    fn bind(&self) -> String {
        match LoopbackRedirect::bind_now() {
            Ok(redirect) => {
                let uri = redirect.redirect_uri();
                *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(redirect);
                uri
            }
            // `authorize` reports the failure; the provider would refuse an empty URI anyway.
            Err(_) => String::new(),
        }
    }

    fn take(&self) -> Result<LoopbackRedirect, SyncError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| ui_error("no loopback listener is bound"))
    }
}

/// The system browser and a loopback redirect.
pub struct LoopbackBrowser {
    pub out: Output,
    listener: Listener,
}

impl LoopbackBrowser {
    pub fn new(out: Output) -> Self {
        LoopbackBrowser {
            out,
            listener: Listener::default(),
        }
    }
}

#[async_trait]
impl AuthorizationUi for LoopbackBrowser {
    fn redirect_uri(&self) -> String {
        self.listener.bind()
    }

    async fn authorize(&self, url: String) -> Result<String, SyncError> {
        let redirect = self.listener.take()?;
        self.out.result(
            &json!({"authorization_url": url}),
            &format!("Sign in at:\n  {url}\n(waiting for the browser to return)"),
        );
        if !self.out.json {
            let _ = std::process::Command::new("xdg-open").arg(&url).spawn();
        }
        redirect.wait(LOGIN_TIMEOUT).await.map_err(|e| match e {
            syncvault::auth::AuthError::Cancelled => SyncError::SignInCancelled,
            other => ui_error(other.to_string()),
        })
    }
}

/// The development provider's login form, filled in as `user`.
pub struct DevLogin {
    pub user: String,
    pub password: String,
    listener: Listener,
}

impl DevLogin {
    pub fn new(user: String, password: String) -> Self {
        DevLogin {
            user,
            password,
            listener: Listener::default(),
        }
    }
}

#[async_trait]
impl AuthorizationUi for DevLogin {
    fn redirect_uri(&self) -> String {
        self.listener.bind()
    }

    async fn authorize(&self, url: String) -> Result<String, SyncError> {
        // The form's answer names the callback; the listener only reserves the port.
        let _reserved = self.listener.take()?;
        devlogin::login(&url, &self.user, &self.password, false)
            .await
            .map_err(|e| ui_error(e.to_string()))
    }
}

/// A device-code sign-in: the code is printed for a person on another device.
pub struct DeviceCodeScreen {
    pub out: Output,
}

#[async_trait]
impl DeviceCodeUi for DeviceCodeScreen {
    async fn show_code(&self, code: DeviceAuthorization) -> Result<(), SyncError> {
        self.out.result(
            &json!({"device_code": {
                "verification_uri": code.verification_uri,
                "user_code": code.user_code,
                "expires_in": code.expires_in,
            }}),
            &format!(
                "Go to {} and enter the code {}",
                code.verification_uri, code.user_code
            ),
        );
        Ok(())
    }
}
