//! Who a provider sign-in is in the organization: the one identity rule (docs/admin.md, "Who
//! may sign in"). A provider identity is issuer + tenant + object id (Entra ID's `tid` + `oid`;
//! `sub` for a provider without them). An organization user is reached only by a Domain Name
//! equal to that identity (set by an import, by hand, or by Connect for its administrator), or,
//! where the administrator turned it on, by a first sign-in whose email matches a user who has no
//! Domain Name yet. Unknown accounts are created only where the administrator turned that on,
//! and then without a role. Everything else is refused as not a member.
//!
//! [`plan`] decides from what the store found; `OrgStore::sign_in` looks up and applies the
//! decision in one transaction. Devices, console and API sign-ins all go through it.

use serde::{Deserialize, Serialize};

use super::store::OrgUser;
use crate::auth::Claims;

/// A person at the identity provider, as their token names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    pub issuer: String,
    /// Entra ID's `tid`; None for a provider without tenants.
    pub tenant: Option<String>,
    /// Entra ID's `oid`, else the token's `sub`.
    pub object_id: String,
    /// The email to match by (case-folded): `email` unless the provider says it is unverified,
    /// else `preferred_username` or `upn` (Entra ID's access tokens carry no `email`).
    pub email: Option<String>,
    pub name: Option<String>,
}

impl ProviderIdentity {
    /// The identity a token names.
    pub fn from_claims(claims: &Claims) -> ProviderIdentity {
        let (tenant, object_id) = match (&claims.tid, &claims.oid) {
            (Some(tid), Some(oid)) => (Some(tid.clone()), oid.clone()),
            _ => (None, claims.sub.clone()),
        };
        let verified_email = claims
            .email
            .as_ref()
            .filter(|_| claims.email_verified != Some(false));
        let email = [
            verified_email,
            claims.preferred_username.as_ref(),
            claims.upn.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|e| e.trim().to_lowercase())
        .find(|e| e.contains('@'));
        ProviderIdentity {
            issuer: claims.iss.clone(),
            tenant,
            object_id,
            email,
            name: claims.name.clone(),
        }
    }

    /// The Domain Name an organization user has for this person.
    pub fn domain_name(&self) -> String {
        domain_name(&self.issuer, self.tenant.as_deref(), &self.object_id)
    }

    /// The Domain Name recorded for this person before the tenant was known (issuer + object
    /// id), when the identity has a tenant.
    pub fn tenantless_domain_name(&self) -> Option<String> {
        self.tenant
            .as_ref()
            .map(|_| domain_name(&self.issuer, None, &self.object_id))
    }
}

/// The Domain Name of a provider user: issuer | tenant | object id, or issuer | object id.
pub fn domain_name(issuer: &str, tenant: Option<&str>, object_id: &str) -> String {
    match tenant {
        Some(t) => format!("{issuer}|{t}|{object_id}"),
        None => format!("{issuer}|{object_id}"),
    }
}

/// A Domain Name recorded as issuer | object id for `issuer`, completed with `tenant` (what
/// Connect does once the tenant is known); None when it is not such a name.
pub fn completed(domain_name: &str, issuer: &str, tenant: &str) -> Option<String> {
    let object_id = domain_name.strip_prefix(issuer)?.strip_prefix('|')?;
    (!object_id.is_empty() && !object_id.contains('|'))
        .then(|| self::domain_name(issuer, Some(tenant), object_id))
}

/// What the administrator allows at a first sign-in (the Organization page's settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInPolicy {
    /// A first sign-in whose email matches a user without a Domain Name becomes that user.
    #[serde(default)]
    pub match_email: bool,
    /// A sign-in nobody matches creates a user with no role (so no data) until one is given.
    #[serde(default)]
    pub provision_unknown: bool,
}

/// Why a provider account is not a member, as the `reason` of the `not_a_member` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotAMember {
    /// No user has this identity as Domain Name, and no allowed match or creation applies.
    UnknownAccount,
    /// The account belongs to another tenant of a multi-tenant issuer.
    OtherTenant,
    /// The matching email belongs to a user linked to another provider account.
    EmailTaken,
}

