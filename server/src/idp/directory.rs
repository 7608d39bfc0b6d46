//! The development provider's user directory, served the way Microsoft Graph serves one:
//! `GET /v1.0/users?$select=id,displayName,mail,userPrincipalName&$top=N`, answering
//! `{"value": [...], "@odata.nextLink": "..."}`, behind an access token from the client
//! credentials grant (app-only access, as an organization's import job has it).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Idp, now, oauth_error, random_token, subject};

/// The confidential client an organization imports users with (development only).
pub const DIRECTORY_CLIENT_ID: &str = "syncvault-directory";
pub const DIRECTORY_CLIENT_SECRET: &str = "directory-secret";

/// One person in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: String,
    pub display_name: String,
    pub mail: String,
}

/// The people of the development tenant. Ada's address is in another case than the
/// organization's; two accounts share Margaret's address (an import reports them, never merges).
/// Each id is the subject the provider signs that person's tokens with.
pub fn directory() -> Vec<DirectoryUser> {
    let person = |name: &str, mail: &str| DirectoryUser {
        id: subject(mail),
        display_name: name.into(),
        mail: mail.into(),
    };
    let mut people = vec![
        person("Ada Lovelace", "Ada@Contoso.Example"),
        person("Alan Turing", "alan@contoso.example"),
        person("Katherine Johnson", "katherine@contoso.example"),
        person("Dorothy Vaughan", "dorothy@contoso.example"),
        person("Margaret Hamilton", "margaret@contoso.example"),
        person("Grace Hopper", "grace@contoso.example"),
        person("Annie Easley", "annie@contoso.example"),
    ];
    // The same person's address on a second (test) account.
    people.push(DirectoryUser {
        id: subject("second:margaret@contoso.example"),
        display_name: "Margaret Hamilton (test account)".into(),
        mail: "MARGARET@contoso.example".into(),
    });
    people
}

/// The client credentials grant: an app-only token for the directory.
pub(super) fn client_credentials_grant(
    idp: &Idp,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Response {
    if client_id != Some(DIRECTORY_CLIENT_ID) || client_secret != Some(DIRECTORY_CLIENT_SECRET) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let token = random_token(32);
    let lifetime = idp.lifetimes.access_token.as_secs();
    idp.data
        .lock()
        .unwrap()
        .directory_tokens
        .insert(token.clone(), now() + lifetime);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}))
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct UsersQuery {
    #[serde(rename = "$select")]
    select: Option<String>,
    #[serde(rename = "$top")]
    top: Option<usize>,
    #[serde(rename = "$skiptoken")]
    skiptoken: Option<usize>,
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

pub(super) async fn users(
    State(idp): State<Arc<Idp>>,
    headers: HeaderMap,
    Query(q): Query<UsersQuery>,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = token.is_some_and(|t| {
        idp.data
            .lock()
            .unwrap()
            .directory_tokens
            .get(t)
            .is_some_and(|exp| *exp > now())
    });
    if !valid {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        );
    }
    let fields: Vec<String> = q
        .select
        .unwrap_or_else(|| "id,displayName,mail,userPrincipalName".into())
        .split(',')
        .map(|f| f.trim().to_string())
        .collect();
    let top = q.top.unwrap_or(100).clamp(1, 999);
    let start = q.skiptoken.unwrap_or(0);
    let people = directory();
    let value: Vec<Value> = people
        .iter()
        .skip(start)
        .take(top)
        .map(|p| {
            let mut o = Map::new();
            for f in &fields {
                let v = match f.as_str() {
                    "id" => json!(p.id),
                    "displayName" => json!(p.display_name),
                    "mail" => json!(p.mail),
                    "userPrincipalName" => json!(p.mail),
                    _ => continue,
                };
                o.insert(f.clone(), v);
            }
            Value::Object(o)
        })
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users", idp.issuer),
        "value": value,
    });
    if start + top < people.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/users?$select={}&$top={top}&$skiptoken={}",
            idp.issuer,
            fields.join(","),
            start + top
        ));
    }
    Json(body).into_response()
}
