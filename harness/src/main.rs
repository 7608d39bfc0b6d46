//! `syncvault`: the desktop sync test harness (docs/harness.md is its contract).

mod admin_commands;
mod attachment_commands;
mod cli;
mod data_commands;
mod demo;
mod key_store;
mod live_commands;
mod output;
mod passwords;
mod report;
mod signin_ui;
mod sync_commands;
mod vault_commands;

use clap::Parser;

use cli::{Cli, Command};
use output::{HarnessError, Output, print_error};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            // Usage errors keep clap's text for people, and the §8 JSON shape for scripts.
            let json_mode = std::env::args().any(|a| a == "--json");
            if json_mode {
                let message = err.kind().to_string();
                print_error(&HarnessError::Usage(message), true);
            } else {
                let _ = err.print();
            }
            std::process::exit(2);
        }
    };
    let json_mode = cli.global.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime must start");
    if let Err(err) = runtime.block_on(run(cli)) {
        print_error(&err, json_mode);
        std::process::exit(err.exit_code());
    }
}

async fn run(cli: Cli) -> Result<(), HarnessError> {
    let out = Output {
        json: cli.global.json,
    };
    let g = &cli.global;
    match cli.command {
        Command::Setup { org, user_mode } => vault_commands::setup(g, &org, user_mode, &out).await,
        Command::Sync {
            device_code,
            dev_login,
            username,
            conflict_mode,
            page_size,
        } => {
            let how = match (device_code, dev_login) {
                (true, _) => sync_commands::SignIn::DeviceCode,
                (false, Some(login)) => sync_commands::SignIn::DevLogin(login),
                (false, None) => sync_commands::SignIn::Browser,
            };
            let args = sync_commands::SyncArgs {
                how,
                username,
                conflict_mode,
                page_size,
            };
            sync_commands::sync(g, args, &out).await
        }
        Command::Query {
            entity,
            id,
            filters,
            search,
            limit,
        } => {
            let args = data_commands::QueryArgs {
                entity,
                id,
                filters,
                search,
                limit,
            };
            data_commands::query(g, args, &out).await
        }
        Command::Edit { new, delete, args } => {
            let edit = data_commands::Edit::parse(new, delete, args)?;
            data_commands::edit(g, edit, &out).await
        }
        Command::Attach {
            entity,
            id,
            file,
            name,
            mime,
        } => attachment_commands::attach(g, entity, id, file, name, mime, &out).await,
        Command::Attachments { entity, id } => attachment_commands::list(g, entity, id, &out).await,
        Command::GetAttachment { id, out: file } => {
            attachment_commands::get(g, id, file, &out).await
        }
        Command::Pending => live_commands::pending(g, &out).await,
        Command::Errors { action } => live_commands::errors(g, action, &out).await,
        Command::Watch {
            entity,
            search,
            seconds,
        } => live_commands::watch(g, entity, search, seconds, &out).await,
        Command::Status => vault_commands::status(g, &out).await,
        Command::ChangePassword => vault_commands::change_password(g, &out).await,
        Command::Wipe { yes } => vault_commands::wipe(g, yes, &out).await,
        Command::SignOut { wipe } => vault_commands::sign_out(g, wipe, &out).await,
        Command::EnablePlatformUnlock => vault_commands::enable_platform_unlock(g, &out).await,
        Command::DisablePlatformUnlock => vault_commands::disable_platform_unlock(g, &out).await,
        Command::Serve {
            addr,
            data,
            records,
            provider,
            issuer,
            audience,
            faults,
            ca_file,
            admin_password_stdin,
            directory,
            match_email,
        } => {
            let args = sync_commands::ServeArgs {
                directory,
                match_email,
                admin_password_stdin,
                addr,
                data,
                records,
                faults,
                provider,
                issuer,
                audience,
                ca_file,
            };
            sync_commands::serve(args, &out).await
        }
        Command::Admin(args) => admin_commands::run(g, args, &out).await,
        Command::Demo { records } => demo::run(g, records, &out).await,
    }
}
