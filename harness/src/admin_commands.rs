//! `syncvault admin ...`: the Admin Console's JSON API for scripts (docs/admin.md). Each run
//! signs in (the administrator's password while the provider is not connected, else the
//! built-in provider's login form as `--dev-login EMAIL`), does one thing, prints JSON (or a
//! line for people) and signs out.

use serde_json::{Value, json};
use syncvault_server::idp::DEV_PASSWORD;
use syncvault_testkit::devlogin;

use crate::cli::{AdminArgs, AdminCommand, GlobalArgs, SchemaCommand};
use crate::output::{HarnessError, Output};
use crate::passwords::Passwords;
use syncvault_server::sync::schema::FieldDef;

/// An admin API session.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Io(std::io::Error::other(format!("{what}: {e}")))
}

/// The answer's JSON, or the API's error as a harness error.
async fn json_of(r: reqwest::Response, what: &str) -> Result<Value, HarnessError> {
    let status = r.status();
    let text = r.text().await.map_err(|e| failed(what, e))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        let reason = body["error_description"]
            .as_str()
            .unwrap_or(status.as_str())
            .to_string();
        Err(failed(what, reason))
    }
}

/// Follows a provider login page as `email` (the built-in provider's form) and returns what
/// the organization's callback answered.
async fn provider_flow(
    http: &reqwest::Client,
    authorization_url: &str,
    email: &str,
) -> Result<Value, HarnessError> {
    let callback = devlogin::login(authorization_url, email, DEV_PASSWORD, false)
        .await
        .map_err(|e| failed("provider sign-in", e))?;
    let r = http
        .get(callback)
        .send()
        .await
        .map_err(|e| failed("callback", e))?;
    json_of(r, "provider sign-in").await
}

impl Api {
    async fn sign_in(global: &GlobalArgs, args: &AdminArgs) -> Result<Api, HarnessError> {
        let http = devlogin::client().map_err(|e| failed("HTTP client", e))?;
        let base = format!("{}/admin/api", args.org.trim_end_matches('/'));
        let session = match &args.dev_login {
            Some(email) => {
                let r = http
                    .post(format!("{base}/session/provider"))
                    .send()
                    .await
                    .map_err(|e| failed("sign-in", e))?;
                let started = json_of(r, "sign-in").await?;
                let url = started["authorization_url"].as_str().unwrap_or_default();
                provider_flow(&http, url, email).await?
            }
            None => {
                let password =
                    Passwords::new(global.password_stdin).next("Administrator password")?;
                let body = json!({
                    "email": args.email,
                    "password": String::from_utf8_lossy(&password),
                });
                let r = http
                    .post(format!("{base}/session"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| failed("sign-in", e))?;
                json_of(r, "sign-in").await?
            }
        };
        let token = session["token"]
            .as_str()
            .ok_or_else(|| failed("sign-in", "no token in the answer"))?
            .to_string();
        Ok(Api { http, base, token })
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, HarnessError> {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        }
        .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.map_err(|e| failed(path, e))?;
        if r.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        json_of(r, path).await
    }

    /// A user by email or id.
    async fn user(&self, who: &str) -> Result<Value, HarnessError> {
        let users = self.call("GET", "/users", None).await?;
        users
            .as_array()
            .and_then(|u| {
                u.iter()
                    .find(|u| {
                        u["id"] == who || u["email"].as_str() == Some(&who.trim().to_lowercase())
                    })
                    .cloned()
            })
            .ok_or_else(|| HarnessError::Usage(format!("no user {who:?}")))
    }

    async fn sign_out(self) {
        let _ = self.call("DELETE", "/session", None).await;
    }
}

/// The provider user with this email, from the directory.
fn directory_entry<'a>(rows: &'a Value, email: &str) -> Option<&'a Value> {
    rows.as_array()?.iter().find(|r| {
        r["entry"]["email"]
            .as_str()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()))
    })
}

