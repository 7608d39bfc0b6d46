//! The organization's schema (a small CRM to start with: accounts, contacts, activities), kept in
//! the record store so the administrator can evolve it: add an entity, add a field, retire a
//! field, set an entity's sync filter. Every change bumps the schema version (clients fetch the
//! schema again and migrate) and an added field or entity bumps the entity's revision (devices
//! get its records again, with the new values). Also the type checks the server applies to every
//! pushed field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::scope::SyncFilter;

/// One field as the organization defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub searchable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    /// Devices index it for lists ordered by it (docs/protocol.md, "GET /schema").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sortable: bool,
    /// Retired fields stay listed (devices keep their column and values) but take no new
    /// values: a push that sets one is refused (`invalid_field`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// One entity as the organization defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityDef {
    pub name: String,
    pub fields: Vec<FieldDef>,
    /// The schema version at which a field was last added (or the entity created).
    pub revision: i64,
    /// Which of the records a user may read sync to devices (None: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_filter: Option<SyncFilter>,
}

/// The organization's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub version: i64,
    pub entities: Vec<EntityDef>,
}

/// Field types of the protocol (docs/protocol.md, "GET /schema").
pub const TYPES: &[&str] = &[
    "text",
    "integer",
    "real",
    "boolean",
    "timestamp",
    "reference",
];

fn field(name: &str, kind: &str, searchable: bool, references: Option<&str>) -> FieldDef {
    FieldDef {
        name: name.into(),
        kind: kind.into(),
        searchable,
        references: references.map(str::to_string),
        sortable: false,
        retired: false,
    }
}

/// The same, indexed on devices for lists ordered by it.
fn sortable(mut f: FieldDef) -> FieldDef {
    f.sortable = true;
    f
}

impl FieldDef {
    /// A field from the short form an administrator types (`syncvault admin schema`, the
    /// console's schema page): `name:type`, then `:ENTITY` for the entity a `reference` points
    /// at, then the flags `:searchable` (full-text, text fields) and `:sortable` (indexed on
    /// devices for lists ordered by it), e.g. `mobile:text:searchable:sortable`,
    /// `account_id:reference:account`. Names and types are checked when the schema takes it.
    pub fn parse_spec(spec: &str) -> Result<FieldDef, String> {
        let parts: Vec<&str> = spec.trim().split(':').map(str::trim).collect();
        let [name, kind, rest @ ..] = parts.as_slice() else {
            return Err(format!(
                "{spec:?} is not name:type[:entity][:searchable][:sortable]"
            ));
        };
        let (references, flags) = match (*kind, rest) {
            ("reference", [entity, flags @ ..]) => (Some(*entity), flags),
            (_, flags) => (None, flags),
        };
        let mut f = field(name, kind, false, references);
        for flag in flags {
            match *flag {
                "searchable" if f.kind == "text" && !f.searchable => f.searchable = true,
                "sortable" if !f.sortable => f.sortable = true,
                _ => {
                    return Err(format!(
                        "{spec:?}: only text fields are searchable, only references name an \
                         entity, and the flags are searchable and sortable, once each"
                    ));
                }
            }
        }
        Ok(f)
    }
}

/// The built-in entity of attachment metadata (docs/protocol.md, "Attachments"): one record per
/// file, belonging to a record of another entity, which decides who reads and changes it. Its
/// content moves through the attachment calls, never in a record.
pub const ATTACHMENT: &str = "attachment";

fn attachment_fields() -> Vec<FieldDef> {
    vec![
        field("record_entity", "text", false, None),
        field("record_id", "text", false, None),
        field("name", "text", true, None),
        field("mime", "text", false, None),
        field("size", "integer", false, None),
        field("sha256", "text", false, None),
    ]
}

fn not_built_in(entity: &str) -> Result<(), String> {
    if entity == ATTACHMENT {
        return Err(format!(
            "{ATTACHMENT} is built in: its fields and filter are the protocol's"
        ));
    }
    Ok(())
}

/// Whether `name` may be an entity or field name (the client makes SQL identifiers of them).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name != "id"
        && name != "version"
}

