//! The organization's records in the server's own SQLite database, versioned: every write adds a
//! row at the next value of the global change sequence and marks the row it replaces as
//! superseded at that value, so the state of every record at any recent sequence value can be
//! read back. A pull reads the records as they were at its upper bound (a snapshot that pages
//! and resumes cannot tear) and, against the scope the device's previous pull used, sends what
//! entered the user's scope, what changed in it, and what left it (docs/protocol.md, "Scope").
//! Also the mutation ids each client has had applied (a retried push is answered `duplicate`,
//! never applied twice) and the schema the administrator evolves.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::blobs::{AttachmentPolicy, BlobStore};
use super::generate;
use super::schema::{ATTACHMENT, FieldDef, Schema};
use super::scope::{Access, EntityScope, Grant, Reach, Scope, SyncFilter, quote};

/// A protocol-level refusal: HTTP status, OAuth-style error code, description.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code,
            description: description.into(),
        }
    }
    /// A failure of the server itself (its store, its threads): a 500 the client retries.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError {
            status: 500,
            code: "server_error",
            description: err.to_string(),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        ApiError::internal(err)
    }
}

/// Largest page a client may ask for.
pub const MAX_PAGE: u32 = 5000;
/// Largest push a client may send.
pub const MAX_MUTATIONS: usize = 1000;
/// How many change sequence values of history are kept: a cursor older than that is refused
/// (`invalid_cursor`, the device resyncs), as Dataverse's change tracking has a retention.
pub const HISTORY: i64 = 2_000_000;
/// Cursors (with the scope of the pull that gave them) kept per client.
const CURSORS_KEPT: i64 = 8;

/// A record as the server holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    pub entity: String,
    pub id: String,
    pub version: i64,
    pub deleted: bool,
    /// The user who owns it and their business unit (what `Own` and `Unit` reach).
    pub owner: String,
    pub unit: String,
    pub fields: Map<String, Value>,
}

/// Who owns new generated records: (user id, business unit), spread round-robin over accounts
/// (a contact or activity belongs to its account's owner).
pub type Owners = Vec<(String, String)>;

/// The server's record store.
pub struct DataStore {
    inner: Mutex<Inner>,
    /// Days added to the clock for sync filters' moving windows (`/api/dev/advance-clock`).
    day_offset: AtomicI64,
}

/// Where the change feed stands against the devices following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLag {
    /// The last sequence handed out.
    pub head: i64,
    /// Devices with a stored cursor.
    pub devices: i64,
    /// Changes between the head and the device furthest behind.
    pub max_behind: i64,
}

struct Inner {
    conn: Connection,
    /// The last change sequence handed out.
    seq: i64,
    schema: Schema,
    /// Signs page tokens (they name scopes and positions a client must not forge).
    token_key: Vec<u8>,
}

/// Where a pull is: its phases run in order, each in its own order (docs/protocol.md, "Scope").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Records unchanged since the cursor that entered or left the scope (only after a scope
    /// change), by sequence.
    Scope = 0,
    /// Records changed since the cursor that are in scope, by sequence.
    Changes = 1,
    /// Records changed since the cursor that left the scope, by when they changed.
    Exits = 2,
}

/// The decoded page token.
#[derive(Debug, Clone)]
struct PageToken {
    phase: Phase,
    /// The phase's position (exclusive).
    after: i64,
    /// The pull's cursor (None: an initial sync, no tombstones or removes).
    cursor: Option<i64>,
    upper: i64,
    /// The scope the device held at `cursor`, and the scope of this pull.
    held: Option<i64>,
    scope: i64,
    total: u64,
}

impl PageToken {
    fn body(&self) -> String {
        let opt = |v: Option<i64>| v.map_or("-".into(), |v| v.to_string());
        format!(
            "v2.{}.{}.{}.{}.{}.{}.{}",
            self.phase as u8,
            self.after,
            opt(self.cursor),
            self.upper,
            opt(self.held),
            self.scope,
            self.total
        )
    }

