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

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_sync_loses_and_duplicates_nothing() {
    let rounds: u64 = std::env::var("SYNCVAULT_CRASH_SYNC_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
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
    let mut rng = Rng(seed);
    let srv = BoundServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn(ServerConfig {
            records: 2000,
            ..Default::default()
        })
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let pw2 = [PASSWORD, PASSWORD].concat();
    run(
        &dir,
        &["setup", "--org", &srv.url, "--user-mode", "oauth"],
        &pw2,
    );

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
