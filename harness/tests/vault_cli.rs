//! The harness contract (docs/harness.md) for the vault commands, run as a real process.

mod common;

use std::process::Output;

use serde_json::Value;

fn run(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    common::spawn(dir, args, stdin.as_bytes())
        .wait_with_output()
        .unwrap()
}

fn stdout_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn error_json(o: &Output, code: i32) -> Value {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err: Value = serde_json::from_slice(&o.stderr).expect("stderr is one JSON object");
    err["error"].clone()
}

const J: &[&str] = &["--json", "--password-stdin"];

fn args<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    J.iter().copied().chain(rest.iter().copied()).collect()
}

#[test]
fn setup_status_change_password_wipe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    let setup = [
        "setup",
        "--org",
        "Contoso.Example.com/",
        "--user-mode",
        "oauth",
    ];

    let e = error_json(&run(&dir, &args(&setup), "password1\npassword2\n"), 1);
    assert_eq!(e["kind"], "PasswordMismatch");
    let e = error_json(&run(&dir, &args(&setup), "short\nshort\n"), 1);
    assert_eq!(e["kind"], "WeakPassword");
    assert_eq!(e["min_length"], 8);
    let bad_org = [
        "setup",
        "--org",
        "http://contoso.example.com",
        "--user-mode",
        "oauth",
    ];
    let e = error_json(&run(&dir, &args(&bad_org), "password1\npassword1\n"), 1);
    assert_eq!(e["kind"], "InvalidOrganizationUrl");
    assert_eq!(e["problem"], "InsecureScheme");

    let v = stdout_json(&run(&dir, &args(&setup), "password1\npassword1\n"));
    assert_eq!(v["organization_url"], "https://contoso.example.com");
    let e = error_json(&run(&dir, &args(&setup), "password1\npassword1\n"), 1);
    assert_eq!(e["kind"], "AlreadyConfigured");

    let locked = stdout_json(&run(&dir, &["--json", "status"], ""));
    assert_eq!(locked["configured"], true);
    assert_eq!(locked["locked"], true);
    assert_eq!(locked["organization_url"], Value::Null);

    // Failed attempts count across process restarts, and reset on success.
    for left in [9, 8, 7] {
        let e = error_json(&run(&dir, &args(&["status"]), "wrong password\n"), 1);
        assert_eq!(e["kind"], "WrongPassword");
        assert_eq!(e["attempts_left"], left);
    }
    let locked = stdout_json(&run(&dir, &["--json", "status"], ""));
    assert_eq!(locked["failed_attempts"], 3);
    // While locked the queued edits are unknown (they live in the encrypted store): null, not 0.
    assert!(locked["pending_changes"].is_null(), "{locked}");
    let open = stdout_json(&run(&dir, &args(&["status"]), "password1\n"));
    assert_eq!(open["locked"], false);
    assert_eq!(open["organization_url"], "https://contoso.example.com");
    assert_eq!(open["user_mode"], "oauth");
    assert_eq!(open["pending_changes"], 0);
    assert_eq!(
        stdout_json(&run(&dir, &["--json", "status"], ""))["failed_attempts"],
        0
    );

    let e = error_json(
        &run(
            &dir,
            &args(&["change-password"]),
            "password1\nnewpassword\nnewpasswerd\n",
        ),
        1,
    );
    assert_eq!(e["kind"], "PasswordMismatch");
    stdout_json(&run(
        &dir,
        &args(&["change-password"]),
        "password1\nnewpassword\nnewpassword\n",
    ));
    assert_eq!(
        error_json(&run(&dir, &args(&["status"]), "password1\n"), 1)["kind"],
        "WrongPassword"
    );
    assert_eq!(
        stdout_json(&run(&dir, &args(&["status"]), "newpassword\n"))["locked"],
        false
    );

    assert_eq!(
        error_json(&run(&dir, &["--json", "wipe"], ""), 2)["kind"],
        "Usage"
    );
    stdout_json(&run(&dir, &["--json", "wipe", "--yes"], ""));
    assert_eq!(
        stdout_json(&run(&dir, &["--json", "status"], ""))["configured"],
        false
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(leftovers.is_empty(), "wipe left {leftovers:?}");
}

