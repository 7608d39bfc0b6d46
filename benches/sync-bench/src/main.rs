//! Sync benchmark, side by side in one run: the initial sync of N records from the reference
//! server (a separate process, over loopback HTTP) against a local bulk insert of the same rows
//! into the same kind of encrypted store (in a process of its own, before or after the sync); the
//! peak RSS of the sync; delta syncs of 1k and 10k server changes; an upload of 10k queued edits.
//! Prints one JSON line.
//!
//! Usage: syncvault-sync-bench SERVER_BIN RECORDS [--local-first]
//!        syncvault-sync-bench --local-insert DIR RECORDS
//!        syncvault-sync-bench --big-field MB
//!        syncvault-sync-bench --live SERVER_BIN RECORDS
//!        syncvault-sync-bench --screens RECORDS
//!        syncvault-sync-bench --attachments SERVER_BIN MB

mod attachments;
mod big_field;
mod live;
mod scope;
mod screens;

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use syncvault::account::{Account, UserMode};
use syncvault::auth::loopback::LoopbackRedirect;
use syncvault::store::entities::{self, EntitySchema, Record};
use syncvault::vault::{Header, KdfParams, VaultConfig, VaultPaths};
use syncvault::{ClientOptions, FieldValue, RecordQuery, SyncClient, SyncObserver, SyncProgress};
use syncvault_server::idp::DEV_PASSWORD;
use syncvault_server::sync::{generate, schema};
use syncvault_testkit::devlogin;

const PASSWORD: &[u8] = b"benchmark password";
const BATCH: u64 = 2000;

struct Quiet;
impl SyncObserver for Quiet {
    fn on_progress(&self, _: SyncProgress) {}
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds this process has used (user + system, Linux; 10 ms resolution): the client's
/// share of a sync, without the server's, which runs in its own process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name's closing parenthesis; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// Resets the kernel's peak-RSS mark to the current RSS (Linux), so a peak is one phase's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(url: &str) {
    for _ in 0..3000 {
        if let Ok(r) = reqwest::get(format!("{url}/healthz")).await
            && r.status().is_success()
        {
            // Discovery answers only once the org (and its generated data) is up.
            if reqwest::get(format!("{url}/.well-known/syncvault"))
                .await
                .is_ok()
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not come up");
}

fn options() -> ClientOptions {
    ClientOptions {
        kdf_memory_kib: KdfParams::FLOOR.m_kib,
        kdf_iterations: KdfParams::FLOOR.t,
        kdf_parallelism: KdfParams::FLOOR.p,
        ..Default::default()
    }
}

/// The same rows inserted locally: schema, then transactions of BATCH through the store's upsert.
/// Returns the rate and the CPU seconds it took.
fn local_insert(dir: &std::path::Path, n: u64) -> (f64, f64) {
    let mut account = local_account(dir);
    let (started, cpu) = (Instant::now(), cpu_seconds());
    fill(account.store().unwrap().conn_mut(), n);
    (
        n as f64 / started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
    )
}

/// [`local_insert`] in a process of its own (this program with `--local-insert`), so neither
/// side's memory shows in the other's peak RSS whichever runs first.
fn local_insert_apart(dir: &std::path::Path, n: u64) -> (f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--local-insert")
        .arg(dir)
        .arg(n.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "the local insert failed");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        r["rate"].as_f64().unwrap(),
        r["cpu_seconds"].as_f64().unwrap(),
    )
}

/// The page cipher a vault's header names.
fn page_cipher(vault: &std::path::Path) -> &'static str {
    let header = std::fs::read(VaultPaths::new(vault).header()).unwrap();
    Header::decode(&header).unwrap().cipher.name()
}

/// A set-up account with its store open (no server).
fn local_account(dir: &std::path::Path) -> Account {
    let config = VaultConfig {
        kdf: KdfParams::FLOOR,
        ..Default::default()
    };
    let mut account = Account::new(dir, config);
    account
        .setup("https://org.example", UserMode::Oauth, PASSWORD, PASSWORD)
        .unwrap();
    account
}

