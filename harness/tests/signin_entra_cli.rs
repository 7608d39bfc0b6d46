//! The harness against an external provider that names people as Microsoft Entra ID does (npm
//! `oidc-provider` in its Entra mode, tests/oidc/provider.mjs: `tid`, `oid`, no `email` in the
//! access tokens, a Graph-shaped directory): `serve --issuer --audience --directory`, a user
//! imported with `syncvault admin` before Connect, `sync` through the loopback browser as that
//! user (synchronized), then as a directory user nobody imported (`NotAMember`, nobody created).

mod common;
#[path = "../../tests/common/oidc_node.rs"]
mod oidc_node;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

use common::BIN;
use serde_json::{Value, json};

const AUDIENCE: &str = "api://contoso-sync";
const ADMIN_PASSWORD: &[u8] = b"admin password 1\n";

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(issuer: &str, tmp: &std::path::Path) -> Server {
    let directory = tmp.join("directory.json");
    std::fs::write(
        &directory,
        json!({"users_url": format!("{issuer}/v1.0/users"), "token_url": format!("{issuer}/graph/token"),
               "client_id": "graph-reader", "client_secret": "graph-secret"})
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--json",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--records",
            "200",
        ])
        .args(["--issuer", issuer, "--audience", AUDIENCE, "--directory"])
        .arg(&directory)
        .arg("--data")
        .arg(tmp.join("org"))
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
        .write_all(ADMIN_PASSWORD)
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    Server(child, v["org_url"].as_str().unwrap().to_string())
}

/// `syncvault admin` with the administrator's password (before Connect).
fn admin(org: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["--json", "--password-stdin", "admin", "--org", org];
    all.extend_from_slice(args);
    let o = common::spawn(dir.path(), &all, ADMIN_PASSWORD)
        .wait_with_output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Sets up a device and runs `sync`, signing in at the provider's pages as `login` when the
/// harness prints the authorization URL; returns the finished process's output.
async fn sync_as(dir: &std::path::Path, org: &str, login: &str) -> Output {
    let setup = common::spawn(
        dir,
        &[
            "--json",
            "--password-stdin",
            "setup",
            "--org",
            org,
            "--user-mode",
            "oauth",
        ],
        b"password1\npassword1\n",
    )
    .wait_with_output()
    .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let mut child = common::spawn(dir, &["--json", "--password-stdin", "sync"], b"password1\n");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = serde_json::from_str::<Value>(&line).unwrap()["authorization_url"]
        .as_str()
        .unwrap()
        .to_string();
    // The person's browser: the provider's forms, then the redirect to the harness's listener.
    let _ = syncvault_testkit::devlogin::client(); // installs the process's TLS provider
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let callback = oidc_node::walk_interactions(&browser, &url, login, |u| {
        u.starts_with("http://127.0.0.1:") && u.contains("/callback?")
    })
    .await;
    browser.get(&callback).send().await.unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let mut output = child.wait_with_output().unwrap();
    output.stdout = rest.into_bytes();
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_through_the_harness_signs_in_only_as_an_imported_user() {
    let node = oidc_node::start_provider(AUDIENCE, 600, None, true);
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(&node.issuer, tmp.path());
    let org = server.1.as_str();

    let plan = admin(
        org,
        &[
            "import-users",
            "--email",
            "ada@contoso.example",
            "--role",
            "Salesperson",
        ],
    );
    assert_eq!(plan[0]["action"], "associate", "{plan}");

    let ada = sync_as(&tmp.path().join("ada"), org, "ada@contoso.example").await;
    assert!(
        ada.status.success(),
        "{}",
        String::from_utf8_lossy(&ada.stderr)
    );
    let stdout = String::from_utf8_lossy(&ada.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(
        report["records_downloaded"].as_u64().unwrap() > 0,
        "{report}"
    );

    let alan = sync_as(&tmp.path().join("alan"), org, "alan@contoso.example").await;
    assert_eq!(alan.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&alan.stderr);
    let error: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(error["error"]["kind"], "NotAMember", "{stderr}");
    let users = admin(org, &["users", "--search", "alan"]);
    assert_eq!(users, json!([]), "nobody was created for Alan");
}
