//! What a screen waits for, side by side in one run: the store's own read paths (the ones
//! `searchRecords`, `queryRecords` and `getRecord` run) over the encrypted store and over plain
//! SQLite holding the same rows of the same schema, and the public API itself (`SyncClient`:
//! the async hop to a blocking thread, the account lock, the conversion to `SyncRecord`) over the
//! encrypted store. Prefix search as the person types a contact's last name letter by letter, a
//! 50-row list page ordered by name, and one record by id; p50 and p99 of each.

use std::time::Instant;

use rusqlite::Connection;
use serde_json::{Value, json};
use syncvault::store::entities::{self, Query};
use syncvault::store::schema;
use syncvault::{RecordQuery, SyncClient};
// Seeded, so both stores answer the same requests.
use syncvault_testkit::rng::Rng;

use crate::{PASSWORD, fill, local_account, options};

/// Milliseconds of each call of `f` over `inputs`.
fn timed<T>(inputs: &[T], mut f: impl FnMut(&T)) -> Vec<f64> {
    inputs
        .iter()
        .map(|x| {
            let start = Instant::now();
            f(x);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn percentiles(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({"p50_ms": ms[ms.len() / 2], "p99_ms": ms[ms.len() * 99 / 100]})
}

/// The requests of the three screens, the same for every store.
struct Requests {
    prefixes: Vec<String>,
    offsets: Vec<u32>,
    ids: Vec<String>,
}

fn requests(conn: &Connection, n: u64) -> Requests {
    let (_, contacts) = syncvault_server::sync::generate::split(n);
    let mut rng = Rng(0x5eed);
    // Last names of 100 random contacts, typed as the person would: "h", "ho", "hop", ...
    let mut prefixes = Vec::new();
    for _ in 0..100 {
        let id = format!("c{:09}", 1 + rng.below(contacts));
        let r = entities::get(conn, "contact", &id)
            .unwrap()
            .expect("generated contact");
        let name = r.fields["full_name"].as_str().unwrap().to_lowercase();
        let last = name.split_whitespace().last().unwrap().to_string();
        for end in 1..=last.len().min(6) {
            prefixes.push(last[..end].to_string());
        }
    }
    let offsets = (0..200).map(|_| rng.below(1000) as u32).collect();
    let ids = (0..2000)
        .map(|_| format!("c{:09}", 1 + rng.below(contacts)))
        .collect();
    Requests {
        prefixes,
        offsets,
        ids,
    }
}

fn result(search: Vec<f64>, list: Vec<f64>, get: Vec<f64>) -> Value {
    json!({
        "prefix_search": percentiles(search),
        "list_page_by_name": percentiles(list),
        "get_record": percentiles(get),
    })
}

/// The three screens through the store's read paths on one connection.
fn screens(conn: &Connection, r: &Requests) -> Value {
    let search = timed(&r.prefixes, |p| {
        let q = Query {
            search: Some(p.clone()),
            limit: Some(20),
            ..Default::default()
        };
        entities::query(conn, "contact", &q).unwrap();
    });
    let list = timed(&r.offsets, |&offset| {
        let q = Query {
            order_by: Some("full_name".into()),
            limit: Some(50),
            offset,
            ..Default::default()
        };
        assert_eq!(entities::query(conn, "contact", &q).unwrap().len(), 50);
    });
    let get = timed(&r.ids, |id| {
        entities::get(conn, "contact", id)
            .unwrap()
            .expect("present");
    });
    result(search, list, get)
}

/// Milliseconds of each awaited call (each must succeed).
async fn timed_async<T, R, E: std::fmt::Debug, F: Future<Output = Result<R, E>>>(
    inputs: &[T],
    mut f: impl FnMut(&T) -> F,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(inputs.len());
    for x in inputs {
        let start = Instant::now();
        f(x).await.unwrap();
        out.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

/// The three screens through the public API, as an app calls it.
async fn api_screens(client: &SyncClient, r: &Requests) -> Value {
    let search = timed_async(&r.prefixes, |p| {
        client.search_records("contact".into(), p.clone(), 20)
    })
    .await;
    let list = timed_async(&r.offsets, |&offset| {
        let q = RecordQuery {
            order_by: Some("full_name".into()),
            limit: Some(50),
            offset,
            ..Default::default()
        };
        client.query_records("contact".into(), q)
    })
    .await;
    let get = timed_async(&r.ids, |id| client.get_record("contact".into(), id.clone())).await;
    result(search, list, get)
}

pub async fn run(n: u64) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let mut account = local_account(&dir);
    fill(account.store().unwrap().conn_mut(), n);
    let conn = account.store().unwrap().conn();
    let asked = requests(conn, n);
    let encrypted = screens(conn, &asked);
    drop(account);

    let client = SyncClient::with_options(dir.display().to_string(), options()).unwrap();
    client.unlock(PASSWORD.to_vec()).await.unwrap();
    let api = api_screens(&client, &asked).await;
    drop(client);

    let mut plain = Connection::open(tmp.path().join("plain.db")).unwrap();
    plain.pragma_update(None, "journal_mode", "WAL").unwrap();
    schema::migrate(&plain).unwrap();
    fill(&mut plain, n);
    let plain_result = screens(&plain, &asked);
    json!({"records": n, "encrypted": encrypted, "encrypted_api": api, "plain": plain_result})
}
