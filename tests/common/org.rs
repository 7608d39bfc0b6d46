//! Helpers for tests against the reference organization server: start it, set up a client with
//! cheap KDF parameters, sign in through the built-in provider's login form, synchronize, and
//! compare the device with the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use syncvault::auth::loopback::LoopbackRedirect;
use syncvault::{
    ClientOptions, ConflictMode, FieldValue, RecordQuery, SyncClient, SyncError, SyncObserver,
    SyncPhase, SyncProgress, SyncReport, UserMode,
};
use syncvault_server::idp::DEV_PASSWORD;
use syncvault_server::{BoundServer, RunningServer, ServerConfig};
use syncvault_testkit::devlogin;

pub const ORG_PASSWORD: &[u8] = b"offline password";

pub async fn server(config: ServerConfig) -> RunningServer {
    BoundServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn(config)
        .unwrap()
}

/// Client options with the KDF at its floor (tests run many unlocks).
pub fn floor_kdf() -> ClientOptions {
    let floor = syncvault::vault::KdfParams::FLOOR;
    ClientOptions {
        kdf_memory_kib: floor.m_kib,
        kdf_iterations: floor.t,
        kdf_parallelism: floor.p,
        ..Default::default()
    }
}

pub fn options(mode: ConflictMode, page_size: u32) -> ClientOptions {
    ClientOptions {
        conflict_mode: Some(mode),
        sync_page_size: Some(page_size),
        ..floor_kdf()
    }
}

/// A set-up, unlocked, signed-in client.
pub async fn signed_in_client(
    dir: &std::path::Path,
    url: &str,
    options: ClientOptions,
    user: &str,
) -> Arc<SyncClient> {
    let c = SyncClient::with_options(dir.display().to_string(), options).unwrap();
    c.setup_offline_password(
        url.to_string(),
        UserMode::Oauth,
        ORG_PASSWORD.to_vec(),
        ORG_PASSWORD.to_vec(),
    )
    .await
    .unwrap();
    sign_in(&c, user).await;
    c
}

/// A set-up, unlocked client signed in with the organization's password (credentials mode).
pub async fn credentials_client(
    dir: &std::path::Path,
    url: &str,
    email: &str,
    password: &[u8],
) -> Arc<SyncClient> {
    let c = SyncClient::with_options(dir.display().to_string(), floor_kdf()).unwrap();
    c.setup_offline_password(
        url.to_string(),
        UserMode::Credentials,
        ORG_PASSWORD.to_vec(),
        ORG_PASSWORD.to_vec(),
    )
    .await
    .unwrap();
    c.sign_in_with_credentials(email.into(), password.to_vec())
        .await
        .unwrap();
    c
}

pub async fn sign_in(c: &SyncClient, user: &str) {
    let redirect = LoopbackRedirect::bind().await.unwrap();
    let request = c.begin_sign_in(redirect.redirect_uri()).await.unwrap();
    let callback = devlogin::login(&request.url, user, DEV_PASSWORD, false)
        .await
        .unwrap();
    c.complete_sign_in(callback).await.unwrap();
}

/// Records every progress update; can run a hook on each.
#[derive(Default)]
pub struct Progress {
    pub seen: Mutex<Vec<SyncProgress>>,
    #[allow(clippy::type_complexity)]
    pub hook: Option<Box<dyn Fn(&SyncProgress) + Send + Sync>>,
}

impl SyncObserver for Progress {
    fn on_progress(&self, p: SyncProgress) {
        if let Some(hook) = &self.hook {
            hook(&p);
        }
        self.seen.lock().unwrap().push(p);
    }
}

pub async fn sync(c: &Arc<SyncClient>) -> Result<SyncReport, SyncError> {
    Arc::clone(c)
        .synchronize(Arc::new(Progress::default()), None)
        .await
}

/// Calls the Admin Console's JSON API (`/admin/api`); returns (status, body).
pub async fn api(
    srv: &RunningServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let http = devlogin::client().unwrap();
    let url = format!("{}/admin/api{path}", srv.url);
    let mut req = match method {
        "GET" => http.get(url),
        "PUT" => http.put(url),
        "DELETE" => http.delete(url),
        _ => http.post(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn text(v: &str) -> FieldValue {
    FieldValue::Text {
        value: v.to_string(),
    }
}

pub fn fields(pairs: &[(&str, FieldValue)]) -> HashMap<String, FieldValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Every local record, by (entity, id): (version, fields).
pub async fn local_records(
    c: &SyncClient,
) -> HashMap<(String, String), (i64, HashMap<String, FieldValue>)> {
    let mut all = HashMap::new();
    for entity in c.entities().await.unwrap() {
        for r in c
            .query_records(entity.clone(), RecordQuery::default())
            .await
            .unwrap()
        {
            all.insert((entity.clone(), r.id), (r.version, r.fields));
        }
    }
    all
}

/// Asserts the device holds exactly the server's live records (ids, versions, field values).
pub async fn assert_converged(c: &SyncClient, srv: &RunningServer) {
    assert_holds(c, srv.org.data.live_records()).await;
}

/// Asserts the device holds exactly `server` (ids, versions, field values).
pub async fn assert_holds(
    c: &SyncClient,
    server: Vec<syncvault_server::sync::store::ServerRecord>,
) {
    let local = local_records(c).await;
    assert_eq!(local.len(), server.len(), "record counts differ");
    for r in server {
        let (version, fields) = local
            .get(&(r.entity.clone(), r.id.clone()))
            .unwrap_or_else(|| panic!("{} {} missing on the device", r.entity, r.id));
        assert_eq!(*version, r.version, "{} {} version", r.entity, r.id);
        for (k, v) in &r.fields {
            assert_eq!(
                fields.get(k),
                Some(&FieldValue::from(v)),
                "{} {} field {k}",
                r.entity,
                r.id
            );
        }
    }
}

/// The value of a text field of a local record.
pub async fn local_text(c: &SyncClient, entity: &str, id: &str, field: &str) -> Option<String> {
    let r = c.get_record(entity.into(), id.into()).await.unwrap()?;
    match r.fields.get(field) {
        Some(FieldValue::Text { value }) => Some(value.clone()),
        _ => None,
    }
}

/// The phase sequence of a run, without repeats.
pub fn phases(p: &Progress) -> Vec<SyncPhase> {
    let mut out: Vec<SyncPhase> = Vec::new();
    for s in p.seen.lock().unwrap().iter() {
        if out.last() != Some(&s.phase) {
            out.push(s.phase);
        }
    }
    out
}
