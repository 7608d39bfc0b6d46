//! The commands that need only the vault: setup, status, change-password, wipe.

use serde_json::json;
use syncvault::{ClientOptions, SyncClient, UserMode};

use crate::cli::{GlobalArgs, UserMode as CliUserMode};
use crate::output::{HarnessError, Output};
use crate::passwords::Passwords;

/// A client with explicit options (conflict mode, page size).
pub fn client_with(
    global: &GlobalArgs,
    options: ClientOptions,
) -> Result<std::sync::Arc<SyncClient>, HarnessError> {
    Ok(SyncClient::with_options(global.dir().to_string(), options)?)
}

pub fn client(global: &GlobalArgs) -> Result<std::sync::Arc<SyncClient>, HarnessError> {
    client_with(global, ClientOptions::default())
}

pub async fn setup(
    global: &GlobalArgs,
    org: &str,
    mode: CliUserMode,
    out: &Output,
) -> Result<(), HarnessError> {
    let client = client(global)?;
    // Check the URL before asking for passwords, as the app's form does.
    let url = syncvault::normalize_organization_url(org.to_string())?;
    let mut passwords = Passwords::new(global.password_stdin);
    if !global.password_stdin && !global.json {
        eprintln!("The offline password protects the data on this device. It cannot be recovered:");
        eprintln!("if you forget it, the data must be erased and synchronized again.");
    }
    let password = passwords.next("New offline password")?;
    let confirmation = passwords.next("Repeat the offline password")?;
    let user_mode = match mode {
        CliUserMode::Oauth => UserMode::Oauth,
        CliUserMode::Credentials => UserMode::Credentials,
    };
    client
        .setup_offline_password(
            url.clone(),
            user_mode,
            password.to_vec(),
            confirmation.to_vec(),
        )
        .await?;
    out.result(
        &json!({"configured": true, "organization_url": url, "user_mode": user_mode_name(user_mode)}),
        &format!("Set up {} for {url}.", global.dir()),
    );
    Ok(())
}

fn user_mode_name(mode: UserMode) -> &'static str {
    match mode {
        UserMode::Oauth => "oauth",
        UserMode::Credentials => "credentials",
    }
}

pub async fn status(global: &GlobalArgs, out: &Output) -> Result<(), HarnessError> {
    let client = client(global)?;
    if global.password_stdin {
        let mut passwords = Passwords::new(true);
        if let Some(password) = passwords.next_optional("Offline password")? {
            client.unlock(password.to_vec()).await?;
        }
    }
    let s = client.account_state().await?;
    let value = json!({
        "configured": s.configured,
        "locked": s.locked,
        "organization_url": s.organization_url,
        "user_mode": s.user_mode.map(user_mode_name),
        "pending_changes": s.pending_changes,
        "last_sync": s.last_sync,
        "failed_attempts": s.failed_attempts,
    });
    let text = if !s.configured {
        format!("{}: not set up", global.dir())
    } else if s.locked {
        format!(
            "{}: set up, locked ({} failed attempts)",
            global.dir(),
            s.failed_attempts
        )
    } else {
        format!(
            "{}: unlocked\norganization: {}\nuser mode: {}\npending changes: {}\nlast sync: {}",
            global.dir(),
            s.organization_url.as_deref().unwrap_or("?"),
            s.user_mode.map_or("?", user_mode_name),
            s.pending_changes,
            s.last_sync.map_or("never".to_string(), |t| t.to_string()),
        )
    };
    out.result(&value, &text);
    Ok(())
}

pub async fn change_password(global: &GlobalArgs, out: &Output) -> Result<(), HarnessError> {
    let client = client(global)?;
    let mut passwords = Passwords::new(global.password_stdin);
    let old = passwords.next("Current offline password")?;
    let new = passwords.next("New offline password")?;
    let confirmation = passwords.next("Repeat the new offline password")?;
    client
        .change_offline_password(old.to_vec(), new.to_vec(), confirmation.to_vec())
        .await?;
    out.result(&json!({"changed": true}), "Offline password changed.");
    Ok(())
}

pub async fn wipe(global: &GlobalArgs, yes: bool, out: &Output) -> Result<(), HarnessError> {
    if !yes {
        return Err(HarnessError::Usage(
            "wipe erases the offline data and unsent edits: pass --yes".into(),
        ));
    }
    client(global)?.wipe().await?;
    out.result(&json!({"wiped": true}), "Offline data erased.");
    Ok(())
}
