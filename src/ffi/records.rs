//! The local data API: read, query and search records, and edit them offline (each edit is queued
//! for the next Synchronize), plus the conflicts an app resolves. Records cross the FFI as
//! immutable values with typed fields.

use std::collections::HashMap;

use serde_json::{Map, Value};

use rusqlite::Connection;

use crate::ffi::sync_state::{RecordSyncState, describe};
use crate::ffi::{SyncClient, SyncError};
use crate::store::StoreError;
use crate::store::conflicts::{self, AppDecision, Conflict};
use crate::store::entities::{self, FieldType, Query, Record};
use crate::store::outbox::{self, Snapshot};

/// One field value.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum FieldValue {
    Null,
    /// Text, timestamps (RFC 3339) and references (a record id).
    Text {
        value: String,
    },
    Integer {
        value: i64,
    },
    Real {
        value: f64,
    },
    Boolean {
        value: bool,
    },
}

/// A record as stored on the device.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncRecord {
    pub entity: String,
    pub id: String,
    /// The server version this record stands on (0: created offline, not yet synchronized).
    pub version: i64,
    pub fields: HashMap<String, FieldValue>,
    /// Where the record stands with the server (pending upload, conflict, sync error).
    pub sync_state: RecordSyncState,
}

/// One field of an entity, for building forms and parsing input.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldInfo {
    pub name: String,
    pub kind: FieldType,
    /// Included in full-text search.
    pub searchable: bool,
    /// For references: the entity referred to.
    pub references: Option<String>,
    /// Indexed for `orderBy`: a list page ordered by it stays quick at any store size.
    pub sortable: bool,
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct RecordQuery {
    /// Field equals value, all of which must hold.
    #[uniffi(default)]
    pub filters: HashMap<String, FieldValue>,
    /// Full-text search over the entity's searchable fields (a trailing prefix matches).
    /// Without `order_by`, matches come in the order they were stored (fast for a first page).
    #[uniffi(default = None)]
    pub search: Option<String>,
    /// Sort by this field (then by id).
    #[uniffi(default = None)]
    pub order_by: Option<String>,
    #[uniffi(default = false)]
    pub descending: bool,
    #[uniffi(default = None)]
    pub limit: Option<u32>,
    #[uniffi(default = 0)]
    pub offset: u32,
}

/// A conflict the app must settle: the local edit, the server's record, and the common base.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConflictInfo {
    pub id: i64,
    pub entity: String,
    pub record_id: String,
    /// The fields the local edits set (empty for a delete).
    pub local_fields: HashMap<String, FieldValue>,
    pub local_deleted: bool,
    /// The server's record now (None if the server deleted it).
    pub server_fields: Option<HashMap<String, FieldValue>>,
    pub server_version: i64,
    /// The server's record when the local edit started (None for a record created offline).
    pub base_fields: Option<HashMap<String, FieldValue>>,
}

/// How to settle a conflict.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ConflictResolution {
    /// Send the local edit again, over the server's record.
    KeepLocal,
    /// Drop the local edit.
    KeepServer,
    /// Send these fields over the server's record.
    Merge { fields: HashMap<String, FieldValue> },
}

impl RecordQuery {
    /// The store's form of the query (values checked).
    pub(crate) fn into_store_query(self) -> Result<Query, SyncError> {
        Ok(Query {
            filters: fields_to_json(self.filters)?.into_iter().collect(),
            search: self.search,
            order_by: self.order_by,
            descending: self.descending,
            limit: self.limit,
            offset: self.offset,
        })
    }
}

impl From<Value> for FieldValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => FieldValue::Null,
            Value::Bool(b) => FieldValue::Boolean { value: b },
            Value::Number(n) => match n.as_i64() {
                Some(i) => FieldValue::Integer { value: i },
                None => FieldValue::Real {
                    value: n.as_f64().unwrap_or(0.0),
                },
            },
            // Moved, not copied: a list page's text crosses to the app without a second copy.
            Value::String(s) => FieldValue::Text { value: s },
            other => FieldValue::Text {
                value: other.to_string(),
            },
        }
    }
}