#[test]
fn usage_errors_exit_2_and_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let e = error_json(&run(tmp.path(), &["--json", "frobnicate"], ""), 2);
    assert_eq!(e["kind"], "Usage");
    let e = error_json(&run(tmp.path(), &["--json", "setup", "--org", "x"], ""), 2);
    assert_eq!(e["kind"], "Usage");
    // A missing password on stdin is a usage error too, not a hang or a panic.
    let e = error_json(
        &run(
            tmp.path(),
            &args(&["setup", "--org", "x.example", "--user-mode", "oauth"]),
            "",
        ),
        2,
    );
    assert_eq!(e["kind"], "Usage");
    let o = run(tmp.path(), &["--help"], "");
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "setup",
        "sync",
        "query",
        "edit",
        "status",
        "change-password",
        "wipe",
        "serve",
        "demo",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}");
    }
}

#[test]
fn biometric_unlock_through_a_key_directory_beside_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    let keys = tmp.path().join("keys");
    let keys = keys.to_str().unwrap();
    let with_keys = |rest: &[&str]| -> Vec<String> {
        ["--json", "--password-stdin", "--key-dir", keys]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    let run_keys = |rest: &[&str], stdin: &str| {
        let owned = with_keys(rest);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        run(&dir, &refs, stdin)
    };
    let key_files = || {
        std::fs::read_dir(keys)
            .map(|d| d.map(|e| e.unwrap().path()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let setup = [
        "setup",
        "--org",
        "contoso.example.com",
        "--user-mode",
        "oauth",
    ];
    stdout_json(&run(&dir, &args(&setup), "password1\npassword1\n"));

    let e = error_json(&run_keys(&["enable-platform-unlock"], "password2\n"), 1);
    assert_eq!(e["kind"], "WrongPassword");
    assert!(key_files().is_empty());
    let e = error_json(&run(&dir, &args(&["enable-platform-unlock"]), "x\n"), 2);
    assert_eq!(e["kind"], "Usage");
    stdout_json(&run_keys(&["enable-platform-unlock"], "password1\n"));
    assert_eq!(key_files().len(), 1);

    // With the key store: unlocked without a password (and the failure above was reset).
    let s = stdout_json(&run_keys(&["status"], ""));
    assert_eq!(s["locked"], false);
    assert_eq!(s["platform_unlock_enabled"], true);
    assert_eq!(s["failed_attempts"], 0);
    assert_eq!(s["organization_url"], "https://contoso.example.com");
    // Data commands unlock the same way: before any sync the store has no schema (not Locked).
    let e = error_json(&run_keys(&["query", "account"], ""), 1);
    assert_eq!(e["kind"], "InvalidInput");
    // Without it: locked, and the password still works.
    let s = stdout_json(&run(&dir, &["--json", "status"], ""));
    assert_eq!(
        (s["locked"].clone(), s["platform_unlock_enabled"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    let s = stdout_json(&run(&dir, &args(&["status"]), "password1\n"));
    assert_eq!(s["locked"], false);

    // A password change re-wraps the password slot only.
    stdout_json(&run(
        &dir,
        &args(&["change-password"]),
        "password1\npassword3\npassword3\n",
    ));
    assert_eq!(stdout_json(&run_keys(&["status"], ""))["locked"], false);

    // The key vanished (biometrics re-enrolled): typed error, slot removed, password works.
    std::fs::remove_file(&key_files()[0]).unwrap();
    let e = error_json(&run_keys(&["status"], ""), 1);
    assert_eq!(e["kind"], "PlatformKeyInvalidated");
    let s = stdout_json(&run_keys(&["status"], "password3\n"));
    assert_eq!(s["platform_unlock_enabled"], false);
    assert_eq!(s["locked"], false);

    // Enabled again, then disabled: the key is deleted and the password is needed again.
    stdout_json(&run_keys(&["enable-platform-unlock"], "password3\n"));
    assert_eq!(key_files().len(), 1);
    stdout_json(&run_keys(&["disable-platform-unlock"], ""));
    assert!(key_files().is_empty());
    let s = stdout_json(&run_keys(&["status"], ""));
    assert_eq!(s["locked"], true);
    assert_eq!(s["platform_unlock_enabled"], false);
}
