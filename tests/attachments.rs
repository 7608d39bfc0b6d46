//! Attachments against the reference server over real HTTP (docs/protocol.md, "Attachments"):
//! a photo taken offline on a new record reaches a second device; no plaintext byte of it is on
//! disk anywhere under either vault; tampered files are `Corrupted`, never wrong bytes; the
//! organization's size limit and the device quota decide what downloads and what is evicted;
//! and attachment traffic converges under server faults with one copy of each content.

mod common;

use std::sync::Arc;

use common::org::*;
use syncvault::{AttachmentState, ClientOptions, ConflictMode, SyncClient, SyncError};
use syncvault_server::faults::FaultSpec;
use syncvault_server::sync::blobs::AttachmentPolicy;
use syncvault_server::{RunningServer, ServerConfig};

const MARKER: &[u8] = b"SYNCVAULT-PLAINTEXT-MARKER";

/// `len` bytes of the marker pattern (each repeat numbered, so chunks differ).
fn marked(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(MARKER);
        out.extend_from_slice(format!("-{i:08}|").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn org() -> RunningServer {
    server(ServerConfig {
        records: 200,
        ..Default::default()
    })
    .await
}

async fn device(
    dir: &tempfile::TempDir,
    srv: &RunningServer,
    tweak: impl FnOnce(&mut ClientOptions),
) -> Arc<SyncClient> {
    let mut o = options(ConflictMode::MergeFields, 100);
    tweak(&mut o);
    signed_in_client(dir.path(), &srv.url, o, "ada@contoso.example").await
}

/// The id of the first account on the device.
async fn first_account(c: &SyncClient) -> String {
    c.query_records("account".into(), Default::default())
        .await
        .unwrap()[0]
        .id
        .clone()
}

async fn read_all(c: &SyncClient, id: &str) -> Result<Vec<u8>, SyncError> {
    let mut out = vec![];
    loop {
        let piece = c
            .read_attachment(id.into(), out.len() as u64, 1 << 20)
            .await?;
        if piece.is_empty() {
            return Ok(out);
        }
        out.extend_from_slice(&piece);
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_no_marker(dir: &std::path::Path) {
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER),
            "plaintext in {}",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_taken_offline_reaches_another_device_and_never_touches_disk_in_plaintext() {
    let srv = org().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = device(&d1, &srv, |_| {}).await;
    let two = device(&d2, &srv, |_| {}).await;
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();

    // Offline: a new work record and its photo (from a file the camera wrote, outside the vault).
    let account = one
        .create_record(
            "account".into(),
            fields(&[("name", text("Broken pump site"))]),
        )
        .await
        .unwrap();
    let camera = tempfile::tempdir().unwrap();
    let photo_path = camera.path().join("pump.jpg");
    let photo = marked(3 * 65_536 + 1234);
    std::fs::write(&photo_path, &photo).unwrap();
    let a = one
        .add_attachment_from_path(
            "account".into(),
            account.clone(),
            "pump.jpg".into(),
            "image/jpeg".into(),
            photo_path.display().to_string(),
        )
        .await
        .unwrap();
    assert_eq!(a.state, AttachmentState::LocalOnly);
    assert_eq!(
        (a.size, a.sha256.as_str()),
        (photo.len() as u64, sha256_hex(&photo).as_str())
    );
    assert_eq!(read_all(&one, &a.id).await.unwrap(), photo);
    let signature = one
        .add_attachment(
            "account".into(),
            account.clone(),
            "signature.png".into(),
            "image/png".into(),
            marked(500),
        )
        .await
        .unwrap();
    assert_no_marker(d1.path());

    // The record and its attachments go up in that order; the content once.
    let report = sync(&one).await.unwrap();
    assert!(
        report.bytes_uploaded >= photo.len() as u64 + 500,
        "{report:?}"
    );
    assert_eq!(
        one.attachment(a.id.clone()).await.unwrap().state,
        AttachmentState::Synced
    );
    assert_eq!(srv.org.blobs.contents(), {
        let mut v = vec![sha256_hex(&photo), sha256_hex(&marked(500))];
        v.sort();
        v
    });
    // The server holds the attachment records with the record's owner.
    let server_a = srv.org.data.get("attachment", &a.id).unwrap();
    let server_account = srv.org.data.get("account", &account).unwrap();
    assert_eq!(server_a.owner, server_account.owner);

    // The second device gets both automatically (small) and reads them back byte for byte.
    let report = sync(&two).await.unwrap();
    assert!(report.bytes_downloaded >= photo.len() as u64, "{report:?}");
    let listed = two
        .attachments("account".into(), account.clone())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["pump.jpg", "signature.png"]
    );
    assert!(listed.iter().all(|x| x.state == AttachmentState::Synced));
    assert_eq!(read_all(&two, &a.id).await.unwrap(), photo);
    let ranged = two.read_attachment(a.id.clone(), 65_530, 20).await.unwrap();
    assert_eq!(ranged, photo[65_530..65_550]);
    // Exported on purpose: the one plaintext copy, where the app asked.
    let export = camera.path().join("export.jpg");
    two.export_attachment(a.id.clone(), export.display().to_string())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&export).unwrap(), photo);

    // Replaced on device two, deleted on device one: both devices follow.
    let retaken = marked(70_000);
    two.replace_attachment(
        a.id.clone(),
        "pump-2.jpg".into(),
        "image/jpeg".into(),
        retaken.clone(),
    )
    .await
    .unwrap();
    sync(&two).await.unwrap();
    sync(&one).await.unwrap();
    assert_eq!(read_all(&one, &a.id).await.unwrap(), retaken);
    one.delete_attachment(signature.id.clone()).await.unwrap();
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();
    let left = two
        .attachments("account".into(), account.clone())
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["pump-2.jpg"]
    );
    // Each device holds one sealed file now (the replaced and deleted ones are gone).
    for d in [&d1, &d2] {
        assert_eq!(files_under(&d.path().join("attachments")).len(), 1);
    }
    assert_no_marker(d1.path());
    assert_no_marker(d2.path());

    // Deleting the record deletes its attachments everywhere.
    one.delete_record("account".into(), account.clone())
        .await
        .unwrap();
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();
    assert!(
        two.attachments("account".into(), account)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(files_under(&d2.path().join("attachments")).is_empty());

    // Wiping removes the files with the key.
    one.wipe().await.unwrap();
    assert!(!d1.path().join("attachments").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_attachment_files_are_corrupted_never_wrong_bytes() {
    let srv = org().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = device(&d1, &srv, |_| {}).await;
    let other = device(&d2, &srv, |_| {}).await;
    sync(&one).await.unwrap();
    sync(&other).await.unwrap();
    let account = first_account(&one).await;
    let data = marked(4 * 65_536 + 10);
    let a = one
        .add_attachment(
            "account".into(),
            account.clone(),
            "a.bin".into(),
            "application/octet-stream".into(),
            data.clone(),
        )
        .await
        .unwrap();
    let b = other
        .add_attachment(
            "account".into(),
            account.clone(),
            "b.bin".into(),
            "application/octet-stream".into(),
            data.clone(),
        )
        .await
        .unwrap();
    let only_file =
        |d: &tempfile::TempDir| files_under(&d.path().join("attachments")).pop().unwrap();
    let path = only_file(&d1);
    let good = std::fs::read(&path).unwrap();
    let sealed = 65_536 + 16;
    let mut swapped = good.clone();
    swapped[32..32 + sealed].copy_from_slice(&good[32 + sealed..32 + 2 * sealed]);
    swapped[32 + sealed..32 + 2 * sealed].copy_from_slice(&good[32..32 + sealed]);
    let mut flipped = good.clone();
    flipped[32 + 2 * sealed + 99] ^= 0x20;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped bit", flipped),
        ("swapped chunks", swapped),
        ("truncated", good[..good.len() - 1000].to_vec()),
        (
            "another vault's file",
            std::fs::read(only_file(&d2)).unwrap(),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(&path, bytes).unwrap();
        match read_all(&one, &a.id).await {
            Err(SyncError::Corrupted { .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    // Exporting a damaged file (a bit flipped in the header, in each chunk, in the last one)
    // fails and leaves nothing at the target: no partial plaintext, no temporary file, and a
    // file already there untouched.
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("export.bin");
    let kept = out_dir.path().join("kept.bin");
    std::fs::write(&kept, b"the app's own file").unwrap();
    let chunks = good.len().div_ceil(sealed);
    let mut offsets = vec![5];
    offsets.extend((0..chunks).map(|k| 32 + k * sealed + 7));
    offsets.push(good.len() - 3);
    for at in offsets {
        let mut damaged = good.clone();
        damaged[at] ^= 0x01;
        std::fs::write(&path, &damaged).unwrap();
        for out in [&target, &kept] {
            match one
                .export_attachment(a.id.clone(), out.display().to_string())
                .await
            {
                Err(SyncError::Corrupted { .. }) => {}
                other => panic!("byte {at}: {other:?}"),
            }
        }
        assert!(!target.exists(), "byte {at}: partial output");
        assert_eq!(std::fs::read(&kept).unwrap(), b"the app's own file");
        assert_eq!(
            std::fs::read_dir(out_dir.path()).unwrap().count(),
            1,
            "byte {at}"
        );
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(read_all(&one, &a.id).await.unwrap(), data);
    one.export_attachment(a.id.clone(), target.display().to_string())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), data);
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 2);
    let _ = b;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_size_limit_and_the_quota_decide_what_stays_on_the_device() {
    let srv = org().await;
    let policy = AttachmentPolicy {
        auto_download_max_bytes: 100_000,
        ..Default::default()
    };
    srv.org.data.set_attachment_policy(&policy).unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = device(&d1, &srv, |_| {}).await;
    // Device two keeps at most 440 kB of content.
    let two = device(&d2, &srv, |o| o.attachment_quota_bytes = Some(440_000)).await;
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();
    let accounts = one
        .query_records("account".into(), Default::default())
        .await
        .unwrap();
    let add = |c: Arc<SyncClient>, account: String, name: &'static str, len: usize| async move {
        c.add_attachment(
            "account".into(),
            account,
            name.into(),
            "image/jpeg".into(),
            marked(len),
        )
        .await
        .unwrap()
    };
    let large = add(
        Arc::clone(&one),
        accounts[0].id.clone(),
        "large.jpg",
        200_000,
    )
    .await;
    let mut small = vec![];
    for (k, name) in ["s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg"]
        .into_iter()
        .enumerate()
    {
        small.push(
            add(
                Arc::clone(&one),
                accounts[k + 1].id.clone(),
                name,
                90_000 + k,
            )
            .await,
        );
    }
    sync(&one).await.unwrap();

    // Device two's own photo cannot be uploaded (the organization takes 80 kB at most for now):
    // its content stays unsent, and its record is a sync error the person sees.
    srv.org
        .data
        .set_attachment_policy(&AttachmentPolicy {
            max_upload_bytes: 80_000,
            ..policy.clone()
        })
        .unwrap();
    let mine = add(Arc::clone(&two), accounts[9].id.clone(), "mine.jpg", 85_555).await;
    let report = sync(&two).await.unwrap();
    assert_eq!(
        report.rejected,
        1,
        "{report:?} {:?}",
        two.attachment(mine.id.clone()).await
    );
    let errors = two.sync_errors().await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].code,
        syncvault::RejectionCode::AttachmentContentMissing
    );
    let state = |id: &str| {
        let (two, id) = (Arc::clone(&two), id.to_string());
        async move { two.attachment(id).await.unwrap().state }
    };
    use AttachmentState::{LocalOnly, NotDownloaded, Synced};

    // Over the size limit: not downloaded, on demand only.
    assert_eq!(state(&large.id).await, NotDownloaded);
    assert!(matches!(
        read_all(&two, &large.id).await,
        Err(SyncError::NotDownloaded)
    ));
    // Automatic downloads take what fits the quota beside the unsent photo (90 + 3 x 90 kB;
    // a fourth would pass 440 kB).
    let mut synced = vec![];
    for s in &small {
        match state(&s.id).await {
            Synced => synced.push(s.id.clone()),
            other => assert_eq!(other, NotDownloaded),
        }
    }
    assert_eq!(synced.len(), 3);
    assert_eq!(state(&mine.id).await, LocalOnly);

    // The last of them is looked at; then the large file on demand, with progress in bytes.
    let looked_at = synced[2].clone();
    read_all(&two, &looked_at).await.unwrap();
    let progress = Arc::new(Progress::default());
    let report = Arc::clone(&two)
        .download_attachment(large.id.clone(), progress.clone(), None)
        .await
        .unwrap();
    assert_eq!(report.bytes_downloaded, 200_000);
    let bytes: Vec<u64> = progress
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.bytes)
        .collect();
    assert!(
        bytes.len() > 1 && bytes.windows(2).all(|w| w[0] <= w[1]),
        "{bytes:?}"
    );
    assert_eq!(read_all(&two, &large.id).await.unwrap(), marked(200_000));

    // A download cancelled in the middle keeps what arrived and continues from there (uploads
    // are allowed again; the refused photo stays a sync error with its content kept).
    srv.org.data.set_attachment_policy(&policy).unwrap();
    let big = add(
        Arc::clone(&one),
        accounts[5].id.clone(),
        "big.bin",
        3_000_000,
    )
    .await;
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();
    let cancel = syncvault::CancelHandle::new();
    let stop = Arc::clone(&cancel);
    let cancelling = Arc::new(Progress {
        hook: Some(Box::new(move |p| {
            if p.bytes >= 1 << 20 {
                stop.cancel();
            }
        })),
        ..Default::default()
    });
    let cancelled = Arc::clone(&two)
        .download_attachment(big.id.clone(), cancelling, Some(cancel))
        .await;
    assert!(
        matches!(cancelled, Err(SyncError::Cancelled)),
        "{cancelled:?}"
    );
    assert_eq!(state(&big.id).await, AttachmentState::Downloading);
    let report = Arc::clone(&two)
        .download_attachment(big.id.clone(), Arc::new(Progress::default()), None)
        .await
        .unwrap();
    assert!(report.bytes_downloaded < 3_000_000, "{report:?}");
    assert_eq!(read_all(&two, &big.id).await.unwrap(), marked(3_000_000));
    let starts = srv.org.blobs.download_starts.lock().unwrap().clone();
    assert!(*starts.last().unwrap() > 0, "{starts:?}");
    // The large and the big file are the two read last; make room for the check below.
    two.delete_attachment(big.id.clone()).await.unwrap();
    sync(&two).await.unwrap();

    // 560 kB now: the next Synchronize evicts down to 440 kB least recently used first (the
    // two not looked at), keeps the one read and the large file, never the unsent photo, and
    // downloads nothing that would not fit.
    sync(&two).await.unwrap();
    for s in &small {
        let want = if s.id == looked_at {
            Synced
        } else {
            NotDownloaded
        };
        assert_eq!(state(&s.id).await, want, "{}", s.name);
    }
    assert_eq!(state(&large.id).await, Synced);
    // The refused photo: its content went up once uploads were allowed again (`Synced` is the
    // content's state), but its record is still the person's sync error, so the content stays.
    assert_eq!(state(&mine.id).await, Synced);
    assert_eq!(two.sync_errors().await.unwrap().len(), 1);
    assert_eq!(read_all(&two, &mine.id).await.unwrap(), marked(85_555));
}

#[tokio::test(flavor = "multi_thread")]
async fn attachment_traffic_converges_under_server_faults_with_one_copy_each() {
    let srv = org().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fast = |o: &mut ClientOptions| o.min_transfer_bytes_per_second = Some(0);
    let one = device(&d1, &srv, fast).await;
    let two = device(&d2, &srv, fast).await;
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();
    let accounts = one
        .query_records("account".into(), Default::default())
        .await
        .unwrap();
    let mut added = vec![];
    for (k, account) in accounts.iter().take(6).enumerate() {
        let data = marked(1_000_000 + k * 77_777);
        let a = one
            .add_attachment(
                "account".into(),
                account.id.clone(),
                format!("f{k}.bin"),
                "application/octet-stream".into(),
                data.clone(),
            )
            .await
            .unwrap();
        added.push((a.id, data));
    }
    srv.org.faults.set(FaultSpec::parse("all:0.2").unwrap());
    let mut tries = 0;
    while sync(&one).await.is_err() || sync(&two).await.is_err() {
        tries += 1;
        assert!(tries < 30, "no convergence under faults");
    }
    // Until both are clean.
    loop {
        let r1 = sync(&one).await;
        let r2 = sync(&two).await;
        if let (Ok(a), Ok(_)) = (&r1, &r2)
            && a.pending_changes == 0
        {
            break;
        }
        tries += 1;
        assert!(tries < 60, "no convergence under faults");
    }
    srv.org.faults.set(FaultSpec::default());
    assert!(srv.org.faults.injected() > 0);
    sync(&two).await.unwrap();
    for (id, data) in &added {
        assert_eq!(&read_all(&two, id).await.unwrap(), data);
    }
    let mut expected: Vec<String> = added.iter().map(|(_, d)| sha256_hex(d)).collect();
    expected.sort();
    assert_eq!(srv.org.blobs.contents(), expected);
    // Each attachment was created once on the server.
    let creates = srv
        .org
        .data
        .audit()
        .iter()
        .filter(|(_, _, e, _)| e == "attachment")
        .count();
    assert_eq!(creates, added.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn content_the_server_garbles_is_refused_and_nothing_of_it_is_kept() {
    let srv = org().await;
    srv.org
        .data
        .set_attachment_policy(&AttachmentPolicy {
            auto_download_max_bytes: 0,
            ..Default::default()
        })
        .unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = device(&d1, &srv, |_| {}).await;
    let two = device(&d2, &srv, |_| {}).await;
    sync(&one).await.unwrap();
    let account = first_account(&one).await;
    let data = marked(3 * 65_536 + 7);
    let a = one
        .add_attachment(
            "account".into(),
            account,
            "work-order.pdf".into(),
            "application/pdf".into(),
            data.clone(),
        )
        .await
        .unwrap();
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();

    // The stored content is swapped for other bytes of the same length behind the server's back.
    let blob = srv.org.blobs.blob_path(&sha256_hex(&data)).unwrap();
    let good = std::fs::read(&blob).unwrap();
    let mut garbled = good.clone();
    garbled[100_000] ^= 1;
    std::fs::write(&blob, &garbled).unwrap();
    let download =
        || Arc::clone(&two).download_attachment(a.id.clone(), Arc::new(Progress::default()), None);
    let refused = download().await;
    assert!(
        matches!(refused, Err(SyncError::ProtocolViolation { .. })),
        "{refused:?}"
    );
    let state = two.attachment(a.id.clone()).await.unwrap().state;
    assert_eq!(state, AttachmentState::NotDownloaded);
    assert!(matches!(
        read_all(&two, &a.id).await,
        Err(SyncError::NotDownloaded)
    ));
    assert!(
        files_under(&d2.path().join("attachments")).is_empty(),
        "no partial file is left behind"
    );

    // Mended on the server: the next download starts over and reads back byte for byte.
    std::fs::write(&blob, &good).unwrap();
    download().await.unwrap();
    assert_eq!(read_all(&two, &a.id).await.unwrap(), data);
}
