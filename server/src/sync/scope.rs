//! What one user's devices may hold: per entity, how far the user's read privilege reaches (own
//! records, the business unit's, the organization's), the organization's sync filter for the
//! entity, and the entity's field revision. A scope is a value: the server keeps the one each pull
//! used, and the next pull compares it with the user's scope now to send only what entered and
//! what left (docs/protocol.md, "Scope"). Scopes become SQL predicates over the record store's
//! columns (`entity`, `owner`, `unit`, `fields`), built only from validated names and quoted
//! literals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How far a read reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    Own,
    Unit,
    Organization,
}

/// What a user may do with one entity: how far each privilege reaches (None: not at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    pub read: Option<Reach>,
    pub create: Option<Reach>,
    pub write: Option<Reach>,
    pub delete: Option<Reach>,
}

/// A signed-in user as the record store sees them: who, which business unit, and their
/// privileges per entity (from their roles).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub user: String,
    pub unit: String,
    pub grants: BTreeMap<String, Grant>,
}

impl Access {
    /// Organization-wide access to `entities` (tests, the development endpoints).
    pub fn everything(user: &str, unit: &str, entities: &[&str]) -> Access {
        let org = Some(Reach::Organization);
        Access {
            user: user.into(),
            unit: unit.into(),
            grants: entities
                .iter()
                .map(|e| {
                    let g = Grant {
                        read: org,
                        create: org,
                        write: org,
                        delete: org,
                    };
                    (e.to_string(), g)
                })
                .collect(),
        }
    }

    /// Whether `reach` covers a record owned by `owner` in `unit`.
    pub fn covers(&self, reach: Option<Reach>, owner: &str, unit: &str) -> bool {
        match reach {
            None => false,
            Some(Reach::Own) => owner == self.user,
            Some(Reach::Unit) => unit == self.unit,
            Some(Reach::Organization) => true,
        }
    }
}

/// One entity in a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityScope {
    pub reach: Reach,
    /// The organization's filter as SQL over `fields`, with its moving window already resolved
    /// to a date (so the scope is a fixed predicate); None: every record in reach.
    pub filter: Option<String>,
    /// The schema revision at which the entity's fields last changed: a device that holds the
    /// entity at an older revision gets its records again (new fields' values).
    pub revision: i64,
}

/// Everything a user's device may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Scope {
    pub user: String,
    pub unit: String,
    pub entities: BTreeMap<String, EntityScope>,
}

/// SQL text literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Scope {
    /// The predicate for one entity's records, or `0` when the entity is not in scope.
    pub fn entity_predicate(&self, entity: &str) -> String {
        let Some(e) = self.entities.get(entity) else {
            return "0".into();
        };
        let reach = self.reach_predicate(e.reach);
        match &e.filter {
            Some(f) => format!("({reach} AND coalesce(({f}), 0))"),
            None => format!("({reach})"),
        }
    }

    fn reach_predicate(&self, reach: Reach) -> String {
        match reach {
            Reach::Own => format!("owner = {}", quote(&self.user)),
            Reach::Unit => format!("unit = {}", quote(&self.unit)),
            Reach::Organization => "1".into(),
        }
    }

    /// The attachments a device may hold, given the other entities in scope: those of records
    /// of an entity the user reads, as far as that read reaches (an attachment carries its
    /// record's owner and unit). The record's sync filter does not apply to its attachments (it
    /// reads the record's fields, which an attachment row does not have). None when no entity
    /// is in scope.
    pub fn attachment_scope(&self, revision: i64) -> Option<EntityScope> {
        let terms: Vec<String> = self
            .entities
            .iter()
            .map(|(entity, e)| {
                format!(
                    "({FIELD_FUNCTION}(fields, 'record_entity') = {} AND {})",
                    quote(entity),
                    self.reach_predicate(e.reach)
                )
            })
            .collect();
        (!terms.is_empty()).then(|| EntityScope {
            reach: Reach::Organization,
            filter: Some(terms.join(" OR ")),
            revision,
        })
    }

    /// Whether a record (of any entity) is in scope: a `CASE` over the entity.
    pub fn predicate(&self) -> String {
        if self.entities.is_empty() {
            return "0".into();
        }
        let mut sql = String::from("(CASE entity");
        for entity in self.entities.keys() {
            sql.push_str(&format!(
                " WHEN {} THEN {}",
                quote(entity),
                self.entity_predicate(entity)
            ));
        }
        sql.push_str(" ELSE 0 END)");
        sql
    }

    /// The entities whose records may have entered or left between `self` (what a device
    /// holds) and `now`: those whose reach, filter or revision differ, and the user or unit
    /// for every entity when they changed.
    pub fn changed_entities(&self, now: &Scope) -> Vec<String> {
        let same_owner = self.user == now.user && self.unit == now.unit;
        let mut names: Vec<String> = self
            .entities
            .keys()
            .chain(now.entities.keys())
            .filter(|e| !same_owner || self.entities.get(*e) != now.entities.get(*e))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether a device that holds `self` gets `entity`'s records again under `now`: its fields
    /// changed since (a field was added), so the records it keeps need their new values.
    pub fn resends(&self, entity: &str, now: &Scope) -> bool {
        matches!(
            (self.entities.get(entity), now.entities.get(entity)),
            (Some(old), Some(new)) if old.revision != new.revision
        )
    }
}

