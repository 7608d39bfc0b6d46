//! Attachment transfer: upload (from `addAttachmentFromPath` through a Synchronize) and on-demand
//! download (`downloadAttachment`) of MB megabytes over loopback to the reference server (a
//! separate process), against a plain HTTP copy of the same bytes to the same server by a bare
//! client (upload: the plaintext file PUT in 8 MiB requests to an upload session, the server's
//! largest; download: one streamed GET into a plain file): no encryption, hashing or state. Also
//! the client's peak RSS above its idle RSS during each transfer. Faster of two rounds each.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use syncvault::SyncClient;

use crate::{Quiet, grace_token, options, reset_peak, signed_in_as, start_server, status_kib};

fn random_file(path: &std::path::Path, bytes: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len());
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
    hash.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The plaintext file to a fresh upload session, 8 MiB per request (not finished, so the
/// client's upload of the same content still has to send it).
async fn plain_upload(url: &str, token: &str, path: &std::path::Path, sha: &str, size: u64) -> f64 {
    let http = reqwest::Client::new();
    let api = format!("{url}/api/sync/v2/attachments/uploads");
    let started = Instant::now();
    let session: Value = http
        .post(&api)
        .bearer_auth(token)
        .json(&json!({"sha256": sha, "size": size}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["upload_id"].as_str().unwrap();
    let mut file = std::fs::File::open(path).unwrap();
    let mut offset = 0u64;
    loop {
        let mut buf = vec![0u8; 8 << 20];
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        buf.truncate(n);
        let r = http
            .put(format!("{api}/{id}?offset={offset}"))
            .bearer_auth(token)
            .body(buf)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        offset += n as u64;
    }
    started.elapsed().as_secs_f64()
}

/// One streamed GET of the content into a plain file.
async fn plain_download(url: &str, token: &str, id: &str, out: &std::path::Path) -> f64 {
    let started = Instant::now();
    let mut r = reqwest::Client::new()
        .get(format!("{url}/api/sync/v2/attachments/{id}/content"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let mut file = std::fs::File::create(out).unwrap();
    while let Some(chunk) = r.chunk().await.unwrap() {
        file.write_all(&chunk).unwrap();
    }
    file.sync_all().unwrap();
    started.elapsed().as_secs_f64()
}

/// Writes every dirty page out before a timed transfer, so the one timed does not pay for the
/// write-back of the files written before it (the file generated, the sealed copy the client
/// just made, the other side's copy): on this machine's ext4 each of the server's per-chunk
/// `fsync`s otherwise waits for hundreds of megabytes written earlier, whichever transfer runs.
fn settle() {
    std::process::Command::new("sync").status().unwrap();
}

/// Runs `work`, returning its seconds and the peak RSS above the RSS before it.
async fn measured<F: std::future::Future<Output = ()>>(work: F) -> (f64, u64) {
    reset_peak();
    let idle = status_kib("VmRSS:") * 1024;
    let started = Instant::now();
    work.await;
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:") * 1024;
    (seconds, peak.saturating_sub(idle))
}

/// MB/s of sealing `bytes` in memory into a file under `cipher`, and of SHA-256 over them: where
/// a transfer's own CPU goes.
fn local_rates(bytes: usize) -> Value {
    use syncvault::store::sealed_file::{FileCipher, FileKey, SealedWriter};
    let dir = tempfile::tempdir().unwrap();
    let data = vec![0x5au8; bytes];
    let mb = bytes as f64 / (1 << 20) as f64;
    let mut out = serde_json::Map::new();
    for cipher in FileCipher::ALL {
        let started = Instant::now();
        let path = dir.path().join(format!("{cipher:?}"));
        let mut w = SealedWriter::create_with(&path, &FileKey::generate(), cipher).unwrap();
        for piece in data.chunks(1 << 20) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap();
        out.insert(
            format!("seal_{cipher:?}_mb_per_second"),
            json!(mb / started.elapsed().as_secs_f64()),
        );
    }
    let started = Instant::now();
    let _ = ring::digest::digest(&ring::digest::SHA256, &data);
    out.insert(
        "sha256_mb_per_second".into(),
        json!(mb / started.elapsed().as_secs_f64()),
    );
    Value::Object(out)
}

pub async fn run(bin: &str, mb: usize) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = start_server(bin, 100, tmp.path()).await;
    let bytes = mb << 20;
    let one: Arc<SyncClient> = signed_in_as(
        &url,
        &tmp.path().join("one"),
        options(),
        "ada@contoso.example",
    )
    .await;
    let two: Arc<SyncClient> = signed_in_as(
        &url,
        &tmp.path().join("two"),
        options(),
        "ada@contoso.example",
    )
    .await;
    Arc::clone(&one)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();
    Arc::clone(&two)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();
    let grace = grace_token(&url).await;
    let (mut best_up, mut best_plain_up, mut best_down, mut best_plain_down) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let (mut rss_up, mut rss_down, mut add_seconds) = (0u64, 0u64, f64::MAX);
    for round in 0..2u64 {
        let file = tmp.path().join(format!("file{round}.bin"));
        let sha = random_file(&file, bytes, 0x9E37_79B9 + round);
        // The plain copy goes first in round 0 and last in round 1, so neither always runs on
        // a page cache the other filled (each timed transfer starts after `settle`).
        if round == 0 {
            settle();
            best_plain_up =
                best_plain_up.min(plain_upload(&url, &grace, &file, &sha, bytes as u64).await);
        }
        let started = Instant::now();
        let a = one
            .add_attachment_from_path(
                "account".into(),
                "a000000001".into(),
                format!("file{round}.bin"),
                "application/octet-stream".into(),
                file.display().to_string(),
            )
            .await
            .unwrap();
        add_seconds = add_seconds.min(started.elapsed().as_secs_f64());
        settle();
        let (up, rss) = measured(async {
            let r = Arc::clone(&one)
                .synchronize(Arc::new(Quiet), None)
                .await
                .unwrap();
            assert!(r.bytes_uploaded >= bytes as u64);
        })
        .await;
        best_up = best_up.min(up);
        rss_up = rss_up.max(rss);
        if round == 1 {
            // Grace did not upload this content: the server takes all of it again.
            settle();
            best_plain_up =
                best_plain_up.min(plain_upload(&url, &grace, &file, &sha, bytes as u64).await);
        }
        Arc::clone(&two)
            .synchronize(Arc::new(Quiet), None)
            .await
            .unwrap();
        let plain_out = tmp.path().join(format!("plain{round}.bin"));
        settle();
        best_plain_down =
            best_plain_down.min(plain_download(&url, &grace, &a.id, &plain_out).await);
        std::fs::remove_file(&plain_out).unwrap();
        settle();
        let (down, rss) = measured(async {
            let r = Arc::clone(&two)
                .download_attachment(a.id.clone(), Arc::new(Quiet), None)
                .await
                .unwrap();
            assert_eq!(r.bytes_downloaded, bytes as u64);
        })
        .await;
        best_down = best_down.min(down);
        rss_down = rss_down.max(rss);
        let back = two
            .read_attachment(a.id.clone(), (bytes - 10) as u64, 10)
            .await
            .unwrap();
        assert_eq!(back.len(), 10);
        std::fs::remove_file(&file).unwrap();
    }
    let mbps = |s: f64| bytes as f64 / (1 << 20) as f64 / s;
    json!({
        "megabytes": mb,
        "add_from_path_seconds": add_seconds,
        "upload_seconds": best_up,
        "plain_upload_seconds": best_plain_up,
        "upload_ratio": best_up / best_plain_up,
        "upload_mb_per_second": mbps(best_up),
        "download_seconds": best_down,
        "plain_download_seconds": best_plain_down,
        "download_ratio": best_down / best_plain_down,
        "download_mb_per_second": mbps(best_down),
        "upload_peak_rss_above_idle_bytes": rss_up,
        "download_peak_rss_above_idle_bytes": rss_down,
        "local": local_rates(bytes),
    })
}
