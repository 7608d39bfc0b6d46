//! kill -9 of the harness at random points of the initial sync, of delta syncs and of uploads,
//! many times. After every restart and a final sync, the device holds exactly the server's
//! records, no queued edit is lost, and no edit is applied twice on the server (each applied
//! update adds exactly one version).
//!
//! Rounds: SYNCVAULT_CRASH_SYNC_ROUNDS (default 10); seed: SYNCVAULT_CRASH_SEED.

mod common;

use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use syncvault_server::{BoundServer, ServerConfig};
use syncvault_testkit::rng::Rng;

const PASSWORD: &[u8] = b"crash test password\n";

/// The harness with `--json --password-stdin` and `args`.
fn harness(dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> std::process::Child {
    let all: Vec<&str> = ["--json", "--password-stdin"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    common::spawn(dir, &all, stdin)
}

fn run(dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    let output = harness(dir, args, stdin).wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "syncvault {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json_out(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

const SYNC: &[&str] = &[
    "sync",
    "--dev-login",
    "ada@contoso.example",
    "--page-size",
    "40",
];

/// SYNCVAULT_CRASH_SEED, or one from the clock (printed, to rerun a failure).
fn seed() -> u64 {
    let seed = std::env::var("SYNCVAULT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("SYNCVAULT_CRASH_SEED={seed}");
    seed
}

/// A reference server with `records` records and a harness account set up for it in
/// `{tmp}/vault`.
async fn org_and_device(records: u64) -> (syncvault_server::RunningServer, tempfile::TempDir) {
    let srv = BoundServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn(ServerConfig {
            records,
            ..Default::default()
        })
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pw2 = [PASSWORD, PASSWORD].concat();
    run(
        &tmp.path().join("vault"),
        &["setup", "--org", &srv.url, "--user-mode", "oauth"],
        &pw2,
    );
    (srv, tmp)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_sync_loses_and_duplicates_nothing() {
    let rounds: u64 = std::env::var("SYNCVAULT_CRASH_SYNC_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut rng = Rng(seed());
    let (srv, tmp) = org_and_device(2000).await;
    let dir = tmp.path().join("vault");

    // The last value each contact was given offline (the edits of one record are coalesced into
    // one mutation per upload, so versions count uploads, not edits).
    let mut last_notes: HashMap<String, String> = HashMap::new();
    let mut created = 0;
    let mut kills = 0;
    let mut typical = Duration::from_millis(1500);
    for round in 0..rounds {
        // Queued edits (after the first round, once the data is there).
        if round > 0 {
            for k in 0..3 {
                let id = format!("c{:09}", 1 + rng.below(40));
                let notes = format!("round {round} edit {k}");
                let value = format!("notes={notes}");
                // Before the first complete download the record may not be here yet.
                let output = harness(&dir, &["edit", "contact", &id, &value], PASSWORD)
                    .wait_with_output()
                    .unwrap();
                if output.status.success() {
                    last_notes.insert(id, notes);
                } else {
                    let err = String::from_utf8_lossy(&output.stderr);
                    assert!(
                        err.contains("no contact record") || err.contains("unknown entity"),
                        "{err}"
                    );
                }
            }
            let subject = format!("subject=crash round {round}");
            run(
                &dir,
                &["edit", "--new", "activity", &subject, "kind=visit"],
                PASSWORD,
            );
            created += 1;
            // Another user changes accounts meanwhile: delta syncs carry data too.
            let id = format!("a{:09}", 1 + rng.below(200));
            let mut fields = serde_json::Map::new();
            fields.insert("city".into(), json!(format!("City {round}")));
            srv.org.data.edit("account", &id, fields);
        }
        // Kill somewhere within the time a whole run took last time (start-up, unlock,
        // sign-in, upload, download), so the kills land inside the sync, not after it.
        let started = std::time::Instant::now();
        let mut child = harness(&dir, SYNC, PASSWORD);
        let delay = typical.mul_f64(0.3 + 0.8 * rng.below(1000) as f64 / 1000.0);
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        } else {
            typical = started.elapsed();
        }
        child.wait().unwrap();
    }
    assert!(
        kills > 0,
        "no run was killed; the delays are too long for this machine"
    );

    // Restart and finish.
    let report = json_out(&run(&dir, SYNC, PASSWORD));
    assert_eq!(report["pending_changes"], 0, "{report}");
    let status = json_out(&run(&dir, &["status"], PASSWORD));
    assert_eq!(status["pending_changes"], 0);

    // The device equals the server.
    let server = srv.org.data.live_records();
    let mut local = 0;
    for entity in ["account", "contact", "activity"] {
        let rows = json_out(&run(&dir, &["query", entity], PASSWORD));
        let rows = rows.as_array().unwrap();
        local += rows.len();
        for row in rows {
            let id = row["id"].as_str().unwrap();
            let s = srv
                .org
                .data
                .get(entity, id)
                .unwrap_or_else(|| panic!("{entity} {id} not on the server"));
            assert!(!s.deleted);
            assert_eq!(row["version"], s.version, "{entity} {id}");
            for (k, v) in &s.fields {
                assert_eq!(&row[k], v, "{entity} {id} {k}");
            }
        }
    }
    assert_eq!(local, server.len());
    // Nothing lost: every contact holds its last offline value. Nothing applied twice: no
    // mutation id appears twice in the server's audit log, and each contact's version grew by
    // exactly the mutations applied to it.
    let audit = srv.org.data.audit();
    let mut seen = std::collections::HashSet::new();
    for (client, mutation, entity, id) in &audit {
        assert!(
            seen.insert((client.clone(), *mutation)),
            "mutation {mutation} ({entity} {id}) was applied twice"
        );
    }
    for (id, notes) in &last_notes {
        let s = srv.org.data.get("contact", id).unwrap();
        assert_eq!(s.fields["notes"], json!(notes), "contact {id}");
        let applied = audit
            .iter()
            .filter(|(_, _, e, i)| e == "contact" && i == id)
            .count() as i64;
        assert!(applied >= 1, "contact {id}: no upload applied");
        assert_eq!(s.version, 1 + applied, "contact {id}: {applied} uploads");
    }
    let crash_activities = server
        .iter()
        .filter(|r| {
            r.entity == "activity"
                && r.fields["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("crash round"))
        })
        .count();
    assert_eq!(crash_activities, created);
    eprintln!(
        "{rounds} rounds, {kills} kills, {created} creates, {} contacts edited, {} mutations applied",
        last_notes.len(),
        audit.len()
    );
}

/// docs/protocol.md, "GET /schema": the administrator adds a field and an entity (and, half-way,
/// another field) while the device holds unsent edits, and the device is killed again and again
/// during the Synchronizes that migrate its tables and download the new data. A final sync
/// leaves it with every new value and record, and each edit applied exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_schema_migration_resumes() {
    let mut rng = Rng(seed());
    let (srv, tmp) = org_and_device(3000).await;
    let dir = tmp.path().join("vault");
    let started = std::time::Instant::now();
    run(&dir, SYNC, PASSWORD);
    let typical = started.elapsed();
    let edited: Vec<String> = (1..=5).map(|i| format!("c{i:09}")).collect();
    for id in &edited {
        run(
            &dir,
            &["edit", "contact", id, "notes=offline before the migration"],
            PASSWORD,
        );
    }

    // The administrator's changes: a field with values, an entity with records and a role that
    // reads it.
    let data = &srv.org.data;
    let field = |spec: &str| syncvault_server::sync::schema::FieldDef::parse_spec(spec).unwrap();
    data.add_field("contact", field("mobile:text:searchable"))
        .unwrap();
    data.evolve_schema(|s| {
        s.add_entity(
            "work_order",
            vec![
                field("title:text:searchable"),
                field("account_id:reference:account"),
            ],
        )
    })
    .unwrap();
    let mut manager = srv
        .org
        .store
        .roles()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Sales Manager")
        .unwrap();
    manager
        .privileges
        .push(syncvault_server::admin::store::Privilege {
            entity: "work_order".into(),
            read: syncvault_server::admin::store::Depth::Organization,
            create: syncvault_server::admin::store::Depth::None,
            write: syncvault_server::admin::store::Depth::None,
            delete: syncvault_server::admin::store::Depth::None,
        });
    srv.org.store.set_role(&manager).unwrap();
    let contacts: Vec<String> = data
        .live_records()
        .into_iter()
        .filter(|r| r.entity == "contact")
        .map(|r| r.id)
        .collect();
    for (i, id) in contacts.iter().enumerate().step_by(3) {
        let mut f = serde_json::Map::new();
        f.insert("mobile".into(), json!(format!("+420 600 {i:06}")));
        data.edit("contact", id, f);
    }
    for i in 0..1500 {
        assert!(
            data.create(syncvault_server::sync::store::ServerRecord {
                entity: "work_order".into(),
                id: format!("w{i:09}"),
                version: 1,
                deleted: false,
                owner: String::new(),
                unit: "Headquarters".into(),
                fields: serde_json::from_value(json!({
                "title": format!("Work order {i}"), "account_id": "a000000001"}))
                .unwrap(),
            })
        );
    }

    let mut kills = 0;
    for round in 0..8 {
        if round == 4 {
            // A second migration while the first one's data is still coming.
            data.add_field("account", field("rating:integer")).unwrap();
        }
        let mut child = harness(&dir, SYNC, PASSWORD);
        let delay = typical.mul_f64(0.05 + 0.9 * rng.below(1000) as f64 / 1000.0);
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills > 0, "no run was killed");
    let report = json_out(&run(&dir, SYNC, PASSWORD));
    assert_eq!(report["pending_changes"], 0, "{report}");

    for entity in ["account", "contact", "activity", "work_order"] {
        let rows = json_out(&run(&dir, &["query", entity], PASSWORD));
        let rows = rows.as_array().unwrap();
        let server: Vec<_> = data
            .live_records()
            .into_iter()
            .filter(|r| r.entity == entity)
            .collect();
        assert_eq!(rows.len(), server.len(), "{entity}");
        for row in rows {
            let s = data.get(entity, row["id"].as_str().unwrap()).unwrap();
            assert_eq!(row["version"], s.version, "{entity} {}", row["id"]);
            for (k, v) in &s.fields {
                assert_eq!(&row[k], v, "{entity} {} {k}", row["id"]);
            }
        }
    }
    // The edits went up once each: one version more than the server's own edit, if any.
    let audit = data.audit();
    for id in &edited {
        let s = data.get("contact", id).unwrap();
        assert_eq!(
            s.fields["notes"],
            json!("offline before the migration"),
            "{id}"
        );
        let applied = audit
            .iter()
            .filter(|(_, _, e, i)| e == "contact" && i == id)
            .count();
        assert_eq!(applied, 1, "contact {id}");
    }
    eprintln!("{kills} kills during the migrating syncs");
}
