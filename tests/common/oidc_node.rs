//! A real OpenID Connect provider (npm `oidc-provider`, tests/oidc/provider.mjs) on loopback,
//! and a walk through its development login and consent forms. The harness's tests include this
//! file too (`#[path]`), so paths start at the workspace root.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The provider's node process (killed on drop) and its issuer.
pub struct Node {
    child: Child,
    pub issuer: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workspace root, from the root crate or a member one level below it.
fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if here.join("tests/oidc/provider.mjs").exists() {
        here
    } else {
        here.parent().expect("a workspace member").to_path_buf()
    }
}

pub fn oidc_provider_dir() -> PathBuf {
    let dir = std::env::var("OIDC_PROVIDER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".tools/node_modules/oidc-provider"));
    assert!(
        dir.join("package.json").exists(),
        "oidc-provider is not installed at {} (run scripts/ensure-tools)",
        dir.display()
    );
    dir
}

pub fn start_provider(
    audience: &str,
    access_ttl: u32,
    tls: Option<(&PathBuf, &PathBuf)>,
    entra: bool,
) -> Node {
    let mut cmd = Command::new("node");
    cmd.arg(workspace_root().join("tests/oidc/provider.mjs"))
        .env("OIDC_PROVIDER_DIR", oidc_provider_dir())
        .env("AUDIENCE", audience)
        .env("ACCESS_TTL", access_ttl.to_string())
        .env("ENTRA", if entra { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some((cert, key)) = tls {
        cmd.env("TLS_CERT", cert).env("TLS_KEY", key);
    }
    let mut child = cmd.spawn().expect("node must be installed");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep reading: oidc-provider prints notices later (e.g. on its first device-flow page), and
    // a write to a closed pipe kills it with EPIPE.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("provider said {line:?}: {e}"));
    Node {
        child,
        issuer: v["issuer"].as_str().unwrap().to_string(),
    }
}

/// Walks oidc-provider's interaction pages from `start`: follows redirects, submits the login
/// form, then the consent form, until `done` holds for the next URL or a page has no form (the
/// device flow's success page); returns that URL.
pub async fn walk_interactions(
    http: &reqwest::Client,
    start: &str,
    email: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let join = |base: &str, location: &reqwest::header::HeaderValue| {
        url::Url::parse(base)
            .unwrap()
            .join(location.to_str().unwrap())
            .unwrap()
            .to_string()
    };
    let mut next = start.to_string();
    for _ in 0..12 {
        if done(&next) {
            return next;
        }
        let page = http.get(&next).send().await.unwrap();
        if let Some(location) = page.headers().get("location") {
            next = join(&next, location);
            continue;
        }
        let html = page.text().await.unwrap();
        let form: Vec<(&str, &str)> = if html.contains("name=\"login\"") {
            vec![
                ("prompt", "login"),
                ("login", email),
                ("password", "anything"),
            ]
        } else if html.contains("name=\"prompt\"") || html.contains("consent") {
            vec![("prompt", "consent")]
        } else {
            return next;
        };
        let answer = http.post(&next).form(&form).send().await.unwrap();
        let location = answer
            .headers()
            .get("location")
            .unwrap_or_else(|| panic!("no redirect from {next}"));
        next = join(&next, location);
    }
    panic!("the interactions did not finish");
}
