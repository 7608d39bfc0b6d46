//! The organization's entities (a small CRM: accounts, contacts, activities) and the type checks
//! the server applies to every pushed field.

use serde_json::{Map, Value, json};

/// Bumped whenever the entity list or a field type changes.
pub const SCHEMA_VERSION: i64 = 1;

/// `GET /api/sync/v1/schema`.
pub fn schema_json() -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "entities": [
            {"name": "account", "fields": [
                {"name": "name", "type": "text", "searchable": true},
                {"name": "industry", "type": "text"},
                {"name": "city", "type": "text", "searchable": true},
                {"name": "phone", "type": "text"},
                {"name": "annual_revenue", "type": "real"},
                {"name": "employees", "type": "integer"},
                {"name": "active", "type": "boolean"},
                {"name": "created_at", "type": "timestamp"}
            ]},
            {"name": "contact", "fields": [
                {"name": "full_name", "type": "text", "searchable": true},
                {"name": "email", "type": "text", "searchable": true},
                {"name": "phone", "type": "text"},
                {"name": "job_title", "type": "text"},
                {"name": "account_id", "type": "reference", "references": "account"},
                {"name": "notes", "type": "text", "searchable": true}
            ]},
            {"name": "activity", "fields": [
                {"name": "subject", "type": "text", "searchable": true},
                {"name": "kind", "type": "text"},
                {"name": "due_at", "type": "timestamp"},
                {"name": "done", "type": "boolean"},
                {"name": "account_id", "type": "reference", "references": "account"},
                {"name": "contact_id", "type": "reference", "references": "contact"},
                {"name": "notes", "type": "text", "searchable": true}
            ]}
        ]
    })
}

/// Field names and types of one entity, or None for an unknown entity.
fn fields_of(entity: &str) -> Option<Vec<(String, String)>> {
    let schema = schema_json();
    let e = schema["entities"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == entity)?
        .clone();
    Some(
        e["fields"]
            .as_array()?
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap_or_default().to_string(),
                    f["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    )
}

/// Whether `entity` exists.
pub fn known_entity(entity: &str) -> bool {
    fields_of(entity).is_some()
}

/// Checks pushed fields against the schema; the error is the `rejected` reason.
pub fn check_fields(entity: &str, fields: &Map<String, Value>) -> Result<(), String> {
    let schema = fields_of(entity).ok_or_else(|| format!("unknown entity {entity:?}"))?;
    for (name, value) in fields {
        let (_, kind) = schema
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("{entity} has no field {name:?}"))?;
        let ok = match (kind.as_str(), value) {
            (_, Value::Null) => true,
            ("text" | "reference", Value::String(_)) => true,
            ("timestamp", Value::String(s)) => chrono_like(s),
            ("integer", Value::Number(n)) => n.is_i64(),
            ("real", Value::Number(_)) => true,
            ("boolean", Value::Bool(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(format!("{entity}.{name} must be of type {kind}"));
        }
    }
    Ok(())
}

fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':'
}
