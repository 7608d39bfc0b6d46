//! `syncvault admin ...` as a script drives it: the first administrator password on `serve`'s
//! stdin, a password sign-in before the provider is connected, `connect --as`, then provider
//! sign-ins (`--dev-login`) to import a user with a role, assign a Domain Name, list devices,
//! disable a user and wipe a device.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

use common::BIN;
use serde_json::Value;

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `syncvault --json serve` on a free port with 100 records, its state in `data`.
fn serve_command(data: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args([
            "--json",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--records",
            "100",
        ])
        .arg("--data")
        .arg(data);
    command
}

fn serve(data: &std::path::Path) -> Server {
    let mut child = serve_command(data)
        .arg("--admin-password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"admin password 1\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert!(
        v.get("admin_password").is_none(),
        "a given password is not printed"
    );
    Server(child, v["org_url"].as_str().unwrap().to_string())
}

fn admin(org: &str, auth: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    let mut all = vec!["--json", "--password-stdin", "admin", "--org", org];
    all.extend_from_slice(auth);
    all.extend_from_slice(args);
    let dir = tempfile::tempdir().unwrap();
    common::spawn(dir.path(), &all, stdin)
        .wait_with_output()
        .unwrap()
}

fn ok(o: Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn admin_commands_drive_the_console_api() {
    let data = tempfile::tempdir().unwrap();
    let srv = serve(data.path());
    let org = srv.1.as_str();
    let pw: &[u8] = b"admin password 1\n";
    let provider = ["--dev-login", "admin@contoso.example"];

    let o = ok(admin(org, &[], &["organization"], pw));
    assert!(o["connection"].is_null());
    let wrong = admin(org, &[], &["organization"], b"nope\n");
    assert_eq!(wrong.status.code(), Some(1));
    let o = ok(admin(
        org,
        &[],
        &["connect", "--as", "admin@contoso.example"],
        pw,
    ));
    assert_eq!(o["user_modes"], serde_json::json!(["oauth"]));
    // Connected: the password no longer signs in.
    assert_eq!(
        admin(org, &[], &["organization"], pw).status.code(),
        Some(1)
    );

    let plan = ok(admin(
        org,
        &provider,
        &[
            "import-users",
            "--email",
            "alan@contoso.example",
            "--role",
            "Field Technician",
        ],
        b"",
    ));
    assert_eq!(plan[0]["action"], "create");
    let users = ok(admin(org, &provider, &["users", "--search", "alan"], b""));
    assert_eq!(users[0]["roles"], serde_json::json!(["Field Technician"]));

    let saved = ok(admin(
        org,
        &provider,
        &[
            "assign",
            "grace@contoso.example",
            "--provider-email",
            "grace@contoso.example",
            "--role",
            "Salesperson",
        ],
        b"",
    ));
    assert!(saved["domain_name"].as_str().unwrap().contains("/idp|"));
    assert_eq!(saved["roles"], serde_json::json!(["Salesperson"]));

    // Schema, roles and ownership (docs/admin.md, "Schema", "Roles and business units").
    let schema = ok(admin(
        org,
        &provider,
        &["schema", "add-field", "contact", "mobile:text:searchable"],
        b"",
    ));
    let contact = |s: &Value| {
        s["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "contact")
            .unwrap()
            .clone()
    };
    assert!(
        contact(&schema)["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "mobile")
    );
    let bad = admin(
        org,
        &provider,
        &["schema", "add-field", "contact", "nope"],
        b"",
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a malformed field is a usage error"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("name:type"));
    let refused = admin(
        org,
        &provider,
        &["schema", "add-field", "contact", "mobile:text"],
        b"",
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "an existing field is refused by the server"
    );
    ok(admin(
        org,
        &provider,
        &[
            "schema",
            "filter",
            "activity",
            r#"{"any": [{"field": "done", "equals": false}]}"#,
        ],
        b"",
    ));
    let retired = ok(admin(
        org,
        &provider,
        &["schema", "retire-field", "contact", "mobile"],
        b"",
    ));
    assert!(
        contact(&retired)["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "mobile" && f["retired"] == true)
    );
    let sorted = ok(admin(
        org,
        &provider,
        &["schema", "sortable", "contact", "email"],
        b"",
    ));
    let email_sortable = |schema: &Value| {
        contact(schema)["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "email" && f["sortable"] == true)
    };
    assert!(email_sortable(&sorted));
    let unsorted = ok(admin(
        org,
        &provider,
        &["schema", "sortable", "contact", "email", "--off"],
        b"",
    ));
    assert!(!email_sortable(&unsorted));
    let added = ok(admin(
        org,
        &provider,
        &[
            "schema",
            "add-entity",
            "work_order",
            "--field",
            "title:text:searchable",
            "--field",
            "account_id:reference:account",
        ],
        b"",
    ));
    assert!(
        added["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "work_order")
    );
    let shown = ok(admin(org, &provider, &["schema"], b""));
    let activity = shown["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "activity")
        .unwrap();
    assert_eq!(activity["sync_filter"]["any"][0]["field"], "done");
    // The attachment policy: changed in parts, an unknown entity refused.
    let policy = ok(admin(
        org,
        &provider,
        &[
            "attachment-policy",
            "--auto-download-max-bytes",
            "123456",
            "--auto-download-entity",
            "activity",
        ],
        b"",
    ));
    assert_eq!(policy["auto_download_max_bytes"], 123456);
    assert_eq!(
        policy["auto_download_entities"],
        serde_json::json!(["activity"])
    );
    assert_eq!(policy["max_upload_bytes"], 512 << 20, "the rest unchanged");
    let refused = admin(
        org,
        &provider,
        &["attachment-policy", "--auto-download-entity", "nosuch"],
        b"",
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nosuch"));
    let shown_policy = ok(admin(
        org,
        &provider,
        &["attachment-policy", "--all-entities"],
        b"",
    ));
    assert_eq!(
        shown_policy["auto_download_entities"],
        serde_json::json!([])
    );
    assert_eq!(shown_policy["auto_download_max_bytes"], 123456);
    let role = ok(admin(
        org,
        &provider,
        &[
            "role",
            "Field Technician",
            "--entity",
            "work_order",
            "--read",
            "unit",
        ],
        b"",
    ));
    let grant = role["privileges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["entity"] == "work_order")
        .unwrap()
        .clone();
    assert_eq!(
        (grant["read"].as_str(), grant["write"].as_str()),
        (Some("unit"), Some("none"))
    );
    let moved = ok(admin(
        org,
        &provider,
        &[
            "assign",
            "alan@contoso.example",
            "--unit",
            "Seattle Field Office",
        ],
        b"",
    ));
    assert_eq!(moved["business_unit"], "Seattle Field Office");
    assert_eq!(
        moved["roles"],
        serde_json::json!(["Field Technician"]),
        "roles stay as they were"
    );
    let given = ok(admin(
        org,
        &provider,
        &[
            "assign-records",
            "account",
            "--owner",
            "alan@contoso.example",
            "--id",
            "a000000001",
        ],
        b"",
    ));
    assert_eq!(given["moved"], 1);

    // A device syncs; the administrator sees it and wipes it.
    let device = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &[u8]| {
        common::spawn(device.path(), args, stdin)
            .wait_with_output()
            .unwrap()
    };
    assert!(
        run(
            &[
                "--password-stdin",
                "setup",
                "--org",
                org,
                "--user-mode",
                "oauth"
            ],
            b"password1\npassword1\n"
        )
        .status
        .success()
    );
    assert!(
        run(
            &[
                "--json",
                "--password-stdin",
                "sync",
                "--dev-login",
                "alan@contoso.example"
            ],
            b"password1\n"
        )
        .status
        .success()
    );
    let devices = ok(admin(org, &provider, &["devices"], b""));
    let client_id = devices[0]["client_id"].as_str().unwrap().to_string();
    assert_eq!(devices[0]["user_email"], "alan@contoso.example");
    ok(admin(org, &provider, &["wipe-device", &client_id], b""));
    let wiped = run(
        &[
            "--json",
            "--password-stdin",
            "sync",
            "--dev-login",
            "alan@contoso.example",
        ],
        b"password1\n",
    );
    let err: Value = serde_json::from_slice(&wiped.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "RemoteWiped");

    let disabled = ok(admin(
        org,
        &provider,
        &["disable", "alan@contoso.example"],
        b"",
    ));
    assert_eq!(disabled["enabled"], false);
}

/// A broken `--directory` file is a usage error naming where it broke, and never echoes the
/// secret it holds.
#[test]
fn a_broken_directory_file_is_refused_without_showing_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("directory.json");
    std::fs::write(
        &file,
        br#"{"users_url": "https://graph.example/v1.0/users", "token_url": "https://idp.example/token",
            "client_id": "c", "client_secret": 12345678901234, "scope": null}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--issuer",
            "https://idp.example",
        ])
        .args(["--audience", "api://org", "--directory"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--directory") && err.contains("line 2"),
        "{err}"
    );
    assert!(!err.contains("12345678901234"), "{err}");
}

/// A data directory a newer binary wrote is refused at start, with a message and a non-zero exit
/// status, and left as it was.
#[test]
fn a_newer_data_directory_is_refused_untouched() {
    let data = tempfile::tempdir().unwrap();
    drop(serve(data.path())); // creates and stamps both databases, then stops
    let org_db = data.path().join("org.db");
    let version = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let admin_version = version(&data.path().join("admin.db"));
    assert!(admin_version >= 1, "admin.db is stamped");
    rusqlite::Connection::open(&org_db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let out = serve_command(data.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a newer org.db must not start");
    let err: Value = serde_json::from_slice(&out.stderr).expect("stderr is one JSON object");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("newer syncvault") && message.contains("org.db"),
        "{message}"
    );
    assert!(out.stdout.is_empty(), "nothing served");
    assert_eq!(version(&org_db), 99, "org.db left as it was");
    assert_eq!(
        version(&data.path().join("admin.db")),
        admin_version,
        "admin.db left as it was"
    );
}