    fn mac(key: &[u8], client_id: &str, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(client_id.as_bytes());
        mac.update(b"\0");
        mac.update(body.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    fn encode(&self, key: &[u8], client_id: &str) -> String {
        let body = self.body();
        let mac = Self::mac(key, client_id, &body);
        format!("{body}.{mac}")
    }

    fn decode(s: &str, key: &[u8], client_id: &str, max_seq: i64) -> Option<PageToken> {
        let (body, mac) = s.rsplit_once('.')?;
        let expected = Self::mac(key, client_id, body);
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        let mut parts = body.strip_prefix("v2.")?.split('.');
        let opt = |p: &str| -> Option<Option<i64>> {
            if p == "-" {
                Some(None)
            } else {
                p.parse().ok().map(Some)
            }
        };
        let phase = match parts.next()? {
            "0" => Phase::Scope,
            "1" => Phase::Changes,
            "2" => Phase::Exits,
            _ => return None,
        };
        let t = PageToken {
            phase,
            after: parts.next()?.parse().ok()?,
            cursor: opt(parts.next()?)?,
            upper: parts.next()?.parse().ok()?,
            held: opt(parts.next()?)?,
            scope: parts.next()?.parse().ok()?,
            total: parts.next()?.parse().ok()?,
        };
        (parts.next().is_none() && t.upper <= max_seq).then_some(t)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// Days since 1970-01-01 (UTC) now.
fn today_utc() -> i64 {
    crate::admin::store::now().div_euclid(86_400)
}

const SCHEMA_SQL: &str = "
    CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY, entity TEXT NOT NULL, id TEXT NOT NULL,
        version INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
        owner TEXT NOT NULL, unit TEXT NOT NULL, fields TEXT NOT NULL,
        superseded INTEGER);
    CREATE UNIQUE INDEX IF NOT EXISTS records_by_id ON records (entity, id, seq);
    DROP INDEX IF EXISTS records_by_entity;
    DROP INDEX IF EXISTS records_by_owner;
    DROP INDEX IF EXISTS records_by_unit;
    CREATE INDEX IF NOT EXISTS records_entity_seq ON records (entity, seq, superseded, deleted);
    CREATE INDEX IF NOT EXISTS records_owner_seq ON records (entity, owner, seq, superseded, deleted);
    CREATE INDEX IF NOT EXISTS records_unit_seq ON records (entity, unit, seq, superseded, deleted);
    CREATE INDEX IF NOT EXISTS records_superseded ON records (superseded)
        WHERE superseded IS NOT NULL;
    CREATE TABLE IF NOT EXISTS applied (
        client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL, version INTEGER,
        PRIMARY KEY (client_id, mutation_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS audit (
        client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL,
        entity TEXT NOT NULL, id TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE);
    CREATE TABLE IF NOT EXISTS cursors (
        client_id TEXT NOT NULL, cursor INTEGER NOT NULL, scope INTEGER NOT NULL,
        PRIMARY KEY (client_id, cursor)) WITHOUT ROWID;";

/// The columns every record query reads, in `row_record`'s order.
const RECORD_COLUMNS: &str = "entity, id, version, deleted, owner, unit, fields";

fn row_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServerRecord> {
    let fields: String = r.get(6)?;
    Ok(ServerRecord {
        entity: r.get(0)?,
        id: r.get(1)?,
        version: r.get(2)?,
        deleted: r.get(3)?,
        owner: r.get(4)?,
        unit: r.get(5)?,
        fields: serde_json::from_str(&fields).unwrap_or_default(),
    })
}

impl DataStore {
    /// Opens `dir/org.db` (or an in-memory database) and fills an empty one with `records`
    /// generated records owned by `owners`.
    pub fn open(
        dir: Option<&Path>,
        records: u64,
        owners: &Owners,
    ) -> Result<DataStore, rusqlite::Error> {
        let conn = match dir {
            Some(dir) => {
                let _ = std::fs::create_dir_all(dir);
                Connection::open(dir.join("org.db"))?
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        super::scope::register_field_function(&conn)?;
        migrate_unversioned(&conn)?;
        conn.execute_batch(SCHEMA_SQL)?;
        crate::layout::stamp(&conn, crate::layout::ORG_DB)?;
        let newest_record: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM records", [], |r| {
                r.get(0)
            })?;
        // A cursor may be a sequence value no record took (`remember_cursor`): never hand it out
        // again after a restart.
        let newest_cursor: i64 =
            conn.query_row("SELECT coalesce(max(cursor), 0) FROM cursors", [], |r| {
                r.get(0)
            })?;
        let seq = newest_record.max(newest_cursor);
        let stored: Option<Schema> = match meta(&conn, "schema")? {
            Some(s) => Some(serde_json::from_str(&s).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })?),
            None => None,
        };
        let schema = stored
            .clone()
            .unwrap_or_else(Schema::initial)
            .with_attachments();
        if stored.as_ref() != Some(&schema) {
            set_meta(
                &conn,
                "schema",
                &serde_json::to_string(&schema).expect("json"),
            )?;
        }
        let token_key = match meta(&conn, "token_key")? {
            Some(k) => URL_SAFE_NO_PAD.decode(k).unwrap_or_default(),
            None => {
                let key: [u8; 32] = rand::random();
                set_meta(&conn, "token_key", &URL_SAFE_NO_PAD.encode(key))?;
                key.to_vec()
            }
        };
        let mut inner = Inner {
            conn,
            seq,
            schema,
            token_key,
        };
        if newest_record == 0 && records > 0 {
            inner.generate(records, owners)?;
        }
        Ok(DataStore {
            inner: Mutex::new(inner),
            day_offset: AtomicI64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- schema ----

    /// The organization's schema now.
    pub fn schema(&self) -> Schema {
        self.lock().schema.clone()
    }

    /// Changes the schema (the administrator's add entity / add field / retire field / sync
    /// filter) and stores it, or changes nothing.
    pub fn evolve_schema(
        &self,
        change: impl FnOnce(&mut Schema) -> Result<(), String>,
    ) -> Result<Schema, String> {
        let mut inner = self.lock();
        let mut schema = inner.schema.clone();
        change(&mut schema)?;
        set_meta(
            &inner.conn,
            "schema",
            &serde_json::to_string(&schema).expect("json"),
        )
        .map_err(|e| e.to_string())?;
        inner.schema = schema.clone();
        Ok(schema)
    }

    /// Adds a field; see [`Schema::add_field`].
    pub fn add_field(&self, entity: &str, field: FieldDef) -> Result<Schema, String> {
        self.evolve_schema(|s| s.add_field(entity, field))
    }

    /// Sets an entity's sync filter; see [`Schema::set_filter`].
    pub fn set_filter(&self, entity: &str, filter: Option<SyncFilter>) -> Result<Schema, String> {
        self.evolve_schema(|s| s.set_filter(entity, filter))
    }

    /// What the organization allows for attachments.
    pub fn attachment_policy(&self) -> AttachmentPolicy {
        meta(&self.lock().conn, "attachment_policy")
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    /// Sets the attachment policy (the administrator's), or says why not: an automatic-download
    /// entity the schema lacks is refused.
    pub fn set_attachment_policy(&self, policy: &AttachmentPolicy) -> Result<(), String> {
        let inner = self.lock();
        if let Some(e) = policy
            .auto_download_entities
            .iter()
            .find(|e| inner.schema.entity(e).is_none())
        {
            return Err(format!("no entity {e:?}"));
        }
        set_meta(
            &inner.conn,
            "attachment_policy",
            &serde_json::to_string(policy).expect("json"),
        )
        .map_err(|e| format!("the policy was not stored: {e}"))
    }

    /// The live attachment `id` when `scope` covers it (a download's check).
    pub fn attachment_in(&self, scope: &Scope, id: &str) -> Option<ServerRecord> {
        let inner = self.lock();
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE entity = '{ATTACHMENT}' AND id = ?1
             AND superseded IS NULL AND deleted = 0 AND coalesce({}, 0)",
            scope.entity_predicate(ATTACHMENT)
        );
        inner
            .conn
            .query_row(&sql, [id], row_record)
            .optional()
            .ok()
            .flatten()
    }

    // ---- scope ----

    /// Today for sync filters (days since 1970-01-01, plus the development offset).
    pub fn today(&self) -> i64 {
        today_utc() + self.day_offset.load(Ordering::Relaxed)
    }

    /// Moves the sync filters' clock (development endpoint, tests of a window that moves).
    pub fn advance_days(&self, days: i64) {
        self.day_offset.fetch_add(days, Ordering::Relaxed);
    }

    /// What `access` lets a device hold now: the entities the user may read (of `only`, when
    /// the app narrows them), each with its reach, filter and revision.
    pub fn scope(&self, access: &Access, only: Option<&[String]>) -> Scope {
        let today = self.today();
        let inner = self.lock();
        let entities = inner
            .schema
            .entities
            .iter()
            .filter(|e| only.is_none_or(|only| only.contains(&e.name)))
            .filter(|e| e.name != ATTACHMENT)
            .filter_map(|e| {
                let reach = access.grants.get(&e.name)?.read?;
                Some((
                    e.name.clone(),
                    EntityScope {
                        reach,
                        filter: e.sync_filter.as_ref().map(|f| f.to_sql(today)),
                        revision: e.revision,
                    },
                ))
            })
            .collect();
        let mut scope = Scope {
            user: access.user.clone(),
            unit: access.unit.clone(),
            entities,
        };
        if let Some(e) = inner.schema.entity(ATTACHMENT)
            && only.is_none_or(|only| only.iter().any(|o| o == ATTACHMENT))
            && let Some(attachments) = scope.attachment_scope(e.revision)
        {
            scope.entities.insert(ATTACHMENT.into(), attachments);
        }
        scope
    }

    /// The live records `scope` covers, by entity and id: the server's own answer to "what
    /// should this device hold" (tests compare devices with it).
    pub fn records_in(&self, scope: &Scope) -> Vec<ServerRecord> {
        let inner = self.lock();
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE superseded IS NULL AND deleted = 0
             AND coalesce({}, 0) ORDER BY entity, id",
            scope.predicate()
        );
        let mut stmt = inner.conn.prepare(&sql).expect("generated SQL");
        stmt.query_map([], row_record)
            .expect("generated SQL")
            .collect::<Result<_, _>>()
            .expect("readable rows")
    }

    // ---- pull ----

    /// One page of changes for `client_id`, whose user's scope is `scope` now, as the response
    /// body (built as text: the stored fields are already JSON and are not parsed again).
    pub fn pull(
        &self,
        client_id: &str,
        scope: &Scope,
        cursor: Option<i64>,
        page_token: Option<&str>,
        limit: u32,
    ) -> Result<String, ApiError> {
        let mut inner = self.lock();
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let token = match page_token {
            Some(t) => {
                PageToken::decode(t, &inner.token_key, client_id, inner.seq).ok_or_else(|| {
                    ApiError::bad_request("invalid_page_token", "the page token is not valid")
                })?
            }
            None => inner.start_pull(client_id, scope, cursor)?,
        };
        let now = inner.load_scope(token.scope)?;
        if now.user != scope.user {
            return Err(ApiError::bad_request(
                "invalid_page_token",
                "the page token is another user's",
            ));
        }
        let held = token.held.map(|id| inner.load_scope(id)).transpose()?;
        let pull = Pull {
            token: &token,
            scope: &now,
            held: held.as_ref(),
        };
        let (changes, next) = pull.page(&inner.conn, limit)?;
        let mut body = String::with_capacity(changes.len() * 400 + 128);
        body.push_str("{\"changes\":[");
        body.push_str(&changes.join(","));
        body.push_str("],");
        match next {
            Some(next) => body.push_str(&format!(
                "\"page_token\":{},\"cursor\":null",
                json_string(&next.encode(&inner.token_key, client_id))
            )),
            None => {
                inner.remember_cursor(client_id, token.upper, token.scope)?;
                body.push_str(&format!("\"page_token\":null,\"cursor\":{}", token.upper));
            }
        }
        body.push_str(&format!(",\"estimated_total\":{}}}", token.total));
        Ok(body)
    }

    // ---- push ----

    /// Applies a client's mutations in order, in one transaction, as `access` allows; returns
    /// one result each.
    pub fn push(
        &self,
        client_id: &str,
        access: &Access,
        mutations: &[Value],
        blobs: &BlobStore,
    ) -> Result<Vec<Value>, ApiError> {
        if mutations.len() > MAX_MUTATIONS {
            return Err(ApiError {
                status: 413,
                code: "too_many_mutations",
                description: format!("at most {MAX_MUTATIONS} mutations per push"),
            });
        }
        // What the user reads, for the answer's `in_scope` (before the lock: `scope` takes it).
        let scope = self.scope(access, None);
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut seq = inner.seq;
        let tx = inner.conn.transaction()?;
        let mut results = Vec::with_capacity(mutations.len());
        let mut lowest = i64::MAX;
        for m in mutations {
            let mutation_id = m["mutation_id"].as_i64().ok_or_else(|| {
                ApiError::bad_request("invalid_request", "every mutation needs a mutation_id")
            })?;
            lowest = lowest.min(mutation_id);
            let push = Push {
                tx: &tx,
                schema: &inner.schema,
                access,
                client_id,
                blobs,
            };
            let mut result = push.apply(mutation_id, m, &mut seq)?;
            mark_out_of_scope(&tx, &scope, m, &mut result)?;
            results.push(result);
        }
        // Every mutation below the lowest one sent was acknowledged by the client (it sends its
        // outbox in order): their ids are no longer needed.
        tx.execute(
            "DELETE FROM applied WHERE client_id = ?1 AND mutation_id < ?2",
            params![client_id, lowest],
        )?;
        prune_history(&tx, seq)?;
        tx.commit()?;
        inner.seq = seq;
        Ok(results)
    }

    // ---- other users' changes (tests, the demo, the administrator) ----

    /// One record, tombstones included (tests and the demo look at the server's side).
    pub fn get(&self, entity: &str, id: &str) -> Option<ServerRecord> {
        read_record(&self.lock().conn, entity, id).ok().flatten()
    }

    /// Every version of one record the store ever wrote, oldest first (the simulator proves
    /// with it that an edit a device accepted reached the organization, even if overwritten).
    pub fn history(&self, entity: &str, id: &str) -> Vec<ServerRecord> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE entity = ?1 AND id = ?2 ORDER BY seq"
            ))
            .expect("static SQL");
        stmt.query_map(params![entity, id], row_record)
            .expect("static SQL")
            .collect::<Result<_, _>>()
            .expect("readable rows")
    }

    /// Every live record, ordered by entity and id.
    pub fn live_records(&self) -> Vec<ServerRecord> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE superseded IS NULL AND deleted = 0
                 ORDER BY entity, id"
            ))
            .expect("static SQL");
        stmt.query_map([], row_record)
            .expect("static SQL")
            .collect::<Result<_, _>>()
            .expect("readable rows")
    }

    /// Writes the next version of one record (the caller changes what it needs); returns it.
    fn rewrite(
        &self,
        entity: &str,
        id: &str,
        change: impl FnOnce(&mut ServerRecord),
    ) -> Option<i64> {
        let mut inner = self.lock();
        let mut seq = inner.seq;
        let mut record = read_record(&inner.conn, entity, id).ok().flatten()?;
        change(&mut record);
        record.version += 1;
        write_record(&inner.conn, &record, &mut seq).ok()?;
        inner.seq = seq;
        Some(record.version)
    }

    /// An edit by another user of the organization (changed fields only); returns the version.
    pub fn edit(&self, entity: &str, id: &str, fields: Map<String, Value>) -> Option<i64> {
        self.rewrite(entity, id, |r| r.fields.extend(fields))
    }

    /// A record created by another user of the organization (or the administrator's import);
    /// false when the id exists.
    pub fn create(&self, record: ServerRecord) -> bool {
        let mut inner = self.lock();
        if read_record(&inner.conn, &record.entity, &record.id)
            .ok()
            .flatten()
            .is_some()
        {
            return false;
        }
        let mut seq = inner.seq;
        let written = write_record(
            &inner.conn,
            &ServerRecord {
                version: 1,
                ..record
            },
            &mut seq,
        );
        inner.seq = seq;
        written.is_ok()
    }

    /// A delete by another user of the organization.
    pub fn delete(&self, entity: &str, id: &str) -> Option<i64> {
        self.rewrite(entity, id, |r| r.deleted = true)
    }

    /// Gives records to another owner (and their business unit), as Dynamics' Assign does, in
    /// one transaction; returns how many moved.
    pub fn assign(
        &self,
        entity: &str,
        ids: &[String],
        owner: &str,
        unit: &str,
    ) -> Result<usize, rusqlite::Error> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut seq = inner.seq;
        let tx = inner.conn.transaction()?;
        let mut moved = 0;
        for id in ids {
            let Some(mut r) = read_record(&tx, entity, id)? else {
                continue;
            };
            if r.deleted || (r.owner == owner && r.unit == unit) {
                continue;
            }
            for mut a in attachments_of(&tx, entity, id)? {
                a.owner = owner.into();
                a.unit = unit.into();
                a.version += 1;
                write_record(&tx, &a, &mut seq)?;
            }
            r.owner = owner.into();
            r.unit = unit.into();
            r.version += 1;
            write_record(&tx, &r, &mut seq)?;
            moved += 1;
        }
        tx.commit()?;
        inner.seq = seq;
        Ok(moved)
    }

    /// Other users at work: changes the `notes` (or `name`) of the `count` records written
    /// longest ago, in one transaction. Returns how many changed.
    pub fn simulate_edits(&self, count: u32, label: &str) -> Result<u32, rusqlite::Error> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut seq = inner.seq;
        let tx = inner.conn.transaction()?;
        let picked: Vec<ServerRecord> = tx
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE superseded IS NULL AND deleted = 0
                 ORDER BY seq LIMIT ?1"
            ))?
            .query_map([count], row_record)?
            .collect::<Result<_, _>>()?;
        for mut r in picked.iter().cloned() {
            let field = if r.entity == "account" {
                "name"
            } else {
                "notes"
            };
            r.fields
                .insert(field.into(), json!(format!("{label} ({})", r.id)));
            r.version += 1;
            write_record(&tx, &r, &mut seq)?;
        }
        tx.commit()?;
        inner.seq = seq;
        Ok(picked.len() as u32)
    }

    /// The last change sequence value handed out.
    pub fn change_sequence(&self) -> i64 {
        self.lock().seq
    }

    /// The change feed's head and how far behind it the devices' newest cursors are (the
    /// operator's `change_feed_*` metrics).
    pub fn feed_lag(&self) -> Result<FeedLag, rusqlite::Error> {
        let inner = self.lock();
        let (devices, oldest): (i64, Option<i64>) = inner.conn.query_row(
            "SELECT COUNT(*), MIN(newest) FROM
               (SELECT MAX(cursor) AS newest FROM cursors GROUP BY client_id)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(FeedLag {
            head: inner.seq,
            devices,
            max_behind: oldest.map_or(0, |c| (inner.seq - c).max(0)),
        })
    }

    /// Client mutations ever applied, as `(client_id, mutation_id, entity, id)`, in order. The
    /// audit log is never pruned (unlike the duplicate check's table): tests prove with it that no
    /// mutation was applied twice.
    pub fn audit(&self) -> Vec<(String, i64, String, String)> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare("SELECT client_id, mutation_id, entity, id FROM audit ORDER BY rowid")
            .expect("static SQL");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("static SQL")
            .collect::<Result<_, _>>()
            .expect("readable rows")
    }
}

