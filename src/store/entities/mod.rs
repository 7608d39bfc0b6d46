//! Entity tables built from the organization's schema description, split by job: the schema
//! types and their stored form (`schema`), the DDL and bulk load (`tables`), the value codec
//! (`codec`), record CRUD (`records`) and queries with full-text search (`query`).
//!
//! Names from the server become SQL identifiers only after validation (`[a-z][a-z0-9_]*`), and are
//! prefixed (`e_`, `f_`, `fts_`) so no server name can collide with our own tables or keywords.

mod codec;
mod query;
mod records;
mod schema;
mod tables;

pub use codec::{WireValue, borrowed_str};
pub use query::{Query, query};
pub use records::{
    Record, count, delete, delete_if_not_newer, get, set_version, upsert, upsert_wire, upsert_with,
};
pub use schema::{EntitySchema, FieldSchema, FieldType, load_schema, load_schemas, valid_name};
pub use tables::{
    apply_schema, begin_bulk_load, end_bulk_load, in_bulk_load, release_search_buffers,
};

use super::StoreError;

/// A name as an error may show it: itself when it is a valid identifier (server and app texts
/// never reach an error otherwise; src/ffi/error.rs has the rule).
pub fn shown(name: &str) -> &str {
    if valid_name(name) {
        name
    } else {
        "(an invalid name)"
    }
}

