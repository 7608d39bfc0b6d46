//! The organization's records in the server's own SQLite database: one row per record with its
//! version and the global change sequence it was last written at (the pull cursor), tombstones
//! for deletes, and the mutation ids each client has had applied (so a retried push is answered
//! `duplicate`, never applied twice).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value, json};

use super::{generate, schema};

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
    fn internal(err: rusqlite::Error) -> Self {
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

/// A record as the server holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    pub entity: String,
    pub id: String,
    pub version: i64,
    pub deleted: bool,
    pub fields: Map<String, Value>,
}

/// The server's record store.
pub struct DataStore {
    inner: Mutex<Inner>,
}

struct Inner {
    conn: Connection,
    /// The last change sequence handed out.
    seq: i64,
}

/// The decoded page token: where the page starts, the pull's upper bound, its total, whether
/// tombstones are sent (not on an initial sync).
struct PageToken {
    after: i64,
    upper: i64,
    total: u64,
    tombstones: bool,
}

impl PageToken {
    fn encode(&self) -> String {
        format!(
            "v1.{}.{}.{}.{}",
            self.after, self.upper, self.total, self.tombstones as u8
        )
    }
    fn decode(s: &str, max_seq: i64) -> Option<PageToken> {
        let mut parts = s.strip_prefix("v1.")?.split('.');
        let t = PageToken {
            after: parts.next()?.parse().ok()?,
            upper: parts.next()?.parse().ok()?,
            total: parts.next()?.parse().ok()?,
            tombstones: parts.next()? == "1",
        };
        (parts.next().is_none() && 0 <= t.after && t.after <= t.upper && t.upper <= max_seq)
            .then_some(t)
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

impl DataStore {
    /// Opens `dir/org.db` (or an in-memory database) and fills an empty one with `records`
    /// generated records.
    pub fn open(dir: Option<&Path>, records: u64) -> Result<DataStore, rusqlite::Error> {
        let conn = match dir {
            Some(dir) => {
                let _ = std::fs::create_dir_all(dir);
                Connection::open(dir.join("org.db"))?
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS records (
                 entity TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
                 seq INTEGER NOT NULL UNIQUE, deleted INTEGER NOT NULL DEFAULT 0,
                 fields TEXT NOT NULL, PRIMARY KEY (entity, id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS applied (
                 client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL, version INTEGER,
                 PRIMARY KEY (client_id, mutation_id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS audit (
                 client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL,
                 entity TEXT NOT NULL, id TEXT NOT NULL);",
        )?;
        let seq: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM records", [], |r| {
            r.get(0)
        })?;
        let mut inner = Inner { conn, seq };
        if seq == 0 && records > 0 {
            inner.generate(records)?;
        }
        Ok(DataStore {
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One page of changes, as the response body (built as text: the stored fields are already
    /// JSON and are not parsed again).
    pub fn pull(
        &self,
        cursor: Option<i64>,
        page_token: Option<&str>,
        limit: u32,
    ) -> Result<String, ApiError> {
        let inner = self.lock();
        let limit = limit.clamp(1, MAX_PAGE);
        let token = match page_token {
            Some(t) => PageToken::decode(t, inner.seq).ok_or_else(|| {
                ApiError::bad_request("invalid_page_token", "the page token is not valid")
            })?,
            None => {
                let after = cursor.unwrap_or(0);
                if after < 0 || after > inner.seq {
                    return Err(ApiError::bad_request(
                        "invalid_cursor",
                        "the cursor is not one this server gave",
                    ));
                }
                let tombstones = cursor.is_some();
                let total: i64 = inner.conn.query_row(
                    "SELECT count(*) FROM records WHERE seq > ?1 AND (?2 OR deleted = 0)",
                    params![after, tombstones],
                    |r| r.get(0),
                )?;
                PageToken {
                    after,
                    upper: inner.seq,
                    total: total as u64,
                    tombstones,
                }
            }
        };
        let mut stmt = inner.conn.prepare_cached(
            "SELECT entity, id, version, seq, deleted, fields FROM records
             WHERE seq > ?1 AND seq <= ?2 AND (?3 OR deleted = 0) ORDER BY seq LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![
            token.after,
            token.upper,
            token.tombstones,
            limit as i64 + 1
        ])?;
        let mut body = String::with_capacity(limit as usize * 400);
        body.push_str("{\"changes\":[");
        let (mut count, mut last_seq, mut more) = (0u32, token.after, false);
        while let Some(row) = rows.next()? {
            if count == limit {
                more = true;
                break;
            }
            let (entity, id): (String, String) = (row.get(0)?, row.get(1)?);
            let version: i64 = row.get(2)?;
            last_seq = row.get(3)?;
            let deleted: bool = row.get(4)?;
            if count > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                "{{\"entity\":{},\"id\":{},\"version\":{version},\"op\":\"{}\"",
                json_string(&entity),
                json_string(&id),
                if deleted { "delete" } else { "upsert" }
            ));
            if !deleted {
                body.push_str(",\"fields\":");
                body.push_str(row.get_ref(5)?.as_str().map_err(|e| {
                    ApiError::internal(rusqlite::Error::FromSqlConversionFailure(
                        5,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    ))
                })?);
            }
            body.push('}');
            count += 1;
        }
        body.push_str("],");
        if more {
            let next = PageToken {
                after: last_seq,
                ..token
            };
            body.push_str(&format!(
                "\"page_token\":{},\"cursor\":null",
                json_string(&next.encode())
            ));
        } else {
            body.push_str(&format!("\"page_token\":null,\"cursor\":{}", token.upper));
        }
        body.push_str(&format!(",\"estimated_total\":{}}}", token.total));
        Ok(body)
    }

    /// Applies a client's mutations in order, in one transaction; returns one result each.
    pub fn push(&self, client_id: &str, mutations: &[Value]) -> Result<Vec<Value>, ApiError> {
        if mutations.len() > MAX_MUTATIONS {
            return Err(ApiError {
                status: 413,
                code: "too_many_mutations",
                description: format!("at most {MAX_MUTATIONS} mutations per push"),
            });
        }
        let mut inner = self.lock();
        let mut seq = inner.seq;
        let tx = inner.conn.transaction()?;
        let mut results = Vec::with_capacity(mutations.len());
        let mut lowest = i64::MAX;
        for m in mutations {
            let mutation_id = m["mutation_id"].as_i64().ok_or_else(|| {
                ApiError::bad_request("invalid_request", "every mutation needs a mutation_id")
            })?;
            lowest = lowest.min(mutation_id);
            results.push(apply_one(&tx, client_id, mutation_id, m, &mut seq)?);
        }
        // Every mutation below the lowest one sent was acknowledged by the client (it sends its
        // outbox in order): their ids are no longer needed.
        tx.execute(
            "DELETE FROM applied WHERE client_id = ?1 AND mutation_id < ?2",
            params![client_id, lowest],
        )?;
        tx.commit()?;
        inner.seq = seq;
        Ok(results)
    }

    /// One record, tombstones included (tests and the demo look at the server's side).
    pub fn get(&self, entity: &str, id: &str) -> Option<ServerRecord> {
        read_record(&self.lock().conn, entity, id).ok().flatten()
    }

    /// Every live record, ordered by entity and id.
    pub fn live_records(&self) -> Vec<ServerRecord> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare("SELECT entity, id, version, fields FROM records WHERE deleted = 0 ORDER BY entity, id")
            .expect("static SQL");
        stmt.query_map([], |r| {
            let fields: String = r.get(3)?;
            Ok(ServerRecord {
                entity: r.get(0)?,
                id: r.get(1)?,
                version: r.get(2)?,
                deleted: false,
                fields: serde_json::from_str(&fields).unwrap_or_default(),
            })
        })
        .expect("static SQL")
        .collect::<Result<_, _>>()
        .expect("readable rows")
    }

    /// An edit by another user of the organization (changed fields only); returns the version.
    pub fn edit(&self, entity: &str, id: &str, fields: Map<String, Value>) -> Option<i64> {
        let mut inner = self.lock();
        let mut seq = inner.seq;
        let current = read_record(&inner.conn, entity, id).ok().flatten()?;
        let mut merged = current.fields;
        merged.extend(fields);
        let version = current.version + 1;
        write_record(&inner.conn, entity, id, version, false, &merged, &mut seq).ok()?;
        inner.seq = seq;
        Some(version)
    }

    /// A delete by another user of the organization.
    pub fn delete(&self, entity: &str, id: &str) -> Option<i64> {
        let mut inner = self.lock();
        let mut seq = inner.seq;
        let current = read_record(&inner.conn, entity, id).ok().flatten()?;
        let version = current.version + 1;
        write_record(
            &inner.conn,
            entity,
            id,
            version,
            true,
            &current.fields,
            &mut seq,
        )
        .ok()?;
        inner.seq = seq;
        Some(version)
    }

    /// Other users at work: changes the `notes` (or `name`) of the `count` records written
    /// longest ago, in one transaction. Returns how many changed.
    pub fn simulate_edits(&self, count: u32, label: &str) -> Result<u32, rusqlite::Error> {
        let mut inner = self.lock();
        let mut seq = inner.seq;
        let tx = inner.conn.transaction()?;
        let picked: Vec<(String, String)> = tx
            .prepare("SELECT entity, id FROM records WHERE deleted = 0 ORDER BY seq LIMIT ?1")?
            .query_map([count], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (entity, id) in &picked {
            let current = read_record(&tx, entity, id)?.expect("just selected");
            let mut fields = current.fields;
            let field = if entity == "account" { "name" } else { "notes" };
            fields.insert(field.into(), json!(format!("{label} ({id})")));
            write_record(
                &tx,
                entity,
                id,
                current.version + 1,
                false,
                &fields,
                &mut seq,
            )?;
        }
        tx.commit()?;
        inner.seq = seq;
        Ok(picked.len() as u32)
    }

    /// How many mutations have been applied in all (each exactly once).
    pub fn change_sequence(&self) -> i64 {
        self.lock().seq
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
    fn generate(&mut self, n: u64) -> Result<(), rusqlite::Error> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO records (entity, id, version, seq, deleted, fields)
                 VALUES (?1, ?2, 1, ?3, 0, ?4)",
            )?;
            for i in 0..n {
                let (entity, id, fields) = generate::record(n, i);
                self.seq += 1;
                stmt.execute(params![entity, id, self.seq, fields.to_string()])?;
            }
        }
        tx.commit()
    }
}

fn read_record(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<Option<ServerRecord>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT version, deleted, fields FROM records WHERE entity = ?1 AND id = ?2",
    )?
    .query_row(params![entity, id], |r| {
        let fields: String = r.get(2)?;
        Ok(ServerRecord {
            entity: entity.to_string(),
            id: id.to_string(),
            version: r.get(0)?,
            deleted: r.get(1)?,
            fields: serde_json::from_str(&fields).unwrap_or_default(),
        })
    })
    .optional()
}

fn write_record(
    conn: &Connection,
    entity: &str,
    id: &str,
    version: i64,
    deleted: bool,
    fields: &Map<String, Value>,
    seq: &mut i64,
) -> Result<(), rusqlite::Error> {
    *seq += 1;
    conn.prepare_cached(
        "INSERT INTO records (entity, id, version, seq, deleted, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (entity, id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
             deleted = excluded.deleted, fields = excluded.fields",
    )?
    .execute(params![
        entity,
        id,
        version,
        *seq,
        deleted,
        Value::Object(fields.clone()).to_string()
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

/// Applies one mutation (or answers why not) inside the push's transaction.
fn apply_one(
    tx: &Transaction<'_>,
    client_id: &str,
    mutation_id: i64,
    m: &Value,
    seq: &mut i64,
) -> Result<Value, ApiError> {
    let done: Option<Option<i64>> = tx
        .prepare_cached("SELECT version FROM applied WHERE client_id = ?1 AND mutation_id = ?2")?
        .query_row(params![client_id, mutation_id], |r| r.get(0))
        .optional()?;
    if let Some(version) = done {
        return Ok(json!({"mutation_id": mutation_id, "status": "duplicate", "version": version}));
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
    if !schema::known_entity(entity) {
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
    if let Err(r) = schema::check_fields(entity, fields) {
        return Ok(rejected(mutation_id, r.code, r.reason));
    }
    let base = m["base_version"].as_i64();
    let current = read_record(tx, entity, id)?;
    let version = match (op, current) {
        ("create", Some(current)) => return Ok(conflict(mutation_id, &current)),
        ("create", None) => {
            write_record(tx, entity, id, 1, false, fields, seq)?;
            Some(1)
        }
        ("update", None) => return Ok(rejected(mutation_id, "not_found", "no such record")),
        ("update" | "delete", Some(current)) if base != Some(current.version) => {
            return Ok(conflict(mutation_id, &current));
        }
        ("update", Some(current)) => {
            // On a tombstone with the right base version this revives the record.
            let mut merged = current.fields;
            merged.extend(fields.clone());
            write_record(tx, entity, id, current.version + 1, false, &merged, seq)?;
            Some(current.version + 1)
        }
        ("delete", None) => None,
        ("delete", Some(current)) if current.deleted => Some(current.version),
        ("delete", Some(current)) => {
            write_record(
                tx,
                entity,
                id,
                current.version + 1,
                true,
                &current.fields,
                seq,
            )?;
            Some(current.version + 1)
        }
        _ => {
            return Ok(rejected(
                mutation_id,
                "invalid_mutation",
                format!("unknown op {op:?}"),
            ));
        }
    };
    tx.prepare_cached("INSERT INTO applied (client_id, mutation_id, version) VALUES (?1, ?2, ?3)")?
        .execute(params![client_id, mutation_id, version])?;
    tx.prepare_cached(
        "INSERT INTO audit (client_id, mutation_id, entity, id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![client_id, mutation_id, entity, id])?;
    Ok(json!({"mutation_id": mutation_id, "status": "applied", "version": version}))
}
