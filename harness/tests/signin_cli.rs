//! The harness's sign-in paths as a script drives them (docs/harness.md): `serve` prints its org URL,
//! `sync --json` prints the authorization URL (loopback browser) or the device code, and finishes
//! once the person signs in, then synchronizes and prints the report.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::BIN;
use serde_json::Value;
use syncvault_server::idp::DEV_PASSWORD;
use syncvault_testkit::devlogin;

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve() -> Server {
    let mut child = Command::new(BIN)
        .args(["--json", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    Server(child, v["org_url"].as_str().unwrap().to_string())
}

fn setup(dir: &std::path::Path, org: &str) {
    let args = [
        "--json",
        "--password-stdin",
        "setup",
        "--org",
        org,
        "--user-mode",
        "oauth",
    ];
    let output = common::spawn(dir, &args, b"password1\npassword1\n")
        .wait_with_output()
        .unwrap();
    assert!(output.status.success());
}

/// Starts `sync` with `args`; returns the child and a reader of its stdout lines.
fn sync(dir: &std::path::Path, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let all: Vec<&str> = ["--json", "--password-stdin", "sync"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let mut child = common::spawn(dir, &all, b"password1\n");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// The process signs in, synchronizes the server's 1000 records and prints the §8 report.
fn ends_signed_in_and_synced(child: Child, out: BufReader<std::process::ChildStdout>) {
    let lines: Vec<String> = out.lines().map(Result::unwrap).collect();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(report["records_downloaded"], 1000);
    for key in [
        "records_uploaded",
        "conflicts",
        "seconds",
        "records_per_second",
        "peak_rss_bytes",
    ] {
        assert!(report.get(key).is_some(), "{key} in {report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_login_device_code_and_loopback_browser() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();

    let dir = tmp.path().join("dev");
    setup(&dir, &server.1);
    let (child, out) = sync(&dir, &["--dev-login", "ada@contoso.example"]);
    ends_signed_in_and_synced(child, out);

    let dir = tmp.path().join("device");
    setup(&dir, &server.1);
    let (child, mut out) = sync(&dir, &["--device-code"]);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let code = &v["device_code"];
    assert!(code["expires_in"].as_u64().unwrap() > 0);
    devlogin::approve_device(
        code["verification_uri"].as_str().unwrap(),
        code["user_code"].as_str().unwrap(),
        "grace@contoso.example",
        DEV_PASSWORD,
    )
    .await
    .unwrap();
    ends_signed_in_and_synced(child, out);

    let dir = tmp.path().join("browser");
    setup(&dir, &server.1);
    let (child, mut out) = sync(&dir, &[]);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let url = v["authorization_url"].as_str().unwrap();
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    // The browser: sign in, then follow the redirect to the harness's loopback listener.
    let callback = devlogin::login(url, "ada@contoso.example", DEV_PASSWORD, false)
        .await
        .unwrap();
    let page = reqwest::get(&callback).await.unwrap();
    assert!(page.status().is_success());
    ends_signed_in_and_synced(child, out);

    // Alan is in the provider's directory but nobody imported or assigned him: he signs in at
    // the provider, and the organization refuses him by name.
    let dir = tmp.path().join("stranger");
    setup(&dir, &server.1);
    let (child, _out) = sync(&dir, &["--dev-login", "alan@contoso.example"]);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(error["error"]["kind"], "NotAMember", "{stderr}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ask your administrator to import or assign you")
    );
}

/// POSTs a JSON body to the reference server's development API.
async fn dev_post(org: &str, path: &str, body: &str) -> Value {
    let r = devlogin::client()
        .unwrap()
        .post(format!("{org}/api/dev/{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

async fn code_grants(org: &str) -> u64 {
    let r = devlogin::client()
        .unwrap()
        .get(format!("{org}/api/dev/stats"))
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    v["code_grants"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_that_dies_mid_sync_brings_the_login_page_back() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    setup(&dir, &server.1);
    // Three pages of 100 come down, then every session ends: the fourth pull is refused, the
    // refresh token is dead, and the core brings the (dev) login page back once.
    dev_post(&server.1, "end-sessions", r#"{"after_pulls": 3}"#).await;
    let before = code_grants(&server.1).await;
    let (child, out) = sync(
        &dir,
        &["--dev-login", "ada@contoso.example", "--page-size", "100"],
    );
    let lines: Vec<String> = out.lines().map(Result::unwrap).collect();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(code_grants(&server.1).await, before + 2, "signed in twice");
    let report: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    // The second run resumed after the three pages the first one committed.
    assert_eq!(report["records_downloaded"], 700, "{report}");

    // Later, with the provider's sessions ended again, `sync` shows the login page again instead
    // of failing with SignInRequired forever; `sign-out` forgets the tokens.
    dev_post(&server.1, "end-sessions", r#"{"after_pulls": 0}"#).await;
    let (child, out) = sync(&dir, &["--dev-login", "ada@contoso.example"]);
    drop(out);
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(code_grants(&server.1).await, before + 3);
    let signed_out = common::spawn(
        &dir,
        &["--json", "--password-stdin", "sign-out"],
        b"password1\n",
    )
    .wait_with_output()
    .unwrap();
    assert!(signed_out.status.success());
    let (child, out) = sync(&dir, &["--dev-login", "ada@contoso.example"]);
    drop(out);
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(
        code_grants(&server.1).await,
        before + 4,
        "signed in after sign-out"
    );
}
