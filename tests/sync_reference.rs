//! Synchronize against the reference organization server over real HTTP: the initial and delta
//! sync, two clients converging, every conflict mode, faults of every kind, an access token that
//! expires mid-sync, a dead refresh token, and cancellation with resume.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::org::*;
use serde_json::json;
use syncvault::{ConflictMode, ConflictResolution, RecordQuery, SyncError, SyncPhase};
use syncvault_server::ServerConfig;
use syncvault_server::faults::FaultSpec;

fn config(records: u64) -> ServerConfig {
    ServerConfig {
        records,
        ..Default::default()
    }
}

fn server_fields(pairs: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    pairs.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_then_delta_sync() {
    let srv = server(config(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 64),
        "ada@contoso.example",
    )
    .await;

    let progress = Arc::new(Progress::default());
    let report = Arc::clone(&c)
        .synchronize(progress.clone(), None)
        .await
        .unwrap();
    assert_eq!(report.records_downloaded, 500);
    assert_eq!(report.records_uploaded, 0);
    assert!(report.bytes_downloaded > 500 * 100);
    assert_eq!(
        phases(&progress),
        [
            SyncPhase::Preparing,
            SyncPhase::Uploading,
            SyncPhase::Downloading,
            SyncPhase::Finished
        ]
    );
    let downloads: Vec<_> = progress
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.phase == SyncPhase::Downloading && p.records_done > 0)
        .cloned()
        .collect();
    assert_eq!(downloads.len(), 8, "one update per page of 64");
    assert!(
        downloads
            .windows(2)
            .all(|w| w[0].records_done < w[1].records_done)
    );
    assert_eq!(downloads[0].records_estimated, Some(500));
    assert_eq!(c.count_records("account".into()).await.unwrap(), 50);
    assert_eq!(c.count_records("contact".into()).await.unwrap(), 200);
    assert_converged(&c, &srv).await;
    // Full-text search and filters over the synchronized data.
    let hits = c
        .search_records("contact".into(), "lovel".into(), 100)
        .await
        .unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| match h.fields.get("full_name") {
        Some(syncvault::FieldValue::Text { value }) => value.contains("Lovelace"),
        _ => false,
    }));

    // Nothing changed: nothing moves.
    assert_eq!(sync(&c).await.unwrap().records_downloaded, 0);

    // Another user edits one record and deletes another: the delta is exactly those two.
    srv.org.data.edit(
        "contact",
        "c000000001",
        server_fields(json!({"phone": "+1 555 7777"})),
    );
    srv.org.data.delete("activity", "t000000001");
    let delta = sync(&c).await.unwrap();
    assert_eq!(delta.records_downloaded, 2);
    assert_eq!(
        local_text(&c, "contact", "c000000001", "phone")
            .await
            .as_deref(),
        Some("+1 555 7777")
    );
    assert!(
        c.get_record("activity".into(), "t000000001".into())
            .await
            .unwrap()
            .is_none()
    );
    assert_converged(&c, &srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_converge() {
    let srv = server(config(200)).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = || options(ConflictMode::MergeFields, 50);
    let a = signed_in_client(da.path(), &srv.url, opts(), "ada@contoso.example").await;
    let b = signed_in_client(db.path(), &srv.url, opts(), "grace@contoso.example").await;
    sync(&a).await.unwrap();
    sync(&b).await.unwrap();

    // A: update, create, delete. B: a different record, and another field of A's record.
    a.update_record(
        "contact".into(),
        "c000000001".into(),
        fields(&[("job_title", text("Buyer (A)"))]),
    )
    .await
    .unwrap();
    let created = a
        .create_record(
            "account".into(),
            fields(&[("name", text("Offline Traders")), ("city", text("Brno"))]),
        )
        .await
        .unwrap();
    a.delete_record("activity".into(), "t000000002".into())
        .await
        .unwrap();
    b.update_record(
        "contact".into(),
        "c000000002".into(),
        fields(&[("notes", text("from B"))]),
    )
    .await
    .unwrap();
    b.update_record(
        "contact".into(),
        "c000000001".into(),
        fields(&[("phone", text("+1 555 0002"))]),
    )
    .await
    .unwrap();
    assert_eq!(a.pending_change_count().await.unwrap(), 3);

    let ra = sync(&a).await.unwrap();
    assert_eq!(ra.records_uploaded, 3);
    assert_eq!(a.pending_change_count().await.unwrap(), 0);
    let rb = sync(&b).await.unwrap();
    assert_eq!(rb.conflicts, 1, "B's phone edit met A's job title edit");
    assert_eq!(rb.conflicts_pending, 0, "different fields merge");
    sync(&a).await.unwrap();
    assert_converged(&a, &srv).await;
    assert_converged(&b, &srv).await;
    assert_eq!(
        local_text(&a, "contact", "c000000001", "phone")
            .await
            .as_deref(),
        Some("+1 555 0002")
    );
    assert_eq!(
        local_text(&b, "contact", "c000000001", "job_title")
            .await
            .as_deref(),
        Some("Buyer (A)")
    );
    assert_eq!(
        local_text(&b, "account", &created, "name").await.as_deref(),
        Some("Offline Traders")
    );
    // Every mutation was applied exactly once: A's and B's edits of c1 make versions 2 and 3.
    assert_eq!(
        srv.org.data.get("contact", "c000000001").unwrap().version,
        3
    );
}

/// A and B both edit `job_title` of c1 (B first); A syncs with `mode`.
async fn same_field_conflict(
    mode: ConflictMode,
) -> (
    Arc<syncvault::SyncClient>,
    syncvault_server::RunningServer,
    tempfile::TempDir,
    syncvault::SyncReport,
) {
    let srv = server(config(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = signed_in_client(
        dir.path(),
        &srv.url,
        options(mode, 100),
        "ada@contoso.example",
    )
    .await;
    sync(&a).await.unwrap();
    srv.org.data.edit(
        "contact",
        "c000000001",
        server_fields(json!({"job_title": "server"})),
    );
    a.update_record(
        "contact".into(),
        "c000000001".into(),
        fields(&[("job_title", text("local"))]),
    )
    .await
    .unwrap();
    let report = sync(&a).await.unwrap();
    (a, srv, dir, report)
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_modes() {
    let server_title = |srv: &syncvault_server::RunningServer| {
        srv.org.data.get("contact", "c000000001").unwrap().fields["job_title"].clone()
    };

    let (a, srv, _d, r) = same_field_conflict(ConflictMode::ServerWins).await;
    assert_eq!(
        (r.conflicts, r.conflicts_pending, r.pending_changes),
        (1, 0, 0)
    );
    assert_eq!(
        local_text(&a, "contact", "c000000001", "job_title")
            .await
            .as_deref(),
        Some("server")
    );
    assert_eq!(server_title(&srv), json!("server"));
    assert_converged(&a, &srv).await;

    let (a, srv, _d, r) = same_field_conflict(ConflictMode::ClientWins).await;
    assert_eq!(
        (r.conflicts, r.conflicts_pending, r.records_uploaded),
        (1, 0, 1)
    );
    assert_eq!(server_title(&srv), json!("local"));
    assert_converged(&a, &srv).await;

    // MergeFields cannot merge the same field: it waits for the app, which keeps its own.
    let (a, srv, _d, r) = same_field_conflict(ConflictMode::MergeFields).await;
    assert_eq!((r.conflicts, r.conflicts_pending), (1, 1));
    let pending = a.conflicts().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].record_id, "c000000001");
    assert_eq!(
        pending[0].local_fields.get("job_title"),
        Some(&text("local"))
    );
    assert_eq!(
        pending[0].server_fields.as_ref().unwrap().get("job_title"),
        Some(&text("server"))
    );
    assert!(pending[0].base_fields.as_ref().unwrap().get("job_title") != Some(&text("server")));
    // The device keeps showing the person's edit until they decide.
    assert_eq!(
        local_text(&a, "contact", "c000000001", "job_title")
            .await
            .as_deref(),
        Some("local")
    );
    a.resolve_conflict(pending[0].id, ConflictResolution::KeepLocal)
        .await
        .unwrap();
    assert!(a.conflicts().await.unwrap().is_empty());
    let r = sync(&a).await.unwrap();
    assert_eq!((r.records_uploaded, r.conflicts), (1, 0));
    assert_eq!(server_title(&srv), json!("local"));
    assert_converged(&a, &srv).await;

    // Manual: even a clean merge waits; KeepServer drops the local edit.
    let (a, srv, _d, r) = same_field_conflict(ConflictMode::Manual).await;
    assert_eq!(r.conflicts_pending, 1);
    let id = a.conflicts().await.unwrap()[0].id;
    a.resolve_conflict(id, ConflictResolution::KeepServer)
        .await
        .unwrap();
    assert_eq!(
        local_text(&a, "contact", "c000000001", "job_title")
            .await
            .as_deref(),
        Some("server")
    );
    assert_eq!(sync(&a).await.unwrap().records_uploaded, 0);
    assert_converged(&a, &srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_of_every_kind_still_converge_without_duplicates() {
    let srv = server(config(600)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 40),
        "ada@contoso.example",
    )
    .await;
    srv.org.faults.set(FaultSpec::parse("all:0.2").unwrap());
    sync(&a).await.unwrap();
    assert_converged(&a, &srv).await;
    // Edits under faults: resets and truncations after the server applied a push lose the
    // answer; the retry must be recognised, not applied again. Most answers are now lost; a round
    // that happened to meet no fault is repeated (each round is one more edit of each contact).
    srv.org
        .faults
        .set(FaultSpec::parse("reset:0.35,truncate:0.35").unwrap());
    let mut rounds = 0;
    let mut faulted = false;
    while !faulted && rounds < 5 {
        rounds += 1;
        for i in 1..=30 {
            a.update_record(
                "contact".into(),
                format!("c{i:09}"),
                fields(&[("notes", text(&format!("edit {i} round {rounds}")))]),
            )
            .await
            .unwrap();
        }
        let before = srv.org.faults.injected();
        for _ in 0..20 {
            if a.pending_change_count().await.unwrap() == 0 {
                break;
            }
            // A run may give up after its retries; the next one resumes.
            let _ = sync(&a).await;
        }
        assert_eq!(a.pending_change_count().await.unwrap(), 0);
        faulted = srv.org.faults.injected() > before;
    }
    assert!(faulted, "no fault met the uploads in {rounds} rounds");
    srv.org.faults.set(FaultSpec::default());
    sync(&a).await.unwrap();
    assert_converged(&a, &srv).await;
    for i in 1..=30 {
        let r = srv.org.data.get("contact", &format!("c{i:09}")).unwrap();
        assert_eq!(
            r.version,
            1 + rounds,
            "contact {i}: each edit applied exactly once"
        );
        assert_eq!(r.fields["notes"], json!(format!("edit {i} round {rounds}")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_token_is_refreshed_once_and_a_dead_session_keeps_the_outbox() {
    let srv = server(config(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 30),
        "ada@contoso.example",
    )
    .await;
    let idp = srv.idp.clone().unwrap();
    // The access token expires after the first page.
    let org = Arc::clone(&srv.org);
    let expired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&expired);
    let progress = Arc::new(Progress {
        hook: Some(Box::new(move |p| {
            if p.phase == SyncPhase::Downloading
                && p.records_done > 0
                && !flag.swap(true, Ordering::SeqCst)
            {
                org.verifier.expire_seen_tokens();
            }
        })),
        ..Default::default()
    });
    let report = Arc::clone(&a).synchronize(progress, None).await.unwrap();
    assert!(expired.load(Ordering::SeqCst));
    assert_eq!(report.records_downloaded, 300);
    assert_eq!(
        idp.refresh_grants.load(Ordering::Relaxed),
        1,
        "exactly one refresh"
    );
    assert_converged(&a, &srv).await;

    // The session dies (refresh token revoked) while edits wait: SignInRequired, nothing lost.
    for i in 1..=2 {
        a.update_record(
            "account".into(),
            format!("a{i:09}"),
            fields(&[("city", text("Oslo"))]),
        )
        .await
        .unwrap();
    }
    idp.revoke_all_sessions();
    srv.org.verifier.expire_seen_tokens();
    assert!(matches!(
        sync(&a).await,
        Err(SyncError::SignInRequired { .. })
    ));
    assert_eq!(a.pending_change_count().await.unwrap(), 2);
    assert_eq!(
        local_text(&a, "account", "a000000001", "city")
            .await
            .as_deref(),
        Some("Oslo")
    );
    sign_in(&a, "ada@contoso.example").await;
    assert_eq!(sync(&a).await.unwrap().records_uploaded, 2);
    assert_converged(&a, &srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_mid_download_then_resume() {
    let srv = server(config(400)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 25),
        "ada@contoso.example",
    )
    .await;
    let cancel = syncvault::CancelHandle::new();
    let handle = Arc::clone(&cancel);
    let progress = Arc::new(Progress {
        hook: Some(Box::new(move |p| {
            if p.phase == SyncPhase::Downloading && p.records_done >= 100 {
                handle.cancel();
            }
        })),
        ..Default::default()
    });
    let result = Arc::clone(&a).synchronize(progress, Some(cancel)).await;
    assert!(matches!(result, Err(SyncError::Cancelled)), "{result:?}");
    let kept: u64 = {
        let mut n = 0;
        for e in ["account", "contact", "activity"] {
            n += a.count_records(e.into()).await.unwrap();
        }
        n
    };
    assert!((100..400).contains(&kept), "kept {kept} records");
    // The next run resumes from the saved page token: only the rest comes down.
    let report = sync(&a).await.unwrap();
    assert_eq!(report.records_downloaded, 400 - kept);
    assert_converged(&a, &srv).await;
    let rows = a
        .query_records(
            "contact".into(),
            RecordQuery {
                limit: Some(5),
                order_by: Some("full_name".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_offline_edits_of_one_record_go_up_in_one_synchronize() {
    let srv = server(config(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 50),
        "ada@contoso.example",
    )
    .await;
    sync(&c).await.unwrap();
    let id = "c000000001".to_string();
    let before = srv.org.data.get("contact", &id).unwrap().version;
    // Twelve offline edits of one contact (the field case: a form saved again and again), and
    // one of another field in between.
    for i in 1..=12 {
        c.update_record(
            "contact".into(),
            id.clone(),
            fields(&[("notes", text(&format!("visit {i}")))]),
        )
        .await
        .unwrap();
        if i == 6 {
            c.update_record(
                "contact".into(),
                id.clone(),
                fields(&[("phone", text("+1 555 0199"))]),
            )
            .await
            .unwrap();
        }
    }
    assert_eq!(c.pending_change_count().await.unwrap(), 13);
    let report = sync(&c).await.unwrap();
    assert_eq!(report.pending_changes, 0, "{report:?}");
    assert_eq!(c.pending_change_count().await.unwrap(), 0);
    let server = srv.org.data.get("contact", &id).unwrap();
    assert_eq!(server.fields["notes"], json!("visit 12"));
    assert_eq!(server.fields["phone"], json!("+1 555 0199"));
    // One mutation against the base version: one new server version.
    assert_eq!(server.version, before + 1);
    assert_converged(&c, &srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_client_cancels_its_synchronize_and_leaves_the_store_consistent() {
    let srv = server(config(2000)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 25),
        "ada@contoso.example",
    )
    .await;
    let (started, seen) = std::sync::mpsc::channel();
    let progress = Arc::new(Progress {
        hook: Some(Box::new(move |p| {
            if p.phase == SyncPhase::Downloading && p.records_done >= 100 {
                let _ = started.send(());
            }
        })),
        ..Default::default()
    });
    let run = tokio::spawn(Arc::clone(&a).synchronize(progress, None));
    tokio::task::spawn_blocking(move || seen.recv().unwrap())
        .await
        .unwrap();
    // The app closes the client (Kotlin close(), the last Swift reference): the run in progress
    // stops, and closing returns once it has.
    let closed = tokio::task::spawn_blocking(move || drop(a));
    closed.await.unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(2), run)
        .await
        .expect("the run had stopped when close returned");
    assert_eq!(result.unwrap(), Err(SyncError::Cancelled));
    // A new client finds a consistent store and resumes.
    let b = syncvault::SyncClient::with_options(
        dir.path().display().to_string(),
        options(ConflictMode::MergeFields, 500),
    )
    .unwrap();
    b.unlock(ORG_PASSWORD.to_vec()).await.unwrap();
    let report = sync(&b).await.unwrap();
    assert!(report.records_downloaded < 2000, "{report:?}");
    assert_converged(&b, &srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organization_controls_its_devices() {
    use syncvault_server::admin::store::DeviceCommand;
    let srv = server(config(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = syncvault::ClientOptions {
        device_name: Some("Ada's test phone".into()),
        app_version: Some("1.2.3".into()),
        ..options(ConflictMode::MergeFields, 100)
    };
    let c = signed_in_client(dir.path(), &srv.url, opts, "ada@contoso.example").await;
    sync(&c).await.unwrap();
    sync(&c).await.unwrap();
    // The device list: who, what, how much.
    let devices = srv.org.store.devices().unwrap();
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(d.user_email, "ada@contoso.example");
    assert_eq!(d.report.name.as_deref(), Some("Ada's test phone"));
    assert_eq!(d.report.app_version.as_deref(), Some("1.2.3"));
    assert_eq!(d.report.records_held, Some(300));
    assert_eq!(d.report.last_result.as_deref(), Some("ok"));
    let client_id = d.client_id.clone();

    // Force full sync: everything comes down again, a queued edit goes up first.
    c.update_record(
        "contact".into(),
        "c000000001".into(),
        fields(&[("notes", text("kept through the full sync"))]),
    )
    .await
    .unwrap();
    srv.org
        .store
        .command_device(&client_id, DeviceCommand::FullSync)
        .unwrap();
    let report = sync(&c).await.unwrap();
    assert!(report.full_resync, "{report:?}");
    assert_eq!(report.records_uploaded, 1);
    assert_converged(&c, &srv).await;

    // Sign out: the tokens are forgotten (and revoked); the next run needs the login page.
    srv.org
        .store
        .command_device(&client_id, DeviceCommand::SignOut)
        .unwrap();
    assert!(matches!(
        sync(&c).await,
        Err(SyncError::SignInRequired { .. })
    ));
    assert!(!c.is_signed_in().await.unwrap());
    sign_in(&c, "ada@contoso.example").await;
    sync(&c).await.unwrap();

    // Wipe: with an unsent edit on the device, the next contact erases the vault.
    c.update_record(
        "contact".into(),
        "c000000002".into(),
        fields(&[("notes", text("lost by the wipe"))]),
    )
    .await
    .unwrap();
    srv.org
        .store
        .command_device(&client_id, DeviceCommand::Wipe)
        .unwrap();
    assert_eq!(sync(&c).await, Err(SyncError::RemoteWiped));
    let state = c.account_state().await.unwrap();
    assert!(!state.configured && state.remotely_wiped, "{state:?}");
    assert_eq!(
        c.unlock(ORG_PASSWORD.to_vec()).await,
        Err(SyncError::RemoteWiped)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["remote-wipe.done"], "only the note that it happened");
    let delivered = &srv.org.store.devices().unwrap()[0];
    assert_eq!(delivered.delivered_command, Some(DeviceCommand::Wipe));
    assert!(delivered.delivered_at.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_wipe_cut_short_by_a_crash_finishes_at_the_next_start() {
    let srv = server(config(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 100),
        "ada@contoso.example",
    )
    .await;
    sync(&c).await.unwrap();
    drop(c);
    // The state a kill leaves between the durable intent and the wipe itself.
    std::fs::write(dir.path().join("remote-wipe.pending"), "wipe\n").unwrap();
    assert!(dir.path().join("store.db").exists());
    let c = syncvault::SyncClient::with_options(
        dir.path().display().to_string(),
        options(ConflictMode::MergeFields, 100),
    )
    .unwrap();
    assert!(!dir.path().join("store.db").exists());
    assert!(!dir.path().join(syncvault::VAULT_HEADER_FILE).exists());
    assert!(c.account_state().await.unwrap().remotely_wiped);
}
