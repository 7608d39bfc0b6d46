//! The value codec: a field's JSON value to its SQL column value and back, checking the field's
//! type on the way in.

use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::Value;

use super::EntityError;
use super::schema::{FieldSchema, FieldType};

/// Converts a JSON value to the column's SQL value, checking its type.
pub(super) fn to_sql(field: &FieldSchema, value: &Value) -> Result<SqlValue, EntityError> {
    Ok(match to_sql_ref(field, value)? {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(r) => SqlValue::Real(r),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    })
}

/// As [`to_sql`], borrowing text instead of copying it: a large field is bound straight from the
/// downloaded value (SQLite makes the one copy it needs).
pub(super) fn to_sql_ref<'a>(
    field: &FieldSchema,
    value: &'a Value,
) -> Result<ValueRef<'a>, EntityError> {
    let wrong = || EntityError::WrongType {
        field: field.name.clone(),
        expected: field.kind,
        got: match value {
            Value::Null => "null".into(),
            Value::Bool(_) => "a boolean".into(),
            Value::Number(_) => "a number".into(),
            Value::String(_) => "a string".into(),
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
        },
    };
    Ok(match (field.kind, value) {
        (_, Value::Null) => ValueRef::Null,
        (FieldType::Text | FieldType::Reference, Value::String(s)) => ValueRef::Text(s.as_bytes()),
        (FieldType::Timestamp, Value::String(s)) if looks_like_rfc3339(s) => {
            ValueRef::Text(s.as_bytes())
        }
        (FieldType::Integer, Value::Number(n)) => ValueRef::Integer(n.as_i64().ok_or_else(wrong)?),
        (FieldType::Real, Value::Number(n)) => ValueRef::Real(n.as_f64().ok_or_else(wrong)?),
        (FieldType::Boolean, Value::Bool(b)) => ValueRef::Integer(*b as i64),
        _ => return Err(wrong()),
    })
}

/// A real RFC 3339 date-time (with its offset), not five characters in the right places.
fn looks_like_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

pub(super) fn from_sql(field: &FieldSchema, value: ValueRef<'_>) -> Value {
    match (field.kind, value) {
        (_, ValueRef::Null) => Value::Null,
        (FieldType::Boolean, ValueRef::Integer(i)) => Value::Bool(i != 0),
        (_, ValueRef::Integer(i)) => Value::from(i),
        (_, ValueRef::Real(r)) => Value::from(r),
        (_, ValueRef::Text(t)) => Value::String(String::from_utf8_lossy(t).into_owned()),
        (_, ValueRef::Blob(_)) => Value::Null,
    }
}