/// An organization's sync filter for one entity (in the schema): records that match any
/// condition sync. A condition is `{"field": F, "equals": V}` or `{"field": F, "within_days": N}`
/// (a timestamp no older than N days, a window that moves with the day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncFilter {
    pub any: Vec<Condition>,
}

/// One condition of a sync filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u32>,
}

impl SyncFilter {
    /// Checks the filter against the entity's fields: `(name, type)`.
    pub fn validate(&self, fields: &[(String, String)]) -> Result<(), String> {
        if self.any.is_empty() {
            return Err("a sync filter needs at least one condition".into());
        }
        for c in &self.any {
            let Some((_, kind)) = fields.iter().find(|(n, _)| *n == c.field) else {
                return Err(format!("the filter names no field {:?}", c.field));
            };
            match (&c.equals, c.within_days) {
                (Some(v), None) if scalar(v) => {}
                (None, Some(_)) if kind == "timestamp" => {}
                (None, Some(_)) => {
                    return Err(format!("within_days needs a timestamp field, not {kind}"));
                }
                _ => {
                    return Err(format!(
                        "the condition on {:?} needs exactly one of equals (a scalar) or within_days",
                        c.field
                    ));
                }
            }
        }
        Ok(())
    }

    /// The filter as SQL over `fields` on day `today` (days since 1970-01-01, UTC).
    pub fn to_sql(&self, today: i64) -> String {
        let terms: Vec<String> = self
            .any
            .iter()
            .map(|c| {
                let value = format!("{FIELD_FUNCTION}(fields, {})", quote(&c.field));
                match (&c.equals, c.within_days) {
                    (Some(Value::Bool(b)), _) => format!("{value} = {}", *b as i32),
                    (Some(Value::Number(n)), _) => format!("{value} = {n}"),
                    (Some(Value::String(s)), _) => format!("{value} = {}", quote(s)),
                    (_, Some(days)) => {
                        format!("{value} >= {}", quote(&day_start(today - days as i64)))
                    }
                    _ => "0".into(),
                }
            })
            .collect();
        terms.join(" OR ")
    }
}

/// The SQL function filters read a field with. The workspace's SQLite is built without JSON (it
/// is the mobile library's SQLite too: docs/mobile.md, "Binary size"), so the server registers
/// its own on every connection ([`register_field_function`]).
pub const FIELD_FUNCTION: &str = "sv_field";

/// Registers `sv_field(fields, name)`: the named value of a record's JSON fields as SQLite sees a
/// column (booleans as 0/1, numbers, text; NULL when absent or null).
pub fn register_field_function(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::Value as Sql;
    conn.create_scalar_function(
        FIELD_FUNCTION,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let fields = ctx.get_raw(0).as_str().unwrap_or("{}");
            let name = ctx.get_raw(1).as_str().unwrap_or("");
            let mut map: serde_json::Map<String, Value> =
                serde_json::from_str(fields).unwrap_or_default();
            Ok(match map.remove(name) {
                Some(Value::Bool(b)) => Sql::Integer(b as i64),
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(i) => Sql::Integer(i),
                    None => Sql::Real(n.as_f64().unwrap_or(0.0)),
                },
                Some(Value::String(s)) => Sql::Text(s),
                Some(Value::Null) | None => Sql::Null,
                Some(other) => Sql::Text(other.to_string()),
            })
        },
    )
}

fn scalar(v: &Value) -> bool {
    matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_))
}