/// The reference organization's `n` records through the store's own schema and upsert, in the
/// bulk mode an initial download uses (bare tables, indexes built at the end).
fn fill(conn: &mut rusqlite::Connection, n: u64) {
    let schemas: Vec<EntitySchema> =
        serde_json::from_value(schema::Schema::initial().to_json()["entities"].clone()).unwrap();
    entities::apply_schema(conn, &schemas).unwrap();
    let by_name: HashMap<String, EntitySchema> =
        schemas.into_iter().map(|s| (s.name.clone(), s)).collect();
    entities::begin_bulk_load(conn).unwrap();
    let mut i = 0;
    while i < n {
        let tx = conn.transaction().unwrap();
        for j in i..(i + BATCH).min(n) {
            let (entity, id, fields) = generate::record(n, j);
            let fields: Map<String, Value> = fields.as_object().unwrap().clone();
            let record = Record::new(id, 1, fields);
            entities::upsert_with(&tx, &by_name[entity], &record).unwrap();
        }
        tx.commit().unwrap();
        i += BATCH;
    }
    entities::end_bulk_load(conn).unwrap();
}

/// Starts the reference server (`SERVER_BIN serve`) with `n` records under `dir`; returns it
/// (killed on drop) and its organization URL once it answers.
async fn start_server(bin: &str, n: u64, dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(bin)
        .args([
            "--json",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--records",
            &n.to_string(),
        ])
        .arg("--data")
        .arg(dir.join("server"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let url = serde_json::from_str::<Value>(&line).unwrap()["org_url"]
        .as_str()
        .unwrap()
        .to_string();
    wait_ready(&url).await;
    (server, url)
}

/// A client set up in `dir` and signed in as Ada through the built-in provider's form.
async fn signed_in_client(
    url: &str,
    dir: &std::path::Path,
    options: ClientOptions,
) -> Arc<SyncClient> {
    signed_in_as(url, dir, options, "ada@contoso.example").await
}

/// The same as `user`.
async fn signed_in_as(
    url: &str,
    dir: &std::path::Path,
    options: ClientOptions,
    user: &str,
) -> Arc<SyncClient> {
    let client = SyncClient::with_options(dir.display().to_string(), options).unwrap();
    client
        .setup_offline_password(
            url.to_string(),
            syncvault::UserMode::Oauth,
            PASSWORD.to_vec(),
            PASSWORD.to_vec(),
        )
        .await
        .unwrap();
    let redirect = LoopbackRedirect::bind().await.unwrap();
    let request = client.begin_sign_in(redirect.redirect_uri()).await.unwrap();
    let callback = devlogin::login(&request.url, user, DEV_PASSWORD, false)
        .await
        .unwrap();
    client.complete_sign_in(callback).await.unwrap();
    client
}

/// An access token for Grace (credentials user mode): another user of the organization.
async fn grace_token(url: &str) -> String {
    let token: Value = reqwest::Client::new()
        .post(format!("{url}/api/auth/credentials"))
        .json(&json!({"username": "grace@contoso.example", "password": "grace-credentials"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_string()
}

/// Other users change `count` records on the server (its development API).
async fn simulate_edits(url: &str, count: u32) {
    let http = reqwest::Client::new();
    let token = grace_token(url).await;
    let edited: Value = http
        .post(format!("{url}/api/dev/simulate-edits"))
        .bearer_auth(token)
        .json(&json!({"count": count}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(edited["edited"], count);
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    if args[1] == "--attachments" {
        println!(
            "{}",
            attachments::run(&args[2], args[3].parse().unwrap()).await
        );
        return;
    }
    if args[1] == "--local-insert" {
        let (rate, cpu) = local_insert(std::path::Path::new(&args[2]), args[3].parse().unwrap());
        println!("{}", json!({"rate": rate, "cpu_seconds": cpu}));
        return;
    }
    if args[1] == "--big-field" {
        println!("{}", big_field::run(args[2].parse().unwrap()).await);
        return;
    }
    if args[1] == "--screens" {
        println!("{}", screens::run(args[2].parse().unwrap()).await);
        return;
    }
    if args[1] == "--scope" {
        println!("{}", scope::run(args[2].parse().unwrap()).await);
        return;
    }
    if args[1] == "--live" {
        println!("{}", live::run(&args[2], args[3].parse().unwrap()).await);
        return;
    }
    let (bin, n): (&str, u64) = (&args[1], args[2].parse().unwrap());
    // Which goes first alternates between rounds (run-sync-bench): the one after pays for the
    // disk's write-back of the one before.
    let local_first = args.get(3).is_some_and(|a| a == "--local-first");
    let tmp = tempfile::tempdir().unwrap();
    let local_before = local_first.then(|| local_insert_apart(&tmp.path().join("local"), n));
    let (_server, url) = start_server(bin, n, tmp.path()).await;
    let client = signed_in_client(&url, &tmp.path().join("vault"), options()).await;

    // Initial sync, with its own peak RSS.
    let rss_before = status_kib("VmRSS:") * 1024;
    reset_peak();
    let cpu_before = cpu_seconds();
    let initial = Arc::clone(&client)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();
    let peak = status_kib("VmHWM:") * 1024;
    let sync_cpu = cpu_seconds() - cpu_before;
    assert_eq!(initial.records_downloaded, n);
    let sync_rate = n as f64 / initial.seconds;

    // Delta: 1k records changed by other users.
    simulate_edits(&url, 1000).await;
    let delta = Arc::clone(&client)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();
    assert_eq!(delta.records_downloaded, 1000);
    // And 10k: big enough to measure here, for the 1M / 100k comparison.
    simulate_edits(&url, 10_000).await;
    let delta_10k = Arc::clone(&client)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();
    assert_eq!(delta_10k.records_downloaded, 10_000);

    // Upload: 10k queued edits (fewer when N is small).
    let contacts = client
        .query_records(
            "contact".into(),
            RecordQuery {
                limit: Some(10_000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let queue_started = Instant::now();
    for c in &contacts {
        let fields = HashMap::from([(
            "notes".to_string(),
            FieldValue::Text {
                value: "edited in the benchmark".into(),
            },
        )]);
        client
            .update_record("contact".into(), c.id.clone(), fields)
            .await
            .unwrap();
    }
    let queue_seconds = queue_started.elapsed().as_secs_f64();
    let upload = Arc::clone(&client)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();
    assert_eq!(upload.records_uploaded, contacts.len() as u64);
    let cipher = page_cipher(&tmp.path().join("vault"));
    let db_bytes = std::fs::metadata(tmp.path().join("vault").join("store.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    drop(client);

    let (local_rate, local_cpu) =
        local_before.unwrap_or_else(|| local_insert_apart(&tmp.path().join("local"), n));
    println!(
        "{}",
        json!({
            "records": n,
            "initial_sync_seconds": initial.seconds,
            "initial_sync_records_per_second": sync_rate,
            "local_insert_records_per_second": local_rate,
            "ratio": sync_rate / local_rate,
            "initial_sync_client_cpu_seconds": sync_cpu,
            "local_insert_cpu_seconds": local_cpu,
            "bytes_downloaded": initial.bytes_downloaded,
            "rss_before_sync_bytes": rss_before,
            "peak_rss_during_sync_bytes": peak,
            "delta_1k_seconds": delta.seconds,
            "delta_10k_seconds": delta_10k.seconds,
            "queued_edits": contacts.len(),
            "queue_edits_seconds": queue_seconds,
            "upload_seconds": upload.seconds,
            "store_bytes": db_bytes,
            "local_first": local_first,
            "page_cipher": cipher,
        })
    );
}
