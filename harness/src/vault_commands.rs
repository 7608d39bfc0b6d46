//! The commands that need only the vault (and, for sign-out, the provider): setup, status,
//! change-password, biometric unlock, sign-out, wipe.

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

/// Unlocks through the `--key-dir` key store when biometric unlock is enabled, else with the
/// offline password (required, or optional for `status`).
pub async fn unlock(
    client: &SyncClient,
    global: &GlobalArgs,
    password_required: bool,
) -> Result<(), HarnessError> {
    let mut passwords = Passwords::new(global.password_stdin);
    unlock_with(client, global, &mut passwords, password_required).await
}

/// As [`unlock`], reading from `passwords` (a command that needs a second password next).
pub async fn unlock_with(
    client: &SyncClient,
    global: &GlobalArgs,
    passwords: &mut Passwords,
    password_required: bool,
) -> Result<(), HarnessError> {
    if let Some(store) = global.key_store()
        && client.account_state().await?.platform_unlock_enabled
    {
        return Ok(client.unlock_with_platform_key(store).await?);
    }
    let password = if password_required {
        Some(passwords.next("Offline password")?)
    } else if global.password_stdin {
        passwords.next_optional("Offline password")?
    } else {
        None
    };
    if let Some(password) = password {
        client.unlock(password.to_vec()).await?;
    }
    Ok(())
}

fn required_key_store(
    global: &GlobalArgs,
) -> Result<std::sync::Arc<crate::key_store::FileKeyStore>, HarnessError> {
    global
        .key_store()
        .ok_or_else(|| HarnessError::Usage("this command needs --key-dir DIR".into()))
}

pub async fn enable_platform_unlock(global: &GlobalArgs, out: &Output) -> Result<(), HarnessError> {
    let store = required_key_store(global)?;
    let password = Passwords::new(global.password_stdin).next("Offline password")?;
    client(global)?
        .enable_platform_unlock(password.to_vec(), store)
        .await?;
    out.result(
        &json!({"platform_unlock_enabled": true}),
        "Biometric unlock enabled.",
    );
    Ok(())
}

pub async fn disable_platform_unlock(
    global: &GlobalArgs,
    out: &Output,
) -> Result<(), HarnessError> {
    let store = required_key_store(global)?;
    client(global)?.disable_platform_unlock(store).await?;
    out.result(
        &json!({"platform_unlock_enabled": false}),
        "Biometric unlock disabled.",
    );
    Ok(())
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
    unlock(&client, global, false).await?;
    let s = client.account_state().await?;
    let value = json!({
        "configured": s.configured,
        "locked": s.locked,
        "organization_url": s.organization_url,
        "user_mode": s.user_mode.map(user_mode_name),
        "pending_changes": s.pending_changes,
        "last_sync": s.last_sync,
        "failed_attempts": s.failed_attempts,
        "platform_unlock_enabled": s.platform_unlock_enabled,
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
            s.pending_changes.unwrap_or_default(),
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

pub async fn sign_out(global: &GlobalArgs, wipe: bool, out: &Output) -> Result<(), HarnessError> {
    let client = client(global)?;
    unlock(&client, global, true).await?;
    client.sign_out(wipe).await?;
    out.result(
        &json!({"signed_out": true, "wiped": wipe}),
        if wipe {
            "Signed out; offline data erased."
        } else {
            "Signed out; the next sync shows the login page."
        },
    );
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