/// `YYYY-MM-DDT00:00:00Z` of a day number (civil-from-days, Howard Hinnant's algorithm): the
/// generator's and clients' timestamps are UTC RFC 3339, which compare as text.
pub fn day_start(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T00:00:00Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(user: &str, unit: &str, entities: &[(&str, Reach, i64)]) -> Scope {
        Scope {
            user: user.into(),
            unit: unit.into(),
            entities: entities
                .iter()
                .map(|(e, reach, revision)| {
                    (
                        e.to_string(),
                        EntityScope {
                            reach: *reach,
                            filter: None,
                            revision: *revision,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn days_become_dates() {
        assert_eq!(day_start(0), "1970-01-01T00:00:00Z");
        assert_eq!(day_start(20_454), "2026-01-01T00:00:00Z");
        assert_eq!(day_start(20_454 + 59), "2026-03-01T00:00:00Z");
        assert_eq!(day_start(11_016), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn predicates_quote_and_reach() {
        let s = scope(
            "u'1",
            "North",
            &[("account", Reach::Unit, 1), ("activity", Reach::Own, 1)],
        );
        assert_eq!(s.entity_predicate("activity"), "(owner = 'u''1')");
        assert_eq!(s.entity_predicate("account"), "(unit = 'North')");
        assert_eq!(s.entity_predicate("contact"), "0");
        assert!(
            s.predicate()
                .starts_with("(CASE entity WHEN 'account' THEN")
        );
        assert_eq!(Scope::default().predicate(), "0");
    }

    #[test]
    fn changed_entities_are_the_difference() {
        let a = scope(
            "u1",
            "N",
            &[("account", Reach::Unit, 1), ("contact", Reach::Unit, 1)],
        );
        let b = scope(
            "u1",
            "N",
            &[("account", Reach::Unit, 1), ("activity", Reach::Own, 1)],
        );
        assert_eq!(a.changed_entities(&b), vec!["activity", "contact"]);
        assert!(a.changed_entities(&a).is_empty());
        let moved = Scope {
            unit: "S".into(),
            ..a.clone()
        };
        assert_eq!(a.changed_entities(&moved), vec!["account", "contact"]);
        let newer = scope(
            "u1",
            "N",
            &[("account", Reach::Unit, 2), ("contact", Reach::Unit, 1)],
        );
        assert_eq!(a.changed_entities(&newer), vec!["account"]);
        assert!(a.resends("account", &newer));
        assert!(!a.resends("contact", &newer));
    }

    #[test]
    fn filters_validate_and_compile() {
        let fields = vec![
            ("done".to_string(), "boolean".to_string()),
            ("due_at".to_string(), "timestamp".to_string()),
            ("kind".to_string(), "text".to_string()),
        ];
        let f: SyncFilter = serde_json::from_value(json!({"any": [
            {"field": "done", "equals": false}, {"field": "due_at", "within_days": 90}]}))
        .unwrap();
        f.validate(&fields).unwrap();
        assert_eq!(
            f.to_sql(20_454 + 90),
            "sv_field(fields, 'done') = 0 OR sv_field(fields, 'due_at') >= '2026-01-01T00:00:00Z'"
        );
        for bad in [
            json!({"any": []}),
            json!({"any": [{"field": "nope", "equals": 1}]}),
            json!({"any": [{"field": "kind", "within_days": 3}]}),
            json!({"any": [{"field": "kind"}]}),
            json!({"any": [{"field": "kind", "equals": [1]}]}),
        ] {
            let f: SyncFilter = serde_json::from_value(bad).unwrap();
            assert!(f.validate(&fields).is_err(), "{f:?}");
        }
        let s: SyncFilter =
            serde_json::from_value(json!({"any": [{"field": "kind", "equals": "it's"}]})).unwrap();
        assert_eq!(s.to_sql(0), "sv_field(fields, 'kind') = 'it''s'");
    }

    #[test]
    fn the_field_function_reads_json_fields_as_sqlite_values() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        register_field_function(&conn).unwrap();
        let row = r#"{"done": false, "n": 2.5, "k": 7, "s": "x", "z": null}"#;
        let got: (i64, f64, i64, String, Option<String>, Option<String>) = conn
            .query_row(
                "SELECT sv_field(?1, 'done'), sv_field(?1, 'n'), sv_field(?1, 'k'), \
                 sv_field(?1, 's'), sv_field(?1, 'z'), sv_field(?1, 'missing')",
                [row],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(got, (0, 2.5, 7, "x".into(), None, None));
    }
}