impl Inner {
    fn generate(&mut self, n: u64, owners: &Owners) -> Result<(), rusqlite::Error> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO records (seq, entity, id, version, deleted, owner, unit, fields)
                 VALUES (?1, ?2, ?3, 1, 0, ?4, ?5, ?6)",
            )?;
            let headquarters = (String::new(), crate::admin::store::HEADQUARTERS.to_string());
            for i in 0..n {
                let (entity, id, fields) = generate::record(n, i);
                let account = generate::account_of(entity, &id, &fields);
                let (owner, unit) = match owners.len() {
                    0 => &headquarters,
                    len => &owners[(account as usize).saturating_sub(1) % len],
                };
                self.seq += 1;
                stmt.execute(params![
                    self.seq,
                    entity,
                    id,
                    owner,
                    unit,
                    fields.to_string()
                ])?;
            }
        }
        tx.commit()
    }

    /// A pull without a page token: its bounds, the scopes, the total.
    fn start_pull(
        &mut self,
        client_id: &str,
        scope: &Scope,
        cursor: Option<i64>,
    ) -> Result<PageToken, ApiError> {
        let refuse = |why: &str| Err(ApiError::bad_request("invalid_cursor", why));
        let held = match cursor {
            None => None,
            Some(c) if c < 0 || c > self.seq => {
                return refuse("the cursor is not one this server gave");
            }
            Some(c) if c < self.horizon()? => {
                return refuse("the cursor is older than the server's change history");
            }
            Some(c) => match self.cursor_scope(client_id, c)? {
                Some(id) => Some(id),
                None => return refuse("the server does not know this device's cursor"),
            },
        };
        let scope_id = self.intern_scope(scope)?;
        if self
            .cursor_scope(client_id, self.seq)?
            .is_some_and(|s| s != scope_id)
        {
            // The device may hold the head already with another scope (the answer of a pull
            // that ended there was lost, then a role or filter changed): this pull ends at a
            // sequence value no record takes, so the two cursors stay apart.
            self.seq += 1;
        }
        let mut token = PageToken {
            phase: Phase::Scope,
            after: 0,
            cursor,
            upper: self.seq,
            held,
            scope: scope_id,
            total: 0,
        };
        let held_scope = held.map(|id| self.load_scope(id)).transpose()?;
        let pull = Pull {
            token: &token,
            scope,
            held: held_scope.as_ref(),
        };
        token.total = pull.estimate(&self.conn)?;
        Ok(token)
    }

    /// The oldest cursor whose changes are still all known (history below it was pruned).
    fn horizon(&self) -> Result<i64, rusqlite::Error> {
        Ok(meta(&self.conn, "pruned_through")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    fn intern_scope(&self, scope: &Scope) -> Result<i64, rusqlite::Error> {
        let body = serde_json::to_string(scope).expect("json");
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO scopes (body) VALUES (?1)")?
            .execute([&body])?;
        self.conn
            .prepare_cached("SELECT id FROM scopes WHERE body = ?1")?
            .query_row([&body], |r| r.get(0))
    }

    fn load_scope(&self, id: i64) -> Result<Scope, ApiError> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM scopes WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        body.and_then(|b| serde_json::from_str(&b).ok())
            .ok_or_else(|| ApiError::bad_request("invalid_page_token", "unknown scope"))
    }

    /// The scope a device holds at `cursor`, if the server remembers that cursor.
    fn cursor_scope(&self, client_id: &str, cursor: i64) -> Result<Option<i64>, rusqlite::Error> {
        self.conn
            .prepare_cached("SELECT scope FROM cursors WHERE client_id = ?1 AND cursor = ?2")?
            .query_row(params![client_id, cursor], |r| r.get(0))
            .optional()
    }

    /// Records the scope a device holds at `cursor` (the end of a pull), keeping the last few.
    /// A cursor is never remembered with two scopes (`start_pull` keeps them apart): should two
    /// pulls of one device still end at one cursor with different scopes, it is forgotten, and
    /// the device's next pull with it resyncs rather than compare against the wrong scope.
    fn remember_cursor(&self, client_id: &str, cursor: i64, scope: i64) -> Result<(), ApiError> {
        if self
            .cursor_scope(client_id, cursor)?
            .is_some_and(|s| s != scope)
        {
            self.conn
                .prepare_cached("DELETE FROM cursors WHERE client_id = ?1 AND cursor = ?2")?
                .execute(params![client_id, cursor])?;
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO cursors (client_id, cursor, scope) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![client_id, cursor, scope])?;
        self.conn
            .prepare_cached(
                "DELETE FROM cursors WHERE client_id = ?1 AND cursor NOT IN
                 (SELECT cursor FROM cursors WHERE client_id = ?1 ORDER BY cursor DESC LIMIT ?2)",
            )?
            .execute(params![client_id, CURSORS_KEPT])?;
        Ok(())
    }
}