async fn run_command(api: &Api, command: &AdminCommand) -> Result<(Value, String), HarnessError> {
    Ok(match command {
        AdminCommand::Organization => {
            let org = api.call("GET", "/organization", None).await?;
            let text = match org["connection"]["issuer"].as_str() {
                Some(issuer) => format!("connected to {issuer}; user modes {}", org["user_modes"]),
                None => format!("not connected; user modes {}", org["user_modes"]),
            };
            (org, text)
        }
        AdminCommand::Connect { as_email } => {
            let started = api.call("POST", "/connect", None).await?;
            let url = started["authorization_url"].as_str().unwrap_or_default();
            let org = provider_flow(&api.http, url, as_email).await?;
            (
                org,
                format!("connected; {as_email} is the associated administrator"),
            )
        }
        AdminCommand::Disconnect => {
            let org = api.call("POST", "/disconnect", None).await?;
            (org, "disconnected".into())
        }
        AdminCommand::ImportUsers { emails, all, roles } => {
            let rows = api.call("GET", "/directory", None).await?;
            let ids: Vec<Value> = if *all {
                rows.as_array()
                    .map(|r| r.iter().map(|r| r["entry"]["id"].clone()).collect())
                    .unwrap_or_default()
            } else {
                let mut ids = Vec::new();
                for e in emails {
                    let matches: Vec<Value> = rows
                        .as_array()
                        .map(|r| {
                            r.iter()
                                .filter(|r| {
                                    r["entry"]["email"]
                                        .as_str()
                                        .is_some_and(|x| x.trim().eq_ignore_ascii_case(e.trim()))
                                })
                                .map(|r| r["entry"]["id"].clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    if matches.is_empty() {
                        return Err(HarnessError::Usage(format!("{e} is not in the directory")));
                    }
                    ids.extend(matches);
                }
                ids
            };
            let plan = api
                .call("POST", "/import", Some(json!({"ids": ids, "roles": roles})))
                .await?;
            let text = plan
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|a| {
                            let email = a["entry"]["email"].as_str().or(a["email"].as_str());
                            format!(
                                "{}: {}",
                                email.unwrap_or("?"),
                                a["action"].as_str().unwrap_or("?")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            (plan, text)
        }
        AdminCommand::Users { search } => {
            let r = api
                .http
                .get(format!("{}/users", api.base))
                .query(&[("search", search)])
                .bearer_auth(&api.token)
                .send()
                .await
                .map_err(|e| failed("/users", e))?;
            let users = json_of(r, "/users").await?;
            let text = users
                .as_array()
                .map(|u| {
                    u.iter()
                        .map(|u| {
                            format!(
                                "{} {} {} [{}]{}",
                                u["id"].as_str().unwrap_or(""),
                                u["email"].as_str().unwrap_or(""),
                                u["domain_name"].as_str().unwrap_or("-"),
                                u["roles"]
                                    .as_array()
                                    .map(|r| r
                                        .iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join(", "))
                                    .unwrap_or_default(),
                                if u["enabled"] == false {
                                    " disabled"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            (users, text)
        }
        AdminCommand::Assign {
            user,
            domain_name,
            provider_email,
            roles,
            unit,
        } => {
            let current = api.user(user).await?;
            let domain_name = match (domain_name, provider_email) {
                (Some(d), _) => Some(d.clone()),
                (None, Some(email)) => {
                    let rows = api.call("GET", "/directory", None).await?;
                    let row = directory_entry(&rows, email).ok_or_else(|| {
                        HarnessError::Usage(format!("{email} is not in the directory"))
                    })?;
                    row["domain_name"].as_str().map(str::to_string)
                }
                (None, None) => current["domain_name"].as_str().map(str::to_string),
            };
            let roles: Vec<Value> = if roles.is_empty() {
                current["roles"].as_array().cloned().unwrap_or_default()
            } else {
                roles.iter().map(|r| json!(r)).collect()
            };
            let mut body = edit_of(&current, domain_name, roles, current["enabled"] != false);
            if let Some(unit) = unit {
                body["business_unit"] = json!(unit);
            }
            let saved = save(api, &current, body).await?;
            let text = format!("saved {}", saved["email"].as_str().unwrap_or(""));
            (saved, text)
        }
        AdminCommand::Disable { user } | AdminCommand::Enable { user } => {
            let enable = matches!(command, AdminCommand::Enable { .. });
            let current = api.user(user).await?;
            let roles = current["roles"].as_array().cloned().unwrap_or_default();
            let domain_name = current["domain_name"].as_str().map(str::to_string);
            let saved = save(api, &current, edit_of(&current, domain_name, roles, enable)).await?;
            let text = format!(
                "{} {}",
                if enable { "enabled" } else { "disabled" },
                saved["email"].as_str().unwrap_or("")
            );
            (saved, text)
        }
        AdminCommand::AssignRecords { entity, owner, ids } => {
            let moved = api
                .call(
                    "POST",
                    &format!("/records/{entity}/assign"),
                    Some(json!({"ids": ids, "owner": owner})),
                )
                .await?;
            let text = format!("{} {entity} records now owned by {owner}", moved["moved"]);
            (moved, text)
        }
        AdminCommand::Role {
            name,
            entity,
            read,
            create,
            write,
            delete,
        } => {
            role_command(
                api,
                name.as_deref(),
                entity.as_deref(),
                [read, create, write, delete],
            )
            .await?
        }
        AdminCommand::Schema { command } => schema_command(api, command.as_ref()).await?,
        AdminCommand::AttachmentPolicy {
            max_upload_bytes,
            auto_download_max_bytes,
            auto_download_entities,
            all_entities,
            device_quota_bytes,
        } => {
            let mut policy = api.call("GET", "/attachment-policy", None).await?;
            let all_entities = *all_entities;
            let changed = [
                ("max_upload_bytes", max_upload_bytes),
                ("auto_download_max_bytes", auto_download_max_bytes),
                ("device_quota_bytes", device_quota_bytes),
            ];
            let mut put = all_entities || !auto_download_entities.is_empty();
            for (key, value) in changed {
                if let Some(v) = value {
                    policy[key] = json!(v);
                    put = true;
                }
            }
            if all_entities {
                policy["auto_download_entities"] = json!([]);
            } else if !auto_download_entities.is_empty() {
                policy["auto_download_entities"] = json!(auto_download_entities);
            }
            if put {
                policy = api.call("PUT", "/attachment-policy", Some(policy)).await?;
            }
            let text = format!(
                "uploads up to {} bytes; automatic downloads up to {} bytes of {}; {} bytes per device",
                policy["max_upload_bytes"],
                policy["auto_download_max_bytes"],
                match policy["auto_download_entities"].as_array() {
                    Some(e) if !e.is_empty() => e
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => "every entity".into(),
                },
                policy["device_quota_bytes"]
            );
            (policy, text)
        }
        AdminCommand::Devices => {
            let devices = api.call("GET", "/devices", None).await?;
            let text = devices
                .as_array()
                .map(|d| {
                    d.iter()
                        .map(|d| {
                            format!(
                                "{} {} {} last seen {}",
                                d["client_id"].as_str().unwrap_or(""),
                                d["user_email"].as_str().unwrap_or(""),
                                d["report"]["name"].as_str().unwrap_or("(unnamed)"),
                                d["last_seen"]
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            (devices, text)
        }
        AdminCommand::WipeDevice { client_id }
        | AdminCommand::SignOutDevice { client_id }
        | AdminCommand::FullSyncDevice { client_id } => {
            let verb = match command {
                AdminCommand::WipeDevice { .. } => "wipe",
                AdminCommand::SignOutDevice { .. } => "sign-out",
                _ => "full-sync",
            };
            let done = api
                .call("POST", &format!("/devices/{client_id}/{verb}"), None)
                .await?;
            (
                done,
                format!("{verb} queued for {client_id}: done at its next contact"),
            )
        }
    })
}

/// The body of a user's save: the business unit stays as it is unless the caller sets it.
fn edit_of(
    current: &Value,
    domain_name: Option<String>,
    roles: Vec<Value>,
    enabled: bool,
) -> Value {
    json!({
        "name": current["name"],
        "domain_name": domain_name,
        "enabled": enabled,
        "roles": roles,
    })
}

async fn save(api: &Api, current: &Value, body: Value) -> Result<Value, HarnessError> {
    let id = current["id"].as_str().unwrap_or_default();
    api.call("PUT", &format!("/users/{id}"), Some(body)).await
}

/// Lists the roles, or sets one role's depths on one entity (the others stay).
async fn role_command(
    api: &Api,
    name: Option<&str>,
    entity: Option<&str>,
    depths: [&Option<String>; 4],
) -> Result<(Value, String), HarnessError> {
    let roles = api.call("GET", "/roles", None).await?;
    let (Some(name), Some(entity)) = (name, entity) else {
        let text = roles
            .as_array()
            .map(|roles| {
                roles
                    .iter()
                    .map(|r| {
                        let grants: Vec<String> = r["privileges"]
                            .as_array()
                            .map(|p| {
                                p.iter()
                                    .map(|p| {
                                        format!(
                                            "  {}: read {}, create {}, write {}, delete {}",
                                            p["entity"].as_str().unwrap_or(""),
                                            p["read"],
                                            p["create"],
                                            p["write"],
                                            p["delete"]
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        format!(
                            "{}\n{}",
                            r["name"].as_str().unwrap_or(""),
                            grants.join("\n")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        return Ok((roles, text));
    };
    let mut role = roles
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name).cloned())
        .unwrap_or_else(|| json!({"name": name, "privileges": []}));
    let privileges = role["privileges"].as_array_mut().expect("privileges");
    let current = privileges
        .iter()
        .position(|p| p["entity"] == entity)
        .unwrap_or_else(|| {
            privileges.push(json!({"entity": entity, "read": "none", "create": "none", "write": "none", "delete": "none"}));
            privileges.len() - 1
        });
    for (what, depth) in ["read", "create", "write", "delete"]
        .into_iter()
        .zip(depths)
    {
        if let Some(depth) = depth {
            privileges[current][what] = json!(depth);
        }
    }
    let saved = api
        .call(
            "PUT",
            &format!(
                "/roles/{}",
                percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
            ),
            Some(role["privileges"].take()),
        )
        .await?;
    Ok((saved, format!("saved the role {name}")))
}

async fn schema_command(
    api: &Api,
    command: Option<&SchemaCommand>,
) -> Result<(Value, String), HarnessError> {
    let field = |spec: &str| FieldDef::parse_spec(spec).map_err(HarnessError::Usage);
    let schema = match command {
        None => api.call("GET", "/schema", None).await?,
        Some(SchemaCommand::AddEntity { name, fields }) => {
            let fields = fields
                .iter()
                .map(|f| field(f))
                .collect::<Result<Vec<_>, _>>()?;
            api.call(
                "POST",
                "/schema/entities",
                Some(json!({"name": name, "fields": fields})),
            )
            .await?
        }
        Some(SchemaCommand::AddField {
            entity,
            field: spec,
        }) => {
            api.call(
                "POST",
                &format!("/schema/entities/{entity}/fields"),
                Some(json!(field(spec)?)),
            )
            .await?
        }
        Some(SchemaCommand::RetireField { entity, field }) => {
            api.call(
                "DELETE",
                &format!("/schema/entities/{entity}/fields/{field}"),
                None,
            )
            .await?
        }
        Some(SchemaCommand::Sortable { entity, field, off }) => {
            api.call(
                "PUT",
                &format!("/schema/entities/{entity}/fields/{field}/sortable"),
                Some(json!(!off)),
            )
            .await?
        }
        Some(SchemaCommand::Filter { entity, filter, .. }) => {
            let filter: Value = match filter {
                Some(f) => serde_json::from_str(f)
                    .map_err(|e| HarnessError::Usage(format!("the filter is not JSON: {e}")))?,
                None => Value::Null,
            };
            api.call(
                "PUT",
                &format!("/schema/entities/{entity}/filter"),
                Some(filter),
            )
            .await?
        }
    };
    let text = schema["entities"]
        .as_array()
        .map(|entities| {
            entities
                .iter()
                .map(|e| {
                    let fields: Vec<String> = e["fields"]
                        .as_array()
                        .map(|f| {
                            f.iter()
                                .map(|f| {
                                    let retired = if f["retired"] == true {
                                        " (retired)"
                                    } else {
                                        ""
                                    };
                                    format!(
                                        "{}:{}{retired}",
                                        f["name"].as_str().unwrap_or(""),
                                        f["type"].as_str().unwrap_or("")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let filter = match &e["sync_filter"] {
                        Value::Null => String::new(),
                        f => format!("\n  sync filter {f}"),
                    };
                    format!(
                        "{}: {}{filter}",
                        e["name"].as_str().unwrap_or(""),
                        fields.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    Ok((
        schema.clone(),
        format!("schema version {}\n{text}", schema["version"]),
    ))
}

pub async fn run(global: &GlobalArgs, args: AdminArgs, out: &Output) -> Result<(), HarnessError> {
    let api = Api::sign_in(global, &args).await?;
    let result = run_command(&api, &args.command).await;
    api.sign_out().await;
    let (value, text) = result?;
    out.result(&value, &text);
    Ok(())
}
