//! The app's live view of its data against the reference server over real HTTP: each record's
//! sync state, the list of queued changes, sync errors that keep the person's values (retry after
//! fixing, discard for the server's version, across restarts), watched queries, records and
//! counts (an observer that never returns holds up nothing), and the observable sync status.

mod common;

use common::org::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use syncvault::{
    CancelHandle, ChangeKind, ClientOptions, ConflictMode, CountObserver, FieldValue,
    QueryObserver, RecordObserver, RecordQuery, RecordSyncState, RejectionCode, SyncActivity,
    SyncClient, SyncError, SyncRecord, SyncStatus, SyncStatusObserver,
};
use syncvault_server::faults::FaultSpec;
use syncvault_server::{RunningServer, ServerConfig};
use tokio::time::Instant;

fn config(records: u64) -> ServerConfig {
    ServerConfig {
        records,
        ..Default::default()
    }
}

/// A reference server with `records` records and Ada's client on it, signed in.
async fn ada(
    records: u64,
    options: ClientOptions,
) -> (RunningServer, tempfile::TempDir, Arc<SyncClient>) {
    let srv = server(config(records)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = signed_in_client(dir.path(), &srv.url, options, "ada@contoso.example").await;
    (srv, dir, c)
}

async fn record(c: &SyncClient, entity: &str, id: &str) -> SyncRecord {
    c.get_record(entity.into(), id.into())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{entity} {id} is on the device"))
}

fn server_text(srv: &syncvault_server::RunningServer, entity: &str, id: &str, f: &str) -> String {
    srv.org.data.get(entity, id).unwrap().fields[f]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_change_stays_as_a_sync_error_until_retried_or_discarded() {
    let (srv, dir, c) = ada(100, options(ConflictMode::MergeFields, 50)).await;
    sync(&c).await.unwrap();
    let (good, bad) = ("c000000001", "c000000002");
    let server_email = server_text(&srv, "contact", bad, "email");
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Synced
    );

    // Offline: a bad email and a phone on one contact, a good edit on another, and a new contact
    // with a bad email.
    let bad_fields = fields(&[
        ("email", text("not an address")),
        ("phone", text("+1 555 0100")),
    ]);
    c.update_record("contact".into(), bad.into(), bad_fields)
        .await
        .unwrap();
    c.update_record(
        "contact".into(),
        good.into(),
        fields(&[("phone", text("+1 555 0101"))]),
    )
    .await
    .unwrap();
    let new = c
        .create_record(
            "contact".into(),
            fields(&[("full_name", text("Nobody")), ("email", text("nowhere"))]),
        )
        .await
        .unwrap();
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Pending {
            fields: vec!["email".into(), "phone".into()],
            created: false
        }
    );
    let pending = c.pending_changes().await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| (p.record_id.as_str(), p.kind))
            .collect::<Vec<_>>(),
        [
            (bad, ChangeKind::Update),
            (good, ChangeKind::Update),
            (new.as_str(), ChangeKind::Create)
        ]
    );

    // The server refuses two of the three: the person's values stay, marked in error.
    let report = sync(&c).await.unwrap();
    assert_eq!((report.rejected, report.sync_errors), (2, 2), "{report:?}");
    assert_eq!(report.pending_changes, 0);
    assert_eq!(server_text(&srv, "contact", good, "phone"), "+1 555 0101");
    assert_eq!(server_text(&srv, "contact", bad, "email"), server_email);
    assert_eq!(
        local_text(&c, "contact", bad, "email").await.as_deref(),
        Some("not an address"),
        "the person's value is not reverted"
    );
    let errors = c.sync_errors().await.unwrap();
    assert_eq!(errors.len(), 2);
    let e = &errors[0];
    assert_eq!(
        (e.record_id.as_str(), e.code),
        (bad, RejectionCode::InvalidValue)
    );
    assert!(e.server_message.contains("not an email address"), "{e:?}");
    assert_eq!(e.local_fields.get("email"), Some(&text("not an address")));
    assert_eq!(
        e.server_fields.as_ref().unwrap().get("email"),
        Some(&text(&server_email))
    );
    assert!(errors[1].created_offline && errors[1].server_fields.is_none());
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Error {
            sync_error_id: e.id,
            code: RejectionCode::InvalidValue
        }
    );

    // Another user edits the record meanwhile: the download does not overwrite the person's
    // values, and the error's server side follows the server.
    srv.org.data.edit(
        "contact",
        bad,
        json!({"job_title": "Chief"}).as_object().unwrap().clone(),
    );
    let report = sync(&c).await.unwrap();
    assert_eq!(
        report.records_uploaded, 0,
        "an error is not sent again by itself"
    );
    assert_eq!(
        local_text(&c, "contact", bad, "email").await.as_deref(),
        Some("not an address")
    );
    let e = c.sync_errors().await.unwrap().remove(0);
    assert_eq!(
        e.server_fields.as_ref().unwrap().get("job_title"),
        Some(&text("Chief"))
    );

    // Across a restart.
    drop(c);
    let c = SyncClient::with_options(
        dir.path().display().to_string(),
        options(ConflictMode::MergeFields, 50),
    )
    .unwrap();
    c.unlock(ORG_PASSWORD.to_vec()).await.unwrap();
    assert_eq!(c.sync_errors().await.unwrap().len(), 2);

    // Fix the value, retry: it goes up with the next Synchronize, over the server's new version.
    c.update_record(
        "contact".into(),
        bad.into(),
        fields(&[("email", text("ada.fixed@contoso.example"))]),
    )
    .await
    .unwrap();
    assert_eq!(
        c.pending_change_count().await.unwrap(),
        0,
        "edits go into the error"
    );
    c.retry_sync_error(e.id).await.unwrap();
    assert!(matches!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Pending { .. }
    ));
    assert!(c.retry_sync_error(e.id).await.is_err(), "retried once");
    let report = sync(&c).await.unwrap();
    assert_eq!(report.records_uploaded, 1, "{report:?}");
    assert_eq!(
        server_text(&srv, "contact", bad, "email"),
        "ada.fixed@contoso.example"
    );
    assert_eq!(server_text(&srv, "contact", bad, "phone"), "+1 555 0100");
    assert_eq!(server_text(&srv, "contact", bad, "job_title"), "Chief");
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Synced
    );

    // Discard the new contact's error: it never existed on the server, so it goes.
    let e = c.sync_errors().await.unwrap().remove(0);
    assert_eq!(e.record_id, new);
    c.discard_sync_error(e.id).await.unwrap();
    assert!(c.get_record("contact".into(), new).await.unwrap().is_none());
    assert!(c.sync_errors().await.unwrap().is_empty());
    assert_eq!(sync(&c).await.unwrap().records_uploaded, 0);
    assert_converged(&c, &srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn discard_restores_the_servers_version() {
    let (srv, _dir, c) = ada(100, options(ConflictMode::MergeFields, 50)).await;
    sync(&c).await.unwrap();
    let id = "c000000003";
    let before = record(&c, "contact", id).await;
    c.update_record("contact".into(), id.into(), fields(&[("email", text("@"))]))
        .await
        .unwrap();
    assert_eq!(sync(&c).await.unwrap().sync_errors, 1);
    let e = c.sync_errors().await.unwrap().remove(0);
    c.discard_sync_error(e.id).await.unwrap();
    let after = record(&c, "contact", id).await;
    assert_eq!(after.fields, before.fields);
    assert_eq!(after.sync_state, RecordSyncState::Synced);
    assert_eq!(c.pending_change_count().await.unwrap(), 0);
    assert_converged(&c, &srv).await;
}

/// Everything one observer was handed, in order, with a way to wait for a delivery.
struct Seen<T> {
    values: Mutex<Vec<T>>,
}

impl<T: Clone> Seen<T> {
    fn new() -> Arc<Self> {
        Arc::new(Seen {
            values: Mutex::new(Vec::new()),
        })
    }

    fn push(&self, v: T) {
        self.values.lock().unwrap().push(v);
    }

    fn all(&self) -> Vec<T> {
        self.values.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.values.lock().unwrap().len()
    }

    /// Waits (up to 20 s) until the newest delivery satisfies `done`; returns it.
    async fn until(&self, what: &str, done: impl Fn(&T) -> bool) -> T {
        self.after(0, what, done).await
    }

    /// Waits (up to 20 s) until there are more than `seen` deliveries and the newest satisfies
    /// `done`; returns it.
    async fn after(&self, seen: usize, what: &str, done: impl Fn(&T) -> bool) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let newest = {
                let values = self.values.lock().unwrap();
                values.last().filter(|_| values.len() > seen).cloned()
            };
            if let Some(last) = newest
                && done(&last)
            {
                return last;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Asserts that nothing new arrives within a while after `before` deliveries.
    async fn quiet_since(&self, before: usize, what: &str) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(self.len(), before, "{what}");
    }
}

impl QueryObserver for Seen<Vec<SyncRecord>> {
    fn on_records(&self, records: Vec<SyncRecord>) {
        self.push(records);
    }
    fn on_error(&self, error: SyncError) {
        panic!("watched query failed: {error:?}");
    }
}

impl RecordObserver for Seen<Option<SyncRecord>> {
    fn on_record(&self, record: Option<SyncRecord>) {
        self.push(record);
    }
    fn on_error(&self, error: SyncError) {
        panic!("watched record failed: {error:?}");
    }
}

impl CountObserver for Seen<u64> {
    fn on_count(&self, count: u64) {
        self.push(count);
    }
    fn on_error(&self, error: SyncError) {
        panic!("watched count failed: {error:?}");
    }
}

impl SyncStatusObserver for Seen<SyncStatus> {
    fn on_status(&self, status: SyncStatus) {
        self.push(status);
    }
}

fn watching(page_size: u32) -> ClientOptions {
    ClientOptions {
        watch_interval_ms: Some(0),
        ..options(ConflictMode::MergeFields, page_size)
    }
}

fn by_name() -> RecordQuery {
    RecordQuery {
        order_by: Some("full_name".into()),
        ..Default::default()
    }
}

fn value<'a>(r: &'a [SyncRecord], id: &str, field: &str) -> Option<&'a FieldValue> {
    r.iter().find(|r| r.id == id)?.fields.get(field)
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_follow_downloads_local_edits_and_remote_changes_until_cancelled() {
    // 10 accounts, 40 contacts, 50 activities, downloaded 10 records a page.
    let (srv, _dir, c) = ada(100, watching(10)).await;
    let contacts = Seen::<Vec<SyncRecord>>::new();
    let watch = c
        .watch_query("contact".into(), by_name(), contacts.clone())
        .unwrap();
    let count = Seen::<u64>::new();
    let _count_watch = c.watch_count("contact".into(), count.clone());
    let one = Seen::<Option<SyncRecord>>::new();
    let _one_watch = c.watch_record("contact".into(), "c000000005".into(), one.clone());
    contacts
        .until("the first, empty result", Vec::is_empty)
        .await;
    one.until("no record yet", Option::is_none).await;

    // The first Synchronize: the watch grows page by page to what a direct query returns.
    sync(&c).await.unwrap();
    let direct = c.query_records("contact".into(), by_name()).await.unwrap();
    assert_eq!(direct.len(), 40);
    contacts.until("every contact", |r| *r == direct).await;
    count.until("40 contacts", |n| *n == 40).await;
    one.until("the record", Option::is_some).await;
    let sizes: Vec<usize> = contacts.all().iter().map(Vec::len).collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    assert!(
        sizes.iter().any(|n| (1..40).contains(n)),
        "pages show up before the end: {sizes:?}"
    );

    // A commit that writes no contact does not wake the contact watch.
    let before = contacts.len();
    c.update_record(
        "activity".into(),
        "t000000001".into(),
        fields(&[("subject", text("Call back"))]),
    )
    .await
    .unwrap();
    contacts
        .quiet_since(before, "an activity edit re-ran the contact query")
        .await;

    // A local edit shows at once, marked pending.
    let id = "c000000005";
    c.update_record(
        "contact".into(),
        id.into(),
        fields(&[("phone", text("+1 555 0199"))]),
    )
    .await
    .unwrap();
    let shown = contacts
        .until("the local edit", |r| {
            value(r, id, "phone") == Some(&text("+1 555 0199"))
        })
        .await;
    assert_eq!(
        shown.iter().find(|r| r.id == id).unwrap().sync_state,
        RecordSyncState::Pending {
            fields: vec!["phone".into()],
            created: false
        }
    );
    one.until("the local edit on the record watch", |r| {
        r.as_ref()
            .is_some_and(|r| r.fields.get("phone") == Some(&text("+1 555 0199")))
    })
    .await;

    // Another user's edit arrives with the next Synchronize; the local edit is then synced.
    srv.org.data.edit(
        "contact",
        "c000000007",
        json!({"job_title": "Head of Field Service"})
            .as_object()
            .unwrap()
            .clone(),
    );
    sync(&c).await.unwrap();
    let shown = contacts
        .until("the remote edit", |r| {
            value(r, "c000000007", "job_title") == Some(&text("Head of Field Service"))
                && r.iter().all(|r| r.sync_state == RecordSyncState::Synced)
        })
        .await;
    assert_eq!(
        shown,
        c.query_records("contact".into(), by_name()).await.unwrap()
    );

    // Locked: nothing is delivered (there is nothing to read); unlocked: the watch goes on.
    c.lock().await.unwrap();
    let before = contacts.len();
    c.unlock(ORG_PASSWORD.to_vec()).await.unwrap();
    contacts
        .after(before, "a delivery after unlock", |r| r.len() == 40)
        .await;

    // Cancelled: nothing more, while the other watches go on.
    watch.cancel();
    let before = contacts.len();
    c.delete_record("contact".into(), id.into()).await.unwrap();
    count.until("39 contacts", |n| *n == 39).await;
    one.until("the deleted record", Option::is_none).await;
    contacts
        .quiet_since(before, "a cancelled watch was delivered to")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_watches_over_a_ten_thousand_change_delta_end_equal_to_direct_queries() {
    let (srv, _dir, c) = ada(10_000, watching(2000)).await;
    sync(&c).await.unwrap();
    let queries: Vec<(String, RecordQuery)> = (0..100u32)
        .map(|i| {
            let entity = ["account", "contact", "activity"][i as usize % 3];
            let order = if entity == "account" { "name" } else { "notes" };
            let query = RecordQuery {
                order_by: Some(order.into()),
                descending: i % 2 == 0,
                limit: Some(20 + i),
                offset: i,
                ..Default::default()
            };
            (entity.to_string(), query)
        })
        .collect();
    let watches: Vec<_> = queries
        .iter()
        .map(|(entity, query)| {
            let seen = Seen::<Vec<SyncRecord>>::new();
            let w = c
                .watch_query(entity.clone(), query.clone(), seen.clone())
                .unwrap();
            (w, seen)
        })
        .collect();
    assert_eq!(
        srv.org.data.simulate_edits(10_000, "Edited").unwrap(),
        10_000
    );
    let report = sync(&c).await.unwrap();
    assert_eq!(report.records_downloaded, 10_000, "{report:?}");
    for ((entity, query), (_w, seen)) in queries.iter().zip(&watches) {
        let direct = c
            .query_records(entity.clone(), query.clone())
            .await
            .unwrap();
        assert!(!direct.is_empty());
        seen.until("the watch to match a direct query", |r| *r == direct)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_status_follows_edits_failures_and_a_good_synchronize() {
    let (srv, _dir, c) = ada(100, watching(10)).await;
    let status = Seen::<SyncStatus>::new();
    let _watch = c.watch_sync_status(status.clone());
    let first = status.until("the first status", |_| true).await;
    assert_eq!(first.activity, SyncActivity::Idle);
    assert!(first.signed_in && first.unlocked && first.last_synced_at.is_none());
    sync(&c).await.unwrap();
    let synced = status
        .until("a synced status", |s| s.last_synced_at.is_some())
        .await;
    assert_eq!(synced.pending_changes, 0);

    // Two offline edits of one record and one of another: three edits waiting (as
    // pendingChangeCount counts them).
    for phone in ["+1 555 0101", "+1 555 0102"] {
        c.update_record(
            "contact".into(),
            "c000000001".into(),
            fields(&[("phone", text(phone))]),
        )
        .await
        .unwrap();
    }
    c.update_record(
        "contact".into(),
        "c000000002".into(),
        fields(&[("phone", text("+1"))]),
    )
    .await
    .unwrap();
    status
        .until("three pending", |s| s.pending_changes == 3)
        .await;
    assert_eq!(c.sync_status().await.unwrap().pending_changes, 3);
    assert_eq!(c.pending_change_count().await.unwrap(), 3);

    // The server refuses every request: the status says why, and the edits still wait.
    srv.org.faults.set(FaultSpec::parse("400:1.0").unwrap());
    let err = sync(&c).await.unwrap_err();
    let failed = status
        .until("the failure", |s| s.last_error.is_some())
        .await;
    assert_eq!(failed.last_error.as_ref(), Some(&err));
    assert_eq!(
        (failed.activity.clone(), failed.pending_changes),
        (SyncActivity::Idle, 3)
    );

    // A run through transient faults (retried): uploading, downloading, then idle with nothing
    // waiting and no error. Another user's edits give it something to download.
    // Repeated (rarely) until a run actually met a fault.
    srv.org
        .faults
        .set(FaultSpec::parse("500:0.3,503:0.1").unwrap());
    let mut before = 0;
    for round in 0.. {
        assert!(round < 5, "no run met a fault");
        assert_eq!(srv.org.data.simulate_edits(30, "Elsewhere").unwrap(), 30);
        let phone = format!("+1 555 02{round:02}");
        c.update_record(
            "contact".into(),
            "c000000003".into(),
            fields(&[("phone", text(&phone))]),
        )
        .await
        .unwrap();
        let faults_before = srv.org.faults.injected();
        before = status.len();
        sync(&c).await.unwrap();
        if srv.org.faults.injected() > faults_before {
            break;
        }
    }
    srv.org.faults.set(FaultSpec::default());
    let done = status
        .until("the good run", |s| {
            s.last_error.is_none() && s.pending_changes == 0 && s.activity == SyncActivity::Idle
        })
        .await;
    assert!(done.last_synced_at >= synced.last_synced_at);
    let activities: Vec<SyncActivity> = status.all()[before..]
        .iter()
        .map(|s| s.activity.clone())
        .collect();
    let up = activities
        .iter()
        .position(|a| matches!(a, SyncActivity::Uploading { .. }));
    let down = activities
        .iter()
        .position(|a| matches!(a, SyncActivity::Downloading { .. }));
    assert!(
        matches!((up, down), (Some(u), Some(d)) if u < d),
        "{activities:?}"
    );
    assert_eq!(c.sync_status().await.unwrap(), done);

    // A cancelled run is no failure: the status keeps no error.
    let cancel = CancelHandle::new();
    cancel.cancel();
    let err = Arc::clone(&c)
        .synchronize(Arc::new(Progress::default()), Some(cancel))
        .await
        .unwrap_err();
    assert_eq!(err, SyncError::Cancelled);
    assert_eq!(c.sync_status().await.unwrap().last_error, None);

    // Locked: the status still answers, with the stored part empty.
    c.lock().await.unwrap();
    let locked = status.until("locked", |s| !s.unlocked).await;
    assert_eq!(locked.pending_changes, 0);
}

/// Blocks every delivery until released: a screen whose UI thread is stuck.
struct Stuck {
    entered: std::sync::mpsc::Sender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl QueryObserver for Stuck {
    fn on_records(&self, _: Vec<SyncRecord>) {
        let _ = self.entered.send(());
        let _ = self.release.lock().unwrap().recv();
    }
    fn on_error(&self, _: SyncError) {}
}

#[tokio::test(flavor = "multi_thread")]
async fn an_observer_that_never_returns_does_not_stall_a_synchronize() {
    let (srv, _dir, c) = ada(1000, watching(50)).await;
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let stuck = Arc::new(Stuck {
        entered: entered_tx,
        release: Mutex::new(release_rx),
    });
    let _watch = c
        .watch_query("contact".into(), RecordQuery::default(), stuck)
        .unwrap();
    // The first delivery is in the observer, and stays there during the whole Synchronize.
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    let report = sync(&c).await.unwrap();
    assert_eq!(report.records_downloaded, 1000);
    assert_converged(&c, &srv).await;
    // Other watches are not held up by it either.
    let count = Seen::<u64>::new();
    let _count_watch = c.watch_count("contact".into(), count.clone());
    count.until("the count", |n| *n == 400).await;
    release.send(()).unwrap();
}
