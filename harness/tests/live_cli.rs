//! The harness contract (docs/harness.md) for the live view, run as a real process against the
//! reference server: `pending`, a refused change in the sync report, `errors`, `query`'s
//! `sync_state`, `errors discard` and `errors retry`, and `watch`.

mod common;

use std::process::Output;

use serde_json::Value;
use syncvault_server::{BoundServer, ServerConfig};

const PASSWORD: &[u8] = b"live cli password\n";

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    let all: Vec<&str> = ["--json", "--password-stdin"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let stdin = if args[0] == "setup" {
        [PASSWORD, PASSWORD].concat()
    } else {
        PASSWORD.to_vec()
    };
    let output = common::spawn(dir, &all, &stdin).wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "syncvault {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every stdout line as JSON.
fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn last(output: &Output) -> Value {
    lines(output).pop().expect("a result line")
}

const SYNC: &[&str] = &["sync", "--dev-login", "ada@contoso.example"];

#[tokio::test(flavor = "multi_thread")]
async fn pending_errors_query_states_and_watch() {
    let srv = BoundServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn(ServerConfig {
            records: 100,
            ..Default::default()
        })
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    run(&dir, &["setup", "--org", &srv.url, "--user-mode", "oauth"]);
    run(&dir, SYNC);
    let (bad, good) = ("c000000004", "c000000005");
    let email = |rows: &Value| rows[0]["email"].as_str().unwrap().to_string();
    let server_email = email(&last(&run(&dir, &["query", "contact", "--id", bad])));

    run(&dir, &["edit", "contact", bad, "email=no address"]);
    run(&dir, &["edit", "contact", good, "phone=+1 555 0123"]);
    let pending = last(&run(&dir, &["pending"]));
    let ids: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bad, good], "{pending}");
    assert_eq!(pending[0]["fields"], serde_json::json!(["email"]));

    let report = last(&run(&dir, SYNC));
    assert_eq!(
        (&report["sync_errors"], &report["pending_changes"]),
        (&1.into(), &0.into()),
        "{report}"
    );
    let errors = last(&run(&dir, &["errors"]));
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    let e = &errors[0];
    assert_eq!(
        (e["record_id"].as_str(), e["code"].as_str()),
        (Some(bad), Some("InvalidValue"))
    );
    assert_eq!(e["local_fields"]["email"], "no address");
    assert_eq!(e["server_fields"]["email"], server_email.as_str());
    let row = last(&run(&dir, &["query", "contact", "--id", bad]));
    assert_eq!(
        (row[0]["sync_state"].as_str(), email(&row).as_str()),
        (Some("error"), "no address")
    );

    // Discard: the server's value is back, synced.
    let id = e["id"].as_i64().unwrap().to_string();
    run(&dir, &["errors", "discard", &id]);
    let row = last(&run(&dir, &["query", "contact", "--id", bad]));
    assert_eq!(
        (row[0]["sync_state"].as_str(), email(&row)),
        (Some("synced"), server_email)
    );
    assert_eq!(last(&run(&dir, &["errors"])), serde_json::json!([]));

    // Refused again, fixed, retried: it goes up.
    run(&dir, &["edit", "contact", bad, "email=nope"]);
    run(&dir, SYNC);
    let id = last(&run(&dir, &["errors"]))[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    run(
        &dir,
        &["edit", "contact", bad, "email=fixed@contoso.example"],
    );
    run(&dir, &["errors", "retry", &id]);
    let row = last(&run(&dir, &["query", "contact", "--id", bad]));
    assert_eq!(row[0]["sync_state"], "pending");
    assert_eq!(last(&run(&dir, SYNC))["records_uploaded"], 1);
    assert_eq!(
        srv.org.data.get("contact", bad).unwrap().fields["email"],
        "fixed@contoso.example"
    );

    // `watch` prints the current state at once.
    let watched = lines(&run(&dir, &["watch", "contact", "--seconds", "1"]));
    assert_eq!(watched[0]["records"], 40, "{watched:?}");
    assert_eq!(watched[0]["states"]["synced"], 40);
}
