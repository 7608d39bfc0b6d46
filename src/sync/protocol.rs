//! The wire types of sync protocol v2 (docs/protocol.md). Unknown JSON fields are ignored (a
//! newer server may add some); a wrong type anywhere fails the whole response.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use yoke::{Yoke, Yokeable};

use crate::store::entities::{EntitySchema, WireValue, borrowed_str};

/// `GET schema`.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaResponse {
    pub schema_version: i64,
    pub entities: Vec<EntitySchema>,
    /// Absent from a server without attachments.
    #[serde(default)]
    pub attachment_policy: Option<AttachmentPolicy>,
}

/// What the organization allows for attachments (docs/protocol.md, "Attachments").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AttachmentPolicy {
    pub max_upload_bytes: u64,
    pub auto_download_max_bytes: u64,
    /// Empty: every entity's attachments download automatically (within the size).
    #[serde(default)]
    pub auto_download_entities: Vec<String>,
    pub device_quota_bytes: u64,
}

/// `POST attachments/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UploadState {
    pub upload_id: String,
    /// Bytes the server holds.
    pub offset: u64,
    /// The server holds the whole content already.
    pub complete: bool,
}

/// `POST pull`.
#[derive(Debug, Clone, Serialize)]
pub struct PullRequest {
    pub client_id: String,
    pub schema_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    pub limit: u32,
    /// What the device says about itself, for the organization's device list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
    /// The entities the app syncs (absent: all the user may read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<String>>,
}

/// A device's report with each pull (docs/protocol.md, "Devices").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    pub records_held: u64,
    pub pending_edits: u64,
    /// The previous Synchronize: `ok`, `cancelled` or `failed: Kind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
}

/// One page of changes as downloaded: the response body, and its changes read in place from it
/// (no copy of a record's id, names or text is made before the store's own; see
/// [`WireValue`]). Owning the body keeps the page `'static`, so it moves from the network task to
/// the store's thread as one value.
pub struct PullResponse(Yoke<PageView<'static>, Vec<u8>>);

impl PullResponse {
    /// Reads a page from the body of a pull answer.
    pub fn decode(body: Vec<u8>) -> Result<Self, serde_json::Error> {
        Yoke::try_attach_to_cart(body, |body| serde_json::from_slice(body)).map(PullResponse)
    }

    /// A page given as JSON (tests, and transports that build pages themselves).
    pub fn from_json(page: &Value) -> Result<Self, serde_json::Error> {
        Self::decode(serde_json::to_vec(page)?)
    }

    /// The page's contents.
    pub fn view(&self) -> &PageView<'_> {
        self.0.get()
    }
}

impl std::fmt::Debug for PullResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.view().fmt(f)
    }
}

/// The contents of one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Yokeable)]
pub struct PageView<'a> {
    #[serde(borrow)]
    pub changes: Vec<Change<'a>>,
    /// Present while more pages follow.
    pub page_token: Option<String>,
    /// Present on the last page: where the next pull starts.
    pub cursor: Option<i64>,
    pub estimated_total: Option<u64>,
}

/// What a change does to the device's copy of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Upsert,
    /// The record was deleted on the server.
    Delete,
    /// The record left the user's scope (owner, role, business unit, sync filter): it goes
    /// from the device, but nobody deleted it.
    Remove,
}

/// One record's new server state, borrowing the page it came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<'a> {
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub entity: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub id: Cow<'a, str>,
    pub version: i64,
    pub op: ChangeOp,
    #[serde(default, borrow)]
    pub fields: Fields<'a>,
}

/// A change's fields in the order the server sent them (a name given twice: the last counts,
/// as in a JSON object).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields<'a>(pub Vec<(Cow<'a, str>, WireValue<'a>)>);

impl<'a> Fields<'a> {
    /// Each field's name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &WireValue<'a>)> {
        self.0.iter().map(|(name, value)| (name.as_ref(), value))
    }

    /// The fields as a JSON object (where a record is kept as JSON: a conflict's server side).
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(name, value)| (name.to_string(), value.to_json()))
            .collect()
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Name(name)) = map.next_key()? {
                    fields.push((name, map.next_value()?));
                }
                Ok(Fields(fields))
            }
        }
        /// A field name, read in place.
        struct Name<'a>(Cow<'a, str>);
        impl<'de> Deserialize<'de> for Name<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                borrowed_str(d).map(Name)
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

/// `POST push`.
#[derive(Debug, Clone, Serialize)]
pub struct PushRequest {
    pub client_id: String,
    pub mutations: Vec<Mutation>,
}

/// One queued local change, as sent.
#[derive(Debug, Clone, Serialize)]
pub struct Mutation {
    pub mutation_id: i64,
    pub entity: String,
    pub id: String,
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_version: Option<i64>,
    pub fields: Map<String, Value>,
}

/// The answer to a push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
}

/// What happened to one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationStatus {
    Applied,
    /// Applied by an earlier push whose answer was lost.
    Duplicate,
    Conflict,
    Rejected,
}

/// The server's state of a record, sent with a conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRow {
    pub version: i64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// One result of a push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MutationResult {
    pub mutation_id: i64,
    pub status: MutationStatus,
    /// The record's version after an applied (or duplicate) mutation.
    pub version: Option<i64>,
    pub server: Option<ServerRow>,
    pub reason: Option<String>,
    /// Why a mutation was rejected, from the protocol's list (docs/protocol.md).
    #[serde(default)]
    pub code: Option<String>,
    /// `false` on an applied write the user may not read now (a sync filter or the roles leave
    /// the record out of their scope): the device drops the record once nothing of it is queued.
    #[serde(default)]
    pub in_scope: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_lends_its_text_and_keeps_every_field_in_order() {
        let body = br#"{"changes": [{"entity": "contact", "id": "c1", "version": 2, "op": "upsert",
            "fields": {"full_name": "First", "notes": "line\nbreak", "full_name": "Ada", "age": 3}}],
            "page_token": null, "cursor": 9, "estimated_total": 1}"#;
        let page = PullResponse::decode(body.to_vec()).unwrap();
        let change = &page.view().changes[0];
        assert!(matches!(change.id, Cow::Borrowed("c1")));
        let fields: Vec<_> = change.fields.iter().collect();
        assert_eq!(fields.len(), 4);
        assert!(matches!(
            fields[0].1,
            WireValue::Text(Cow::Borrowed("First"))
        ));
        assert!(matches!(fields[1].1, WireValue::Text(Cow::Owned(s)) if s == "line\nbreak"));
        // As JSON, the last of a repeated name counts, as serde_json's own reading has it.
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            Value::Object(change.fields.to_map()),
            json["changes"][0]["fields"]
        );
        assert_eq!(page.view().cursor, Some(9));
        // A wrong shape is refused whole.
        assert!(PullResponse::decode(br#"{"changes": [{"entity": 1}]}"#.to_vec()).is_err());
        assert!(PullResponse::from_json(&json!({"changes": "none"})).is_err());
    }
}