/// One pull's page planning: the scope it sends (fixed at its start) and the scope the device
/// held at its cursor.
struct Pull<'a> {
    token: &'a PageToken,
    scope: &'a Scope,
    held: Option<&'a Scope>,
}

/// One change as JSON text.
fn change_json(entity: &str, id: &str, version: i64, op: &str, fields: Option<&str>) -> String {
    let mut s = format!(
        "{{\"entity\":{},\"id\":{},\"version\":{version},\"op\":\"{op}\"",
        json_string(entity),
        json_string(id)
    );
    if let Some(f) = fields {
        s.push_str(",\"fields\":");
        s.push_str(f);
    }
    s.push('}');
    s
}

impl Pull<'_> {
    fn cursor(&self) -> i64 {
        self.token.cursor.unwrap_or(0)
    }

    /// The entities whose scope changed since the device's pull (none on an initial sync).
    fn changed(&self) -> Vec<String> {
        self.held
            .map(|held| held.changed_entities(self.scope))
            .unwrap_or_default()
    }

    fn phase_start(&self, phase: Phase) -> i64 {
        match phase {
            Phase::Scope => 0,
            Phase::Changes | Phase::Exits => self.cursor(),
        }
    }

    fn next_phase(&self, phase: Phase) -> Option<Phase> {
        match phase {
            Phase::Scope => Some(Phase::Changes),
            Phase::Changes if self.held.is_some() => Some(Phase::Exits),
            _ => None,
        }
    }

    /// How many changes the pull will send (progress): exact for the scope and changes phases,
    /// an upper bound for exits.
    fn estimate(&self, conn: &Connection) -> Result<u64, rusqlite::Error> {
        let mut total = 0i64;
        for (sql, args) in [
            self.scope_sql(true),
            self.changes_sql(true),
            self.exits_sql(true),
        ]
        .into_iter()
        .flatten()
        {
            let n: i64 = conn.query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?;
            total += n;
        }
        Ok(total as u64)
    }

    /// Records unchanged since the cursor whose membership differs between the held scope and
    /// this one: `(sql, args)`, args `[after, cursor, upper, limit]`.
    fn scope_sql(&self, count: bool) -> Option<(String, Vec<i64>)> {
        let held = self.held?;
        let changed = self.changed();
        if changed.is_empty() {
            return None;
        }
        let case = |pred: &dyn Fn(&str) -> String| {
            let mut s = String::from("(CASE entity");
            for e in &changed {
                s.push_str(&format!(" WHEN {} THEN coalesce({}, 0)", quote(e), pred(e)));
            }
            s.push_str(" ELSE 0 END)");
            s
        };
        let now = case(&|e| self.scope.entity_predicate(e));
        let before = case(&|e| held.entity_predicate(e));
        // An entity whose fields changed comes again whole (what the device keeps of it needs
        // the new values), beside what entered or left it.
        let resent = case(&|e| (held.resends(e, self.scope) as u8).to_string());
        let entities: Vec<String> = changed.iter().map(|e| quote(e)).collect();
        let filter = format!(
            "FROM records WHERE seq > ?1 AND seq <= ?2 AND (superseded IS NULL OR superseded > ?3)
             AND deleted = 0 AND entity IN ({}) AND ({now} <> {before} OR ({now} AND {resent}))",
            entities.join(",")
        );
        Some(if count {
            (
                format!("SELECT count(*) {filter}"),
                vec![0, self.cursor(), self.token.upper],
            )
        } else {
            (
                format!(
                    "SELECT entity, id, version, seq,
                     CASE WHEN {now} THEN 'upsert' ELSE 'remove' END, fields
                     {filter} ORDER BY seq LIMIT ?4"
                ),
                vec![0, self.cursor(), self.token.upper],
            )
        })
    }

    /// Records changed since the cursor that are in scope, one index range per entity merged by
    /// sequence (the server reads what the user may see, not the whole organization): args
    /// `[after, upper, tombstones, limit]`. The arms pick sequence numbers from covering indexes
    /// (`records_*_seq`: no row is read for an entity without a sync filter), and only the
    /// page's winners are read from the table.
    fn changes_sql(&self, count: bool) -> Option<(String, Vec<i64>)> {
        if self.scope.entities.is_empty() {
            return None;
        }
        let arms: Vec<String> = self
            .scope
            .entities
            .keys()
            .map(|e| {
                format!(
                    "SELECT seq FROM records
                     WHERE entity = {} AND {} AND seq > ?1 AND seq <= ?2
                     AND (superseded IS NULL OR superseded > ?2) AND (?3 OR deleted = 0)
                     ORDER BY seq{}",
                    quote(e),
                    self.scope.entity_predicate(e),
                    if count { "" } else { " LIMIT ?4" }
                )
            })
            .collect();
        let tombstones = self.token.cursor.is_some() as i64;
        let args = vec![self.cursor(), self.token.upper, tombstones];
        Some(if count {
            let counts: Vec<String> = arms
                .iter()
                .map(|a| format!("(SELECT count(*) FROM ({a}))"))
                .collect();
            (format!("SELECT {}", counts.join(" + ")), args)
        } else {
            let arms: Vec<String> = arms
                .iter()
                .map(|a| format!("SELECT * FROM ({a})"))
                .collect();
            (
                format!(
                    "SELECT r.entity, r.id, r.version, r.seq,
                     CASE WHEN r.deleted THEN 'delete' ELSE 'upsert' END, r.fields
                     FROM ({} ORDER BY seq LIMIT ?4) AS picked
                     JOIN records r ON r.seq = picked.seq ORDER BY r.seq",
                    arms.join(" UNION ALL ")
                ),
                args,
            )
        })
    }

    /// Candidates for removal: records the device held at the cursor (in the held scope, live)
    /// that changed within the pull; each is checked against its state at the pull's upper
    /// bound. Args `[after, cursor, upper, limit]`.
    fn exits_sql(&self, count: bool) -> Option<(String, Vec<i64>)> {
        let held = self.held?;
        let filter = format!(
            "FROM records WHERE superseded > ?1 AND superseded <= ?3 AND seq <= ?2
             AND deleted = 0 AND coalesce({}, 0)",
            held.predicate()
        );
        let args = vec![self.cursor(), self.cursor(), self.token.upper];
        Some(if count {
            (format!("SELECT count(*) {filter}"), args)
        } else {
            (
                format!("SELECT entity, id, superseded {filter} ORDER BY superseded LIMIT ?4"),
                args,
            )
        })
    }

    /// Up to `limit` changes from the token's position, and the token of the next page.
    fn page(
        &self,
        conn: &Connection,
        limit: usize,
    ) -> Result<(Vec<String>, Option<PageToken>), rusqlite::Error> {
        let mut out: Vec<String> = Vec::with_capacity(limit);
        let (mut phase, mut after) = (self.token.phase, self.token.after);
        loop {
            let want = limit - out.len();
            let (mut rows, end) = self.phase_rows(conn, phase, after, want)?;
            out.append(&mut rows);
            if let Some(position) = end {
                after = position;
                break;
            }
            match self.next_phase(phase) {
                Some(p) => {
                    phase = p;
                    after = self.phase_start(p);
                }
                None => return Ok((out, None)),
            }
            if out.len() == limit {
                break;
            }
        }
        let next = PageToken {
            phase,
            after,
            ..self.token.clone()
        };
        Ok((out, Some(next)))
    }

    /// Up to `want` changes of one phase after `after`; `Some(position)` when the phase has
    /// more.
    fn phase_rows(
        &self,
        conn: &Connection,
        phase: Phase,
        after: i64,
        want: usize,
    ) -> Result<(Vec<String>, Option<i64>), rusqlite::Error> {
        let fetch = want as i64 + 1;
        let mut out = Vec::new();
        match phase {
            Phase::Scope | Phase::Changes => {
                let sql = match phase {
                    Phase::Scope => self.scope_sql(false),
                    _ => self.changes_sql(false),
                };
                let Some((sql, mut args)) = sql else {
                    return Ok((out, None));
                };
                args[0] = after;
                args.push(fetch);
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                let mut last = after;
                // Rows are (entity, id, version, seq, op, fields), in sequence order.
                while let Some(row) = rows.next()? {
                    if out.len() == want {
                        return Ok((out, Some(last)));
                    }
                    let (entity, id): (String, String) = (row.get(0)?, row.get(1)?);
                    last = row.get(3)?;
                    let op = text(row, 4)?;
                    let fields = if op == "upsert" {
                        Some(text(row, 5)?)
                    } else {
                        None
                    };
                    out.push(change_json(&entity, &id, row.get(2)?, op, fields));
                }
            }
            Phase::Exits => {
                let Some((sql, mut args)) = self.exits_sql(false) else {
                    return Ok((out, None));
                };
                let at_upper = format!(
                    "SELECT version, coalesce({}, 0) FROM records
                     WHERE entity = ?1 AND id = ?2 AND seq > ?3 AND seq <= ?4
                     AND (superseded IS NULL OR superseded > ?4)",
                    self.scope.predicate()
                );
                let mut state = conn.prepare_cached(&at_upper)?;
                let mut stmt = conn.prepare_cached(&sql)?;
                // Candidates that stayed in scope were sent as changes (upserts or deletes):
                // read in batches until `want` removes are found or the candidates end.
                let mut position = after;
                loop {
                    args[0] = position;
                    let mut batch = args.clone();
                    batch.push(fetch);
                    let candidates: Vec<(String, String, i64)> = stmt
                        .query_map(rusqlite::params_from_iter(batch), |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<Result<_, _>>()?;
                    let exhausted = candidates.len() < fetch as usize;
                    for (entity, id, superseded) in candidates {
                        if out.len() == want {
                            return Ok((out, Some(position)));
                        }
                        position = superseded;
                        let now: Option<(i64, bool)> = state
                            .query_row(params![entity, id, self.cursor(), self.token.upper], |r| {
                                Ok((r.get(0)?, r.get(1)?))
                            })
                            .optional()?;
                        match now {
                            Some((_, true)) => {}
                            Some((version, false)) => {
                                out.push(change_json(&entity, &id, version, "remove", None))
                            }
                            None => {}
                        }
                    }
                    if exhausted {
                        break;
                    }
                }
            }
        }
        Ok((out, None))
    }
}

fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, rusqlite::Error> {
    row.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>, rusqlite::Error> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// A store from before versioned records (one row per record, no owner): its records become the
/// first versions, owned by no one at headquarters (organization-wide readers see them).
fn migrate_unversioned(conn: &Connection) -> Result<(), rusqlite::Error> {
    let old: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('records') WHERE name = 'fields'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    let versioned: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('records') WHERE name = 'superseded'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    if !old || versioned {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "BEGIN; ALTER TABLE records RENAME TO records_unversioned; {SCHEMA_SQL}
         INSERT INTO records (seq, entity, id, version, deleted, owner, unit, fields)
             SELECT seq, entity, id, version, deleted, '', 'Headquarters', fields
             FROM records_unversioned;
         DROP TABLE records_unversioned; COMMIT;"
    ))
}

/// Drops versions superseded more than [`HISTORY`] changes ago, a batch at a time.
fn prune_history(tx: &Transaction<'_>, seq: i64) -> Result<(), rusqlite::Error> {
    let through = seq - HISTORY;
    let done: i64 = meta(tx, "pruned_through")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if through - done < 4096 {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM records WHERE superseded IS NOT NULL AND superseded <= ?1",
        [through],
    )?;
    set_meta(tx, "pruned_through", &through.to_string())
}

fn read_record(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<Option<ServerRecord>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records
         WHERE entity = ?1 AND id = ?2 AND superseded IS NULL"
    ))?
    .query_row(params![entity, id], row_record)
    .optional()
}