/// Errors of this module that are the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum EntityError {
    #[error("unknown entity {}", shown(.0))]
    UnknownEntity(String),
    #[error("entity {} has no field {}", shown(.entity), shown(.field))]
    UnknownField { entity: String, field: String },
    #[error("field {field:?} expects {expected:?}, got {got}")]
    WrongType {
        field: String,
        expected: FieldType,
        got: String,
    },
    /// A name in a schema that is not `[a-z][a-z0-9_]{0,63}`, or a reserved one (`id`,
    /// `version`), or given twice.
    #[error("the schema has an invalid, reserved or repeated name ({})", shown(.0))]
    InvalidName(String),
    /// A schema gave an existing field another storage type.
    #[error("the schema changes the type of {entity}.{field} from {from:?} to {to:?}")]
    TypeChanged {
        entity: String,
        field: String,
        from: FieldType,
        to: FieldType,
    },
    #[error("no {entity} record with id {id:?}")]
    NoSuchRecord { entity: String, id: String },
    #[error("no pending conflict with id {0}")]
    NoSuchConflict(i64),
    #[error("no open sync error with id {0}")]
    NoSuchSyncError(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for EntityError {
    fn from(e: rusqlite::Error) -> Self {
        EntityError::Store(StoreError::classify(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use serde_json::{Value, json};

    pub(crate) fn contact_schema() -> EntitySchema {
        serde_json::from_value(json!({
            "name": "contact",
            "fields": [
                {"name": "full_name", "type": "text", "searchable": true},
                {"name": "notes", "type": "text", "searchable": true},
                {"name": "age", "type": "integer"},
                {"name": "score", "type": "real"},
                {"name": "active", "type": "boolean"},
                {"name": "born", "type": "timestamp"},
                {"name": "account_id", "type": "reference", "references": "account"}
            ]
        }))
        .unwrap()
    }

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&c).unwrap();
        apply_schema(&c, &[contact_schema()]).unwrap();
        c
    }

    fn rec(id: &str, fields: Value) -> Record {
        Record::new(id, 1, fields.as_object().unwrap().clone())
    }

    #[test]
    fn typed_round_trip_query_and_search() {
        let c = conn();
        upsert(&c, "contact", &rec("c1", json!({"full_name": "Ada Lovelace", "notes": "analytical engine",
            "age": 36, "score": 9.5, "active": true, "born": "1815-12-10T00:00:00Z", "account_id": "a1"}))).unwrap();
        upsert(
            &c,
            "contact",
            &rec(
                "c2",
                json!({"full_name": "Charles Babbage", "age": 79, "active": false}),
            ),
        )
        .unwrap();
        let ada = get(&c, "contact", "c1").unwrap().unwrap();
        assert_eq!(ada.fields["active"], json!(true));
        assert_eq!(ada.fields["score"], json!(9.5));
        assert_eq!(ada.fields["account_id"], json!("a1"));
        let c2 = get(&c, "contact", "c2").unwrap().unwrap();
        assert_eq!(c2.fields["notes"], Value::Null);

        let q = Query {
            search: Some("analyt".into()),
            ..Default::default()
        };
        assert_eq!(query(&c, "contact", &q).unwrap().len(), 1);
        let q = Query {
            filters: vec![("active".into(), json!(false))],
            ..Default::default()
        };
        assert_eq!(query(&c, "contact", &q).unwrap()[0].id, "c2");
        let q = Query {
            order_by: Some("age".into()),
            descending: true,
            ..Default::default()
        };
        assert_eq!(query(&c, "contact", &q).unwrap()[0].id, "c2");

        // Updates and deletes keep the index right.
        upsert(
            &c,
            "contact",
            &rec("c1", json!({"full_name": "Ada King", "notes": "countess"})),
        )
        .unwrap();
        let q = Query {
            search: Some("analytical".into()),
            ..Default::default()
        };
        assert!(query(&c, "contact", &q).unwrap().is_empty());
        assert!(delete(&c, "contact", "c1").unwrap());
        assert!(!delete(&c, "contact", "c1").unwrap());
        let q = Query {
            search: Some("countess".into()),
            ..Default::default()
        };
        assert!(query(&c, "contact", &q).unwrap().is_empty());
    }

    #[test]
    fn a_page_record_is_written_from_its_values_in_place() {
        let c = conn();
        let schema = contact_schema();
        upsert(
            &c,
            "contact",
            &rec(
                "c1",
                json!({"full_name": "Ada", "age": 36, "notes": "engine"}),
            ),
        )
        .unwrap();
        // Fields not given become null; a name given twice counts once, the last time.
        let fields = [
            ("full_name", WireValue::Text("First".into())),
            ("age", WireValue::Int(40)),
            ("full_name", WireValue::Text("Ada Lovelace".into())),
        ];
        upsert_wire(&c, &schema, "c1", 2, fields.iter().map(|(k, v)| (*k, v))).unwrap();
        let back = get(&c, "contact", "c1").unwrap().unwrap();
        assert_eq!(back.version, 2);
        assert_eq!(back.fields["full_name"], json!("Ada Lovelace"));
        assert_eq!(back.fields["age"], json!(40));
        assert_eq!(back.fields["notes"], Value::Null, "not given: null");
        // The same checks as an edit: an unknown field or a wrong type writes nothing.
        let bad = [("age", WireValue::Text("old".into()))];
        let err = upsert_wire(&c, &schema, "c1", 3, bad.iter().map(|(k, v)| (*k, v)));
        assert!(matches!(err, Err(EntityError::WrongType { .. })), "{err:?}");
        let unknown = [("salary", WireValue::Int(1))];
        let err = upsert_wire(&c, &schema, "c1", 3, unknown.iter().map(|(k, v)| (*k, v)));
        assert!(
            matches!(err, Err(EntityError::UnknownField { .. })),
            "{err:?}"
        );
        assert_eq!(get(&c, "contact", "c1").unwrap().unwrap().version, 2);
        // An older version never replaces a newer one.
        upsert_wire(&c, &schema, "c1", 1, std::iter::empty()).unwrap();
        assert_eq!(
            get(&c, "contact", "c1").unwrap().unwrap().fields["age"],
            json!(40)
        );
    }

    #[test]
    fn wrong_types_and_names_are_refused() {
        let c = conn();
        let err = upsert(&c, "contact", &rec("x", json!({"age": "old"}))).unwrap_err();
        assert!(matches!(err, EntityError::WrongType { .. }), "{err}");
        assert!(matches!(
            upsert(&c, "contact", &rec("x", json!({"born": "yesterday"}))),
            Err(EntityError::WrongType { .. })
        ));
        // Five characters in the right places are not a timestamp.
        for bad in [
            "2026-13-45T99:99:99Z and then some",
            "2026-02-30T10:00:00Z",
            "2026-01-01T10:00:00",
        ] {
            assert!(
                matches!(
                    upsert(&c, "contact", &rec("x", json!({"born": bad}))),
                    Err(EntityError::WrongType { .. })
                ),
                "{bad}"
            );
        }
        for good in ["2026-01-01T10:00:00Z", "2026-01-01t10:00:00.123+02:00"] {
            upsert(&c, "contact", &rec("x", json!({"born": good}))).unwrap();
        }
        assert!(matches!(
            upsert(&c, "contact", &rec("x", json!({"nope": 1}))),
            Err(EntityError::UnknownField { .. })
        ));
        assert!(matches!(
            upsert(&c, "ghost", &rec("x", json!({}))),
            Err(EntityError::UnknownEntity(_))
        ));
        for bad in ["Contact", "x; DROP TABLE meta", "", "1abc", "a-b"] {
            let s = EntitySchema::new(bad.into(), vec![]);
            assert!(
                matches!(apply_schema(&c, &[s]), Err(EntityError::InvalidName(_))),
                "{bad}"
            );
        }
        let dup = EntitySchema::new(
            "dup".into(),
            vec![
                FieldSchema {
                    name: "a".into(),
                    kind: FieldType::Text,
                    searchable: false,
                    references: None,
                    sortable: false,
                },
                FieldSchema {
                    name: "a".into(),
                    kind: FieldType::Text,
                    searchable: false,
                    references: None,
                    sortable: false,
                },
            ],
        );
        assert!(apply_schema(&c, &[dup]).is_err());
    }

    #[test]
    fn bulk_load_builds_indexes_and_search_at_the_end() {
        let c = conn();
        apply_schema(&c, &[contact_schema()]).unwrap();
        let search = |text: &str| {
            let q = Query {
                search: Some(text.into()),
                ..Default::default()
            };
            query(&c, "contact", &q).unwrap().len()
        };
        let trigger_count = || -> i64 {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'e_contact'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        upsert(
            &c,
            "contact",
            &rec("before", json!({"full_name": "Ada Lovelace"})),
        )
        .unwrap();
        begin_bulk_load(&c).unwrap();
        assert!(in_bulk_load(&c).unwrap());
        assert_eq!(trigger_count(), 0);
        for i in 0..50 {
            let r = rec(
                &format!("r{i}"),
                json!({"full_name": format!("Grace Hopper {i}")}),
            );
            upsert(&c, "contact", &r).unwrap();
        }
        upsert(
            &c,
            "contact",
            &rec("before", json!({"full_name": "Alan Turing"})),
        )
        .unwrap();
        end_bulk_load(&c).unwrap();
        assert!(!in_bulk_load(&c).unwrap());
        assert_eq!(trigger_count(), 3);
        assert_eq!(search("hopper"), 50);
        assert_eq!(search("turing"), 1);
        assert_eq!(
            search("lovelace"),
            0,
            "the update during the load was indexed"
        );
        // Back to incremental indexing.
        upsert(
            &c,
            "contact",
            &rec("after", json!({"full_name": "Edsger Dijkstra"})),
        )
        .unwrap();
        assert_eq!(search("dijkstra"), 1);
        end_bulk_load(&c).unwrap();
    }

    #[test]
    fn a_sortable_field_lists_through_its_index_and_loses_it_when_no_longer_sortable() {
        let c = conn();
        for (i, name) in ["Grace", "Ada", "Edsger", "Barbara", "Alan"]
            .iter()
            .enumerate()
        {
            upsert(
                &c,
                "contact",
                &rec(&format!("c{i}"), json!({"full_name": name})),
            )
            .unwrap();
        }
        let plan = |c: &Connection| -> String {
            c.prepare("EXPLAIN QUERY PLAN SELECT id FROM e_contact e ORDER BY e.f_full_name DESC, e.id DESC LIMIT 2")
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let page = |c: &Connection| -> Vec<String> {
            let q = Query {
                order_by: Some("full_name".into()),
                descending: true,
                limit: Some(2),
                offset: 1,
                ..Default::default()
            };
            query(c, "contact", &q)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert!(plan(&c).contains("TEMP B-TREE"), "{}", plan(&c));
        let mut sortable = contact_schema();
        sortable.fields[0].sortable = true;
        apply_schema(&c, &[sortable.clone()]).unwrap();
        assert!(
            plan(&c).contains("e_contact_full_name_order"),
            "{}",
            plan(&c)
        );
        assert!(!plan(&c).contains("TEMP B-TREE"), "{}", plan(&c));
        // Grace, Edsger, Barbara, ...: the second and third.
        assert_eq!(page(&c), ["c2", "c3"]);
        // Through a bulk load the index goes and comes back.
        begin_bulk_load(&c).unwrap();
        assert!(plan(&c).contains("TEMP B-TREE"));
        end_bulk_load(&c).unwrap();
        assert!(plan(&c).contains("e_contact_full_name_order"));
        apply_schema(&c, &[contact_schema()]).unwrap();
        assert!(plan(&c).contains("TEMP B-TREE"), "{}", plan(&c));
        assert_eq!(page(&c), ["c2", "c3"]);
    }

    #[test]
    fn one_letter_searches_go_through_the_prefix_index() {
        let c = conn();
        for (id, name) in [
            ("c1", "Grace Hopper"),
            ("c2", "Ada Lovelace"),
            ("c3", "Alan Turing"),
        ] {
            upsert(&c, "contact", &rec(id, json!({"full_name": name}))).unwrap();
        }
        let sql: String = c
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'fts_contact'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("prefix='1'"), "{sql}");
        let found = |text: &str| {
            let q = Query {
                search: Some(text.into()),
                ..Default::default()
            };
            let mut ids: Vec<String> = query(&c, "contact", &q)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(found("a"), ["c2", "c3"]);
        assert_eq!(found("h"), ["c1"]);
        assert_eq!(found("lo"), ["c2"]);
        upsert(
            &c,
            "contact",
            &rec("c1", json!({"full_name": "Barbara Liskov"})),
        )
        .unwrap();
        assert!(found("h").is_empty(), "the prefix index follows an edit");
        assert_eq!(found("l"), ["c1", "c2"]);
    }

    #[test]
    fn search_and_edits_work_across_a_release_of_the_search_buffers() {
        let c = conn();
        let search = |text: &str| {
            let q = Query {
                search: Some(text.into()),
                ..Default::default()
            };
            query(&c, "contact", &q).unwrap().len()
        };
        c.execute_batch("BEGIN").unwrap();
        for i in 0..500 {
            let r = rec(
                &format!("r{i}"),
                json!({"full_name": format!("Hopper{i} Grace")}),
            );
            upsert(&c, "contact", &r).unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
        // Statements cached before the release re-prepare themselves.
        assert_eq!(search("grace"), 500);
        release_search_buffers(&c).unwrap();
        assert_eq!(search("grace"), 500);
        upsert(&c, "contact", &rec("r7", json!({"full_name": "Ada"}))).unwrap();
        upsert(
            &c,
            "contact",
            &rec("new", json!({"full_name": "Grace Kelly"})),
        )
        .unwrap();
        assert_eq!(search("grace"), 500);
        // Prefix search: Hopper70..79 are left, Hopper7 is now Ada.
        assert_eq!(search("hopper7"), 10);
        assert_eq!(search("kelly"), 1);
        assert_eq!(
            get(&c, "contact", "r7").unwrap().unwrap().fields["full_name"],
            json!("Ada")
        );
    }

    #[test]
    fn the_index_covers_the_first_part_of_a_huge_field_and_stays_consistent() {
        let c = conn();
        let cap = tables::FTS_INDEXED_CHARS as usize;
        let notes = format!("early {} lateword", "x".repeat(cap));
        upsert(&c, "contact", &rec("big", json!({"notes": notes}))).unwrap();
        let found = |text: &str| {
            let q = Query {
                search: Some(text.into()),
                ..Default::default()
            };
            query(&c, "contact", &q).unwrap().len()
        };
        assert_eq!(found("early"), 1);
        assert_eq!(found("lateword"), 0, "past the cap");
        // The whole value is stored and returned.
        let back = get(&c, "contact", "big").unwrap().unwrap();
        assert_eq!(back.fields["notes"].as_str().unwrap().len(), notes.len());
        // Updates and deletes remove exactly what was indexed.
        upsert(&c, "contact", &rec("big", json!({"notes": "short now"}))).unwrap();
        assert_eq!(found("early"), 0);
        assert_eq!(found("short"), 1);
        delete(&c, "contact", "big").unwrap();
        c.execute_batch("INSERT INTO fts_contact (fts_contact) VALUES ('integrity-check');")
            .unwrap();
    }

    #[test]
    fn search_text_is_never_fts_syntax() {
        let c = conn();
        upsert(
            &c,
            "contact",
            &rec("c1", json!({"full_name": "O'Brien \"Bob\" NEAR AND"})),
        )
        .unwrap();
        for text in ["\"", "NEAR(", "AND", "bob\"", "*", "o'brien"] {
            query(
                &c,
                "contact",
                &Query {
                    search: Some(text.into()),
                    ..Default::default()
                },
            )
            .unwrap();
        }
    }

    #[test]
    fn schema_grows_without_losing_data() {
        let c = conn();
        upsert(
            &c,
            "contact",
            &rec("c1", json!({"full_name": "Grace Hopper"})),
        )
        .unwrap();
        let mut s = contact_schema();
        s.fields.push(FieldSchema {
            name: "title".into(),
            kind: FieldType::Text,
            searchable: true,
            references: None,
            sortable: false,
        });
        apply_schema(&c, &[s]).unwrap();
        upsert(
            &c,
            "contact",
            &rec(
                "c2",
                json!({"full_name": "Someone", "title": "rear admiral"}),
            ),
        )
        .unwrap();
        assert_eq!(
            query(
                &c,
                "contact",
                &Query {
                    search: Some("admiral".into()),
                    ..Default::default()
                }
            )
            .unwrap()
            .len(),
            1
        );
        assert_eq!(
            query(
                &c,
                "contact",
                &Query {
                    search: Some("hopper".into()),
                    ..Default::default()
                }
            )
            .unwrap()
            .len(),
            1
        );
    }
}
