//! The command line: docs/harness.md is its contract. Extend it; never break it.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// syncvault — the desktop sync test harness.
#[derive(Debug, Parser)]
#[command(name = "syncvault", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The account's vault directory (default `syncvault-data`; `demo` picks a fresh one).
    #[arg(long, global = true)]
    pub dir: Option<String>,
    /// Machine output: results on stdout, errors as JSON on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Read passwords one per line from stdin instead of prompting on the TTY.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// A directory standing in for the platform key store (Keychain / Android Keystore): with
    /// it, commands unlock through biometric unlock when it is enabled instead of a password.
    #[arg(long, global = true, value_name = "DIR")]
    pub key_dir: Option<String>,
}

impl GlobalArgs {
    /// The vault directory in use.
    pub fn dir(&self) -> &str {
        self.dir.as_deref().unwrap_or("syncvault-data")
    }

    /// The file-backed key store of `--key-dir`, if given.
    pub fn key_store(&self) -> Option<std::sync::Arc<crate::key_store::FileKeyStore>> {
        self.key_dir
            .as_ref()
            .map(|dir| std::sync::Arc::new(crate::key_store::FileKeyStore { dir: dir.into() }))
    }
}

/// How conflicts are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictMode {
    ServerWins,
    ClientWins,
    MergeFields,
    Manual,
}

/// How the person signs in to the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserMode {
    Oauth,
    Credentials,
}

