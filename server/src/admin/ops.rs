//! What an administrator can do, shared by the Admin Console's pages and its JSON API: sign in
//! (a password before the provider is connected, the provider's page after), connect and
//! disconnect the provider, import users from its directory, edit and disable users, and command
//! devices.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::directory::{self, DirectoryEntry, DirectoryError, DirectorySource, ImportAction};
use super::identity::{ProviderIdentity, SignInPolicy, domain_name};
use super::oauth::{ClientIdentity, OAuthClient, OAuthError, Purpose};
use super::store::{
    DeviceCommand, OrgUser, ProviderConnection, SYSTEM_ADMINISTRATOR, StoreError, UserEdit, now,
};
use crate::Org;
use crate::auth::TokenIssuer;
use crate::idp::CLIENT_ID;
use crate::idp::directory::{DIRECTORY_CLIENT_ID, DIRECTORY_CLIENT_SECRET};

/// How an administrator proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Password,
    Provider,
}

/// Why an administrator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("sign in to the Admin Console first")]
    NotSignedIn,
    #[error("{0}")]
    Forbidden(String),
    #[error("wrong email or password")]
    BadCredentials,
    #[error("too many failed sign-ins: try again in {0} seconds")]
    TooManyAttempts(u64),
    #[error("the organization is connected to its identity provider: sign in there")]
    ProviderSignInRequired,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Failed sign-ins per email, and when the next attempt is allowed: after five failures in a
/// row each attempt waits twice as long as the last (1 s, 2 s, ... 60 s).
#[derive(Default)]
struct Limiter(Mutex<HashMap<String, (u32, Instant)>>);

/// Free attempts before the wait starts.
const FREE_ATTEMPTS: u32 = 5;

impl Limiter {
    fn check(&self, key: &str) -> Result<(), AdminError> {
        match self.0.lock().unwrap().get(key) {
            Some((_, next)) if *next > Instant::now() => Err(AdminError::TooManyAttempts(
                (*next - Instant::now()).as_secs().max(1),
            )),
            _ => Ok(()),
        }
    }

    fn failed(&self, key: &str) {
        let mut map = self.0.lock().unwrap();
        let entry = map.entry(key.to_string()).or_insert((0, Instant::now()));
        entry.0 += 1;
        if entry.0 >= FREE_ATTEMPTS {
            let wait = 1u64 << (entry.0 - FREE_ATTEMPTS).min(6);
            entry.1 = Instant::now() + Duration::from_secs(wait.min(60));
        }
    }

    fn succeeded(&self, key: &str) {
        self.0.lock().unwrap().remove(key);
    }
}

/// A provider user, and the org user it is (by Domain Name) or shares its email with.
#[derive(Debug, Clone, Serialize)]
pub struct DirectoryRow {
    pub entry: DirectoryEntry,
    pub domain_name: String,
    pub org_user: Option<OrgUser>,
    /// `org_user` has this provider user as Domain Name (else it only shares the email).
    pub linked: bool,
}

/// The Admin Console's state: the organization, the HTTP client it reaches the provider with,
/// the sign-ins waiting for their callback, and the sign-in limiter.
pub struct Admin {
    pub org: Arc<Org>,
    pub http: reqwest::Client,
    pub oauth: OAuthClient,
    limiter: Limiter,
}

/// How long an API token lives.
const API_TOKEN_LIFETIME: i64 = 8 * 3600;

impl Admin {
    pub fn new(org: Arc<Org>, http: reqwest::Client) -> Self {
        Admin {
            org,
            http,
            oauth: OAuthClient::default(),
            limiter: Limiter::default(),
        }
    }

    /// The identity provider's issuer (the one whose keys the organization trusts).
    pub fn issuer(&self) -> String {
        match &self.org.verifier.issuer {
            TokenIssuer::Builtin(idp) => idp.issuer.clone(),
            TokenIssuer::External { issuer, .. } => issuer.clone(),
        }
    }

    fn redirect_uri(&self) -> String {
        format!("{}/admin/oauth/callback", self.org.url)
    }

    /// Where the provider's user list is: the built-in provider's own, or the configured one.
    pub fn directory_source(&self) -> Option<DirectorySource> {
        match &self.org.verifier.issuer {
            TokenIssuer::Builtin(idp) => Some(DirectorySource {
                users_url: format!("{}/v1.0/users", idp.issuer),
                token_url: format!("{}/token", idp.issuer),
                client_id: DIRECTORY_CLIENT_ID.into(),
                client_secret: DIRECTORY_CLIENT_SECRET.into(),
                scope: None,
            }),
            TokenIssuer::External { .. } => self.org.config.directory.clone(),
        }
    }

