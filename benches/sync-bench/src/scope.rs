//! What scope costs (docs/protocol.md, "Scope"), with the reference server in-process:
//! - the initial sync of a user who may read 2% of an N-record organization, against the same
//!   user in an organization that holds only those records: time and bytes side by side (the
//!   server reads the user's rows through its owner index, not the organization);
//! - delta syncs of a user whose scope is `N / 10` records after 1% and then 10% of it left
//!   (reassigned), beside a delta of 1% edited: what a removal costs grows with what left.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use syncvault::{SyncClient, SyncReport};
use syncvault_server::admin::store::{Depth, Privilege, Role, UserEdit};
use syncvault_server::sync::generate::{id, split};
use syncvault_server::sync::store::ServerRecord;
use syncvault_server::{BoundServer, RunningServer, ServerConfig};

use crate::{Quiet, options, signed_in_as};

const USER: &str = "tech-01-1@contoso.example";
const OTHER: &str = "tech-02-1@contoso.example";
const ROLE: &str = "Own Records";

async fn org(records: u64) -> RunningServer {
    BoundServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn(ServerConfig {
            records,
            ..Default::default()
        })
        .unwrap()
}

/// `USER` reads exactly the records they own, of every entity.
fn own_records_only(srv: &RunningServer) {
    let own = |entity: &str| Privilege {
        entity: entity.into(),
        read: Depth::Own,
        create: Depth::None,
        write: Depth::None,
        delete: Depth::None,
    };
    let store = &srv.org.store;
    store
        .set_role(&Role {
            name: ROLE.into(),
            privileges: vec![own("account"), own("contact"), own("activity")],
        })
        .unwrap();
    let user = store.user_by_email(USER).unwrap().unwrap();
    store
        .update_user(
            &user.id,
            &UserEdit {
                roles: vec![ROLE.into()],
                ..UserEdit::from(&user)
            },
        )
        .unwrap();
}

/// Ids of every `step`-th record (from the `step`-th: the first ids stay out, see `initial`) of each entity of a generated `n`-record organization.
fn every(n: u64, step: u64) -> Vec<(&'static str, Vec<String>)> {
    let (accounts, contacts) = split(n);
    let ids = |prefix, count: u64| {
        (step..=count)
            .step_by(step as usize)
            .map(|i| id(prefix, i))
            .collect()
    };
    vec![
        ("account", ids('a', accounts)),
        ("contact", ids('c', contacts)),
        ("activity", ids('t', n - accounts - contacts)),
    ]
}