/// Writes `r` as the record's new current version at the next sequence value.
fn write_record(conn: &Connection, r: &ServerRecord, seq: &mut i64) -> Result<(), rusqlite::Error> {
    *seq += 1;
    conn.prepare_cached(
        "UPDATE records SET superseded = ?3 WHERE entity = ?1 AND id = ?2 AND superseded IS NULL",
    )?
    .execute(params![r.entity, r.id, *seq])?;
    conn.prepare_cached(
        "INSERT INTO records (seq, entity, id, version, deleted, owner, unit, fields)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        *seq,
        r.entity,
        r.id,
        r.version,
        r.deleted,
        r.owner,
        r.unit,
        Value::Object(r.fields.clone()).to_string()
    ])?;
    Ok(())
}

fn conflict(mutation_id: i64, current: &ServerRecord) -> Value {
    json!({
        "mutation_id": mutation_id,
        "status": "conflict",
        "server": {
            "version": current.version,
            "deleted": current.deleted,
            "fields": if current.deleted { Value::Object(Map::new()) } else { Value::Object(current.fields.clone()) },
        },
    })
}

/// A refusal with its code from docs/protocol.md ("Rejections").
fn rejected(mutation_id: i64, code: &str, reason: impl Into<String>) -> Value {
    json!({"mutation_id": mutation_id, "status": "rejected", "code": code, "reason": reason.into()})
}