    pub fn connection(&self) -> Result<Option<ProviderConnection>, AdminError> {
        Ok(self.org.store.connection()?)
    }

    /// The user behind a session, if it is an enabled System Administrator who signed in the way
    /// the organization requires now (the provider's page, once connected).
    pub fn require_admin(&self, user_id: &str, via: Via) -> Result<OrgUser, AdminError> {
        let user = self
            .org
            .store
            .user(user_id)?
            .filter(|u| u.enabled)
            .ok_or(AdminError::NotSignedIn)?;
        if !user.roles.iter().any(|r| r == SYSTEM_ADMINISTRATOR) {
            return Err(AdminError::Forbidden(
                "the Admin Console is for System Administrators".into(),
            ));
        }
        if via == Via::Password && self.connection()?.is_some() {
            return Err(AdminError::ProviderSignInRequired);
        }
        Ok(user)
    }

    /// A password sign-in (only while no provider is connected), rate-limited per email.
    pub async fn password_login(&self, email: &str, password: &str) -> Result<OrgUser, AdminError> {
        let key = email.trim().to_lowercase();
        self.limiter.check(&key)?;
        if self.connection()?.is_some() {
            return Err(AdminError::ProviderSignInRequired);
        }
        let store = Arc::clone(&self.org.store);
        let (email, password) = (email.to_string(), password.to_string());
        let user = tokio::task::spawn_blocking(move || store.check_password(&email, &password))
            .await
            .ok()
            .flatten();
        match user {
            Some(user) => {
                self.limiter.succeeded(&key);
                self.require_admin(&user.id, Via::Password)
            }
            None => {
                self.limiter.failed(&key);
                Err(AdminError::BadCredentials)
            }
        }
    }

    /// The provider's login page for `purpose`.
    pub async fn start_provider_sign_in(&self, purpose: Purpose) -> Result<String, AdminError> {
        let endpoints = OAuthClient::endpoints(&self.http, &self.issuer()).await?;
        let redirect_uri = self.redirect_uri();
        let client = ClientIdentity {
            client_id: CLIENT_ID,
            redirect_uri: &redirect_uri,
        };
        Ok(self.oauth.start(&endpoints, &client, purpose))
    }

    /// Completes a provider sign-in: connects the provider (Connect), or signs an administrator
    /// in (the console or the API). Returns what it was for and the administrator.
    pub async fn finish_provider_sign_in(
        &self,
        state: &str,
        code: &str,
    ) -> Result<(Purpose, OrgUser), AdminError> {
        let endpoints = OAuthClient::endpoints(&self.http, &self.issuer()).await?;
        let verifier = &self.org.verifier;
        let redirect_uri = self.redirect_uri();
        let client = ClientIdentity {
            client_id: CLIENT_ID,
            redirect_uri: &redirect_uri,
        };
        let (purpose, claims) = self
            .oauth
            .finish(
                &self.http,
                &endpoints,
                &client,
                state,
                code,
                |token| async move {
                    verifier
                        .provider_token(&token, CLIENT_ID)
                        .await
                        .map_err(|e| e.to_string())
                },
            )
            .await?;
        let person = ProviderIdentity::from_claims(&claims);
        let identity = person.domain_name();
        let store = &self.org.store;
        let user = match &purpose {
            Purpose::Connect { user_id, .. } => {
                let admin = self.require_admin(user_id, Via::Provider)?;
                if let Some(other) = store.user_by_domain_name(&identity)?
                    && other.id != admin.id
                {
                    return Err(AdminError::Invalid(format!(
                        "that provider account is already {}'s Domain Name",
                        other.email
                    )));
                }
                let admin = store.update_user(
                    &admin.id,
                    &UserEdit {
                        domain_name: Some(identity.clone()),
                        ..UserEdit::from(&admin)
                    },
                )?;
                if let Some(tenant) = &person.tenant {
                    let n = store.complete_domain_names(&person.issuer, tenant)?;
                    tracing::info!(
                        completed = n,
                        "Domain Names recorded before Connect now name the tenant"
                    );
                }
                store.set_connection(Some(&ProviderConnection {
                    issuer: person.issuer.clone(),
                    tenant: person.tenant.clone(),
                    admin_identity: identity,
                    admin_email: person.email.clone().unwrap_or_else(|| admin.email.clone()),
                    connected_at: now(),
                }))?;
                tracing::info!("the organization was connected to its identity provider");
                admin
            }
            Purpose::ConsoleLogin | Purpose::ApiLogin => {
                // The identity rule, never creating anyone: an administrator exists already.
                let policy = SignInPolicy {
                    provision_unknown: false,
                    ..store.sign_in_policy()?
                };
                let tenant = self.connection()?.and_then(|c| c.tenant);
                let user = store
                    .sign_in(&person, tenant.as_deref(), policy)
                    .map_err(|_| {
                        AdminError::Forbidden(
                            "this provider account is no administrator of the organization".into(),
                        )
                    })?;
                self.require_admin(&user.id, Via::Provider)?
            }
        };
        Ok((purpose, user))
    }

