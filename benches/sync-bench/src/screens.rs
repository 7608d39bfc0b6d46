//! What a screen waits for, side by side in one run: the store's own read paths (the ones
//! `searchRecords`, `queryRecords` and `getRecord` run) over the encrypted store and over plain
//! SQLite holding the same rows of the same schema. Prefix search as the person types a
//! contact's last name letter by letter, a 50-row list page ordered by name, and one record by
//! id; p50 and p99 of each.

use std::time::Instant;

use rusqlite::Connection;
use serde_json::{Value, json};
use syncvault::store::entities::{self, Query};
use syncvault::store::schema;
// Seeded, so both stores answer the same requests.
use syncvault_testkit::rng::Rng;

use crate::{fill, local_account};

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

/// The three screens on one connection.
fn screens(conn: &Connection, n: u64) -> Value {
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
    let search = timed(&prefixes, |p| {
        let q = Query {
            search: Some(p.clone()),
            limit: Some(20),
            ..Default::default()
        };
        entities::query(conn, "contact", &q).unwrap();
    });
    let offsets: Vec<u32> = (0..200).map(|_| rng.below(1000) as u32).collect();
    let list = timed(&offsets, |&offset| {
        let q = Query {
            order_by: Some("full_name".into()),
            limit: Some(50),
            offset,
            ..Default::default()
        };
        assert_eq!(entities::query(conn, "contact", &q).unwrap().len(), 50);
    });
    let ids: Vec<String> = (0..2000)
        .map(|_| format!("c{:09}", 1 + rng.below(contacts)))
        .collect();
    let get = timed(&ids, |id| {
        entities::get(conn, "contact", id)
            .unwrap()
            .expect("present");
    });
    json!({
        "prefix_search": percentiles(search),
        "list_page_by_name": percentiles(list),
        "get_record": percentiles(get),
    })
}

pub fn run(n: u64) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let mut account = local_account(&tmp.path().join("vault"));
    fill(account.store().unwrap().conn_mut(), n);
    let encrypted = screens(account.store().unwrap().conn(), n);
    drop(account);

    let mut plain = Connection::open(tmp.path().join("plain.db")).unwrap();
    plain.pragma_update(None, "journal_mode", "WAL").unwrap();
    schema::migrate(&plain).unwrap();
    fill(&mut plain, n);
    let plain_result = screens(&plain, n);
    json!({"records": n, "encrypted": encrypted, "plain": plain_result})
}