/// One push's context: its transaction, the schema, who pushes.
struct Push<'a> {
    tx: &'a Transaction<'a>,
    schema: &'a Schema,
    access: &'a Access,
    client_id: &'a str,
    blobs: &'a BlobStore,
}

/// Adds `"in_scope": false` to an applied (or duplicate) write of a record the user may not
/// read now, so the device drops it instead of keeping a record no pull will ever update
/// (docs/protocol.md, "POST /push").
fn mark_out_of_scope(
    tx: &Connection,
    scope: &Scope,
    m: &Value,
    result: &mut Value,
) -> Result<(), rusqlite::Error> {
    let written = matches!(result["status"].as_str(), Some("applied" | "duplicate"))
        && m["op"].as_str() != Some("delete");
    let (Some(entity), Some(id)) = (m["entity"].as_str(), m["id"].as_str()) else {
        return Ok(());
    };
    if !written {
        return Ok(());
    }
    let readable: bool = tx
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM records WHERE entity = ?1 AND id = ?2
             AND superseded IS NULL AND deleted = 0 AND coalesce({}, 0))",
            scope.entity_predicate(entity)
        ))?
        .query_row(params![entity, id], |r| r.get(0))?;
    if !readable {
        result["in_scope"] = json!(false);
    }
    Ok(())
}

/// The live attachments of one record.
fn attachments_of(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<Vec<ServerRecord>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE entity = '{ATTACHMENT}'
         AND superseded IS NULL AND deleted = 0
         AND sv_field(fields, 'record_id') = ?2 AND sv_field(fields, 'record_entity') = ?1"
    ))?
    .query_map(params![entity, id], row_record)?
    .collect()
}

/// Who may change an attachment: the user's privileges on its record, and the record's owner and
/// unit (which the attachment carries).
struct Rights {
    grant: Grant,
    owner: String,
    unit: String,
}

