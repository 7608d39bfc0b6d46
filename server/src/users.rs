//! The organization's users, and the seed's rule for provider sign-ins: a provider identity seen
//! before is its org user; otherwise a provider user whose email equals an existing org user's
//! email (trimmed, case-folded) is that user, and the identity is associated with it; otherwise a
//! new org user is created.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

/// A user of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgUser {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// The org's user directory (in memory; the sync issue moves it into the server's SQLite).
#[derive(Default)]
pub struct Users {
    by_email: Mutex<HashMap<String, OrgUser>>,
    /// Provider identity (issuer | tenant | object id, or issuer | subject) → email key.
    by_identity: Mutex<HashMap<String, String>>,
    /// Credentials-mode passwords, by lowercase email (development data, kept in clear).
    passwords: Mutex<HashMap<String, String>>,
}

impl Users {
    /// Adds an org user (with an optional credentials-mode password).
    pub fn add(&self, email: &str, name: &str, password: Option<&str>) -> OrgUser {
        let key = email.trim().to_lowercase();
        let mut map = self.by_email.lock().unwrap();
        let next = map.len() + 1;
        let user = map
            .entry(key.clone())
            .or_insert_with(|| OrgUser {
                id: format!("u{next}"),
                email: key.clone(),
                name: name.to_string(),
            })
            .clone();
        if let Some(p) = password {
            self.passwords.lock().unwrap().insert(key, p.to_string());
        }
        user
    }

    /// The org user for a signed-in provider user: by identity, else matched by email (and the
    /// identity associated), else created.
    pub fn resolve(&self, identity: &str, email: &str, name: &str) -> OrgUser {
        let known = self.by_identity.lock().unwrap().get(identity).cloned();
        if let Some(user) = known.and_then(|key| self.by_email.lock().unwrap().get(&key).cloned()) {
            return user;
        }
        let user = self.add(email, name, None);
        self.by_identity
            .lock()
            .unwrap()
            .insert(identity.to_string(), user.email.clone());
        user
    }

    /// Checks a credentials-mode sign-in.
    pub fn check_password(&self, email: &str, password: &str) -> Option<OrgUser> {
        let key = email.to_lowercase();
        let ok = self
            .passwords
            .lock()
            .unwrap()
            .get(&key)
            .is_some_and(|p| constant_eq(p.as_bytes(), password.as_bytes()));
        if ok {
            self.by_email.lock().unwrap().get(&key).cloned()
        } else {
            None
        }
    }

    pub fn count(&self) -> usize {
        self.by_email.lock().unwrap().len()
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_decides_identity() {
        let users = Users::default();
        let ada = users.add("Ada@Contoso.example", "Ada", Some("pw"));
        assert_eq!(
            users.resolve("idp|ada", " ADA@contoso.example", "Ada L."),
            ada
        );
        assert_eq!(
            users.resolve("idp|ada", "renamed@contoso.example", "Ada"),
            ada
        );
        let new = users.resolve("idp|grace", "grace@contoso.example", "Grace");
        assert_ne!(new.id, ada.id);
        assert_eq!(users.count(), 2);
        assert_eq!(users.check_password("ADA@contoso.example", "pw"), Some(ada));
        assert_eq!(users.check_password("ada@contoso.example", "nope"), None);
        assert_eq!(users.check_password("grace@contoso.example", ""), None);
    }
}