    /// The identity provider's name on the console's pages: the administrator's, else what its
    /// issuer says it is (Microsoft Entra ID, Google, Okta), else the issuer's host.
    pub fn provider_label(&self) -> String {
        if let Ok(Some(label)) = self.org.store.provider_label() {
            return label;
        }
        if matches!(self.org.verifier.issuer, TokenIssuer::Builtin(_)) {
            return "Built-in development provider".into();
        }
        let issuer = self.issuer();
        let host = url::Url::parse(&issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or(issuer);
        match host.as_str() {
            "login.microsoftonline.com" | "sts.windows.net" | "login.microsoftonline.us" => {
                "Microsoft Entra ID".into()
            }
            "accounts.google.com" => "Google".into(),
            h if h.ends_with(".okta.com") => "Okta".into(),
            _ => host,
        }
    }

    /// Names the identity provider (empty: derive it again).
    pub fn set_provider_label(&self, label: &str) -> Result<(), AdminError> {
        let label = label.trim();
        if label.chars().count() > 60 {
            return Err(AdminError::Invalid(
                "a provider name is at most 60 characters".into(),
            ));
        }
        Ok(self
            .org
            .store
            .set_provider_label((!label.is_empty()).then_some(label))?)
    }

    /// Sets what a first sign-in may do (the Organization page's "Who may sign in").
    pub fn set_sign_in_policy(&self, policy: SignInPolicy) -> Result<(), AdminError> {
        self.org.store.set_sign_in_policy(policy)?;
        tracing::info!(
            match_email = policy.match_email,
            provision_unknown = policy.provision_unknown,
            "the sign-in policy changed"
        );
        Ok(())
    }

    /// Disconnects the provider: password sign-in (console and credentials mode) works again.
    pub fn disconnect(&self) -> Result<(), AdminError> {
        self.org.store.set_connection(None)?;
        tracing::info!("the organization was disconnected from its identity provider");
        Ok(())
    }

    /// A token for `syncvault admin` (stored like a console session).
    pub fn create_api_token(&self, user: &OrgUser, via: Via) -> Result<String, AdminError> {
        use base64::Engine;
        let mut b = [0u8; 32];
        rand::fill(&mut b);
        let token = format!(
            "sva_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        );
        let data = serde_json::json!({"user_id": user.id, "via": via}).to_string();
        self.org.store.session_create(
            &format!("api:{token}"),
            data.as_bytes(),
            now() + API_TOKEN_LIFETIME,
        )?;
        Ok(token)
    }

    /// The administrator behind an API token.
    pub fn api_token_user(&self, token: &str) -> Result<OrgUser, AdminError> {
        let data = self
            .org
            .store
            .session_load(&format!("api:{token}"))?
            .ok_or(AdminError::NotSignedIn)?;
        let v: serde_json::Value =
            serde_json::from_slice(&data).map_err(|_| AdminError::NotSignedIn)?;
        let via: Via =
            serde_json::from_value(v["via"].clone()).map_err(|_| AdminError::NotSignedIn)?;
        self.require_admin(v["user_id"].as_str().unwrap_or_default(), via)
    }

    /// Ends an API token.
    pub fn end_api_token(&self, token: &str) -> Result<(), AdminError> {
        Ok(self.org.store.session_delete(&format!("api:{token}"))?)
    }

    /// The provider's users, each with the org user it is (by Domain Name, else the same email).
    pub async fn directory(&self) -> Result<Vec<DirectoryRow>, AdminError> {
        let source = self.directory_source().ok_or_else(|| {
            AdminError::Invalid("no directory is configured for this provider".into())
        })?;
        let entries = directory::fetch_users(&self.http, &source).await?;
        let tenant = self.connection()?.and_then(|c| c.tenant);
        let issuer = self.issuer();
        let org = self.org.store.users("")?;
        Ok(entries
            .into_iter()
            .map(|entry| {
                let linked = directory::linked_user(&org, &issuer, tenant.as_deref(), &entry);
                let org_user = linked
                    .or_else(|| org.iter().find(|u| u.email == entry.matching_email()))
                    .cloned();
                DirectoryRow {
                    domain_name: domain_name(&issuer, tenant.as_deref(), &entry.id),
                    linked: linked.is_some(),
                    entry,
                    org_user,
                }
            })
            .collect())
    }

    /// Imports the provider users `ids` with `roles`: plans (directory.rs), then applies.
    pub async fn import(
        &self,
        ids: &[String],
        roles: &[String],
    ) -> Result<Vec<ImportAction>, AdminError> {
        let rows = self.directory().await?;
        let selected: Vec<DirectoryEntry> = rows
            .iter()
            .filter(|r| ids.contains(&r.entry.id))
            .map(|r| r.entry.clone())
            .collect();
        if selected.len() != ids.len() {
            return Err(AdminError::Invalid(
                "some of the selected users are not in the provider's directory".into(),
            ));
        }
        let tenant = self.connection()?.and_then(|c| c.tenant);
        let org_users = self.org.store.users("")?;
        let plan = directory::plan_import(&selected, &org_users, &self.issuer(), tenant.as_deref());
        let store = &self.org.store;
        for action in &plan {
            let (user_id, domain_name) = match action {
                ImportAction::Associate {
                    user_id,
                    domain_name,
                    ..
                } => (user_id.clone(), Some(domain_name.clone())),
                ImportAction::Create { entry, domain_name } => (
                    store
                        .create_user(&entry.email, &entry.display_name, None)?
                        .id,
                    Some(domain_name.clone()),
                ),
                ImportAction::AlreadyLinked { user_id, .. } => (user_id.clone(), None),
                ImportAction::LinkedElsewhere { .. } | ImportAction::Duplicate { .. } => continue,
            };
            let user = store
                .user(&user_id)?
                .ok_or_else(|| AdminError::Invalid("the user vanished".into()))?;
            let mut edit = UserEdit::from(&user);
            if let Some(d) = domain_name {
                edit.domain_name = Some(d);
            }
            for r in roles {
                if !edit.roles.contains(r) {
                    edit.roles.push(r.clone());
                }
            }
            store.update_user(&user_id, &edit)?;
        }
        Ok(plan)
    }

    /// Creates a user by hand (Resources > Users > New).
    pub fn create_user(&self, email: &str, name: &str) -> Result<OrgUser, AdminError> {
        if name.trim().is_empty() {
            return Err(AdminError::Invalid("a user needs a name".into()));
        }
        Ok(self.org.store.create_user(email, name, None)?)
    }

    /// Saves a user (Save & Close). While disabled, every token of theirs is refused with
    /// `user_disabled` (the app asks them to sign in again; their device keeps its unsent
    /// edits); the built-in provider's sessions are revoked too, an external provider's are not
    /// (docs/admin.md says what that means).
    pub fn save_user(&self, id: &str, edit: &UserEdit) -> Result<OrgUser, AdminError> {
        let before = self
            .org
            .store
            .user(id)?
            .ok_or_else(|| AdminError::Invalid("no such user".into()))?;
        let domain_name = edit.domain_name.clone().filter(|d| !d.trim().is_empty());
        let user = self.org.store.update_user(
            id,
            &UserEdit {
                domain_name,
                ..edit.clone()
            },
        )?;
        if before.enabled && !user.enabled {
            self.org.revoke_user_sessions(&user.email);
            tracing::info!(user = %user.id, "user disabled; sessions revoked");
        }
        Ok(user)
    }

    /// Queues a command for a device's next contact.
    pub fn command_device(
        &self,
        client_id: &str,
        command: DeviceCommand,
    ) -> Result<(), AdminError> {
        let wiped = self.org.store.devices()?.into_iter().any(|d| {
            d.client_id == client_id
                && (d.pending_command == Some(DeviceCommand::Wipe)
                    || d.delivered_command == Some(DeviceCommand::Wipe))
        });
        if wiped {
            return Err(AdminError::Invalid(
                "the device was wiped: there is nothing left on it to command".into(),
            ));
        }
        Ok(self.org.store.command_device(client_id, command)?)
    }
}