impl From<&Value> for FieldValue {
    fn from(v: &Value) -> Self {
        v.clone().into()
    }
}

fn to_json(v: FieldValue) -> Result<Value, SyncError> {
    Ok(match v {
        FieldValue::Null => Value::Null,
        FieldValue::Text { value } => Value::String(value),
        FieldValue::Integer { value } => Value::from(value),
        FieldValue::Real { value } => serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| SyncError::InvalidInput {
                reason: "a real field must be a finite number".into(),
            })?,
        FieldValue::Boolean { value } => Value::Bool(value),
    })
}

/// Converts app fields to the store's JSON map.
pub fn fields_to_json(
    fields: HashMap<String, FieldValue>,
) -> Result<Map<String, Value>, SyncError> {
    fields
        .into_iter()
        .map(|(k, v)| Ok((k, to_json(v)?)))
        .collect()
}

/// Converts stored fields to the app's typed map.
pub fn fields_from_json(fields: &Map<String, Value>) -> HashMap<String, FieldValue> {
    fields_into(fields.clone())
}

/// As [`fields_from_json`], taking the fields: names and text are moved, not copied.
pub fn fields_into(fields: Map<String, Value>) -> HashMap<String, FieldValue> {
    fields.into_iter().map(|(k, v)| (k, v.into())).collect()
}

/// A stored record as the app sees it, with its sync state.
pub(crate) fn record(conn: &Connection, entity: &str, r: Record) -> Result<SyncRecord, SyncError> {
    Ok(SyncRecord {
        sync_state: describe(conn, entity, &r.id, r.state)?,
        entity: entity.to_string(),
        id: r.id,
        version: r.version,
        fields: fields_into(r.fields),
    })
}

/// Runs a query and gives each record its sync state.
pub(crate) fn run_query(
    conn: &Connection,
    entity: &str,
    query: &Query,
) -> Result<Vec<SyncRecord>, SyncError> {
    entities::query(conn, entity, query)?
        .into_iter()
        .map(|r| record(conn, entity, r))
        .collect()
}

fn snapshot_fields(s: &Option<Snapshot>) -> Option<HashMap<String, FieldValue>> {
    s.as_ref()
        .filter(|s| !s.deleted)
        .map(|s| fields_from_json(&s.fields))
}

fn conflict_info(c: Conflict) -> ConflictInfo {
    ConflictInfo {
        id: c.id,
        entity: c.entity,
        record_id: c.record_id,
        local_fields: fields_from_json(&c.local.fields),
        local_deleted: c.local.deleted,
        server_fields: snapshot_fields(&c.server),
        server_version: c.server.as_ref().map_or(0, |s| s.version),
        base_fields: snapshot_fields(&c.base),
    }
}

impl SyncClient {
    /// Runs `work` in one transaction of the unlocked store.
    pub(crate) async fn in_transaction<T, F>(&self, work: F) -> Result<T, SyncError>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<T, SyncError> + Send + 'static,
        T: Send + 'static,
    {
        self.with_account(|a| {
            let conn = a.store()?.conn_mut();
            let tx = conn.transaction().map_err(StoreError::classify)?;
            let value = work(&tx)?;
            tx.commit().map_err(StoreError::classify)?;
            Ok(value)
        })
        .await
    }
}

#[uniffi::export]
impl SyncClient {
    /// One record, or None.
    pub async fn get_record(
        &self,
        entity: String,
        id: String,
    ) -> Result<Option<SyncRecord>, SyncError> {
        self.with_account(move |a| {
            let conn = a.store()?.conn();
            entities::get(conn, &entity, &id)?
                .map(|r| record(conn, &entity, r))
                .transpose()
        })
        .await
    }

