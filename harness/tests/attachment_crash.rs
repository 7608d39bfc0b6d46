//! kill -9 of the harness in the middle of a 50 MB attachment upload and, on a second device, in
//! the middle of its download, several times each: every run continues where the last one
//! stopped (the server receives each byte once; each download after the first starts past 0),
//! the server holds one copy with the right SHA-256, and the second device's copy reads back
//! byte for byte.
//!
//! Size: SYNCVAULT_CRASH_ATTACHMENT_MB (default 50).

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use syncvault_server::{BoundServer, RunningServer, ServerConfig};
use syncvault_testkit::rng::Rng;

const PASSWORD: &[u8] = b"crash test password\n";
const SYNC: &[&str] = &["sync", "--dev-login", "ada@contoso.example"];

fn harness(dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    let all: Vec<&str> = ["--json", "--password-stdin"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    common::spawn(dir, &all, PASSWORD)
}

fn run(dir: &std::path::Path, args: &[&str]) -> Value {
    let output = harness(dir, args).wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "syncvault {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn device(srv: &RunningServer, dir: &std::path::Path) {
    let pw2 = [PASSWORD, PASSWORD].concat();
    let output = common::spawn(
        dir,
        &[
            "--json",
            "--password-stdin",
            "setup",
            "--org",
            &srv.url,
            "--user-mode",
            "oauth",
        ],
        &pw2,
    )
    .wait_with_output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    run(dir, SYNC);
}

/// Starts `args` and kills it (SIGKILL) once `counter` moved `step` bytes on and before it
/// reaches `total`; returns whether it was killed (false: it finished first).
async fn kill_midway(
    dir: &std::path::Path,
    args: &[&str],
    counter: impl Fn() -> u64,
    step: u64,
    total: u64,
) -> bool {
    let from = counter();
    let mut child = harness(dir, args);
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = counter();
        if now >= from + step && now < total {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_upload_and_mid_download_resumes_without_resending() {
    let mb: usize = std::env::var("SYNCVAULT_CRASH_ATTACHMENT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let srv = BoundServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn(ServerConfig {
            records: 100,
            ..Default::default()
        })
        .unwrap();
    // Large files download on demand only (the second device fetches it with get-attachment).
    srv.org
        .data
        .set_attachment_policy(&syncvault_server::sync::blobs::AttachmentPolicy {
            auto_download_max_bytes: 1 << 20,
            ..Default::default()
        })
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    device(&srv, &one);
    device(&srv, &two);

    let mut rng = Rng(0x5eed_1234_5678_9abc);
    let mut data = vec![0u8; mb << 20];
    for chunk in data.chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    let file = tmp.path().join("video.bin");
    std::fs::write(&file, &data).unwrap();
    let size = data.len() as u64;
    let attached = run(
        &one,
        &["attach", "account", "a000000001", file.to_str().unwrap()],
    );
    let id = attached["id"].as_str().unwrap().to_string();
    assert_eq!(attached["state"], "local_only");

    // Upload: killed whenever another chunk has landed, until it finishes.
    let received = || srv.org.blobs.bytes_received.load(Ordering::Relaxed);
    let mut upload_kills = 0;
    while upload_kills < 8 && kill_midway(&one, SYNC, received, size / 6, size).await {
        upload_kills += 1;
    }
    let report = run(&one, SYNC);
    assert!(upload_kills >= 2, "{upload_kills} kills during the upload");
    assert_eq!(
        received(),
        size,
        "every byte reached the server exactly once"
    );
    assert!(
        report["bytes_uploaded"].as_u64().unwrap() < size,
        "{report}"
    );
    assert_eq!(srv.org.blobs.contents(), vec![sha256_hex(&data)]);
    let listed = run(&one, &["attachments", "account", "a000000001"]);
    assert_eq!(listed[0]["state"], "synced", "{listed}");

    // Download on the second device: killed mid-way the same way, then finished.
    run(&two, SYNC);
    let listed = run(&two, &["attachments", "account", "a000000001"]);
    assert_eq!(listed[0]["state"], "not_downloaded", "{listed}");
    let out = tmp.path().join("copy.bin");
    let get = [
        "get-attachment",
        id.as_str(),
        "--out",
        out.to_str().unwrap(),
    ];
    let sent = || srv.org.blobs.bytes_sent.load(Ordering::Relaxed);
    let mut download_kills = 0;
    while download_kills < 8 && kill_midway(&two, &get, sent, size / 6, size).await {
        download_kills += 1;
    }
    let got = run(&two, &get);
    assert!(
        download_kills >= 2,
        "{download_kills} kills during the download"
    );
    assert!(got["bytes_downloaded"].as_u64().unwrap() < size, "{got}");
    let starts = srv.org.blobs.download_starts.lock().unwrap().clone();
    assert_eq!(starts[0], 0);
    assert!(
        starts.windows(2).all(|w| w[1] >= w[0]) && starts[1..].iter().all(|s| *s > 0),
        "each download continues past the last: {starts:?}"
    );
    // What went over the wire beyond the file: in flight when a run was killed.
    let extra = sent() - size;
    assert!(
        extra <= download_kills as u64 * (16 << 20),
        "{extra} bytes sent again over {download_kills} kills"
    );
    assert!(std::fs::read(&out).unwrap() == data, "the copy differs");
    eprintln!(
        "{mb} MB: {upload_kills} upload kills (received {} bytes), {download_kills} download kills \
         (sent {} bytes, starts {starts:?})",
        received(),
        sent()
    );
}
