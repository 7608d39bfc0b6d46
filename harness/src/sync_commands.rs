//! `serve` (the reference organization server) and `sync` (unlock, then synchronize: the core
//! signs in through the harness's sign-in UI when it must).

use std::sync::Arc;

use serde_json::json;
use syncvault::{CancelHandle, ClientOptions, ConflictMode, SyncClient, SyncReport, UserMode};
use syncvault_server::admin::directory::DirectorySource;
use syncvault_server::admin::identity::SignInPolicy;
use syncvault_server::faults::FaultSpec;
use syncvault_server::idp::DEV_PASSWORD;
use syncvault_server::{BoundServer, ProviderConfig, ServerConfig};

use crate::cli::{ConflictMode as CliConflictMode, GlobalArgs, Provider};
use crate::output::{HarnessError, Output};
use crate::passwords::Passwords;
use crate::report::{ProgressBar, report_json, report_text};
use crate::signin_ui::{DevLogin, DeviceCodeScreen, LoopbackBrowser};
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
    /// Read the first System Administrator password from stdin.
    pub admin_password_stdin: bool,
    /// A JSON file describing the external provider's user directory.
    pub directory: Option<String>,
    /// Email matching at a first sign-in on (first start only).
    pub match_email: bool,
}

/// The server's logs on stderr, at the level `SYNCVAULT_LOG` names (`error`, `warn`: the default,
/// `info`: one line per request, `debug`), as JSON lines under `--json` (docs/deploy.md, "Logs").
fn init_server_logs(json: bool) {
    let level = std::env::var("SYNCVAULT_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false);
    // A subscriber set earlier (none today) keeps its place.
    let _ = if json {
        logs.json().try_init()
    } else {
        logs.try_init()
    };
}

pub async fn serve(args: ServeArgs, out: &Output) -> Result<(), HarnessError> {
    init_server_logs(out.json);
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
    let directory = args
        .directory
        .map(|path| -> Result<DirectorySource, HarnessError> {
            serde_json::from_slice(&std::fs::read(&path)?)
                // Position only: serde's message can quote a value, and one is a secret.
                .map_err(|e| {
                    HarnessError::Usage(format!(
                        "--directory {path}: not a directory description at line {} column {} \
                         (fields: users_url, token_url, client_id, client_secret, scope)",
                        e.line(),
                        e.column()
                    ))
                })
        })
        .transpose()?;
    let faults = FaultSpec::parse(args.faults.as_deref().unwrap_or(""))
        .map_err(|e| HarnessError::Usage(format!("--faults: {e}")))?;
    let admin_password = if args.admin_password_stdin {
        Some(
            Passwords::new(true)
                .next("System Administrator password")
                .map(|p| String::from_utf8_lossy(&p).into_owned())?,
        )
    } else {
        None
    };
    let bound = BoundServer::bind(&args.addr)
        .await
        .map_err(|e| HarnessError::Usage(e.to_string()))?;
    let url = bound.url();
    let config = ServerConfig {
        provider,
        extra_ca_pem,
        data_dir: args.data.map(Into::into),
        records: args.records,
        faults,
        admin_password,
        directory,
        sign_in_policy: args.match_email.then_some(SignInPolicy {
            match_email: true,
            provision_unknown: false,
        }),
        ..Default::default()
    };
    bound
        .serve(config, |org| {
            let mut line = json!({"org_url": url, "admin_url": format!("{url}/admin")});
            let mut text =
                format!("organization server listening at {url} (Admin Console: {url}/admin)");
            // Shown once: the first start made the administrator's password up.
            if let Some(p) = &org.first_admin_password {
                line["admin_email"] = json!(syncvault_server::admin::store::ADMIN_EMAIL);
                line["admin_password"] = json!(p);
                text.push_str(&format!(
                    "\nSystem Administrator: {} / {p} (shown once)",
                    syncvault_server::admin::store::ADMIN_EMAIL
                ));
            }
            out.result(&line, &text);
        })
        .await
        .map_err(|e| HarnessError::Io(std::io::Error::other(e.to_string())))
}

/// How `sync` signs in when it has to (OAuth user mode).
pub enum SignIn {
    Browser,
    DeviceCode,
    /// The development provider's form, filled in as this user.
    DevLogin(String),
}

/// Gives the client the sign-in UI `how` asks for; `synchronize()` uses it when it must sign in
/// (and again when the refresh token dies).
pub fn install_sign_in_ui(client: &SyncClient, how: &SignIn, out: &Output) {
    match how {
        SignIn::Browser => client.set_authorization_ui(Arc::new(LoopbackBrowser::new(*out))),
        SignIn::DevLogin(user) => client.set_authorization_ui(Arc::new(DevLogin::new(
            user.clone(),
            DEV_PASSWORD.to_string(),
        ))),
        SignIn::DeviceCode => client.set_device_code_ui(Arc::new(DeviceCodeScreen { out: *out })),
    }
}

/// Credentials user mode: the organization's user name from `--username`, its password from the
/// TTY or the next line of stdin (never the command line).
async fn sign_in_with_credentials(
    client: &SyncClient,
    username: Option<&str>,
    passwords: &mut Passwords,
) -> Result<(), HarnessError> {
    let username = username
        .ok_or_else(|| HarnessError::Usage("credentials user mode: pass --username NAME".into()))?;
    let password = passwords.next("Organization password")?;
    client
        .sign_in_with_credentials(username.to_string(), password.to_vec())
        .await?;
    Ok(())
}

/// This machine's name, for the organization's device list.
fn device_name() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

/// Options of `sync`.
pub struct SyncArgs {
    pub how: SignIn,
    /// Credentials user mode: the organization's user name.
    pub username: Option<String>,
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
        device_name: device_name(),
        app_version: Some(concat!("syncvault-harness ", env!("CARGO_PKG_VERSION")).into()),
        ..Default::default()
    };
    let client = client_with(global, options)?;
    let mut passwords = Passwords::new(global.password_stdin);
    crate::vault_commands::unlock_with(&client, global, &mut passwords, true).await?;
    let mode = client.account_state().await?.user_mode;
    match (mode, &args.how) {
        (Some(UserMode::Credentials), SignIn::Browser) => {
            if !client.is_signed_in().await? {
                sign_in_with_credentials(&client, args.username.as_deref(), &mut passwords).await?;
            }
        }
        (Some(UserMode::Credentials), _) => {
            return Err(HarnessError::Usage(
                "--dev-login and --device-code sign in with OAuth; this account uses credentials \
                 (--username NAME)"
                    .into(),
            ));
        }
        _ if args.username.is_some() => {
            return Err(HarnessError::Usage(
                "--username is for credentials user mode; this account uses OAuth".into(),
            ));
        }
        _ => install_sign_in_ui(&client, &args.how, out),
    }
    let report = synchronize(&client, out).await?;
    out.result(&report_json(&report), &report_text(&report));
    Ok(())
}
