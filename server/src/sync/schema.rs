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

/// Why pushed fields are refused: the protocol's rejection code and a reason for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
}

fn refusal(code: &'static str, reason: String) -> Refusal {
    Refusal { code, reason }
}

/// Checks pushed fields against the schema (`invalid_field`) and the organization's rules
/// (`invalid_value`).
pub fn check_fields(entity: &str, fields: &Map<String, Value>) -> Result<(), Refusal> {
    check_types(entity, fields).map_err(|r| refusal("invalid_field", r))?;
    check_rules(entity, fields).map_err(|r| refusal("invalid_value", r))
}

/// The organization's rules beyond types, which a device cannot know (a server-side business
/// rule in Dynamics terms): a contact's email is an address, an account's revenue and head count
/// are not negative.
fn check_rules(entity: &str, fields: &Map<String, Value>) -> Result<(), String> {
    match entity {
        "contact" => {
            if let Some(Value::String(email)) = fields.get("email") {
                let ok = email.is_empty()
                    || email
                        .split_once('@')
                        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
                if !ok {
                    return Err(format!("{email:?} is not an email address"));
                }
            }
        }
        "account" => {
            for field in ["annual_revenue", "employees"] {
                if fields
                    .get(field)
                    .and_then(Value::as_f64)
                    .is_some_and(|v| v < 0.0)
                {
                    return Err(format!("{field} cannot be negative"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_types(entity: &str, fields: &Map<String, Value>) -> Result<(), String> {
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
