//! Import Users: the identity provider's user list, read the way Microsoft Graph serves it
//! (`/v1.0/users` with `$select` and `$top`, following `@odata.nextLink`, an app-only token from
//! the client credentials grant), and the pure plan of an import: a provider user some org user
//! already has as Domain Name (with or without the tenant) stays that user; one whose email
//! (trimmed, case-folded) equals an org user's without a Domain Name becomes that user;
//! otherwise a new org user is created; two provider users with one email are reported, never
//! merged.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::identity::domain_name;
use super::store::OrgUser;

/// Where the directory is and how to get a token for it; `serve --directory FILE` reads it as
/// JSON so that the secret never appears on a command line.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySource {
    /// e.g. `https://graph.microsoft.com/v1.0/users`.
    pub users_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// OAuth scope for the token, when the provider needs one (`https://graph.microsoft.com/.default`).
    #[serde(default)]
    pub scope: Option<String>,
}

/// Without the secret, so that a logged config does not leak it.
impl std::fmt::Debug for DirectorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySource")
            .field("users_url", &self.users_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// One provider user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The provider's object id (the subject of that person's tokens).
    pub id: String,
    pub display_name: String,
    /// `mail`, else `userPrincipalName`, as the directory gives it.
    pub email: String,
}

impl DirectoryEntry {
    /// The email an import matches by.
    pub fn matching_email(&self) -> String {
        self.email.trim().to_lowercase()
    }
}

/// Why reading the directory failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the directory could not be reached: {0}")]
    Http(String),
    #[error("the directory answered HTTP {0}")]
    Status(u16),
    #[error("the directory's answer is not a user list")]
    Shape,
}

/// Most pages read from one directory (a loop guard, 100k users at Graph's 999 a page).
const MAX_PAGES: usize = 100;

/// Every user of the directory.
pub async fn fetch_users(
    http: &reqwest::Client,
    source: &DirectorySource,
) -> Result<Vec<DirectoryEntry>, DirectoryError> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", source.client_id.as_str()),
        ("client_secret", source.client_secret.as_str()),
    ];
    if let Some(scope) = &source.scope {
        form.push(("scope", scope));
    }
    let token: Value = http
        .post(&source.token_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| DirectoryError::Http(e.to_string()))?
        .json()
        .await
        .map_err(|_| DirectoryError::Shape)?;
    let token = token["access_token"]
        .as_str()
        .ok_or(DirectoryError::Shape)?
        .to_string();
    let mut url = format!(
        "{}?$select=id,displayName,mail,userPrincipalName&$top=100",
        source.users_url
    );
    let mut users = Vec::new();
    for _ in 0..MAX_PAGES {
        let r = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| DirectoryError::Http(e.to_string()))?;
        if !r.status().is_success() {
            return Err(DirectoryError::Status(r.status().as_u16()));
        }
        let page: Value = r.json().await.map_err(|_| DirectoryError::Shape)?;
        for u in page["value"].as_array().ok_or(DirectoryError::Shape)? {
            let email = u["mail"]
                .as_str()
                .or_else(|| u["userPrincipalName"].as_str())
                .unwrap_or_default();
            let (Some(id), false) = (u["id"].as_str(), email.is_empty()) else {
                continue;
            };
            users.push(DirectoryEntry {
                id: id.to_string(),
                display_name: u["displayName"].as_str().unwrap_or(email).to_string(),
                email: email.to_string(),
            });
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => return Ok(users),
        }
    }
    Ok(users)
}

/// What importing one provider user does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ImportAction {
    /// An org user with the same email becomes this provider user.
    Associate {
        user_id: String,
        entry: DirectoryEntry,
        domain_name: String,
    },
    /// A new org user.
    Create {
        entry: DirectoryEntry,
        domain_name: String,
    },
    /// Already this provider user: only the roles are added.
    AlreadyLinked {
        user_id: String,
        entry: DirectoryEntry,
    },
    /// The email's org user is linked to another provider identity: left alone.
    LinkedElsewhere {
        user_id: String,
        entry: DirectoryEntry,
    },
    /// Two or more selected provider users share this email: none of them is imported.
    Duplicate {
        email: String,
        entries: Vec<DirectoryEntry>,
    },
}

