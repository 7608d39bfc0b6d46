//! The value codec: a field's value to its SQL column value and back, checking the field's type
//! on the way in. Values arrive in two shapes: JSON values (the app's edits, queued changes) and
//! [`WireValue`]s read in place from a downloaded page. Both are looked at through one borrowed
//! [`Scalar`] view, so the type rules exist once.

use std::borrow::Cow;
use std::fmt;

use rusqlite::types::{Value as SqlValue, ValueRef};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::EntityError;
use super::schema::{FieldSchema, FieldType};

/// A field's value as one page of a download carries it, decoded without a copy: text borrows
/// the page's body unless it had escapes. An initial download of 100k records otherwise spent
/// about a third of its decoding in allocating and freeing keys, strings and maps.
#[derive(Debug, Clone, PartialEq)]
pub enum WireValue<'a> {
    Null,
    Bool(bool),
    /// A whole number that fits in an i64.
    Int(i64),
    /// A whole number above i64::MAX (never a valid field value; kept for the error).
    UInt(u64),
    Float(f64),
    Text(Cow<'a, str>),
    /// An array or object: never a valid field value, kept whole so nothing is lost where a
    /// page's record is stored as JSON (a conflict's server side).
    Json(Value),
}

/// A borrowed look at a value of either shape: what the type rules read.
#[derive(Debug, Clone, Copy)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(&'a str),
    Array,
    Object,
}

impl<'a> From<&'a Value> for Scalar<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Scalar::Int(i),
                (None, Some(u)) => Scalar::UInt(u),
                _ => Scalar::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Scalar::Text(s),
            Value::Array(_) => Scalar::Array,
            Value::Object(_) => Scalar::Object,
        }
    }
}

impl<'a> From<&'a WireValue<'_>> for Scalar<'a> {
    fn from(value: &'a WireValue<'_>) -> Self {
        match value {
            WireValue::Null => Scalar::Null,
            WireValue::Bool(b) => Scalar::Bool(*b),
            WireValue::Int(i) => Scalar::Int(*i),
            WireValue::UInt(u) => Scalar::UInt(*u),
            WireValue::Float(f) => Scalar::Float(*f),
            WireValue::Text(s) => Scalar::Text(s),
            WireValue::Json(v) => Scalar::from(v),
        }
    }
}

impl WireValue<'_> {
    /// The same value as JSON (for the rare paths that keep a page's record as JSON).
    pub fn to_json(&self) -> Value {
        match self {
            WireValue::Null => Value::Null,
            WireValue::Bool(b) => Value::Bool(*b),
            WireValue::Int(i) => Value::from(*i),
            WireValue::UInt(u) => Value::from(*u),
            WireValue::Float(f) => Value::from(*f),
            WireValue::Text(s) => Value::String(s.to_string()),
            WireValue::Json(v) => v.clone(),
        }
    }
}

