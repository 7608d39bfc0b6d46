//! One simulated organization: the reference server in process, its devices (the real engine
//! over the real encrypted store, each in its own temporary directory) and the network between
//! them. Runs a plan's steps; what the people did is kept in a model the invariants read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use syncvault::account::{Account, UserMode};
use syncvault::auth::AuthError;
use syncvault::live::{self, WatchSpec};
use syncvault::store::{attachments, entities, meta, outbox};
use syncvault::sync::apply::CLIENT_ID_KEY;
use syncvault::sync::{
    CancelToken, ConflictMode, EngineError, SyncContext, SyncOptions, SyncReport, TokenSource,
    TransportError,
};
use syncvault::vault::{KdfParams, VaultConfig};
use syncvault_server::admin::store::{Depth, DeviceCommand, OrgUser, UserEdit};
use syncvault_server::sync::blobs::AttachmentPolicy;
use syncvault_server::{Org, ServerConfig};

use crate::faults::{self, Fault};
use crate::net::{DeviceLink, Network, Running};
use crate::plan::{Op, Plan};
use crate::trace::Trace;

/// The organization's host (never resolved: requests go through the router in process).
pub const ORG_HOST: &str = "sim.example";
/// The users devices sign in as: two Sales Managers (the whole organization) and Field
/// Technicians of two business units (their unit's accounts and contacts, their own
/// activities; they may not create contacts or edit accounts, so some edits are refused).
pub const USERS: [&str; 4] = [
    "ada@contoso.example",
    "grace@contoso.example",
    "tech-01-1@contoso.example",
    "tech-02-1@contoso.example",
];
/// The entities people edit, and the text fields they write.
pub const EDITABLE: [(&str, [&str; 2]); 3] = [
    ("account", ["name", "city"]),
    ("contact", ["full_name", "notes"]),
    ("activity", ["subject", "notes"]),
];
/// The records the invariants compare with the server's: the edited entities and attachments.
pub const COMPARED: [&str; 4] = ["account", "contact", "activity", "attachment"];
const PASSWORD: &[u8] = b"simulated offline password";
/// Attachments up to this size download with every Synchronize; larger ones on demand (the
/// organization's policy in a run with attachments).
pub const AUTO_DOWNLOAD_MAX: u64 = 32 << 10;
/// What the attachments' own random stream is seeded with beside the run's seed.
const ATTACHMENT_STREAM: u64 = 0xa77a_c400_0000_0001;

/// A failed invariant or an unexpected error: the run stops here.
#[derive(Debug)]
pub struct Failure(pub String);

pub type Step = Result<(), Failure>;

macro_rules! fail {
    ($($arg:tt)*) => { return Err(Failure(format!($($arg)*))) };
}
pub(crate) use fail;

/// A device's tokens: credentials-mode tokens the organization signs, until the provider
/// revokes them (then a sign-in is needed, which the next quiet point does).
pub struct Tokens {
    org: Arc<Org>,
    email: &'static str,
    revoked: Mutex<bool>,
}

#[async_trait]
impl TokenSource for Tokens {
    async fn access_token(&self, _rejected: Option<&str>) -> Result<String, AuthError> {
        if *self.revoked.lock().unwrap() {
            return Err(AuthError::SignInRequired("the refresh token was revoked"));
        }
        let user = self
            .org
            .store
            .user_by_email(self.email)
            .ok()
            .flatten()
            .ok_or(AuthError::SignInRequired("no such user"))?;
        Ok(self
            .org
            .verifier
            .issue_org_token(&user, Duration::from_secs(3600)))
    }
}

/// A watched query the app keeps on screen: every record of one entity. Its last delivery is
/// compared with a direct read at every quiet point (invariant 6).
pub struct Watch {
    pub entity: &'static str,
    /// The last delivery (None before the first).
    pub latest: Arc<Mutex<Option<Result<Records, String>>>>,
    cancel: CancelToken,
}

/// A device's records of one entity, by id.
pub type Records = BTreeMap<String, Map<String, Value>>;

impl Watch {
    /// Starts the watch on `account`'s change hub, as the mobile API's `watchQuery` does.
    fn start(account: &Account, entity: &'static str) -> Watch {
        let latest = Arc::new(Mutex::new(None));
        let cancel = CancelToken::default();
        let delivered = Arc::clone(&latest);
        live::spawn(
            Arc::clone(account.changes()),
            WatchSpec {
                tables: [format!("e_{entity}"), "entity_schema".to_string()].into(),
                read: Box::new(move |conn| conn.map(|c| records_of(c, entity))),
                deliver: Box::new(move |result| *delivered.lock().unwrap() = Some(result)),
                min_interval: Duration::from_millis(1),
            },
            cancel.clone(),
        );
        Watch {
            entity,
            latest,
            cancel,
        }
    }
}

