//! The organization's own state, in the server's SQLite (`DIR/admin.db`, or in memory): settings
//! (the connected identity provider and the directory), users (email, name, Domain Name = the
//! provider identity, roles, enabled, an Argon2id password hash for credentials mode), roles
//! (per-entity privileges with a depth, as Dynamics 365 has them), devices that synchronized and
//! the commands waiting for them, and the Admin Console's sessions. It survives restarts.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::identity::{self, Found, NotAMember, ProviderIdentity, Resolution, SignInPolicy};
use super::passwords;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the organization store failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
}

/// A user of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgUser {
    pub id: String,
    pub email: String,
    pub name: String,
    /// The provider identity associated with the user (issuer | tenant | object id, or issuer |
    /// subject): Dynamics' "Domain Name".
    pub domain_name: Option<String>,
    pub enabled: bool,
    pub roles: Vec<String>,
    /// The business unit the user belongs to: what a `Unit`-depth privilege reaches.
    pub business_unit: String,
}

/// The business unit users and records belong to until the administrator says otherwise.
pub const HEADQUARTERS: &str = "Headquarters";

/// The role the demonstration users Ada and Grace start with: organization-wide access, so a
/// fresh demo organization works.
pub const SALES_MANAGER: &str = "Sales Manager";

/// How deep a privilege reaches, as in Dynamics 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    None,
    /// Records the user owns.
    Own,
    /// Records of the user's business unit.
    Unit,
    /// Every record of the organization.
    Organization,
}

/// One entity's privileges in a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privilege {
    pub entity: String,
    pub read: Depth,
    pub create: Depth,
    pub write: Depth,
    pub delete: Depth,
}

/// A named set of privileges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub privileges: Vec<Privilege>,
}

/// The identity provider the organization is connected to (the seed's "Connect...").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderConnection {
    pub issuer: String,
    pub tenant: Option<String>,
    /// The provider identity of the administrator who connected it.
    pub admin_identity: String,
    pub admin_email: String,
    pub connected_at: i64,
}

/// What a device reports about itself with each Synchronize.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub app_version: Option<String>,
    #[serde(default)]
    pub records_held: Option<i64>,
    #[serde(default)]
    pub pending_edits: Option<i64>,
    /// The device's previous Synchronize: `ok`, `cancelled` or `failed: Kind`.
    #[serde(default)]
    pub last_result: Option<String>,
}

/// What the administrator asked a device to do at its next contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceCommand {
    /// Crypto-erase the vault.
    Wipe,
    /// Forget the tokens (the person signs in again).
    SignOut,
    /// Drop the cursor and download everything again, keeping unsent edits.
    FullSync,
}

impl DeviceCommand {
    fn as_str(self) -> &'static str {
        match self {
            DeviceCommand::Wipe => "wipe",
            DeviceCommand::SignOut => "sign_out",
            DeviceCommand::FullSync => "full_sync",
        }
    }

    fn parse(s: &str) -> Option<DeviceCommand> {
        match s {
            "wipe" => Some(DeviceCommand::Wipe),
            "sign_out" => Some(DeviceCommand::SignOut),
            "full_sync" => Some(DeviceCommand::FullSync),
            _ => None,
        }
    }
}

/// A device that synchronized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub client_id: String,
    pub user_id: String,
    pub user_email: String,
    pub report: DeviceReport,
    pub first_seen: i64,
    pub last_seen: i64,
    /// A command waiting for the device's next contact.
    pub pending_command: Option<DeviceCommand>,
    /// The last command delivered, and when.
    pub delivered_command: Option<DeviceCommand>,
    pub delivered_at: Option<i64>,
}

/// Why a signed-in provider user may not use the organization.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the user is disabled")]
    Disabled,
    /// The account is no user of the organization (identity.rs says why).
    #[error("the provider account is not a user of the organization ({})", .0.code())]
    NotAMember(NotAMember),
    /// The store failed (logged); the caller may try again.
    #[error("the organization's users cannot be read now")]
    Unavailable,
}

/// The name of the role every administrator has.
pub const SYSTEM_ADMINISTRATOR: &str = "System Administrator";
/// The administrator account created on first start.
pub const ADMIN_EMAIL: &str = "admin@contoso.example";

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The organization's state.
pub struct OrgStore {
    conn: Mutex<Connection>,
}