impl Serialize for WireValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WireValue::Null => s.serialize_unit(),
            WireValue::Bool(b) => s.serialize_bool(*b),
            WireValue::Int(i) => s.serialize_i64(*i),
            WireValue::UInt(u) => s.serialize_u64(*u),
            WireValue::Float(f) => s.serialize_f64(*f),
            WireValue::Text(t) => s.serialize_str(t),
            WireValue::Json(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for WireValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = WireValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(WireValue::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(WireValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        WireValue::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(WireValue::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(WireValue::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(u).map_or(WireValue::UInt(u), WireValue::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(WireValue::Float(f))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(WireValue::Text(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(WireValue::Text(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(WireValue::Text(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(WireValue::Json)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(WireValue::Json)
    }
}

/// Reads a string in place where the input allows (no escapes), else copies it: for the names
/// and ids of a downloaded page.
pub fn borrowed_str<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
    struct CowVisitor;
    impl<'de> Visitor<'de> for CowVisitor {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(s))
        }
        fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(s.to_string()))
        }
        fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(s))
        }
    }
    d.deserialize_str(CowVisitor)
}

/// Converts a JSON value to the column's SQL value, checking its type.
pub(super) fn to_sql(field: &FieldSchema, value: &Value) -> Result<SqlValue, EntityError> {
    Ok(match to_sql_ref(field, Scalar::from(value))? {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(r) => SqlValue::Real(r),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    })
}

/// The column's SQL value for `value`, borrowing text instead of copying it (SQLite makes the one
/// copy it needs), after checking the field's type: the one place the type rules live.
pub(super) fn to_sql_ref<'a>(
    field: &FieldSchema,
    value: Scalar<'a>,
) -> Result<ValueRef<'a>, EntityError> {
    let wrong = || EntityError::WrongType {
        field: field.name.clone(),
        expected: field.kind,
        got: match value {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_) => "a number",
            Scalar::Text(_) => "a string",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
        .into(),
    };
    Ok(match (field.kind, value) {
        (_, Scalar::Null) => ValueRef::Null,
        (FieldType::Text | FieldType::Reference, Scalar::Text(s)) => ValueRef::Text(s.as_bytes()),
        (FieldType::Timestamp, Scalar::Text(s)) if looks_like_rfc3339(s) => {
            ValueRef::Text(s.as_bytes())
        }
        (FieldType::Integer, Scalar::Int(i)) => ValueRef::Integer(i),
        (FieldType::Real, Scalar::Int(i)) => ValueRef::Real(i as f64),
        (FieldType::Real, Scalar::UInt(u)) => ValueRef::Real(u as f64),
        (FieldType::Real, Scalar::Float(r)) => ValueRef::Real(r),
        (FieldType::Boolean, Scalar::Bool(b)) => ValueRef::Integer(b as i64),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_values_borrow_plain_text_and_copy_escaped_text() {
        let body = br#"["plain", "with \"escape\"", 7, -3, 18446744073709551615, 2.5, true, null, [1], {"a": 1}]"#;
        let values: Vec<WireValue<'_>> = serde_json::from_slice(body).unwrap();
        assert!(matches!(
            &values[0],
            WireValue::Text(Cow::Borrowed("plain"))
        ));
        assert!(matches!(&values[1], WireValue::Text(Cow::Owned(s)) if s == "with \"escape\""));
        assert_eq!(values[2], WireValue::Int(7));
        assert_eq!(values[3], WireValue::Int(-3));
        assert_eq!(values[4], WireValue::UInt(u64::MAX));
        assert_eq!(values[5], WireValue::Float(2.5));
        assert_eq!(values[6], WireValue::Bool(true));
        assert_eq!(values[7], WireValue::Null);
        assert_eq!(values[8], WireValue::Json(json!([1])));
        assert_eq!(values[9], WireValue::Json(json!({"a": 1})));
        // Back to JSON unchanged, and the same as serde_json's own reading.
        let json: Vec<Value> = values.iter().map(WireValue::to_json).collect();
        assert_eq!(json, serde_json::from_slice::<Vec<Value>>(body).unwrap());
    }

    #[test]
    fn both_shapes_follow_the_same_type_rules() {
        let field = |kind| FieldSchema {
            name: "f".into(),
            kind,
            searchable: false,
            references: None,
            sortable: false,
        };
        let samples = json!([null, true, 3, -3, 18446744073709551615u64, 2.5, "text",
            "2026-01-01T10:00:00Z", [1], {"a": 1}]);
        let samples = samples.as_array().unwrap();
        let text = serde_json::to_vec(samples).unwrap();
        let wire: Vec<WireValue<'_>> = serde_json::from_slice(&text).unwrap();
        for kind in [
            FieldType::Text,
            FieldType::Integer,
            FieldType::Real,
            FieldType::Boolean,
            FieldType::Timestamp,
            FieldType::Reference,
        ] {
            let f = field(kind);
            for (json, wire) in samples.iter().zip(&wire) {
                let a = to_sql_ref(&f, Scalar::from(json)).map_err(|e| e.to_string());
                let b = to_sql_ref(&f, Scalar::from(wire)).map_err(|e| e.to_string());
                assert_eq!(a, b, "{kind:?} {json}");
            }
        }
        // Whole numbers go into real fields; fractions never into integer ones.
        assert_eq!(
            to_sql_ref(&field(FieldType::Real), Scalar::Int(3)).unwrap(),
            ValueRef::Real(3.0)
        );
        assert!(to_sql_ref(&field(FieldType::Integer), Scalar::Float(2.5)).is_err());
    }
}