/// Gives `USER` exactly `ids` (what they owned before goes to `OTHER`).
fn give(srv: &RunningServer, ids: &[(&'static str, Vec<String>)]) {
    let store = &srv.org.store;
    let (user, other) = (
        store.user_by_email(USER).unwrap().unwrap(),
        store.user_by_email(OTHER).unwrap().unwrap(),
    );
    for r in srv.org.readable_records(USER) {
        srv.org
            .data
            .assign(&r.entity, &[r.id], &other.id, &other.business_unit)
            .unwrap();
    }
    for (entity, ids) in ids {
        srv.org
            .data
            .assign(entity, ids, &user.id, &user.business_unit)
            .unwrap();
    }
}

async fn device(srv: &RunningServer, dir: &std::path::Path) -> Arc<SyncClient> {
    signed_in_as(&srv.url, dir, options(), USER).await
}

async fn sync(client: &Arc<SyncClient>) -> SyncReport {
    Arc::clone(client)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap()
}

fn report(r: &SyncReport) -> Value {
    json!({"seconds": r.seconds, "bytes": r.bytes_downloaded,
           "downloaded": r.records_downloaded, "removed": r.records_removed})
}

/// Initial sync of a 2% scope in an `n`-record organization vs an organization of only it.
async fn initial(n: u64) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let big = org(n).await;
    own_records_only(&big);
    give(&big, &every(n, 50));
    let scope = big.org.readable_records(USER);
    let setup_seconds = started.elapsed().as_secs_f64();
    // The smallest organization the server makes has one account (id 1, never in the scope),
    // and the technicians; it goes to another user.
    let small = org(1).await;
    own_records_only(&small);
    give(&small, &[]);
    let owner = small.org.store.user_by_email(USER).unwrap().unwrap();
    for r in &scope {
        assert!(small.org.data.create(ServerRecord {
            owner: owner.id.clone(),
            unit: owner.business_unit.clone(),
            ..r.clone()
        }));
    }
    // Fresh devices, alternating, twice each: the faster of each pair (the first sync in the
    // process pays for warm-up the second does not).
    let mut runs: Vec<(SyncReport, SyncReport)> = vec![];
    for round in 0..2 {
        let b = sync(&device(&big, &tmp.path().join(format!("big{round}"))).await).await;
        let s = sync(&device(&small, &tmp.path().join(format!("small{round}"))).await).await;
        assert_eq!(b.records_downloaded, scope.len() as u64);
        assert_eq!(s.records_downloaded, scope.len() as u64);
        runs.push((b, s));
    }
    let faster = |pick: fn(&(SyncReport, SyncReport)) -> &SyncReport| {
        runs.iter()
            .map(pick)
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
            .unwrap()
            .clone()
    };
    let in_big = faster(|r| &r.0);
    let in_small = faster(|r| &r.1);
    json!({
        "records": n,
        "scope": scope.len(),
        "setup_seconds": setup_seconds,
        "in_whole_org": report(&in_big),
        "in_org_of_only_the_scope": report(&in_small),
        "time_ratio": in_big.seconds / in_small.seconds,
        "bytes_ratio": in_big.bytes_downloaded as f64 / in_small.bytes_downloaded as f64,
    })
}

/// Delta syncs of a `scope`-record scope after 1% and 10% of it left, and after 1% was edited.
async fn leaving(scope: u64) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let srv = org(scope).await;
    own_records_only(&srv);
    give(&srv, &every(scope, 1));
    let client = device(&srv, &tmp.path().join("device")).await;
    let full = sync(&client).await;
    assert_eq!(full.records_downloaded, scope);
    let other = srv.org.store.user_by_email(OTHER).unwrap().unwrap();
    let mut held: Vec<ServerRecord> = srv.org.readable_records(USER);
    let one = (scope / 100) as usize;
    for r in &held[held.len() - one..] {
        let mut f = serde_json::Map::new();
        let key = if r.entity == "account" {
            "city"
        } else {
            "notes"
        };
        f.insert(key.into(), json!("changed by the benchmark"));
        srv.org.data.edit(&r.entity, &r.id, f);
    }
    let mut leave = |count: usize| {
        let gone: Vec<ServerRecord> = held.drain(..count).collect();
        for r in &gone {
            srv.org
                .data
                .assign(
                    &r.entity,
                    std::slice::from_ref(&r.id),
                    &other.id,
                    &other.business_unit,
                )
                .unwrap();
        }
    };
    let edits = sync(&client).await;
    assert_eq!(edits.records_downloaded, one as u64);
    leave(one);
    let left_1 = sync(&client).await;
    assert_eq!(left_1.records_removed, one as u64);
    leave(one * 10);
    let left_10 = sync(&client).await;
    assert_eq!(left_10.records_removed, one as u64 * 10);
    json!({
        "scope": scope,
        "full_sync": report(&full),
        "edited_1pct": report(&edits),
        "left_1pct": report(&left_1),
        "left_10pct": report(&left_10),
        "left_10pct_over_1pct": left_10.seconds / left_1.seconds,
        "left_1pct_over_full": left_1.seconds / full.seconds,
    })
}

pub async fn run(n: u64) -> Value {
    json!({"initial_2pct": initial(n).await, "delta": leaving(n / 10).await})
}
