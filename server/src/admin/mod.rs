//! The organization's side of the flow: its persistent state (store.rs), passwords (Argon2id),
//! and the Admin Console with its JSON API, where an administrator connects the identity
//! provider, imports and assigns users, and controls devices (docs/admin.md).

pub mod passwords;
pub mod sessions;
pub mod store;
