//! Memory for one large field: a page holding one contact whose searchable `notes` is MB
//! megabytes, served in-process over loopback, synced into a fresh encrypted store. Reports the
//! peak RSS above the process's RSS before the sync, as a multiple of the field's size (the
//! amplification a hostile or careless server can cause within the page limit).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use syncvault::account::{Account, UserMode};
use syncvault::auth::AuthError;
use syncvault::net::Http;
use syncvault::sync::{self, CancelToken, HttpTransport, SyncContext, SyncOptions, TokenSource};
use syncvault::vault::{KdfParams, VaultConfig};

use crate::{PASSWORD, reset_peak, status_kib};

struct StaticToken;

#[async_trait]
impl TokenSource for StaticToken {
    async fn access_token(&self, _: Option<&str>) -> Result<String, AuthError> {
        Ok("token".into())
    }
}

/// Words of six letters from a small generator: text FTS5 really has to index.
fn text(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 8);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while out.len() < bytes {
        for _ in 0..6 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push((b'a' + (x % 26) as u8) as char);
        }
        out.push(' ');
    }
    out
}

pub async fn run(mb: usize) -> Value {
    let field_bytes = mb << 20;
    let schema = json!({"schema_version": 1, "entities": [{"name": "contact", "fields": [
        {"name": "full_name", "type": "text", "searchable": true},
        {"name": "notes", "type": "text", "searchable": true}]}]})
    .to_string();
    let page = axum::body::Bytes::from(
        json!({"changes": [{"entity": "contact", "id": "c1", "version": 1, "op": "upsert",
                "fields": {"full_name": "Big", "notes": text(field_bytes)}}],
               "page_token": null, "cursor": 1, "estimated_total": 1})
        .to_string(),
    );
    let app = axum::Router::new()
        .route(
            "/sync/schema",
            axum::routing::get(move || async move { schema }),
        )
        .route(
            "/sync/push",
            axum::routing::post(|| async { r#"{"results": []}"# }),
        )
        .route(
            "/sync/pull",
            axum::routing::post(move || async move { page }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/sync", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tmp = tempfile::tempdir().unwrap();
    let config = VaultConfig {
        kdf: KdfParams::FLOOR,
        ..Default::default()
    };
    let mut account = Account::new(tmp.path(), config);
    account
        .setup("https://org.example", UserMode::Oauth, PASSWORD, PASSWORD)
        .unwrap();
    let account = Arc::new(Mutex::new(account));
    let rss_before = status_kib("VmRSS:") * 1024;
    reset_peak();
    let report = sync::run(SyncContext {
        account,
        transport: Arc::new(HttpTransport::new(Http::new(&[]).unwrap(), &base)),
        tokens: Arc::new(StaticToken),
        options: SyncOptions::default(),
        progress: None,
        cancel: CancelToken::default(),
    })
    .await
    .unwrap();
    let peak = status_kib("VmHWM:") * 1024;
    assert_eq!(report.records_downloaded, 1);
    let above = peak.saturating_sub(rss_before);
    json!({
        "big_field_bytes": field_bytes,
        "big_field_peak_rss_above_idle_bytes": above,
        "big_field_amplification": above as f64 / field_bytes as f64,
    })
}