impl Watch {
    /// Ends the watch: nothing is delivered after (the app left the screen).
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The records of `entity` in a store, by id (none before the first Synchronize).
fn records_of(c: &rusqlite::Connection, entity: &str) -> Result<Records, String> {
    match entities::query(c, entity, &entities::Query::default()) {
        Ok(rows) => Ok(rows.into_iter().map(|r| (r.id, r.fields)).collect()),
        Err(entities::EntityError::UnknownEntity(_)) => Ok(BTreeMap::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// One device.
pub struct Device {
    pub index: usize,
    /// The client id the device reports (fixed, so the run replays; a new one after a wipe).
    pub client_id: String,
    wipes: u32,
    pub email: &'static str,
    dir: tempfile::TempDir,
    pub account: Arc<Mutex<Account>>,
    tokens: Arc<Tokens>,
    link: Arc<DeviceLink>,
    options: SyncOptions,
    /// What the person wrote and the store accepted, per record and field, not yet proven to
    /// have reached the organization (the invariants check and clear it).
    pub intended: BTreeMap<(String, String), BTreeMap<String, Value>>,
    pub watch: Watch,
}

/// A new account: vault, store and organization, with the client id given.
fn set_up(dir: &std::path::Path, client_id: &str) -> Result<Account, Failure> {
    let mut account = Account::new(dir, vault_config());
    account
        .setup(
            &format!("https://{ORG_HOST}"),
            UserMode::Credentials,
            PASSWORD,
            PASSWORD,
        )
        .map_err(|e| Failure(format!("{client_id}: set-up failed: {e}")))?;
    let store = account.store().map_err(|e| Failure(e.to_string()))?;
    meta::set(store.conn(), CLIENT_ID_KEY, client_id).map_err(|e| Failure(e.to_string()))?;
    Ok(account)
}

fn vault_config() -> VaultConfig {
    VaultConfig {
        kdf: KdfParams::FLOOR,
        ..Default::default()
    }
}

impl Device {
    /// Runs `work` on the device's open store in one transaction.
    pub fn write<T, E>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>,
    ) -> Result<Result<T, E>, Failure> {
        let mut account = self.account.lock().unwrap();
        let store = account
            .store()
            .map_err(|e| Failure(format!("device {}: no store: {e}", self.index)))?;
        let conn = store.conn_mut();
        let tx = conn
            .transaction()
            .map_err(|e| Failure(format!("device {}: no transaction: {e}", self.index)))?;
        let result = work(&tx);
        if result.is_ok() {
            tx.commit()
                .map_err(|e| Failure(format!("device {}: commit failed: {e}", self.index)))?;
        }
        Ok(result)
    }

    /// Reads from the device's open store.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, String>,
    ) -> Result<T, Failure> {
        let mut account = self.account.lock().unwrap();
        let store = account
            .store()
            .map_err(|e| Failure(format!("device {}: no store: {e}", self.index)))?;
        work(store.conn()).map_err(|e| Failure(format!("device {}: {e}", self.index)))
    }

    fn context(&self, cancel: CancelToken) -> SyncContext {
        SyncContext {
            account: Arc::clone(&self.account),
            transport: self.link.clone(),
            tokens: self.tokens.clone(),
            options: self.options.clone(),
            progress: None,
            cancel,
        }
    }

    /// The records of `entity` on the device, by id.
    pub fn records(&self, entity: &str) -> Result<Records, Failure> {
        self.read(|c| records_of(c, entity))
    }

    /// Where the device keeps its sealed attachment files.
    pub fn files_dir(&self) -> Result<std::path::PathBuf, Failure> {
        attachments::files_dir(self.dir.path())
            .map_err(|e| Failure(format!("device {}: no attachment files: {e}", self.index)))
    }

    /// The account was opened again (a crash, a wipe): the app's watch starts on it again.
    fn rewatch(&mut self) {
        let entity = self.watch.entity;
        self.watch = Watch::start(&self.account.lock().unwrap(), entity);
    }
}

/// How a Synchronize ended, for the trace.
fn outcome(result: &Result<SyncReport, EngineError>) -> String {
    match result {
        Ok(r) => format!(
            "ok down={} removed={} up={} conflicts={} rejected={} errors={} pending={}",
            r.records_downloaded,
            r.records_removed,
            r.records_uploaded,
            r.conflicts,
            r.rejected,
            r.sync_errors,
            r.pending_changes
        ),
        Err(e) => format!("error {}", error_kind(e)),
    }
}

/// The error's case, without any text a server or id supplied.
fn error_kind(e: &EngineError) -> String {
    match e {
        EngineError::Transport(TransportError::Status { status, code, .. }) => {
            format!("status {status} {}", code.as_deref().unwrap_or("-"))
        }
        EngineError::Transport(t) => format!("transport {}", first_word(&format!("{t:?}"))),
        EngineError::Auth(a) => format!("auth {}", first_word(&format!("{a:?}"))),
        other => first_word(&format!("{other:?}")),
    }
}

fn first_word(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Whether an error is one the run's faults and the administrator may cause: anything else (a
/// protocol violation between our own client and server, a damaged store, a panic) is a defect.
fn expected(e: &EngineError) -> bool {
    match e {
        EngineError::Transport(TransportError::Retryable { .. } | TransportError::Unauthorized) => {
            true
        }
        EngineError::Transport(TransportError::Status { code, .. }) => {
            code.as_deref() == Some("user_disabled")
        }
        EngineError::Auth(AuthError::SignInRequired(_) | AuthError::NotAccepted) => true,
        EngineError::ServerBusy(_) | EngineError::SignedOutRemotely | EngineError::RemoteWiped => {
            true
        }
        _ => false,
    }
}

/// Whether a download failed because the photo is gone since the person saw it listed (the
/// Synchronize before removed it, or the server deleted it or took it out of the user's scope):
/// `NoSuchAttachment` on the device, the server's `404 not_found`.
fn gone(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Attachment(attachments::AttachmentError::NoSuchAttachment)
            | EngineError::Transport(TransportError::Status { status: 404, .. })
    )
}

/// The simulated organization.
pub struct World {
    pub org: Arc<Org>,
    router: Router,
    net: Arc<Network>,
    pub devices: Vec<Device>,
    /// The run's random stream for everything the plan leaves open.
    rng: ChaCha8Rng,
    pub trace: Trace,
    faults_on: bool,
    disabled: BTreeSet<&'static str>,
    /// Counters that make each written value unique (an edit's value names its writer).
    written: u64,
    fields_added: u32,
    /// What the run exercised (faults by kind, conflicts, refusals, crashes, errors by case),
    /// for the summary: a run that never met a case tested nothing of it.
    pub counts: BTreeMap<String, u64>,
    /// Whether people add photos to records and download them; their choices come from a
    /// stream of their own, so a run without attachments is the run seeds gave before them.
    attachments: bool,
    attach_rng: ChaCha8Rng,
}

impl World {
    /// The organization of `plan`, with its devices set up and signed in (nothing synced yet).
    pub fn new(seed: u64, plan: &Plan, echo: bool, attachments: bool) -> Result<World, Failure> {
        let (org, router) = syncvault_server::in_process(
            &format!("https://{ORG_HOST}"),
            ServerConfig {
                records: plan.records,
                ..Default::default()
            },
        )
        .map_err(|e| Failure(format!("the server does not start: {e}")))?;
        if attachments {
            org.data
                .set_attachment_policy(&AttachmentPolicy {
                    auto_download_max_bytes: AUTO_DOWNLOAD_MAX,
                    ..Default::default()
                })
                .map_err(|e| Failure(format!("the attachment policy: {e}")))?;
        }
        let net = Arc::new(Network::default());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut devices = Vec::new();
        for (index, &user) in plan.device_users.iter().enumerate() {
            let dir = tempfile::tempdir().map_err(|e| Failure(format!("no temp dir: {e}")))?;
            let client_id = format!("sim-device-{index}");
            let account = set_up(dir.path(), &client_id)?;
            let watch = Watch::start(&account, EDITABLE[index % EDITABLE.len()].0);
            let mode = match rng.random_range(0..3) {
                0 => ConflictMode::ServerWins,
                1 => ConflictMode::ClientWins,
                _ => ConflictMode::MergeFields,
            };
            devices.push(Device {
                index,
                client_id,
                wipes: 0,
                email: USERS[user],
                dir,
                account: Arc::new(Mutex::new(account)),
                tokens: Arc::new(Tokens {
                    org: Arc::clone(&org),
                    email: USERS[user],
                    revoked: Mutex::new(false),
                }),
                link: Arc::new(DeviceLink {
                    device: index,
                    net: Arc::clone(&net),
                }),
                options: SyncOptions {
                    conflict_mode: mode,
                    page_size: plan.page_size,
                    push_batch: plan.push_batch,
                    max_attempts: 4,
                    base_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    deadline: None,
                    device_name: Some(format!("Device {index}")),
                    ..Default::default()
                },
                intended: BTreeMap::new(),
                watch,
            });
        }
        let mut trace = Trace::new(echo);
        trace.line(format!(
            "org records={} page={} batch={} devices={}",
            plan.records,
            plan.page_size,
            plan.push_batch,
            devices
                .iter()
                .map(|d| format!("{}:{:?}", d.email, d.options.conflict_mode))
                .collect::<Vec<_>>()
                .join(",")
        ));
        Ok(World {
            org,
            router,
            net,
            devices,
            rng,
            trace,
            faults_on: true,
            disabled: BTreeSet::new(),
            written: 0,
            fields_added: 0,
            counts: BTreeMap::new(),
            attachments,
            attach_rng: ChaCha8Rng::seed_from_u64(seed ^ ATTACHMENT_STREAM),
        })
    }

    /// Runs one step.
    pub async fn step(&mut self, op: Op) -> Step {
        match op {
            Op::Create { device } => self.create(device),
            Op::Edit { device } => self.edit(device),
            Op::Delete { device } => self.delete(device),
            Op::Sync { devices } => {
                let chosen = (0..self.devices.len()).filter(|d| devices[*d]).collect();
                self.sync_round(chosen).await.map(|_| ())
            }
            Op::ServerEdit => self.server_edit(),
            Op::ServerDelete => self.server_delete(),
            Op::Assign => self.assign(),
            Op::AddField => self.add_field(),
            Op::DisableUser { device } => self.disable(device),
            Op::RevokeTokens { device } => {
                *self.devices[device].tokens.revoked.lock().unwrap() = true;
                self.trace.line(format!("revoke-tokens d{device}"));
                Ok(())
            }
            Op::ForceResync { device } => self.command(device, DeviceCommand::FullSync),
            Op::WipeDevice { device } => self.command(device, DeviceCommand::Wipe),
            Op::SignOutDevice { device } => self.command(device, DeviceCommand::SignOut),
            Op::ChangeRole => self.change_role(),
            Op::MoveUnit => self.move_unit(),
            Op::SetFilter => self.set_filter(),
            Op::Crash { device } => self.crash(device),
            Op::Quiet => self.quiet().await,
        }
    }

    fn count(&mut self, what: &str, n: u64) {
        if n > 0 {
            *self.counts.entry(what.to_string()).or_default() += n;
        }
    }

    fn next_value(&mut self, who: &str) -> String {
        self.written += 1;
        format!("{who}-{}", self.written)
    }

    /// A record id from the seed, shaped as the core's own (a random UUID).
    fn new_id(&mut self) -> String {
        uuid(&mut self.rng)
    }

    fn create(&mut self, d: usize) -> Step {
        let (entity, fields) = EDITABLE[self.rng.random_range(0..EDITABLE.len())];
        let id = self.new_id();
        let mut values = Map::new();
        for f in fields {
            values.insert(f.to_string(), json!(self.next_value(&format!("d{d}"))));
        }
        let device = &mut self.devices[d];
        let written = device.write(|c| outbox::create_with_id(c, entity, &id, values.clone()))?;
        match written {
            Ok(()) => {
                device
                    .intended
                    .insert((entity.into(), id.clone()), values.into_iter().collect());
                self.trace.line(format!("create d{d} {entity}"));
                self.maybe_attach(d, entity, &id)?;
            }
            Err(e) => self
                .trace
                .line(format!("create d{d} {entity}: refused {e}")),
        }
        Ok(())
    }

    /// Sometimes the person adds a photo to the record just written: the attachments' stream
    /// decides, and gives the photo's bytes and id.
    fn maybe_attach(&mut self, d: usize, entity: &str, record_id: &str) -> Step {
        if !self.attachments || !self.attach_rng.random_bool(0.3) {
            return Ok(());
        }
        let size = self.attach_rng.random_range(1..100_000usize);
        let mut content = vec![0u8; size];
        self.attach_rng.fill(&mut content[..]);
        let id = uuid(&mut self.attach_rng);
        let device = &self.devices[d];
        let dir = device.files_dir()?;
        let sealed = attachments::seal(&dir, &mut content.as_slice())
            .map_err(|e| Failure(format!("device {d}: sealing a photo failed: {e}")))?;
        let name = format!("photo-{}.jpg", short(&id));
        let created = device.write(|c| {
            attachments::create_with_id(c, &id, entity, record_id, &name, "image/jpeg", &sealed)
        })?;
        match created {
            Ok(()) => {
                self.count("attachments added", 1);
                self.trace.line(format!(
                    "attach d{d} {entity} {} photo {} of {size} bytes",
                    short(record_id),
                    short(&id)
                ));
            }
            Err(e) => {
                let _ = std::fs::remove_file(dir.join(&sealed.file));
                self.trace.line(format!("attach d{d}: refused {e}"));
            }
        }
        Ok(())
    }

    /// Sometimes the person opens a photo not on the device yet, after a Synchronize (faults
    /// on only, so quiet points stay as they were).
    fn pick_download(&mut self, d: usize) -> Result<Option<String>, Failure> {
        if !self.attachments || !self.faults_on || !self.attach_rng.random_bool(0.35) {
            return Ok(None);
        }
        let mut missing: Vec<String> = self.devices[d].read(|c| {
            attachments::missing(c)
                .map(|m| m.into_iter().map(|m| m.id).collect())
                .map_err(|e| e.to_string())
        })?;
        missing.sort();
        Ok((!missing.is_empty())
            .then(|| missing[self.attach_rng.random_range(0..missing.len())].clone()))
    }

    /// A record of `entity` on device `d`, picked by the seed (None: it has none).
    fn pick_local(&mut self, d: usize, entity: &str) -> Result<Option<String>, Failure> {
        let ids: Vec<String> = self.devices[d].records(entity)?.into_keys().collect();
        Ok((!ids.is_empty()).then(|| ids[self.rng.random_range(0..ids.len())].clone()))
    }

    fn edit(&mut self, d: usize) -> Step {
        let (entity, fields) = EDITABLE[self.rng.random_range(0..EDITABLE.len())];
        let Some(id) = self.pick_local(d, entity)? else {
            self.trace.line(format!("edit d{d} {entity}: none to edit"));
            return Ok(());
        };
        let mut values = Map::new();
        for f in fields {
            if self.rng.random_bool(0.6) || values.is_empty() {
                values.insert(f.to_string(), json!(self.next_value(&format!("d{d}"))));
            }
        }
        let device = &mut self.devices[d];
        match device.write(|c| outbox::update(c, entity, &id, values.clone()))? {
            Ok(()) => {
                let n = values.len();
                device
                    .intended
                    .entry((entity.into(), id.clone()))
                    .or_default()
                    .extend(values);
                self.trace
                    .line(format!("edit d{d} {entity} {} fields={n}", short(&id)));
                self.maybe_attach(d, entity, &id)?;
            }
            Err(e) => self.trace.line(format!("edit d{d} {entity}: refused {e}")),
        }
        Ok(())
    }

    fn delete(&mut self, d: usize) -> Step {
        let (entity, _) = EDITABLE[self.rng.random_range(0..EDITABLE.len())];
        let Some(id) = self.pick_local(d, entity)? else {
            self.trace
                .line(format!("delete d{d} {entity}: none to delete"));
            return Ok(());
        };
        let device = &mut self.devices[d];
        match device.write(|c| outbox::delete(c, entity, &id))? {
            Ok(()) => {
                // A deleted record's earlier edits need not reach anyone.
                device.intended.remove(&(entity.to_string(), id.clone()));
                self.trace
                    .line(format!("delete d{d} {entity} {}", short(&id)));
            }
            Err(e) => self
                .trace
                .line(format!("delete d{d} {entity}: refused {e}")),
        }
        Ok(())
    }

    /// A live record on the server (not an attachment), picked by the seed.
    fn pick_server(&mut self) -> Option<(String, String)> {
        let live: Vec<_> = self
            .org
            .data
            .live_records()
            .into_iter()
            .filter(|r| EDITABLE.iter().any(|(e, _)| *e == r.entity))
            .collect();
        if live.is_empty() {
            return None;
        }
        let r = &live[self.rng.random_range(0..live.len())];
        Some((r.entity.clone(), r.id.clone()))
    }

    fn server_edit(&mut self) -> Step {
        let Some((entity, id)) = self.pick_server() else {
            return Ok(());
        };
        let fields = EDITABLE.iter().find(|(e, _)| *e == entity).unwrap().1;
        let field = fields[self.rng.random_range(0..fields.len())];
        let value = self.next_value("server");
        let mut change = Map::new();
        change.insert(field.into(), json!(value));
        self.org.data.edit(&entity, &id, change);
        self.trace
            .line(format!("server-edit {entity} {} {field}", short(&id)));
        Ok(())
    }

    fn server_delete(&mut self) -> Step {
        let Some((entity, id)) = self.pick_server() else {
            return Ok(());
        };
        self.org.data.delete(&entity, &id);
        self.trace
            .line(format!("server-delete {entity} {}", short(&id)));
        Ok(())
    }

    fn assign(&mut self) -> Step {
        let Some((entity, id)) = self.pick_server() else {
            return Ok(());
        };
        let email = USERS[self.rng.random_range(0..USERS.len())];
        let user = self.user(email)?;
        let moved = self
            .org
            .data
            .assign(
                &entity,
                std::slice::from_ref(&id),
                &user.id,
                &user.business_unit,
            )
            .map_err(|e| Failure(format!("assign failed: {e}")))?;
        self.trace.line(format!(
            "assign {entity} {} to {email}: moved={moved}",
            short(&id)
        ));
        Ok(())
    }

    fn add_field(&mut self) -> Step {
        let (entity, _) = EDITABLE[self.rng.random_range(0..EDITABLE.len())];
        self.fields_added += 1;
        let name = format!("sim_extra_{}", self.fields_added);
        let field = serde_json::from_value(json!({"name": name, "type": "text"}))
            .map_err(|e| Failure(format!("field definition: {e}")))?;
        let answer = self.org.data.add_field(entity, field);
        self.trace.line(format!(
            "add-field {entity}.{name}: {}",
            if answer.is_ok() { "added" } else { "refused" }
        ));
        Ok(())
    }

    fn command(&mut self, d: usize, command: DeviceCommand) -> Step {
        let client = self.devices[d].client_id.clone();
        let answer = self.org.store.command_device(&client, command);
        self.trace.line(format!(
            "command d{d} {command:?}: {}",
            if answer.is_ok() {
                "queued"
            } else {
                "no such device yet"
            }
        ));
        Ok(())
    }

    fn change_role(&mut self) -> Step {
        let roles = self
            .org
            .store
            .roles()
            .map_err(|e| Failure(format!("roles: {e}")))?;
        let mut role = roles
            .into_iter()
            .find(|r| r.name == "Field Technician")
            .ok_or_else(|| Failure("no Field Technician role".into()))?;
        let k = self.rng.random_range(0..role.privileges.len());
        let depth = match self.rng.random_range(0..10) {
            0 => Depth::None,
            1..4 => Depth::Own,
            4..8 => Depth::Unit,
            _ => Depth::Organization,
        };
        let privilege = &mut role.privileges[k];
        privilege.read = depth;
        let entity = privilege.entity.clone();
        self.org
            .store
            .set_role(&role)
            .map_err(|e| Failure(format!("set_role: {e}")))?;
        self.trace
            .line(format!("role Field Technician reads {entity} at {depth:?}"));
        Ok(())
    }

    fn move_unit(&mut self) -> Step {
        let email = USERS[self.rng.random_range(2..USERS.len())];
        let office = syncvault_server::FIELD_OFFICES[self.rng.random_range(0..3)];
        let user = self.user(email)?;
        let unit = format!("{office} Field Office");
        self.org
            .store
            .update_user(
                &user.id,
                &UserEdit {
                    business_unit: Some(unit.clone()),
                    ..UserEdit::from(&user)
                },
            )
            .map_err(|e| Failure(format!("update_user: {e}")))?;
        self.trace.line(format!("move {email} to {unit}"));
        Ok(())
    }

    fn set_filter(&mut self) -> Step {
        let filter = match self.rng.random_range(0..3) {
            0 => None,
            1 => Some(json!({"any": [{"field": "done", "equals": false}]})),
            _ => Some(
                json!({"any": [{"field": "done", "equals": true}, {"field": "kind", "equals": "visit"}]}),
            ),
        };
        let shown = filter
            .as_ref()
            .map_or("none".to_string(), |f| f.to_string());
        let filter = filter
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| Failure(format!("filter: {e}")))?;
        let answer = self.org.data.set_filter("activity", filter);
        self.trace.line(format!(
            "activity filter {shown}: {}",
            if answer.is_ok() { "set" } else { "refused" }
        ));
        Ok(())
    }

    fn user(&self, email: &str) -> Result<OrgUser, Failure> {
        self.org
            .store
            .user_by_email(email)
            .ok()
            .flatten()
            .ok_or_else(|| Failure(format!("no user {email}")))
    }

    fn set_enabled(&self, email: &str, enabled: bool) -> Step {
        let user = self.user(email)?;
        self.org
            .store
            .update_user(
                &user.id,
                &UserEdit {
                    enabled,
                    ..UserEdit::from(&user)
                },
            )
            .map_err(|e| Failure(format!("update_user: {e}")))?;
        Ok(())
    }

    fn disable(&mut self, d: usize) -> Step {
        let email = self.devices[d].email;
        self.set_enabled(email, false)?;
        self.disabled.insert(email);
        self.trace.line(format!("disable {email}"));
        Ok(())
    }

    /// The organization wiped the device: the app erases the vault, as the mobile API does, and
    /// the person sets it up again (what it had not sent is gone, as the administrator asked).
    fn wiped(&mut self, d: usize) -> Step {
        let device = &mut self.devices[d];
        device.wipes += 1;
        device.client_id = format!("sim-device-{d}-w{}", device.wipes);
        device.intended.clear();
        let mut account = device.account.lock().unwrap();
        account
            .wipe_remotely()
            .map_err(|e| Failure(format!("device {d}: the remote wipe failed: {e}")))?;
        *account = set_up(device.dir.path(), &device.client_id)?;
        drop(account);
        device.rewatch();
        self.trace.line(format!("  d{d} wiped, set up again"));
        Ok(())
    }

    /// The app is killed: its account is dropped and opened again from the files.
    fn crash(&mut self, d: usize) -> Step {
        let device = &self.devices[d];
        // The old account's watch ends with it.
        device.watch.stop();
        let mut account = device.account.lock().unwrap();
        // The old account closes its store before the new one opens it.
        *account = Account::new(device.dir.path(), vault_config());
        account
            .unlock(PASSWORD)
            .map_err(|e| Failure(format!("device {d} does not unlock after a crash: {e}")))?;
        drop(account);
        self.devices[d].rewatch();
        self.trace.line(format!("crash d{d}"));
        Ok(())
    }

    /// Runs a Synchronize on each of `devices` at once, delivering their requests in the seed's
    /// order; returns each device's outcome.
    pub async fn sync_round(
        &mut self,
        devices: Vec<usize>,
    ) -> Result<BTreeMap<usize, Result<SyncReport, String>>, Failure> {
        let mut running = BTreeMap::new();
        for &d in &devices {
            self.net.started(d);
            let ctx = self.devices[d].context(CancelToken::default());
            let download = self.pick_download(d)?.map(|id| {
                self.trace
                    .line(format!("  d{d} then opens photo {}", short(&id)));
                (id, self.devices[d].context(CancelToken::default()))
            });
            let net = Arc::clone(&self.net);
            running.insert(
                d,
                tokio::spawn(async move {
                    let _running = Running { device: d, net };
                    let synced = syncvault::sync::run(ctx).await;
                    let downloaded = match download {
                        Some((id, ctx)) if synced.is_ok() => {
                            Some(syncvault::sync::download_attachment(ctx, id).await)
                        }
                        _ => None,
                    };
                    (synced, downloaded)
                }),
            );
        }
        self.trace.line(format!("sync {devices:?}"));
        let mut outcomes = BTreeMap::new();
        while !running.is_empty() {
            let waiting = self.net.quiescent().await;
            let done: Vec<usize> = running
                .keys()
                .copied()
                .filter(|d| !waiting.contains(d))
                .collect();
            for d in done {
                let (result, downloaded) = match running.remove(&d).unwrap().await {
                    Ok(result) => result,
                    Err(e) => fail!("device {d}'s Synchronize panicked: {e}"),
                };
                if let Some(downloaded) = downloaded {
                    self.trace
                        .line(format!("  d{d} download {}", outcome(&downloaded)));
                    match &downloaded {
                        Ok(_) => self.count("photos opened", 1),
                        Err(e) if expected(e) || gone(e) => {
                            self.count(&format!("download error {}", error_kind(e)), 1)
                        }
                        Err(e) => {
                            fail!(
                                "device {d}: unexpected download error {}: {e}",
                                error_kind(e)
                            )
                        }
                    }
                }
                self.trace.line(format!("  d{d} {}", outcome(&result)));
                match &result {
                    Ok(r) => {
                        self.count("synchronizes ok", 1);
                        self.count("conflicts", r.conflicts);
                        self.count("refused changes", r.rejected);
                        self.count("records leaving scopes", r.records_removed);
                    }
                    Err(e) => self.count(&format!("error {}", error_kind(e)), 1),
                }
                if let Err(e) = &result
                    && !expected(e)
                {
                    fail!("device {d}: unexpected error {}: {e}", error_kind(e));
                }
                match &result {
                    Err(EngineError::RemoteWiped) => self.wiped(d)?,
                    Err(EngineError::SignedOutRemotely) => {
                        *self.devices[d].tokens.revoked.lock().unwrap() = true;
                    }
                    _ => {}
                }
                outcomes.insert(d, result.map_err(|e| error_kind(&e)));
            }
            if waiting.is_empty() {
                continue;
            }
            // Mostly deliver; sometimes a person or another user acts, or a device crashes,
            // while the requests are in flight.
            match self.rng.random_range(0..100) {
                0..4 if self.faults_on => {
                    let d = self.rng.random_range(0..self.devices.len());
                    self.trace.line("  meanwhile:".into());
                    self.edit(d)?;
                }
                4..7 if self.faults_on => {
                    self.trace.line("  meanwhile:".into());
                    self.server_edit()?;
                }
                7..9 if self.faults_on => {
                    let d = waiting[self.rng.random_range(0..waiting.len())];
                    let handle = running.remove(&d).unwrap();
                    handle.abort();
                    let _ = handle.await;
                    // Half the time the server had already taken the request.
                    if let Some((request, _reply)) = self.net.take(d)
                        && self.rng.random_bool(0.5)
                    {
                        let _ = faults::deliver(&self.router, &request, Fault::LostAnswer).await;
                        self.trace
                            .line(format!("  d{d} {} delivered, then", request.call));
                    }
                    self.net.stopped(d);
                    self.trace.line(format!("  d{d} killed mid-sync"));
                    self.count("killed mid-sync", 1);
                    self.crash(d)?;
                }
                _ => {
                    let d = waiting[self.rng.random_range(0..waiting.len())];
                    let (request, reply) = self.net.take(d).expect("a waiting request");
                    let fault = if self.faults_on {
                        Fault::draw(&mut self.rng)
                    } else {
                        Fault::None
                    };
                    let (answer, status) = faults::deliver(&self.router, &request, fault).await;
                    self.count("requests", 1);
                    if fault != Fault::None {
                        let kind = fault.name();
                        self.count(kind.split('/').next().unwrap_or(&kind), 1);
                    }
                    self.trace.line(format!(
                        "  d{d} {} {} -> {status}",
                        request.call,
                        fault.name()
                    ));
                    let _ = reply.send(answer);
                }
            }
        }
        Ok(outcomes)
    }

    /// Faults off, everyone enabled and signed in, every device synchronized one at a time
    /// until a round moves nothing; then the invariants.
    async fn quiet(&mut self) -> Step {
        self.faults_on = false;
        for email in std::mem::take(&mut self.disabled) {
            self.set_enabled(email, true)?;
        }
        for d in &self.devices {
            *d.tokens.revoked.lock().unwrap() = false;
        }
        self.trace.line("quiet".into());
        let mut settled = false;
        for _round in 0..5 {
            let mut moved = false;
            for d in 0..self.devices.len() {
                let mut outcomes = self.sync_round(vec![d]).await?;
                if let Err(kind) = &outcomes[&d]
                    && (kind == "SignedOutRemotely" || kind == "RemoteWiped")
                {
                    // The administrator's command arrived: the person signs in (or sets the
                    // device up) again, and synchronizes.
                    *self.devices[d].tokens.revoked.lock().unwrap() = false;
                    outcomes = self.sync_round(vec![d]).await?;
                    moved = true;
                }
                match &outcomes[&d] {
                    Ok(r) => moved |= r.records_downloaded + r.records_uploaded + r.rejected > 0,
                    Err(kind) => {
                        fail!("device {d} does not synchronize with the faults off: {kind}")
                    }
                }
            }
            if !moved {
                settled = true;
                break;
            }
        }
        if !settled {
            fail!("the devices still move records after 5 quiet rounds");
        }
        crate::check::invariants(self)?;
        self.count("quiet points", 1);
        self.faults_on = true;
        Ok(())
    }
}

/// An id from a seeded stream, shaped as the core's own (a random UUID).
fn uuid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A record id's first 8 characters, for the trace.
fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}
