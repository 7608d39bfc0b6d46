//! `query` and `edit`: the local data, read and changed offline.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use syncvault::{FieldType, FieldValue, RecordQuery, SyncClient, SyncRecord};

use crate::cli::GlobalArgs;
use crate::output::{HarnessError, Output};
use crate::vault_commands::client;

pub async fn unlocked(global: &GlobalArgs) -> Result<std::sync::Arc<SyncClient>, HarnessError> {
    let client = client(global)?;
    crate::vault_commands::unlock(&client, global, true).await?;
    Ok(client)
}

/// Reads `FIELD=VALUE` pairs, typing each value by the entity's schema.
async fn parse_fields(
    client: &SyncClient,
    entity: &str,
    pairs: &[String],
) -> Result<HashMap<String, FieldValue>, HarnessError> {
    let schema = client.entity_fields(entity.to_string()).await?;
    let mut fields = HashMap::new();
    for pair in pairs {
        let (name, raw) = pair
            .split_once('=')
            .ok_or_else(|| HarnessError::Usage(format!("{pair:?}: expected FIELD=VALUE")))?;
        let kind = if name == "id" {
            FieldType::Text
        } else {
            schema
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| HarnessError::Usage(format!("{entity} has no field {name:?}")))?
                .kind
        };
        let bad = || HarnessError::Usage(format!("{name}: {raw:?} is not a {kind:?} value"));
        let value = match kind {
            _ if raw == "null" => FieldValue::Null,
            FieldType::Integer => FieldValue::Integer {
                value: raw.parse().map_err(|_| bad())?,
            },
            FieldType::Real => FieldValue::Real {
                value: raw.parse().map_err(|_| bad())?,
            },
            FieldType::Boolean => FieldValue::Boolean {
                value: raw.parse().map_err(|_| bad())?,
            },
            FieldType::Text | FieldType::Timestamp | FieldType::Reference => FieldValue::Text {
                value: raw.to_string(),
            },
        };
        fields.insert(name.to_string(), value);
    }
    Ok(fields)
}

fn value_json(v: &FieldValue) -> Value {
    match v {
        FieldValue::Null => Value::Null,
        FieldValue::Text { value } => json!(value),
        FieldValue::Integer { value } => json!(value),
        FieldValue::Real { value } => json!(value),
        FieldValue::Boolean { value } => json!(value),
    }
}

/// Fields as a JSON object, by name.
pub fn fields_json(fields: &HashMap<String, FieldValue>) -> Value {
    let mut names: Vec<_> = fields.keys().collect();
    names.sort();
    Value::Object(
        names
            .into_iter()
            .map(|name| (name.clone(), value_json(&fields[name])))
            .collect(),
    )
}

/// `{"id", "version", "sync_state", ...fields}` (a field named like the first three wins).
pub fn record_json(r: &SyncRecord) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(r.id));
    object.insert("version".into(), json!(r.version));
    object.insert(
        "sync_state".into(),
        json!(crate::live_commands::state_name(&r.sync_state)),
    );
    if let Value::Object(fields) = fields_json(&r.fields) {
        object.extend(fields);
    }
    Value::Object(object)
}

pub struct QueryArgs {
    pub entity: String,
    pub id: Option<String>,
    pub filters: Vec<String>,
    pub search: Option<String>,
    pub limit: Option<u32>,
}

pub async fn query(global: &GlobalArgs, args: QueryArgs, out: &Output) -> Result<(), HarnessError> {
    let client = unlocked(global).await?;
    let mut pairs = args.filters;
    if let Some(id) = args.id {
        pairs.push(format!("id={id}"));
    }
    let query = RecordQuery {
        filters: parse_fields(&client, &args.entity, &pairs).await?,
        search: args.search,
        limit: args.limit,
        ..Default::default()
    };
    let records = client.query_records(args.entity, query).await?;
    let rows: Vec<Value> = records.iter().map(record_json).collect();
    let text = rows
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    out.result(&Value::Array(rows), &text);
    Ok(())
}

pub enum Edit {
    New {
        entity: String,
        fields: Vec<String>,
    },
    Update {
        entity: String,
        id: String,
        fields: Vec<String>,
    },
    Delete {
        entity: String,
        id: String,
    },
}

impl Edit {
    /// Reads `edit`'s positional arguments.
    pub fn parse(new: bool, delete: bool, args: Vec<String>) -> Result<Edit, HarnessError> {
        let mut it = args.into_iter();
        let entity = it
            .next()
            .ok_or_else(|| HarnessError::Usage("edit needs ENTITY".into()))?;
        if new {
            return Ok(Edit::New {
                entity,
                fields: it.collect(),
            });
        }
        let id = it
            .next()
            .ok_or_else(|| HarnessError::Usage("edit needs ENTITY ID".into()))?;
        let rest: Vec<String> = it.collect();
        match (delete, rest.is_empty()) {
            (true, true) => Ok(Edit::Delete { entity, id }),
            (true, false) => Err(HarnessError::Usage(
                "edit --delete takes ENTITY ID only".into(),
            )),
            (false, true) => Err(HarnessError::Usage(
                "edit ENTITY ID needs FIELD=VALUE...".into(),
            )),
            (false, false) => Ok(Edit::Update {
                entity,
                id,
                fields: rest,
            }),
        }
    }
}

pub async fn edit(global: &GlobalArgs, edit: Edit, out: &Output) -> Result<(), HarnessError> {
    let client = unlocked(global).await?;
    let (value, text) = match edit {
        Edit::New { entity, fields } => {
            let fields = parse_fields(&client, &entity, &fields).await?;
            let id = client.create_record(entity.clone(), fields).await?;
            (json!({"id": id, "entity": entity, "queued": true}), id)
        }
        Edit::Update { entity, id, fields } => {
            let fields = parse_fields(&client, &entity, &fields).await?;
            client
                .update_record(entity.clone(), id.clone(), fields)
                .await?;
            (
                json!({"id": id, "entity": entity, "queued": true}),
                format!("{entity} {id} changed (queued)"),
            )
        }
        Edit::Delete { entity, id } => {
            client.delete_record(entity.clone(), id.clone()).await?;
            (
                json!({"id": id, "entity": entity, "deleted": true, "queued": true}),
                format!("{entity} {id} deleted (queued)"),
            )
        }
    };
    out.result(&value, &text);
    Ok(())
}