impl Push<'_> {
    /// Applies one mutation (or answers why not) inside the push's transaction.
    fn apply(&self, mutation_id: i64, m: &Value, seq: &mut i64) -> Result<Value, ApiError> {
        let tx = self.tx;
        let done: Option<Option<i64>> = tx
            .prepare_cached(
                "SELECT version FROM applied WHERE client_id = ?1 AND mutation_id = ?2",
            )?
            .query_row(params![self.client_id, mutation_id], |r| r.get(0))
            .optional()?;
        if let Some(version) = done {
            return Ok(
                json!({"mutation_id": mutation_id, "status": "duplicate", "version": version}),
            );
        }
        let (Some(entity), Some(id), Some(op)) =
            (m["entity"].as_str(), m["id"].as_str(), m["op"].as_str())
        else {
            return Ok(rejected(
                mutation_id,
                "invalid_mutation",
                "entity, id and op are required",
            ));
        };
        if self.schema.entity(entity).is_none() {
            return Ok(rejected(
                mutation_id,
                "unknown_entity",
                format!("unknown entity {entity:?}"),
            ));
        }
        if id.is_empty() || id.len() > 128 {
            return Ok(rejected(
                mutation_id,
                "invalid_mutation",
                "ids are 1 to 128 characters",
            ));
        }
        let empty = Map::new();
        let fields = match &m["fields"] {
            Value::Object(f) => f,
            Value::Null => &empty,
            _ => {
                return Ok(rejected(
                    mutation_id,
                    "invalid_mutation",
                    "fields must be an object",
                ));
            }
        };
        if let Err(r) = self.schema.check_fields(entity, fields) {
            return Ok(rejected(mutation_id, r.code, r.reason));
        }
        let forbidden = |what: &str| {
            Ok(rejected(
                mutation_id,
                "forbidden",
                format!("you may not {what} this {entity}"),
            ))
        };
        let base = m["base_version"].as_i64();
        let current = read_record(tx, entity, id)?;
        let rights = if entity == ATTACHMENT {
            match self.attachment_rights(op, fields, current.as_ref())? {
                Ok(rights) => rights,
                Err((code, reason)) => return Ok(rejected(mutation_id, code, reason)),
            }
        } else {
            Rights {
                grant: self.access.grants.get(entity).copied().unwrap_or_default(),
                owner: self.access.user.clone(),
                unit: self.access.unit.clone(),
            }
        };
        let grant = rights.grant;
        // Privileges first: a record the user may not touch is never shown in a conflict.
        let reach = match op {
            "create" => grant.create,
            "update" => grant.write,
            "delete" => grant.delete,
            _ => None,
        };
        let allowed = |r: &ServerRecord| self.access.covers(reach, &r.owner, &r.unit);
        let version = match (op, current) {
            ("create", _) if reach.is_none() => return forbidden("create"),
            ("create", Some(current))
                if !self
                    .access
                    .covers(grant.read, &current.owner, &current.unit) =>
            {
                return forbidden("create");
            }
            ("create", Some(current)) => return Ok(conflict(mutation_id, &current)),
            ("create", None) => {
                let record = ServerRecord {
                    entity: entity.into(),
                    id: id.into(),
                    version: 1,
                    deleted: false,
                    owner: rights.owner,
                    unit: rights.unit,
                    fields: fields.clone(),
                };
                write_record(tx, &record, seq)?;
                Some(1)
            }
            ("update", None) => return Ok(rejected(mutation_id, "not_found", "no such record")),
            ("update", Some(current)) if !allowed(&current) => return forbidden("change"),
            ("delete", Some(current)) if !current.deleted && !allowed(&current) => {
                return forbidden("delete");
            }
            ("update" | "delete", Some(current)) if base != Some(current.version) => {
                return Ok(conflict(mutation_id, &current));
            }
            ("update", Some(mut current)) => {
                // On a tombstone with the right base version this revives the record.
                current.fields.extend(fields.clone());
                current.deleted = false;
                current.version += 1;
                write_record(tx, &current, seq)?;
                Some(current.version)
            }
            ("delete", None) => None,
            ("delete", Some(current)) if current.deleted => Some(current.version),
            ("delete", Some(mut current)) => {
                current.deleted = true;
                current.version += 1;
                write_record(tx, &current, seq)?;
                // A record's attachments go with it.
                for mut a in attachments_of(tx, entity, id)? {
                    a.deleted = true;
                    a.version += 1;
                    write_record(tx, &a, seq)?;
                }
                Some(current.version)
            }
            _ => {
                return Ok(rejected(
                    mutation_id,
                    "invalid_mutation",
                    format!("unknown op {op:?}"),
                ));
            }
        };
        tx.prepare_cached(
            "INSERT INTO applied (client_id, mutation_id, version) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![self.client_id, mutation_id, version])?;
        tx.prepare_cached(
            "INSERT INTO audit (client_id, mutation_id, entity, id) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![self.client_id, mutation_id, entity, id])?;
        Ok(json!({"mutation_id": mutation_id, "status": "applied", "version": version}))
    }

    /// An attachment is changed as its record allows: creating, replacing or deleting one needs
    /// the write privilege on the record; it stays with its record; its content must be on the
    /// server (uploaded first). `Err` inside: the refusal's code and reason.
    fn attachment_rights(
        &self,
        op: &str,
        fields: &Map<String, Value>,
        current: Option<&ServerRecord>,
    ) -> Result<Result<Rights, (&'static str, String)>, ApiError> {
        let text = |map: &Map<String, Value>, name: &str| {
            map.get(name).and_then(Value::as_str).map(str::to_string)
        };
        let named = (text(fields, "record_entity"), text(fields, "record_id"));
        let parent = match (current, named) {
            (Some(c), named) => {
                let held = (
                    text(&c.fields, "record_entity"),
                    text(&c.fields, "record_id"),
                );
                let moved =
                    |new: &Option<String>, old: &Option<String>| new.is_some() && new != old;
                if moved(&named.0, &held.0) || moved(&named.1, &held.1) {
                    return Ok(Err((
                        "invalid_field",
                        "an attachment stays with its record".into(),
                    )));
                }
                held
            }
            (None, named) => named,
        };
        let (Some(parent_entity), Some(parent_id)) = parent else {
            return Ok(Err((
                "invalid_mutation",
                "an attachment names its record_entity and record_id".into(),
            )));
        };
        if parent_entity == ATTACHMENT || self.schema.entity(&parent_entity).is_none() {
            return Ok(Err((
                "invalid_field",
                format!("unknown entity {parent_entity:?}"),
            )));
        }
        let record = read_record(self.tx, &parent_entity, &parent_id)?.filter(|r| !r.deleted);
        let Some(record) = record else {
            if op == "delete" {
                // The record is gone, and its attachments with it: nothing left to refuse.
                let c = current.map(|c| (c.owner.clone(), c.unit.clone()));
                let (owner, unit) = c.unwrap_or_default();
                let all = Some(Reach::Organization);
                return Ok(Ok(Rights {
                    grant: Grant {
                        delete: all,
                        write: all,
                        ..Grant::default()
                    },
                    owner,
                    unit,
                }));
            }
            return Ok(Err((
                "not_found",
                format!("no {parent_entity} {parent_id:?} to attach to"),
            )));
        };
        let write = self.access.grants.get(&parent_entity).and_then(|g| g.write);
        if !self.access.covers(write, &record.owner, &record.unit) {
            return Ok(Err((
                "forbidden",
                format!("you may not change this {parent_entity}'s attachments"),
            )));
        }
        if op != "delete"
            && let Some(sha) = fields.get("sha256").and_then(Value::as_str)
        {
            let size = fields
                .get("size")
                .or_else(|| current.and_then(|c| c.fields.get("size")))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if !self.blobs.held_for(&self.access.user, sha, size) {
                return Ok(Err((
                    "attachment_content_missing",
                    "upload the attachment's content before its record".into(),
                )));
            }
        } else if op == "create" {
            return Ok(Err((
                "invalid_mutation",
                "an attachment needs its sha256 and size".into(),
            )));
        }
        let read = self.access.grants.get(&parent_entity).and_then(|g| g.read);
        Ok(Ok(Rights {
            grant: Grant {
                read,
                create: write,
                write,
                delete: write,
            },
            owner: record.owner,
            unit: record.unit,
        }))
    }
}
