//! `serve` (the reference organization server) and `sync` (unlock, sign in if needed, then
//! synchronize).

use std::time::Duration;

use serde_json::json;
use syncvault::auth::loopback::LoopbackRedirect;
use syncvault::{
    CancelHandle, ClientOptions, ConflictMode, SyncClient, SyncError, SyncReport, UserMode,
};
use syncvault_server::faults::FaultSpec;
use syncvault_server::{BoundServer, ProviderConfig, ServerConfig, devlogin};

use std::sync::Arc;

use crate::cli::{ConflictMode as CliConflictMode, GlobalArgs, Provider};
use crate::output::{HarnessError, Output};
use crate::report::{ProgressBar, report_json, report_text};
use crate::vault_commands::client_with;

/// Options of `serve` that shape the organization.
pub struct ServeArgs {
    pub addr: String,
    pub data: Option<String>,
    pub records: u64,
    pub faults: Option<String>,
    pub provider: Option<Provider>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub ca_file: Option<String>,
}

pub async fn serve(args: ServeArgs, out: &Output) -> Result<(), HarnessError> {
    let provider = match (args.provider, args.issuer) {
        (_, Some(issuer)) => ProviderConfig::External {
            issuer,
            audience: args
                .audience
                .ok_or_else(|| HarnessError::Usage("--issuer needs --audience".into()))?,
        },
        (Some(Provider::Builtin) | None, None) => ProviderConfig::Builtin,
    };
    let extra_ca_pem = args.ca_file.map(std::fs::read).transpose()?;
    let faults = FaultSpec::parse(args.faults.as_deref().unwrap_or(""))
        .map_err(|e| HarnessError::Usage(format!("--faults: {e}")))?;
    let bound = BoundServer::bind(&args.addr)
        .await
        .map_err(|e| HarnessError::Usage(e.to_string()))?;
    let url = bound.url();
    out.result(
        &json!({"org_url": url}),
        &format!("organization server listening at {url}"),
    );
    bound
        .serve(ServerConfig {
            provider,
            extra_ca_pem,
            data_dir: args.data.map(Into::into),
            records: args.records,
            faults,
            ..Default::default()
        })
        .await
        .map_err(|e| HarnessError::Io(std::io::Error::other(e.to_string())))
}

/// How `sync` signs in when it has to.
pub enum SignIn {
    Browser,
    DeviceCode,
    DevLogin(String),
}

pub async fn sign_in(client: &SyncClient, how: &SignIn, out: &Output) -> Result<(), HarnessError> {
    let mode = client
        .account_state()
        .await?
        .user_mode
        .unwrap_or(UserMode::Oauth);
    if mode == UserMode::Credentials {
        let SignIn::DevLogin(login) = how else {
            return Err(HarnessError::Usage(
                "credentials user mode: pass --dev-login USER:PASS".into(),
            ));
        };
        let (user, pass) = login
            .split_once(':')
            .ok_or_else(|| HarnessError::Usage("--dev-login USER:PASS".into()))?;
        client
            .sign_in_with_credentials(user.into(), pass.as_bytes().to_vec())
            .await?;
        return Ok(());
    }
    match how {
        SignIn::DeviceCode => {
            let device = client.begin_device_sign_in().await?;
            out.result(
                &json!({"device_code": {
                    "verification_uri": device.verification_uri,
                    "user_code": device.user_code,
                    "expires_in": device.expires_in,
                }}),
                &format!(
                    "Go to {} and enter the code {}",
                    device.verification_uri, device.user_code
                ),
            );
            client.complete_device_sign_in().await?;
            Ok(())
        }
        SignIn::DevLogin(login) => {
            let (user, pass) = match login.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (login.as_str(), None),
            };
            let redirect = LoopbackRedirect::bind().await.map_err(SyncError::from)?;
            let request = client.begin_sign_in(redirect.redirect_uri()).await?;
            let callback = devlogin::login(&request.url, user, pass, false)
                .await
                .map_err(|e| SyncError::SignInRequired {
                    reason: e.to_string(),
                })?;
            client.complete_sign_in(callback).await?;
            Ok(())
        }
        SignIn::Browser => {
            let redirect = LoopbackRedirect::bind().await.map_err(SyncError::from)?;
            let request = client.begin_sign_in(redirect.redirect_uri()).await?;
            out.result(
                &json!({"authorization_url": request.url}),
                &format!(
                    "Sign in at:\n  {}\n(waiting for the browser to return)",
                    request.url
                ),
            );
            if !out.json {
                let _ = std::process::Command::new("xdg-open")
                    .arg(&request.url)
                    .spawn();
            }
            let callback = redirect
                .wait(Duration::from_secs(600))
                .await
                .map_err(SyncError::from)?;
            client.complete_sign_in(callback).await?;
            Ok(())
        }
    }
}

/// Options of `sync`.
pub struct SyncArgs {
    pub how: SignIn,
    pub conflict_mode: CliConflictMode,
    pub page_size: Option<u32>,
}

/// Maps the command line's conflict mode to the library's.
pub fn conflict_mode(mode: CliConflictMode) -> ConflictMode {
    match mode {
        CliConflictMode::ServerWins => ConflictMode::ServerWins,
        CliConflictMode::ClientWins => ConflictMode::ClientWins,
        CliConflictMode::MergeFields => ConflictMode::MergeFields,
        CliConflictMode::Manual => ConflictMode::Manual,
    }
}

/// Runs one Synchronize with a progress bar; Ctrl-C cancels it cleanly.
pub async fn synchronize(
    client: &Arc<SyncClient>,
    out: &Output,
) -> Result<SyncReport, HarnessError> {
    let bar = Arc::new(ProgressBar::new(!out.json));
    let cancel = CancelHandle::new();
    let run = Arc::clone(client).synchronize(bar, Some(Arc::clone(&cancel)));
    tokio::pin!(run);
    let report = tokio::select! {
        r = &mut run => r?,
        _ = tokio::signal::ctrl_c() => {
            cancel.cancel();
            run.await?
        }
    };
    Ok(report)
}

pub async fn sync(global: &GlobalArgs, args: SyncArgs, out: &Output) -> Result<(), HarnessError> {
    let options = ClientOptions {
        conflict_mode: Some(conflict_mode(args.conflict_mode)),
        sync_page_size: args.page_size,
        ..Default::default()
    };
    let client = client_with(global, options)?;
    crate::vault_commands::unlock(&client, global, true).await?;
    if !client.is_signed_in().await? {
        sign_in(&client, &args.how, out).await?;
    }
    let report = synchronize(&client, out).await?;
    out.result(&report_json(&report), &report_text(&report));
    Ok(())
}