fn all(depth: Depth, entities: &[&str]) -> Vec<Privilege> {
    entities
        .iter()
        .map(|e| Privilege {
            entity: e.to_string(),
            read: depth,
            create: depth,
            write: depth,
            delete: depth,
        })
        .collect()
}

/// The roles a new organization starts with.
fn default_roles() -> Vec<Role> {
    let entities = ["account", "contact", "activity"];
    let field = |entity: &str, read, create, write, delete| Privilege {
        entity: entity.into(),
        read,
        create,
        write,
        delete,
    };
    use Depth::*;
    vec![
        Role {
            name: SYSTEM_ADMINISTRATOR.into(),
            privileges: all(Organization, &entities),
        },
        Role {
            name: SALES_MANAGER.into(),
            privileges: all(Organization, &entities),
        },
        Role {
            name: "Salesperson".into(),
            privileges: vec![
                field("account", Unit, Own, Own, None),
                field("contact", Unit, Own, Own, Own),
                field("activity", Own, Own, Own, Own),
            ],
        },
        Role {
            name: "Field Technician".into(),
            privileges: vec![
                field("account", Unit, None, None, None),
                field("contact", Unit, None, Own, None),
                field("activity", Own, Own, Own, Own),
            ],
        },
    ]
}

impl OrgStore {
    /// Opens (creating if needed) `dir/admin.db`, or an in-memory store.
    pub fn open(dir: Option<&Path>) -> Result<OrgStore, StoreError> {
        let conn = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
                })?;
                Connection::open(dir.join("admin.db"))?
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS roles (
                 name TEXT PRIMARY KEY, privileges TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS users (
                 id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
                 email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                 domain_name TEXT UNIQUE, enabled INTEGER NOT NULL DEFAULT 1,
                 password_hash TEXT, created_at INTEGER NOT NULL,
                 business_unit TEXT NOT NULL DEFAULT 'Headquarters');
             CREATE TABLE IF NOT EXISTS user_roles (
                 user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                 role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
                 PRIMARY KEY (user_id, role));
             CREATE TABLE IF NOT EXISTS devices (
                 client_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, report TEXT NOT NULL,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
                 command TEXT, delivered TEXT, delivered_at INTEGER);
             CREATE TABLE IF NOT EXISTS sessions (
                 id TEXT PRIMARY KEY, data BLOB NOT NULL, expires INTEGER NOT NULL);",
        )?;
        // A store from before business units: every user is at headquarters.
        let has_unit: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'business_unit'",
            [],
            |r| r.get(0),
        )?;
        if !has_unit {
            conn.execute_batch(
                "ALTER TABLE users ADD COLUMN business_unit TEXT NOT NULL DEFAULT 'Headquarters'",
            )?;
        }
        crate::layout::stamp(&conn, crate::layout::ADMIN_DB)?;
        let store = OrgStore {
            conn: Mutex::new(conn),
        };
        store.seed_roles()?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn seed_roles(&self) -> Result<(), StoreError> {
        let conn = self.lock();
        for role in default_roles() {
            conn.execute(
                "INSERT OR IGNORE INTO roles (name, privileges) VALUES (?1, ?2)",
                params![role.name, serde_json::to_string(&role.privileges).unwrap()],
            )?;
        }
        Ok(())
    }

    /// Whether the organization has no users yet (first start).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let n: i64 = self
            .lock()
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        Ok(n == 0)
    }

    // ---- users ----

    fn user_from_row(conn: &Connection, row: &rusqlite::Row<'_>) -> rusqlite::Result<OrgUser> {
        let id: String = row.get(0)?;
        let mut stmt =
            conn.prepare_cached("SELECT role FROM user_roles WHERE user_id = ?1 ORDER BY role")?;
        let roles = stmt
            .query_map([&id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(OrgUser {
            id,
            email: row.get(1)?,
            name: row.get(2)?,
            domain_name: row.get(3)?,
            enabled: row.get(4)?,
            roles,
            business_unit: row.get(5)?,
        })
    }

    const USER_COLUMNS: &'static str =
        "SELECT id, email, name, domain_name, enabled, business_unit FROM users";

    fn query_users(
        conn: &Connection,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<OrgUser>, StoreError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(args, |row| Self::user_from_row(conn, row))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Users whose email or name contains `search` (all when empty), in creation order.
    pub fn users(&self, search: &str) -> Result<Vec<OrgUser>, StoreError> {
        let conn = self.lock();
        let pattern = format!("%{}%", search.trim().to_lowercase());
        Self::query_users(
            &conn,
            &format!(
                "{} WHERE lower(email) LIKE ?1 OR lower(name) LIKE ?1 ORDER BY seq",
                Self::USER_COLUMNS
            ),
            [pattern],
        )
    }

    pub fn user(&self, id: &str) -> Result<Option<OrgUser>, StoreError> {
        let conn = self.lock();
        Ok(Self::query_users(
            &conn,
            &format!("{} WHERE id = ?1", Self::USER_COLUMNS),
            [id],
        )?
        .pop())
    }

    pub fn user_by_email(&self, email: &str) -> Result<Option<OrgUser>, StoreError> {
        let conn = self.lock();
        Ok(Self::query_users(
            &conn,
            &format!("{} WHERE email = ?1", Self::USER_COLUMNS),
            [email.trim().to_lowercase()],
        )?
        .pop())
    }

    pub fn user_by_domain_name(&self, identity: &str) -> Result<Option<OrgUser>, StoreError> {
        let conn = self.lock();
        Ok(Self::query_users(
            &conn,
            &format!("{} WHERE domain_name = ?1", Self::USER_COLUMNS),
            [identity],
        )?
        .pop())
    }

    /// How many users the organization has.
    pub fn count(&self) -> usize {
        self.lock()
            .query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0) as usize
    }

    /// Creates a user (email trimmed and case-folded); `password` (credentials mode) is stored as
    /// an Argon2id hash. An existing email is that user (its name is kept).
    pub fn create_user(
        &self,
        email: &str,
        name: &str,
        password: Option<&str>,
    ) -> Result<OrgUser, StoreError> {
        let email = email.trim().to_lowercase();
        if !email.contains('@') || email.len() > 254 {
            return Err(StoreError::Invalid("the email address is not valid".into()));
        }
        if let Some(user) = self.user_by_email(&email)? {
            return Ok(user);
        }
        let hash = password.map(passwords::hash);
        {
            let conn = self.lock();
            let seq: i64 =
                conn.query_row("SELECT coalesce(max(seq), 0) + 1 FROM users", [], |r| {
                    r.get(0)
                })?;
            conn.execute(
                "INSERT INTO users (id, seq, email, name, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![format!("u{seq}"), seq, email, name.trim(), hash, now()],
            )?;
        }
        self.user_by_email(&email)?
            .ok_or_else(|| StoreError::Invalid("the user vanished".into()))
    }

    /// Sets a user's name, Domain Name, roles and enabled flag.
    pub fn update_user(&self, id: &str, edit: &UserEdit) -> Result<OrgUser, StoreError> {
        {
            let mut conn = self.lock();
            let tx = conn.transaction()?;
            let unit = edit.business_unit.as_deref().map(str::trim);
            if unit.is_some_and(|u| u.is_empty() || u.len() > 100) {
                return Err(StoreError::Invalid(
                    "a business unit is 1 to 100 characters".into(),
                ));
            }
            let changed = tx.execute(
                "UPDATE users SET name = ?2, domain_name = ?3, enabled = ?4,
                     business_unit = coalesce(?5, business_unit) WHERE id = ?1",
                params![id, edit.name.trim(), edit.domain_name, edit.enabled, unit],
            );
            match changed {
                Ok(0) => return Err(StoreError::Invalid("no such user".into())),
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(StoreError::Invalid(
                        "that provider identity is already another user's Domain Name".into(),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            tx.execute("DELETE FROM user_roles WHERE user_id = ?1", [id])?;
            for role in &edit.roles {
                let known: Option<String> = tx
                    .query_row("SELECT name FROM roles WHERE name = ?1", [role], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if known.is_none() {
                    return Err(StoreError::Invalid(format!("no role named {role:?}")));
                }
                tx.execute(
                    "INSERT INTO user_roles (user_id, role) VALUES (?1, ?2)",
                    params![id, role],
                )?;
            }
            tx.commit()?;
        }
        self.user(id)?
            .ok_or_else(|| StoreError::Invalid("no such user".into()))
    }

    /// Adds roles to a user (keeping theirs).
    pub fn add_roles(&self, id: &str, roles: &[String]) -> Result<OrgUser, StoreError> {
        let user = self
            .user(id)?
            .ok_or_else(|| StoreError::Invalid("no such user".into()))?;
        let mut all = user.roles.clone();
        for r in roles {
            if !all.contains(r) {
                all.push(r.clone());
            }
        }
        self.update_user(
            id,
            &UserEdit {
                name: user.name,
                domain_name: user.domain_name,
                enabled: user.enabled,
                roles: all,
                business_unit: None,
            },
        )
    }

    /// The org user a provider sign-in is, by the one identity rule (identity.rs): looks up,
    /// plans, and applies the plan (a completed or new Domain Name, a new user without roles) in
    /// one transaction. A disabled user is refused and nothing is changed.
    pub fn sign_in(
        &self,
        identity: &ProviderIdentity,
        connected_tenant: Option<&str>,
        policy: SignInPolicy,
    ) -> Result<OrgUser, Refusal> {
        self.try_sign_in(identity, connected_tenant, policy)
            .unwrap_or_else(|e| {
                tracing::error!("a sign-in could not be resolved: {e}");
                Err(Refusal::Unavailable)
            })
    }

    /// [`Self::sign_in`]; the outer error is the store's. A refusal drops the transaction, so
    /// nothing of it is kept.
    fn try_sign_in(
        &self,
        identity: &ProviderIdentity,
        connected_tenant: Option<&str>,
        policy: SignInPolicy,
    ) -> Result<Result<OrgUser, Refusal>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let one = |column: &str, value: Option<String>| -> Result<Option<OrgUser>, StoreError> {
            let Some(value) = value else { return Ok(None) };
            let sql = format!("{} WHERE {column} = ?1", Self::USER_COLUMNS);
            Ok(Self::query_users(&tx, &sql, [value])?.pop())
        };
        let by_domain_name = one("domain_name", Some(identity.domain_name()))?;
        let by_tenantless = one("domain_name", identity.tenantless_domain_name())?;
        let by_email = one("email", identity.email.clone())?;
        let found = Found {
            by_domain_name: by_domain_name.as_ref(),
            by_tenantless: by_tenantless.as_ref(),
            by_email: by_email.as_ref(),
        };
        let user_id = match identity::plan(identity, connected_tenant, policy, found) {
            Resolution::Refuse(why) => return Ok(Err(Refusal::NotAMember(why))),
            Resolution::Existing { user_id } => user_id,
            Resolution::Complete {
                user_id,
                domain_name,
            }
            | Resolution::Link {
                user_id,
                domain_name,
            } => {
                tx.execute(
                    "UPDATE users SET domain_name = ?2 WHERE id = ?1",
                    params![user_id, domain_name],
                )?;
                user_id
            }
            Resolution::Create {
                email,
                name,
                domain_name,
            } => {
                let seq: i64 =
                    tx.query_row("SELECT coalesce(max(seq), 0) + 1 FROM users", [], |r| {
                        r.get(0)
                    })?;
                let id = format!("u{seq}");
                tx.execute(
                    "INSERT INTO users (id, seq, email, name, domain_name, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, seq, email, name.trim(), domain_name, now()],
                )?;
                id
            }
        };
        let sql = format!("{} WHERE id = ?1", Self::USER_COLUMNS);
        let user = Self::query_users(&tx, &sql, [&user_id])?
            .pop()
            .ok_or_else(|| StoreError::Invalid("the user vanished".into()))?;
        if !user.enabled {
            return Ok(Err(Refusal::Disabled));
        }
        tx.commit()?;
        if by_domain_name.is_none() {
            tracing::info!(user = %user.id, "a provider identity reached its user for the first time");
        }
        Ok(Ok(user))
    }

    /// Completes the Domain Names recorded for `issuer` before its tenant was known (issuer |
    /// object id) to issuer | `tenant` | object id: what Connect does, so that users imported or
    /// assigned before it keep their identity. Returns how many were completed.
    pub fn complete_domain_names(&self, issuer: &str, tenant: &str) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let names: Vec<(String, String)> = {
            let mut stmt =
                tx.prepare("SELECT id, domain_name FROM users WHERE domain_name IS NOT NULL")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut n = 0;
        for (id, name) in names {
            if let Some(full) = identity::completed(&name, issuer, tenant) {
                // A user who already has the full name keeps it; the old one is dropped.
                let taken: bool = tx.query_row(
                    "SELECT count(*) FROM users WHERE domain_name = ?1",
                    [&full],
                    |r| r.get(0),
                )?;
                let value = (!taken).then_some(full);
                tx.execute(
                    "UPDATE users SET domain_name = ?2 WHERE id = ?1",
                    params![id, value],
                )?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Checks a credentials-mode sign-in (Argon2id): the user, if the password is right and the
    /// user enabled.
    pub fn check_password(&self, email: &str, password: &str) -> Option<OrgUser> {
        let hash: Option<String> = self
            .lock()
            .query_row(
                "SELECT password_hash FROM users WHERE email = ?1 AND enabled = 1",
                [email.trim().to_lowercase()],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
            .flatten();
        match hash {
            Some(h) if passwords::verify(password, &h) => self.user_by_email(email).ok().flatten(),
            _ => {
                // The same work whether or not the user exists: no timing oracle for emails.
                passwords::verify(password, passwords::DUMMY_HASH);
                None
            }
        }
    }

    /// Sets a user's credentials-mode password.
    pub fn set_password(&self, id: &str, password: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![id, passwords::hash(password)],
        )?;
        Ok(())
    }

    // ---- roles ----

    pub fn roles(&self) -> Result<Vec<Role>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT name, privileges FROM roles ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (name, privileges) = row?;
            Ok(Role {
                name,
                privileges: serde_json::from_str(&privileges)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
            })
        })
        .collect()
    }

    /// Creates or replaces a role (the Security Roles page in Dynamics terms).
    pub fn set_role(&self, role: &Role) -> Result<(), StoreError> {
        let name = role.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(StoreError::Invalid(
                "a role name is 1 to 100 characters".into(),
            ));
        }
        self.lock().execute(
            "INSERT INTO roles (name, privileges) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET privileges = excluded.privileges",
            params![name, serde_json::to_string(&role.privileges).expect("json")],
        )?;
        Ok(())
    }

    /// What `user` may do with each of `entities`: the deepest of each privilege over the user's
    /// roles (Dynamics 365 adds roles up the same way). The roles are read once.
    pub fn privileges<'e>(
        &self,
        user: &OrgUser,
        entities: impl IntoIterator<Item = &'e str>,
    ) -> Result<Vec<Privilege>, StoreError> {
        let roles = self.roles()?;
        let granted: Vec<&Privilege> = roles
            .iter()
            .filter(|r| user.roles.contains(&r.name))
            .flat_map(|r| &r.privileges)
            .collect();
        Ok(entities
            .into_iter()
            .map(|entity| {
                let mut out = Privilege {
                    entity: entity.to_string(),
                    read: Depth::None,
                    create: Depth::None,
                    write: Depth::None,
                    delete: Depth::None,
                };
                for p in granted.iter().filter(|p| p.entity == entity) {
                    out.read = out.read.max(p.read);
                    out.create = out.create.max(p.create);
                    out.write = out.write.max(p.write);
                    out.delete = out.delete.max(p.delete);
                }
                out
            })
            .collect())
    }

    // ---- settings ----

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        let conn = self.lock();
        match value {
            Some(v) => conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => conn.execute("DELETE FROM settings WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// The connected identity provider, if the organization is connected.
    pub fn connection(&self) -> Result<Option<ProviderConnection>, StoreError> {
        Ok(self
            .setting("provider.connection")?
            .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
            .map(|v| ProviderConnection {
                issuer: v["issuer"].as_str().unwrap_or_default().into(),
                tenant: v["tenant"].as_str().map(str::to_string),
                admin_identity: v["admin_identity"].as_str().unwrap_or_default().into(),
                admin_email: v["admin_email"].as_str().unwrap_or_default().into(),
                connected_at: v["connected_at"].as_i64().unwrap_or(0),
            }))
    }

    /// Connects (Some) or disconnects (None) the identity provider.
    pub fn set_connection(
        &self,
        connection: Option<&ProviderConnection>,
    ) -> Result<(), StoreError> {
        let value = connection.map(|c| {
            serde_json::json!({"issuer": c.issuer, "tenant": c.tenant,
                "admin_identity": c.admin_identity, "admin_email": c.admin_email,
                "connected_at": c.connected_at})
            .to_string()
        });
        self.set_setting("provider.connection", value.as_deref())
    }

    /// The identity provider's name as the administrator typed it (None: derived).
    pub fn provider_label(&self) -> Result<Option<String>, StoreError> {
        self.setting("provider.label")
    }

    /// Names the identity provider on the console's pages (None: derived from its issuer).
    pub fn set_provider_label(&self, label: Option<&str>) -> Result<(), StoreError> {
        self.set_setting("provider.label", label)
    }

    /// What a first sign-in may do (off, both, until the administrator turns them on).
    pub fn sign_in_policy(&self) -> Result<SignInPolicy, StoreError> {
        Ok(self
            .setting("sign_in.policy")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    /// Sets what a first sign-in may do.
    pub fn set_sign_in_policy(&self, policy: SignInPolicy) -> Result<(), StoreError> {
        let value = serde_json::to_string(&policy).expect("json");
        self.set_setting("sign_in.policy", Some(&value))
    }

    // ---- devices ----

    /// Records a device's contact and what it reported; returns the command waiting for it when
    /// it is one of `deliverable` (taken: delivered now, and recorded as delivered).
    pub fn device_contact(
        &self,
        client_id: &str,
        user_id: &str,
        report: Option<&DeviceReport>,
        deliverable: &[DeviceCommand],
    ) -> Result<Option<DeviceCommand>, StoreError> {
        let conn = self.lock();
        let now = now();
        let existing: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT report, command FROM devices WHERE client_id = ?1",
                [client_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let report_json = match (report, &existing) {
            (Some(r), _) => serde_json::to_string(r).unwrap(),
            (None, Some((old, _))) => old.clone(),
            (None, None) => serde_json::to_string(&DeviceReport::default()).unwrap(),
        };
        conn.execute(
            "INSERT INTO devices (client_id, user_id, report, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (client_id) DO UPDATE SET user_id = excluded.user_id,
                 report = excluded.report, last_seen = excluded.last_seen",
            params![client_id, user_id, report_json, now],
        )?;
        let command = existing
            .and_then(|(_, c)| c)
            .and_then(|c| DeviceCommand::parse(&c))
            .filter(|c| deliverable.contains(c));
        if let Some(c) = command {
            conn.execute(
                "UPDATE devices SET command = NULL, delivered = ?2, delivered_at = ?3
                 WHERE client_id = ?1",
                params![client_id, c.as_str(), now],
            )?;
        }
        Ok(command)
    }

    /// Queues a command for a device's next contact.
    pub fn command_device(
        &self,
        client_id: &str,
        command: DeviceCommand,
    ) -> Result<(), StoreError> {
        let n = self.lock().execute(
            "UPDATE devices SET command = ?2 WHERE client_id = ?1",
            params![client_id, command.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::Invalid("no such device".into()));
        }
        Ok(())
    }

    /// Every device, most recently seen first.
    pub fn devices(&self) -> Result<Vec<Device>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT d.client_id, d.user_id, coalesce(u.email, ''), d.report, d.first_seen,
                    d.last_seen, d.command, d.delivered, d.delivered_at
             FROM devices d LEFT JOIN users u ON u.id = d.user_id ORDER BY d.last_seen DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            let report: String = r.get(3)?;
            let command: Option<String> = r.get(6)?;
            let delivered: Option<String> = r.get(7)?;
            Ok(Device {
                client_id: r.get(0)?,
                user_id: r.get(1)?,
                user_email: r.get(2)?,
                report: serde_json::from_str(&report).unwrap_or_default(),
                first_seen: r.get(4)?,
                last_seen: r.get(5)?,
                pending_command: command.as_deref().and_then(DeviceCommand::parse),
                delivered_command: delivered.as_deref().and_then(DeviceCommand::parse),
                delivered_at: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- console sessions (tower-sessions' store; see sessions.rs) ----

    pub(crate) fn session_load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT data FROM sessions WHERE id = ?1 AND expires > ?2",
                params![id, now()],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(crate) fn session_save(
        &self,
        id: &str,
        data: &[u8],
        expires: i64,
    ) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO sessions (id, data, expires) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires = excluded.expires",
            params![id, data, expires],
        )?;
        Ok(())
    }

    pub(crate) fn session_create(
        &self,
        id: &str,
        data: &[u8],
        expires: i64,
    ) -> Result<bool, StoreError> {
        let n = self.lock().execute(
            "INSERT OR IGNORE INTO sessions (id, data, expires) VALUES (?1, ?2, ?3)",
            params![id, data, expires],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn session_delete(&self, id: &str) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        conn.execute("DELETE FROM sessions WHERE expires <= ?1", [now()])?;
        Ok(())
    }
}

/// What the Users page (or `syncvault admin assign`) sets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct UserEdit {
    pub name: String,
    pub domain_name: Option<String>,
    pub enabled: bool,
    pub roles: Vec<String>,
    /// The user's new business unit (None: unchanged).
    #[serde(default)]
    pub business_unit: Option<String>,
}

impl From<&OrgUser> for UserEdit {
    fn from(u: &OrgUser) -> Self {
        UserEdit {
            name: u.name.clone(),
            domain_name: u.domain_name.clone(),
            enabled: u.enabled,
            roles: u.roles.clone(),
            business_unit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_roles_identity_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = OrgStore::open(Some(dir.path())).unwrap();
        let ada = store
            .create_user(" Ada@Contoso.example", "Ada", Some("pw"))
            .unwrap();
        assert_eq!(ada.id, "u1");
        assert_eq!(ada.email, "ada@contoso.example");
        assert_eq!(
            store.check_password("ADA@contoso.example", "pw"),
            Some(ada.clone())
        );
        assert_eq!(store.check_password("ada@contoso.example", "nope"), None);
        // Where the administrator allows it, a provider identity matched by email is linked at
        // its first sign-in; then the identity decides alone.
        let open = SignInPolicy {
            match_email: true,
            provision_unknown: true,
        };
        let person = |oid: &str, email: &str| ProviderIdentity {
            issuer: "idp".into(),
            tenant: None,
            object_id: oid.into(),
            email: Some(email.into()),
            name: Some("Someone".into()),
        };
        assert_eq!(
            store.sign_in(
                &person("ada", "ada@contoso.example"),
                None,
                SignInPolicy::default()
            ),
            Err(Refusal::NotAMember(NotAMember::UnknownAccount))
        );
        let got = store
            .sign_in(&person("ada", "ada@contoso.example"), None, open)
            .unwrap();
        assert_eq!(got.id, ada.id);
        assert_eq!(got.domain_name.as_deref(), Some("idp|ada"));
        assert_eq!(
            store
                .sign_in(&person("ada", "renamed@contoso.example"), None, open)
                .unwrap()
                .id,
            ada.id
        );
        assert_eq!(
            store.sign_in(&person("other", "ada@contoso.example"), None, open),
            Err(Refusal::NotAMember(NotAMember::EmailTaken))
        );
        // An unknown account is created only where allowed, and gets no role.
        let grace = store
            .sign_in(&person("grace", "grace@contoso.example"), None, open)
            .unwrap();
        assert_ne!(grace.id, ada.id);
        assert!(grace.roles.is_empty());
        let edit = UserEdit {
            enabled: false,
            roles: vec!["Salesperson".into()],
            ..UserEdit::from(&grace)
        };
        store.update_user(&grace.id, &edit).unwrap();
        assert_eq!(
            store.sign_in(&person("grace", "grace@contoso.example"), None, open),
            Err(Refusal::Disabled)
        );
        // Connect completes the names recorded before the tenant was known.
        assert_eq!(store.complete_domain_names("idp", "t1").unwrap(), 2);
        assert_eq!(
            store.user(&ada.id).unwrap().unwrap().domain_name.as_deref(),
            Some("idp|t1|ada")
        );
        assert!(matches!(
            store.update_user(
                &grace.id,
                &UserEdit {
                    domain_name: Some("idp|t1|ada".into()),
                    ..edit.clone()
                }
            ),
            Err(StoreError::Invalid(_))
        ));
        store
            .device_contact("dev1", &ada.id, Some(&DeviceReport::default()), &[])
            .unwrap();
        store.command_device("dev1", DeviceCommand::Wipe).unwrap();
        drop(store);
        // Everything survives a restart.
        let store = OrgStore::open(Some(dir.path())).unwrap();
        assert_eq!(store.count(), 2);
        assert_eq!(
            store.user(&grace.id).unwrap().unwrap().roles,
            ["Salesperson"]
        );
        assert!(!store.user(&grace.id).unwrap().unwrap().enabled);
        let any = [DeviceCommand::Wipe];
        assert_eq!(
            store.device_contact("dev1", &ada.id, None, &[]).unwrap(),
            None
        );
        assert_eq!(
            store.device_contact("dev1", &ada.id, None, &any).unwrap(),
            Some(DeviceCommand::Wipe)
        );
        assert_eq!(
            store.device_contact("dev1", &ada.id, None, &any).unwrap(),
            None
        );
        let devices = store.devices().unwrap();
        assert_eq!(devices[0].delivered_command, Some(DeviceCommand::Wipe));
        assert_eq!(store.roles().unwrap().len(), 4);
    }
}
