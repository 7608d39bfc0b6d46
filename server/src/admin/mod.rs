//! The organization's side of the flow: its persistent state (store.rs), passwords (Argon2id),
//! and the Admin Console with its JSON API, where an administrator connects the identity
//! provider, imports and assigns users, and controls devices (docs/admin.md).

pub mod api;
pub mod console;
pub mod directory;
pub mod identity;
pub mod login_cookies;
pub mod oauth;
pub mod ops;
pub mod passwords;
pub mod sessions;
pub mod store;

/// Everything under `/admin`: the console's pages and the JSON API.
pub fn router(admin: std::sync::Arc<ops::Admin>) -> axum::Router {
    console::router(std::sync::Arc::clone(&admin)).nest("/api", api::router(admin))
}