    /// Records matching `query` (filters, full-text search, sort, paging).
    pub async fn query_records(
        &self,
        entity: String,
        query: RecordQuery,
    ) -> Result<Vec<SyncRecord>, SyncError> {
        let q = query.into_store_query()?;
        self.with_account(move |a| run_query(a.store()?.conn(), &entity, &q))
            .await
    }

    /// Full-text search (search as you type: the last word is a prefix); matches in the order
    /// they were stored, so a first page is quick at any store size.
    pub async fn search_records(
        &self,
        entity: String,
        text: String,
        limit: u32,
    ) -> Result<Vec<SyncRecord>, SyncError> {
        let query = RecordQuery {
            search: Some(text),
            limit: Some(limit),
            ..Default::default()
        };
        self.query_records(entity, query).await
    }

    /// The entities the organization's schema defines (known after the first Synchronize).
    pub async fn entities(&self) -> Result<Vec<String>, SyncError> {
        self.with_account(|a| {
            Ok(entities::load_schemas(a.store()?.conn())?
                .into_iter()
                .map(|s| s.name)
                .collect())
        })
        .await
    }

    /// The fields of one entity.
    pub async fn entity_fields(&self, entity: String) -> Result<Vec<FieldInfo>, SyncError> {
        self.with_account(move |a| {
            let schema = entities::load_schema(a.store()?.conn(), &entity)?
                .ok_or(entities::EntityError::UnknownEntity(entity))?;
            Ok(schema
                .fields
                .into_iter()
                .map(|f| FieldInfo {
                    name: f.name,
                    kind: f.kind,
                    searchable: f.searchable,
                    references: f.references,
                    sortable: f.sortable,
                })
                .collect())
        })
        .await
    }

    /// How many records of `entity` are on the device.
    pub async fn count_records(&self, entity: String) -> Result<u64, SyncError> {
        self.with_account(move |a| Ok(entities::count(a.store()?.conn(), &entity)?))
            .await
    }

    /// Creates a record offline and queues it; returns its new id.
    pub async fn create_record(
        &self,
        entity: String,
        fields: HashMap<String, FieldValue>,
    ) -> Result<String, SyncError> {
        let fields = fields_to_json(fields)?;
        self.in_transaction(move |c| Ok(outbox::create(c, &entity, fields)?))
            .await
    }

    /// Changes some fields of a record offline and queues the change.
    pub async fn update_record(
        &self,
        entity: String,
        id: String,
        fields: HashMap<String, FieldValue>,
    ) -> Result<(), SyncError> {
        let fields = fields_to_json(fields)?;
        self.in_transaction(move |c| Ok(outbox::update(c, &entity, &id, fields)?))
            .await
    }

    /// Deletes a record offline and queues the delete.
    pub async fn delete_record(&self, entity: String, id: String) -> Result<(), SyncError> {
        self.in_transaction(move |c| Ok(outbox::delete(c, &entity, &id)?))
            .await
    }

    /// Conflicts waiting for the app's decision, oldest first.
    pub async fn conflicts(&self) -> Result<Vec<ConflictInfo>, SyncError> {
        self.with_account(|a| {
            Ok(conflicts::pending(a.store()?.conn())?
                .into_iter()
                .map(conflict_info)
                .collect())
        })
        .await
    }

    /// Settles a conflict; what it queues goes up with the next Synchronize.
    pub async fn resolve_conflict(
        &self,
        conflict_id: i64,
        resolution: ConflictResolution,
    ) -> Result<(), SyncError> {
        let decision = match resolution {
            ConflictResolution::KeepLocal => AppDecision::KeepLocal,
            ConflictResolution::KeepServer => AppDecision::KeepServer,
            ConflictResolution::Merge { fields } => AppDecision::Merge(fields_to_json(fields)?),
        };
        self.in_transaction(move |c| Ok(conflicts::resolve(c, conflict_id, decision)?))
            .await
    }
}