impl NotAMember {
    /// The code sent as `reason`.
    pub fn code(self) -> &'static str {
        match self {
            NotAMember::UnknownAccount => "unknown_account",
            NotAMember::OtherTenant => "other_tenant",
            NotAMember::EmailTaken => "email_taken",
        }
    }
}

/// What the store found for an identity.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// The user whose Domain Name is the identity.
    pub by_domain_name: Option<&'a OrgUser>,
    /// The user whose Domain Name is the identity without its tenant.
    pub by_tenantless: Option<&'a OrgUser>,
    /// The user with the identity's email.
    pub by_email: Option<&'a OrgUser>,
}

/// What a sign-in does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The user this identity is.
    Existing {
        user_id: String,
    },
    /// The user whose Domain Name lacked the tenant; it is completed to `domain_name`.
    Complete {
        user_id: String,
        domain_name: String,
    },
    /// The user matched by email gets `domain_name` (first sign-in, allowed by the policy).
    Link {
        user_id: String,
        domain_name: String,
    },
    /// A new user without a role (allowed by the policy).
    Create {
        email: String,
        name: String,
        domain_name: String,
    },
    Refuse(NotAMember),
}

/// Decides who `identity` is. `connected_tenant` is the tenant Connect recorded: another
/// tenant's account of the same issuer reaches nobody but a user an administrator gave that
/// exact Domain Name. Whether the user is enabled is the caller's check, after this.
pub fn plan(
    identity: &ProviderIdentity,
    connected_tenant: Option<&str>,
    policy: SignInPolicy,
    found: Found<'_>,
) -> Resolution {
    if let Some(user) = found.by_domain_name {
        return Resolution::Existing {
            user_id: user.id.clone(),
        };
    }
    if let (Some(theirs), Some(ours)) = (identity.tenant.as_deref(), connected_tenant)
        && theirs != ours
    {
        return Resolution::Refuse(NotAMember::OtherTenant);
    }
    if let Some(user) = found.by_tenantless {
        return Resolution::Complete {
            user_id: user.id.clone(),
            domain_name: identity.domain_name(),
        };
    }
    let Some(email) = identity.email.clone() else {
        return Resolution::Refuse(NotAMember::UnknownAccount);
    };
    match found.by_email {
        Some(user) if user.domain_name.is_some() => Resolution::Refuse(NotAMember::EmailTaken),
        Some(user) if policy.match_email => Resolution::Link {
            user_id: user.id.clone(),
            domain_name: identity.domain_name(),
        },
        Some(_) => Resolution::Refuse(NotAMember::UnknownAccount),
        None if policy.provision_unknown => Resolution::Create {
            name: identity.name.clone().unwrap_or_else(|| email.clone()),
            email,
            domain_name: identity.domain_name(),
        },
        None => Resolution::Refuse(NotAMember::UnknownAccount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(tenant: Option<&str>, oid: &str, email: Option<&str>) -> ProviderIdentity {
        ProviderIdentity {
            issuer: "https://idp".into(),
            tenant: tenant.map(str::to_string),
            object_id: oid.into(),
            email: email.map(str::to_string),
            name: None,
        }
    }

    fn user(id: &str, domain_name: Option<&str>) -> OrgUser {
        OrgUser {
            id: id.into(),
            email: format!("{id}@contoso.example"),
            name: id.into(),
            domain_name: domain_name.map(str::to_string),
            enabled: true,
            roles: vec![],
            business_unit: "Headquarters".into(),
        }
    }

    const NONE: Found<'static> = Found {
        by_domain_name: None,
        by_tenantless: None,
        by_email: None,
    };
    const OPEN: SignInPolicy = SignInPolicy {
        match_email: true,
        provision_unknown: true,
    };

    #[test]
    fn a_domain_name_decides_alone() {
        let ada = user("ada", Some("https://idp|t1|o1"));
        let me = identity(Some("t1"), "o1", Some("someone@else.example"));
        let found = Found {
            by_domain_name: Some(&ada),
            ..NONE
        };
        let existing = Resolution::Existing {
            user_id: "ada".into(),
        };
        assert_eq!(
            plan(&me, Some("t1"), SignInPolicy::default(), found),
            existing
        );
        // Even another tenant's account, when an administrator gave it this exact name.
        assert_eq!(
            plan(&me, Some("t2"), SignInPolicy::default(), found),
            existing
        );
    }

    #[test]
    fn an_email_never_takes_over_a_linked_user() {
        let ada = user("ada", Some("https://idp|t1|o1"));
        let second = identity(Some("t1"), "o2", Some("ada@contoso.example"));
        let found = Found {
            by_email: Some(&ada),
            ..NONE
        };
        assert_eq!(
            plan(&second, Some("t1"), OPEN, found),
            Resolution::Refuse(NotAMember::EmailTaken)
        );
    }

    #[test]
    fn email_matching_and_provisioning_only_where_allowed() {
        let ada = user("ada", None);
        let me = identity(Some("t1"), "o1", Some("ada@contoso.example"));
        let found = Found {
            by_email: Some(&ada),
            ..NONE
        };
        assert_eq!(
            plan(&me, Some("t1"), SignInPolicy::default(), found),
            Resolution::Refuse(NotAMember::UnknownAccount)
        );
        assert_eq!(
            plan(&me, Some("t1"), OPEN, found),
            Resolution::Link {
                user_id: "ada".into(),
                domain_name: "https://idp|t1|o1".into()
            }
        );
        let stranger = identity(Some("t1"), "o9", Some("new@contoso.example"));
        assert_eq!(
            plan(&stranger, Some("t1"), SignInPolicy::default(), NONE),
            Resolution::Refuse(NotAMember::UnknownAccount)
        );
        assert_eq!(
            plan(&stranger, Some("t1"), OPEN, NONE),
            Resolution::Create {
                email: "new@contoso.example".into(),
                name: "new@contoso.example".into(),
                domain_name: "https://idp|t1|o9".into()
            }
        );
        // Without an email nothing can match or be created.
        let nameless = identity(Some("t1"), "o8", None);
        assert_eq!(
            plan(&nameless, Some("t1"), OPEN, NONE),
            Resolution::Refuse(NotAMember::UnknownAccount)
        );
    }

    #[test]
    fn another_tenant_reaches_nobody_by_email_or_old_name() {
        let ada = user("ada", None);
        let old = user("grace", Some("https://idp|o1"));
        let outsider = identity(Some("t2"), "o1", Some("ada@contoso.example"));
        let found = Found {
            by_tenantless: Some(&old),
            by_email: Some(&ada),
            ..NONE
        };
        assert_eq!(
            plan(&outsider, Some("t1"), OPEN, found),
            Resolution::Refuse(NotAMember::OtherTenant)
        );
    }

    #[test]
    fn names_recorded_before_the_tenant_was_known_are_completed() {
        let grace = user("grace", Some("https://idp|o1"));
        let me = identity(Some("t1"), "o1", None);
        let found = Found {
            by_tenantless: Some(&grace),
            ..NONE
        };
        let complete = Resolution::Complete {
            user_id: "grace".into(),
            domain_name: "https://idp|t1|o1".into(),
        };
        assert_eq!(
            plan(&me, Some("t1"), SignInPolicy::default(), found),
            complete
        );
        assert_eq!(plan(&me, None, SignInPolicy::default(), found), complete);
        assert_eq!(
            me.tenantless_domain_name().as_deref(),
            Some("https://idp|o1")
        );
        assert_eq!(
            completed("https://idp|o1", "https://idp", "t1").as_deref(),
            Some("https://idp|t1|o1")
        );
        assert_eq!(completed("https://idp|t1|o1", "https://idp", "t1"), None);
        assert_eq!(completed("https://other|o1", "https://idp", "t1"), None);
    }

    #[test]
    fn unverified_email_is_not_matched() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "iss": "https://idp", "sub": "s", "email": "Ada@Contoso.example",
            "email_verified": false}))
        .unwrap();
        assert_eq!(ProviderIdentity::from_claims(&claims).email, None);
        let entra: Claims = serde_json::from_value(serde_json::json!({
            "iss": "https://idp", "sub": "s", "tid": "t1", "oid": "o1",
            "preferred_username": "Ada@Contoso.example"}))
        .unwrap();
        let id = ProviderIdentity::from_claims(&entra);
        assert_eq!(id.email.as_deref(), Some("ada@contoso.example"));
        assert_eq!(id.domain_name(), "https://idp|t1|o1");
    }
}