impl Schema {
    /// The schema a new organization starts with (no sync filters: the administrator adds them,
    /// e.g. activities that are open or due in the last 90 days).
    pub fn initial() -> Schema {
        let e = |name: &str, fields| EntityDef {
            name: name.into(),
            fields,
            revision: 1,
            sync_filter: None,
        };
        let activity = e(
            "activity",
            vec![
                field("subject", "text", true, None),
                field("kind", "text", false, None),
                sortable(field("due_at", "timestamp", false, None)),
                field("done", "boolean", false, None),
                field("account_id", "reference", false, Some("account")),
                field("contact_id", "reference", false, Some("contact")),
                field("notes", "text", true, None),
            ],
        );
        Schema {
            version: 1,
            entities: vec![
                e(
                    "account",
                    vec![
                        sortable(field("name", "text", true, None)),
                        field("industry", "text", false, None),
                        field("city", "text", true, None),
                        field("phone", "text", false, None),
                        field("annual_revenue", "real", false, None),
                        field("employees", "integer", false, None),
                        field("active", "boolean", false, None),
                        field("created_at", "timestamp", false, None),
                    ],
                ),
                e(
                    "contact",
                    vec![
                        sortable(field("full_name", "text", true, None)),
                        field("email", "text", true, None),
                        field("phone", "text", false, None),
                        field("job_title", "text", false, None),
                        field("account_id", "reference", false, Some("account")),
                        field("notes", "text", true, None),
                    ],
                ),
                activity,
                e(ATTACHMENT, attachment_fields()),
            ],
        }
    }

    /// A schema stored before attachments existed gains their entity (a new schema version, so
    /// devices migrate).
    pub fn with_attachments(mut self) -> Schema {
        if self.entity(ATTACHMENT).is_none() {
            self.add_entity(ATTACHMENT, attachment_fields())
                .expect("the built-in entity is valid");
        }
        self
    }

    /// `GET /api/sync/v2/schema`.
    pub fn to_json(&self) -> Value {
        let entities: Vec<Value> = self
            .entities
            .iter()
            .map(|e| {
                let mut v = json!({"name": e.name, "fields": e.fields});
                if let Some(f) = &e.sync_filter {
                    v["sync_filter"] = json!(f);
                }
                v
            })
            .collect();
        json!({"schema_version": self.version, "entities": entities})
    }

    /// The entities roles grant privileges on: all but attachments, which follow their record.
    pub fn role_entities(&self) -> impl Iterator<Item = &EntityDef> {
        self.entities.iter().filter(|e| e.name != ATTACHMENT)
    }

    pub fn entity(&self, name: &str) -> Option<&EntityDef> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// Field names and types of one entity (retired ones too).
    pub fn fields_of(&self, entity: &str) -> Option<Vec<(String, String)>> {
        Some(
            self.entity(entity)?
                .fields
                .iter()
                .map(|f| (f.name.clone(), f.kind.clone()))
                .collect(),
        )
    }

    /// Adds an entity with its fields.
    pub fn add_entity(&mut self, name: &str, fields: Vec<FieldDef>) -> Result<(), String> {
        if !valid_name(name) {
            return Err(format!("{name:?} is not a valid entity name"));
        }
        if self.entity(name).is_some() {
            return Err(format!("the entity {name:?} exists"));
        }
        let version = self.version + 1;
        let mut entity = EntityDef {
            name: name.into(),
            fields: vec![],
            revision: version,
            sync_filter: None,
        };
        for f in fields {
            check_new_field(self, &entity, &f)?;
            entity.fields.push(f);
        }
        self.entities.push(entity);
        self.version = version;
        Ok(())
    }

    /// Adds a field to an entity: devices get the entity's records again with its values.
    pub fn add_field(&mut self, entity: &str, f: FieldDef) -> Result<(), String> {
        not_built_in(entity)?;
        let e = self
            .entity(entity)
            .ok_or_else(|| format!("no entity {entity:?}"))?;
        check_new_field(self, e, &f)?;
        let version = self.version + 1;
        let e = self.entity_mut(entity);
        e.fields.push(f);
        e.revision = version;
        self.version = version;
        Ok(())
    }

    /// Retires a field: it stays in the schema (devices keep its column) and takes no new value.
    pub fn retire_field(&mut self, entity: &str, name: &str) -> Result<(), String> {
        not_built_in(entity)?;
        let e = self
            .entity(entity)
            .ok_or_else(|| format!("no entity {entity:?}"))?;
        match e.fields.iter().find(|f| f.name == name) {
            None => return Err(format!("{entity} has no field {name:?}")),
            Some(f) if f.retired => return Err(format!("{entity}.{name} is already retired")),
            Some(_) => {}
        }
        let e = self.entity_mut(entity);
        if let Some(f) = e.fields.iter_mut().find(|f| f.name == name) {
            f.retired = true;
        }
        self.version += 1;
        Ok(())
    }