/// The org user a provider user already is: the one whose Domain Name names them, with the
/// tenant or as recorded before it was known (issuer | object id).
pub fn linked_user<'a>(
    org: &'a [OrgUser],
    issuer: &str,
    tenant: Option<&str>,
    entry: &DirectoryEntry,
) -> Option<&'a OrgUser> {
    let full = domain_name(issuer, tenant, &entry.id);
    let tenantless = domain_name(issuer, None, &entry.id);
    org.iter().find(|u| {
        u.domain_name
            .as_deref()
            .is_some_and(|d| d == full || d == tenantless)
    })
}

/// Plans importing `selected` into an organization whose users are `org`.
pub fn plan_import(
    selected: &[DirectoryEntry],
    org: &[OrgUser],
    issuer: &str,
    tenant: Option<&str>,
) -> Vec<ImportAction> {
    let mut by_email: HashMap<String, Vec<&DirectoryEntry>> = HashMap::new();
    let mut order = Vec::new();
    for e in selected {
        let key = e.matching_email();
        if !by_email.contains_key(&key) {
            order.push(key.clone());
        }
        by_email.entry(key).or_default().push(e);
    }
    order
        .into_iter()
        .map(|email| {
            let entries = &by_email[&email];
            if entries.len() > 1 {
                return ImportAction::Duplicate {
                    email,
                    entries: entries.iter().map(|e| (*e).clone()).collect(),
                };
            }
            let entry = entries[0].clone();
            let identity = domain_name(issuer, tenant, &entry.id);
            if let Some(u) = linked_user(org, issuer, tenant, &entry) {
                return ImportAction::AlreadyLinked {
                    user_id: u.id.clone(),
                    entry,
                };
            }
            match org.iter().find(|u| u.email == email) {
                Some(u) if u.domain_name.is_some() => ImportAction::LinkedElsewhere {
                    user_id: u.id.clone(),
                    entry,
                },
                Some(u) => ImportAction::Associate {
                    user_id: u.id.clone(),
                    entry,
                    domain_name: identity,
                },
                None => ImportAction::Create {
                    entry,
                    domain_name: identity,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, email: &str) -> DirectoryEntry {
        DirectoryEntry {
            id: id.into(),
            display_name: id.into(),
            email: email.into(),
        }
    }

    fn user(id: &str, email: &str, domain_name: Option<&str>) -> OrgUser {
        OrgUser {
            id: id.into(),
            email: email.into(),
            name: id.into(),
            domain_name: domain_name.map(str::to_string),
            enabled: true,
            roles: vec![],
            business_unit: "Headquarters".into(),
        }
    }

    #[test]
    fn emails_match_case_folded_and_duplicates_are_reported() {
        let org = [
            user("u1", "ada@contoso.example", None),
            user("u2", "grace@contoso.example", Some("iss|g")),
            user("u3", "linus@contoso.example", Some("iss|someone-else")),
        ];
        let selected = [
            entry("a", " ADA@Contoso.Example"),
            entry("g", "grace@contoso.example"),
            entry("l", "linus@contoso.example"),
            entry("m1", "margaret@contoso.example"),
            entry("m2", "MARGARET@contoso.example"),
            entry("k", "katherine@contoso.example"),
        ];
        let plan = plan_import(&selected, &org, "iss", None);
        assert!(
            matches!(&plan[0], ImportAction::Associate { user_id, domain_name, .. }
            if user_id == "u1" && domain_name == "iss|a")
        );
        assert!(matches!(&plan[1], ImportAction::AlreadyLinked { user_id, .. } if user_id == "u2"));
        assert!(
            matches!(&plan[2], ImportAction::LinkedElsewhere { user_id, .. } if user_id == "u3")
        );
        assert!(
            matches!(&plan[3], ImportAction::Duplicate { email, entries }
            if email == "margaret@contoso.example" && entries.len() == 2)
        );
        assert!(
            matches!(&plan[4], ImportAction::Create { domain_name, .. } if domain_name == "iss|k")
        );
        assert_eq!(plan.len(), 5);
        // A Domain Name picked by hand (under another email), or recorded before the tenant
        // was known, is already that provider user.
        let org = [user("u4", "d.vaughan@contoso.example", Some("iss|d"))];
        let plan = plan_import(
            &[entry("d", "dorothy@contoso.example")],
            &org,
            "iss",
            Some("t"),
        );
        assert!(matches!(&plan[0], ImportAction::AlreadyLinked { user_id, .. } if user_id == "u4"));
    }
}
