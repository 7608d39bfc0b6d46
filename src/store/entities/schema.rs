//! The organization's schema as the store keeps it: entities, their typed fields, and the rules
//! a name must follow before it becomes an SQL identifier.

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::EntityError;
use crate::store::StoreError;

/// The type of one field, as the protocol's schema names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Integer,
    Real,
    Boolean,
    /// RFC 3339 text.
    Timestamp,
    /// The id of a record of another entity.
    Reference,
}

/// One field of an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Indexed for full-text search (text fields only).
    #[serde(default)]
    pub searchable: bool,
    /// For references: the entity referred to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    /// Indexed for lists ordered by it (`orderBy`): a page then reads its own rows instead of
    /// sorting the whole entity (a 50-row page of 1M contacts by name: ~57 ms without).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sortable: bool,
}

/// One entity (record type) of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitySchema {
    pub name: String,
    pub fields: Vec<FieldSchema>,
    /// The upsert statement, built once per schema (the sync engine's hot path).
    #[serde(skip)]
    pub(super) upsert_sql: SqlCache,
}

/// A lazily built SQL text; never part of a schema's identity.
#[derive(Debug, Clone, Default)]
pub(super) struct SqlCache(pub(super) std::sync::OnceLock<String>);

impl PartialEq for SqlCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for SqlCache {}

impl EntitySchema {
    /// An entity with these fields.
    pub fn new(name: String, fields: Vec<FieldSchema>) -> Self {
        EntitySchema {
            name,
            fields,
            upsert_sql: SqlCache::default(),
        }
    }

    /// Checks every name before any of them reaches SQL.
    pub fn validate(&self) -> Result<(), EntityError> {
        if !valid_name(&self.name) {
            return Err(EntityError::InvalidName(self.name.clone()));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            if !valid_name(&f.name)
                || f.name == "id"
                || f.name == "version"
                || !seen.insert(&f.name)
            {
                return Err(EntityError::InvalidName(f.name.clone()));
            }
        }
        Ok(())
    }

    pub(crate) fn field(&self, name: &str) -> Result<&FieldSchema, EntityError> {
        self.field_at(name).map(|(_, f)| f)
    }

    /// A field and its position (its column's place in the upsert statement).
    pub(crate) fn field_at(&self, name: &str) -> Result<(usize, &FieldSchema), EntityError> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
            .ok_or_else(|| EntityError::UnknownField {
                entity: self.name.clone(),
                field: name.to_string(),
            })
    }

    pub(crate) fn searchable(&self) -> Vec<&FieldSchema> {
        self.fields
            .iter()
            .filter(|f| f.searchable && f.kind == FieldType::Text)
            .collect()
    }
}

/// Names the server gives become SQL identifiers (prefixed `e_`, `f_`, `fts_`) only when they
/// match `[a-z][a-z0-9_]{0,63}`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Records (or replaces) an entity's definition.
pub(super) fn save(conn: &Connection, s: &EntitySchema) -> Result<(), EntityError> {
    conn.execute(
        "INSERT INTO entity_schema (name, definition) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
        (
            &s.name,
            serde_json::to_string(s).expect("schema serializes"),
        ),
    )?;
    Ok(())
}

/// The stored schema of one entity.
pub fn load_schema(conn: &Connection, entity: &str) -> Result<Option<EntitySchema>, EntityError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT definition FROM entity_schema WHERE name = ?1",
            [entity],
            |r| r.get(0),
        )
        .optional()?;
    json.map(|j| {
        serde_json::from_str(&j)
            .map_err(|e| StoreError::Corrupted(format!("stored schema: {e}")).into())
    })
    .transpose()
}

/// Every stored entity schema, by name.
pub fn load_schemas(conn: &Connection) -> Result<Vec<EntitySchema>, EntityError> {
    let mut stmt = conn.prepare("SELECT name FROM entity_schema ORDER BY name")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .iter()
        .map(|n| load_schema(conn, n)?.ok_or_else(|| EntityError::UnknownEntity(n.clone())))
        .collect()
}

pub(super) fn require_schema(conn: &Connection, entity: &str) -> Result<EntitySchema, EntityError> {
    load_schema(conn, entity)?.ok_or_else(|| EntityError::UnknownEntity(entity.to_string()))
}