    /// Makes a field sortable or not: devices add or drop its index at their next Synchronize
    /// (a new schema version; nothing downloads again).
    pub fn set_sortable(&mut self, entity: &str, name: &str, on: bool) -> Result<(), String> {
        let f = self
            .entities
            .iter_mut()
            .find(|e| e.name == entity)
            .ok_or_else(|| format!("no entity {entity:?}"))?
            .fields
            .iter_mut()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("{entity} has no field {name:?}"))?;
        if f.sortable != on {
            f.sortable = on;
            self.version += 1;
        }
        Ok(())
    }

    /// Sets (or clears) an entity's sync filter. The schema version stays: devices need no
    /// migration, and the next pull's scope sends what entered and what left.
    pub fn set_filter(&mut self, entity: &str, filter: Option<SyncFilter>) -> Result<(), String> {
        not_built_in(entity)?;
        let fields = self
            .fields_of(entity)
            .ok_or_else(|| format!("no entity {entity:?}"))?;
        if let Some(f) = &filter {
            f.validate(&fields)?;
        }
        self.entity_mut(entity).sync_filter = filter;
        Ok(())
    }

    fn entity_mut(&mut self, name: &str) -> &mut EntityDef {
        self.entities
            .iter_mut()
            .find(|e| e.name == name)
            .expect("checked by the caller")
    }

    /// Checks pushed fields against the schema (`invalid_field`) and the organization's rules
    /// (`invalid_value`).
    pub fn check_fields(&self, entity: &str, fields: &Map<String, Value>) -> Result<(), Refusal> {
        self.check_types(entity, fields)
            .map_err(|r| refusal("invalid_field", r))?;
        check_rules(entity, fields).map_err(|r| refusal("invalid_value", r))
    }

    fn check_types(&self, entity: &str, fields: &Map<String, Value>) -> Result<(), String> {
        let e = self
            .entity(entity)
            .ok_or_else(|| format!("unknown entity {entity:?}"))?;
        for (name, value) in fields {
            let f = e
                .fields
                .iter()
                .find(|f| f.name == *name)
                .ok_or_else(|| format!("{entity} has no field {name:?}"))?;
            if f.retired {
                return Err(format!("{entity}.{name} is retired"));
            }
            let ok = match (f.kind.as_str(), value) {
                (_, Value::Null) => true,
                ("text" | "reference", Value::String(_)) => true,
                ("timestamp", Value::String(s)) => chrono_like(s),
                ("integer", Value::Number(n)) => n.is_i64(),
                ("real", Value::Number(_)) => true,
                ("boolean", Value::Bool(_)) => true,
                _ => false,
            };
            if !ok {
                return Err(format!("{entity}.{name} must be of type {}", f.kind));
            }
        }
        Ok(())
    }
}

fn check_new_field(schema: &Schema, entity: &EntityDef, f: &FieldDef) -> Result<(), String> {
    if !valid_name(&f.name) {
        return Err(format!("{:?} is not a valid field name", f.name));
    }
    if entity.fields.iter().any(|g| g.name == f.name) {
        return Err(format!("{} already has a field {:?}", entity.name, f.name));
    }
    if !TYPES.contains(&f.kind.as_str()) {
        return Err(format!("{:?} is not a field type", f.kind));
    }
    if f.searchable && f.kind != "text" {
        return Err("only text fields are searchable".into());
    }
    match (&f.references, f.kind.as_str()) {
        (Some(r), "reference") if schema.entity(r).is_some() || *r == entity.name => Ok(()),
        (Some(r), "reference") => Err(format!("no entity {r:?} to refer to")),
        (None, "reference") => Err("a reference names the entity it refers to".into()),
        (Some(_), _) => Err("only reference fields refer to an entity".into()),
        (None, _) => Ok(()),
    }
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
        ATTACHMENT => {
            if let Some(Value::String(h)) = fields.get("sha256")
                && !super::blobs::valid_sha256(h)
            {
                return Err("sha256 is 64 lowercase hex digits".into());
            }
            if fields
                .get("size")
                .and_then(Value::as_i64)
                .is_some_and(|n| n < 0)
            {
                return Err("size cannot be negative".into());
            }
        }
        _ => {}
    }
    Ok(())
}

fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evolution_bumps_versions_and_revisions() {
        let mut s = Schema::initial();
        s.add_field("contact", field("mobile", "text", false, None))
            .unwrap();
        assert_eq!(s.version, 2);
        assert_eq!(s.entity("contact").unwrap().revision, 2);
        assert_eq!(s.entity("account").unwrap().revision, 1);
        s.add_entity(
            "work_order",
            vec![
                field("title", "text", true, None),
                field("account_id", "reference", false, Some("account")),
            ],
        )
        .unwrap();
        assert_eq!(s.entity("work_order").unwrap().revision, 3);
        s.retire_field("contact", "phone").unwrap();
        assert_eq!(s.version, 4);
        let mut f = Map::new();
        f.insert("phone".into(), json!("1"));
        assert_eq!(
            s.check_fields("contact", &f).unwrap_err().code,
            "invalid_field"
        );
        for bad in [
            s.add_field("contact", field("mobile", "text", false, None)),
            s.add_field("contact", field("Bad", "text", false, None)),
            s.add_field("contact", field("id", "text", false, None)),
            s.add_field("contact", field("n", "blob", false, None)),
            s.add_field("contact", field("n", "integer", true, None)),
            s.add_field("contact", field("r", "reference", false, Some("nope"))),
            s.add_field("nope", field("n", "text", false, None)),
            s.add_entity("account", vec![]),
            s.retire_field("contact", "phone"),
        ] {
            assert!(bad.is_err());
        }
        assert_eq!(s.version, 4, "refused changes change nothing");
    }

    #[test]
    fn pushed_values_are_checked() {
        let s = Schema::initial();
        let check = |entity: &str, v: Value| {
            s.check_fields(entity, v.as_object().unwrap())
                .map_err(|r| r.code)
        };
        assert_eq!(check("contact", json!({"email": "a@b.example"})), Ok(()));
        assert_eq!(
            check("contact", json!({"email": "nope"})),
            Err("invalid_value")
        );
        assert_eq!(check("contact", json!({"age": 3})), Err("invalid_field"));
        assert_eq!(
            check("account", json!({"employees": 1.5})),
            Err("invalid_field")
        );
        assert_eq!(
            check("account", json!({"employees": -1})),
            Err("invalid_value")
        );
        assert_eq!(
            check("activity", json!({"due_at": "tomorrow"})),
            Err("invalid_field")
        );
    }

    #[test]
    fn sortable_is_a_new_schema_version_without_a_new_revision() {
        let mut s = Schema::initial();
        let (version, revision) = (s.version, s.entity("contact").unwrap().revision);
        s.set_sortable("contact", "email", true).unwrap();
        assert_eq!(s.version, version + 1);
        assert_eq!(s.entity("contact").unwrap().revision, revision);
        let email = |s: &Schema| s.entity("contact").unwrap().fields[1].clone();
        assert!(email(&s).sortable);
        assert_eq!(s.to_json()["entities"][1]["fields"][1]["sortable"], true);
        // Unchanged: no new version.
        s.set_sortable("contact", "email", true).unwrap();
        assert_eq!(s.version, version + 1);
        s.set_sortable("contact", "email", false).unwrap();
        assert!(!email(&s).sortable);
        assert_eq!(s.version, version + 2);
        assert!(s.set_sortable("contact", "nope", true).is_err());
        assert!(s.set_sortable("nope", "email", true).is_err());
    }

    #[test]
    fn field_specs_parse_or_say_why_not() {
        assert_eq!(
            FieldDef::parse_spec("mobile:text:searchable").unwrap(),
            field("mobile", "text", true, None)
        );
        assert_eq!(
            FieldDef::parse_spec(" account_id : reference : account ").unwrap(),
            field("account_id", "reference", false, Some("account"))
        );
        assert_eq!(
            FieldDef::parse_spec("n:integer").unwrap(),
            field("n", "integer", false, None)
        );
        assert_eq!(
            FieldDef::parse_spec("mobile:text:searchable:sortable").unwrap(),
            sortable(field("mobile", "text", true, None))
        );
        assert_eq!(
            FieldDef::parse_spec("due:timestamp:sortable").unwrap(),
            sortable(field("due", "timestamp", false, None))
        );
        assert_eq!(
            FieldDef::parse_spec("owner:reference:contact:sortable").unwrap(),
            sortable(field("owner", "reference", false, Some("contact")))
        );
        for bad in [
            "mobile",
            "a:b:c:d",
            "n:integer:searchable",
            "t:text:account",
            "t:text:sortable:sortable",
            "t:text:searchable:searchable",
        ] {
            assert!(FieldDef::parse_spec(bad).is_err(), "{bad}");
        }
    }
}