/// Which identity provider the reference server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    Builtin,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the vault: organization URL, user mode, offline password twice (no network).
    Setup {
        #[arg(long)]
        org: String,
        #[arg(long, value_enum)]
        user_mode: UserMode,
    },
    /// Unlock, sign in if needed, and synchronize.
    Sync {
        /// Sign in with the device code flow (headless).
        #[arg(long, conflicts_with_all = ["dev_login", "username"])]
        device_code: bool,
        /// Sign in as USER on the built-in development provider's login page.
        #[arg(long, value_name = "USER", conflicts_with = "username")]
        dev_login: Option<String>,
        /// Credentials user mode: the organization user name (its password is read from the TTY,
        /// or from stdin after the offline password with --password-stdin).
        #[arg(long, value_name = "NAME")]
        username: Option<String>,
        /// How conflicts with server changes are settled.
        #[arg(long, value_enum, default_value = "merge-fields")]
        conflict_mode: ConflictMode,
        /// Records per downloaded page.
        #[arg(long)]
        page_size: Option<u32>,
    },
    /// Print local records.
    Query {
        entity: String,
        #[arg(long)]
        id: Option<String>,
        /// FIELD=VALUE filters, all of which must match.
        #[arg(long = "where", value_name = "FIELD=VALUE")]
        filters: Vec<String>,
        /// Full-text search over text fields.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Queue a local change in the outbox.
    Edit {
        /// Create a new record of ENTITY (prints its id).
        #[arg(long = "new", conflicts_with = "delete")]
        new: bool,
        /// Delete record ID of ENTITY.
        #[arg(long)]
        delete: bool,
        /// ENTITY [ID] [FIELD=VALUE...]
        #[arg(required = true, num_args = 1..)]
        args: Vec<String>,
    },
    /// Attach FILE to record ID of ENTITY (queued for the next sync; prints the attachment's id).
    Attach {
        entity: String,
        id: String,
        file: std::path::PathBuf,
        /// The attachment's name (default: the file's name).
        #[arg(long)]
        name: Option<String>,
        /// Its MIME type (default: guessed from the extension).
        #[arg(long)]
        mime: Option<String>,
    },
    /// List the attachments of record ID of ENTITY, with their state.
    Attachments { entity: String, id: String },
    /// Write attachment ID's content to --out FILE, downloading it first when it is not here.
    GetAttachment {
        id: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// List the records with local edits waiting to go up.
    Pending,
    /// List the changes the server refused (kept with your values), or retry / discard one.
    Errors {
        #[command(subcommand)]
        action: Option<ErrorsAction>,
    },
    /// Print ENTITY's record count and sync states now and after every change, for --seconds
    /// or until Ctrl-C.
    Watch {
        entity: String,
        /// Full-text search over text fields.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Show whether the account is configured and locked, its organization, pending changes, last sync.
    Status,
    /// Change the offline password (old, new, confirmation).
    ChangePassword,
    /// Turn on biometric unlock with the `--key-dir` key store (offline password on stdin).
    EnablePlatformUnlock,
    /// Turn off biometric unlock and delete its key from the `--key-dir` key store.
    DisablePlatformUnlock,
    /// Sign out: revoke the refresh token and forget the tokens (the next sync shows the login
    /// page); with --wipe, erase the offline data too.
    SignOut {
        /// Also crypto-erase the vault (unsent edits are lost).
        #[arg(long)]
        wipe: bool,
    },
    /// Crypto-erase and delete the vault.
    Wipe {
        /// Confirm: unsent edits are lost.
        #[arg(long)]
        yes: bool,
    },
    /// Run the reference organization server.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        #[arg(long)]
        data: Option<String>,
        #[arg(long, default_value_t = 1000)]
        records: u64,
        #[arg(long, value_enum, conflicts_with = "issuer")]
        provider: Option<Provider>,
        /// Trust an external OpenID Connect issuer.
        #[arg(long, requires = "audience")]
        issuer: Option<String>,
        #[arg(long)]
        audience: Option<String>,
        /// Fault injection into the sync API: KIND:RATE,... with KIND an HTTP status, delay,
        /// reset, truncate, slow, or all (e.g. "500:0.1,429:0.05,reset:0.05" or "all:0.15").
        #[arg(long)]
        faults: Option<String>,
        /// Extra CA certificate (PEM) trusted when fetching the external issuer's keys.
        #[arg(long, requires = "issuer")]
        ca_file: Option<String>,
        /// On first start, read the System Administrator's password from stdin (else a random
        /// one is printed once).
        #[arg(long)]
        admin_password_stdin: bool,
        /// The external provider's user directory for Import Users: a JSON file with
        /// users_url, token_url, client_id, client_secret and optional scope (docs/admin.md).
        #[arg(long, requires = "issuer")]
        directory: Option<String>,
        /// On first start, let a first sign-in whose email matches a user without a Domain Name
        /// become that user (the Organization page changes it later; the built-in provider has
        /// it on, an external one off).
        #[arg(long)]
        match_email: bool,
    },
    /// The organization's Admin Console API, for scripts (docs/admin.md).
    Admin(AdminArgs),
    /// The whole flow end to end on an embedded server.
    Demo {
        #[arg(long, default_value_t = 10_000)]
        records: u64,
    },
}

/// `syncvault errors retry|discard`.
#[derive(Debug, Subcommand)]
pub enum ErrorsAction {
    /// Send the change again with the next sync (fix the values first with `edit`).
    Retry { id: i64 },
    /// Drop the change: the server's version comes back (a record created offline goes).
    Discard { id: i64 },
}

/// `syncvault admin`: sign in, do one thing, sign out.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The organization URL (what `serve` printed).
    #[arg(long)]
    pub org: String,
    /// The administrator's email for a password sign-in (before the provider is connected).
    #[arg(long, default_value = "admin@contoso.example")]
    pub email: String,
    /// Sign in at the built-in provider as this administrator instead (once connected).
    #[arg(long, value_name = "EMAIL")]
    pub dev_login: Option<String>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// `syncvault admin schema ...`: fields are `name:type`, then `:ENTITY` for a reference, then the
/// flags `:searchable` (full-text, text fields) and `:sortable` (docs/admin.md, "Schema").
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Add an entity with its fields.
    AddEntity {
        name: String,
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
    },
    /// Add a field to an entity.
    AddField { entity: String, field: String },
    /// Retire a field: devices keep its values, it takes no new ones.
    RetireField { entity: String, field: String },
    /// Index a field on devices for lists ordered by it, or stop with --off.
    Sortable {
        entity: String,
        field: String,
        #[arg(long)]
        off: bool,
    },
    /// Set an entity's sync filter (JSON: {"any": [conditions]}), or clear it with --clear.
    Filter {
        entity: String,
        #[arg(required_unless_present = "clear")]
        filter: Option<String>,
        #[arg(long, conflicts_with = "filter")]
        clear: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Settings > Organization: the connection and the user modes.
    Organization,
    /// Connect the identity provider, signing in at the built-in provider as the account to
    /// associate.
    Connect {
        #[arg(long = "as", value_name = "EMAIL")]
        as_email: String,
    },
    /// Disconnect the identity provider (password sign-in works again).
    Disconnect,
    /// Import provider users (by email, or --all) with roles.
    ImportUsers {
        #[arg(long = "email")]
        emails: Vec<String>,
        #[arg(long, conflicts_with = "emails")]
        all: bool,
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List users (optionally matching --search).
    Users {
        #[arg(long, default_value = "")]
        search: String,
    },
    /// Set a user's Domain Name (a provider identity, or the provider user with that email)
    /// and roles.
    Assign {
        /// The user's email or id.
        user: String,
        #[arg(long, conflicts_with = "provider_email")]
        domain_name: Option<String>,
        #[arg(long)]
        provider_email: Option<String>,
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The business unit the user belongs to (what "business unit" privileges reach).
        #[arg(long)]
        unit: Option<String>,
    },
    /// Give records to a user: they move to that user's business unit, and devices follow.
    AssignRecords {
        entity: String,
        /// The new owner's email.
        #[arg(long)]
        owner: String,
        #[arg(long = "id", required = true)]
        ids: Vec<String>,
    },
    /// The organization's roles, or set one role's privilege on one entity.
    Role {
        /// The role to change (with --entity); without it, every role is listed.
        name: Option<String>,
        #[arg(long, requires = "name")]
        entity: Option<String>,
        /// Depths: none, own, unit or organization.
        #[arg(long, requires = "entity")]
        read: Option<String>,
        #[arg(long, requires = "entity")]
        create: Option<String>,
        #[arg(long, requires = "entity")]
        write: Option<String>,
        #[arg(long, requires = "entity")]
        delete: Option<String>,
    },
    /// The organization's schema, and changes to it (devices migrate at their next sync).
    Schema {
        #[command(subcommand)]
        command: Option<SchemaCommand>,
    },
    /// Disable a user (their sessions are revoked).
    Disable { user: String },
    /// Enable a user again.
    Enable { user: String },
    /// The attachment policy, or change parts of it (sizes in bytes).
    AttachmentPolicy {
        #[arg(long)]
        max_upload_bytes: Option<u64>,
        #[arg(long)]
        auto_download_max_bytes: Option<u64>,
        /// Entities whose attachments download automatically (repeat; none given: unchanged).
        #[arg(long = "auto-download-entity")]
        auto_download_entities: Vec<String>,
        /// Every entity's attachments download automatically again.
        #[arg(long, conflicts_with = "auto_download_entities")]
        all_entities: bool,
        #[arg(long)]
        device_quota_bytes: Option<u64>,
    },
    /// The devices that synchronized.
    Devices,
    /// Wipe a device at its next contact.
    WipeDevice { client_id: String },
    /// Sign a device out at its next contact.
    SignOutDevice { client_id: String },
    /// Make a device download everything again at its next contact.
    FullSyncDevice { client_id: String },
}
