//! A hostile or broken server: the engine is driven through an in-process transport that answers
//! with wrong types, duplicate ids, unknown entities, pages that make no progress, a cursor going
//! backwards and bogus push answers, and over real HTTP with a huge body. Each is a typed error
//! (`EngineError::Protocol`, the app's `ProtocolViolation`), and nothing of a refused page or
//! answer is applied.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use syncvault::account::{Account, UserMode};
use syncvault::auth::AuthError;
use syncvault::store::{entities, meta, outbox};
use syncvault::sync::protocol::*;
use syncvault::sync::{
    CancelToken, EngineError, HttpTransport, ProtocolError, Received, SyncContext, SyncOptions,
    TokenSource, Transport, TransportError,
};

struct StaticToken;

#[async_trait]
impl TokenSource for StaticToken {
    async fn access_token(&self, _rejected: Option<&str>) -> Result<String, AuthError> {
        Ok("token".into())
    }
}

/// Answers from a script; an exhausted script is a final error (never a loop).
#[derive(Default)]
struct Scripted {
    pulls: Mutex<VecDeque<Result<PullResponse, TransportError>>>,
    /// The cursor each pull was asked with.
    pull_cursors: Mutex<Vec<Option<i64>>>,
    pushes: Mutex<VecDeque<PushResponse>>,
    pull_calls: AtomicU32,
    /// A schema in place of the usual one.
    schema: Mutex<Option<Value>>,
}

fn contact_schema() -> Value {
    json!({"name": "contact", "fields": [
        {"name": "full_name", "type": "text", "searchable": true},
        {"name": "age", "type": "integer"},
        {"name": "born", "type": "timestamp"}
    ]})
}

fn received<T>(value: T) -> Result<Received<T>, TransportError> {
    Ok(Received { value, bytes: 100 })
}

fn script_ended() -> TransportError {
    TransportError::Status {
        status: 418,
        code: None,
        reason: "script ended".into(),
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn schema(&self, _: &str) -> Result<Received<SchemaResponse>, TransportError> {
        let entity = self
            .schema
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(contact_schema);
        received(SchemaResponse {
            schema_version: 1,
            entities: vec![serde_json::from_value(entity).unwrap()],
            attachment_policy: None,
        })
    }
    async fn pull(
        &self,
        _: &str,
        request: &PullRequest,
    ) -> Result<Received<PullResponse>, TransportError> {
        self.pull_calls.fetch_add(1, Ordering::SeqCst);
        self.pull_cursors.lock().unwrap().push(request.cursor);
        match self.pulls.lock().unwrap().pop_front() {
            Some(Ok(page)) => received(page),
            Some(Err(e)) => Err(e),
            None => Err(script_ended()),
        }
    }
    async fn push(
        &self,
        _: &str,
        _: &PushRequest,
    ) -> Result<Received<PushResponse>, TransportError> {
        let next = self.pushes.lock().unwrap().pop_front();
        next.map(received).unwrap_or_else(|| Err(script_ended()))
    }
}

/// One change as the server writes it.
fn contact(id: &str, fields: Value) -> Value {
    json!({"entity": "contact", "id": id, "version": 1, "op": "upsert", "fields": fields})
}

fn page(changes: Vec<Value>, page_token: Option<&str>, cursor: Option<i64>) -> PullResponse {
    estimated_page(changes, page_token, cursor, None)
}

fn estimated_page(
    changes: Vec<Value>,
    page_token: Option<&str>,
    cursor: Option<i64>,
    estimated_total: Option<u64>,
) -> PullResponse {
    PullResponse::from_json(&json!({
        "changes": changes,
        "page_token": page_token,
        "cursor": cursor,
        "estimated_total": estimated_total,
    }))
    .unwrap()
}

fn good(n: usize, from: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            contact(
                &format!("c{i}"),
                json!({"full_name": format!("Person {i}"), "age": i}),
            )
        })
        .collect()
}

struct Device {
    _dir: tempfile::TempDir,
    account: Arc<Mutex<Account>>,
}

fn device() -> Device {
    let dir = tempfile::tempdir().unwrap();
    let mut account = Account::new(dir.path(), common::config());
    account
        .setup(
            "https://org.example",
            UserMode::Oauth,
            common::PASSWORD,
            common::PASSWORD,
        )
        .unwrap();
    Device {
        _dir: dir,
        account: Arc::new(Mutex::new(account)),
    }
}

impl Device {
    async fn sync(
        &self,
        transport: Arc<dyn Transport>,
    ) -> Result<syncvault::sync::SyncReport, EngineError> {
        self.sync_with(
            transport,
            SyncOptions {
                page_size: 10,
                ..Default::default()
            },
        )
        .await
    }

    async fn sync_with(
        &self,
        transport: Arc<dyn Transport>,
        options: SyncOptions,
    ) -> Result<syncvault::sync::SyncReport, EngineError> {
        syncvault::sync::run(SyncContext {
            account: Arc::clone(&self.account),
            transport,
            tokens: Arc::new(StaticToken),
            options,
            progress: None,
            cancel: CancelToken::default(),
        })
        .await
    }

    fn count(&self) -> u64 {
        let mut a = self.account.lock().unwrap();
        entities::count(a.store().unwrap().conn(), "contact").unwrap()
    }

    fn meta(&self, key: &str) -> Option<String> {
        let mut a = self.account.lock().unwrap();
        meta::get(a.store().unwrap().conn(), key).unwrap()
    }

    fn pending(&self) -> u64 {
        let mut a = self.account.lock().unwrap();
        outbox::pending_count(a.store().unwrap().conn()).unwrap()
    }
}

fn scripted(pulls: Vec<PullResponse>) -> Arc<Scripted> {
    Arc::new(Scripted {
        pulls: Mutex::new(pulls.into_iter().map(Ok).collect()),
        ..Default::default()
    })
}

fn assert_protocol_error(result: Result<syncvault::sync::SyncReport, EngineError>, needle: &str) {
    match result {
        Err(EngineError::Protocol(ProtocolError(reason))) => {
            assert!(
                reason.contains(needle),
                "{reason:?} should mention {needle:?}"
            )
        }
        other => panic!("expected a protocol error about {needle:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_page_is_refused_whole_and_earlier_pages_stay() {
    let d = device();
    // Page 1 is fine; page 2 ends with a wrong type.
    let mut bad = good(9, 10);
    bad.push(contact(
        "c99",
        json!({"full_name": "X", "age": "not a number"}),
    ));
    let t = scripted(vec![
        page(good(10, 0), Some("p1"), None),
        page(bad, Some("p2"), None),
    ]);
    assert_protocol_error(d.sync(t).await, "age");
    assert_eq!(d.count(), 10, "page 1 kept, nothing of page 2");
    assert_eq!(d.meta("sync.page_token").as_deref(), Some("p1"));
    assert_eq!(d.meta("sync.cursor"), None);

    // The next run resumes after page 1.
    let t = scripted(vec![page(good(10, 10), None, Some(20))]);
    let report = d.sync(t).await.unwrap();
    assert_eq!(report.records_downloaded, 10);
    assert_eq!(d.count(), 20);
    assert_eq!(d.meta("sync.cursor").as_deref(), Some("20"));
    assert_eq!(d.meta("sync.page_token"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_ids_unknown_entities_and_bad_versions() {
    let d = device();
    let mut twice = good(3, 0);
    twice.push(contact("c1", json!({"full_name": "again"})));
    assert_protocol_error(
        d.sync(scripted(vec![page(twice, None, Some(4))])).await,
        "twice",
    );

    let mut alien = good(3, 0);
    alien[1]["entity"] = json!("invoice");
    assert_protocol_error(
        d.sync(scripted(vec![page(alien, None, Some(3))])).await,
        "invoice",
    );

    let mut unknown_field = good(2, 0);
    unknown_field[0]["fields"]["salary"] = json!(1);
    assert_protocol_error(
        d.sync(scripted(vec![page(unknown_field, None, Some(2))]))
            .await,
        "salary",
    );

    let mut zero = good(2, 0);
    zero[1]["version"] = json!(0);
    assert_protocol_error(
        d.sync(scripted(vec![page(zero, None, Some(2))])).await,
        "version",
    );
    assert_eq!(d.count(), 0);
    assert_eq!(d.meta("sync.cursor"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_that_make_no_progress_stop_instead_of_looping() {
    let d = device();
    // An empty page that claims more follow.
    let t = scripted((0..50).map(|_| page(vec![], Some("p1"), None)).collect());
    assert_protocol_error(d.sync(Arc::clone(&t) as _).await, "no progress");
    assert_eq!(t.pull_calls.load(Ordering::SeqCst), 1);
    // The same page token twice.
    let t = scripted(vec![
        page(good(10, 0), Some("same"), None),
        page(good(10, 10), Some("same"), None),
        page(good(10, 20), Some("same"), None),
    ]);
    assert_protocol_error(d.sync(Arc::clone(&t) as _).await, "no progress");
    assert_eq!(t.pull_calls.load(Ordering::SeqCst), 2);
    // More changes than asked for.
    assert_protocol_error(
        d.sync(scripted(vec![page(good(11, 0), None, Some(11))]))
            .await,
        "asked",
    );
    // A last page without a cursor.
    assert_protocol_error(
        d.sync(scripted(vec![page(good(1, 0), None, None)])).await,
        "cursor",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_going_backwards_is_refused() {
    let d = device();
    d.sync(scripted(vec![page(good(5, 0), None, Some(50))]))
        .await
        .unwrap();
    let mut newer = good(1, 0);
    newer[0]["version"] = json!(2);
    assert_protocol_error(
        d.sync(scripted(vec![page(newer, None, Some(40))])).await,
        "backwards",
    );
    assert_eq!(d.meta("sync.cursor").as_deref(), Some("50"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bogus_push_answers_keep_the_outbox() {
    let d = device();
    d.sync(scripted(vec![page(good(3, 0), None, Some(3))]))
        .await
        .unwrap();
    {
        let mut a = d.account.lock().unwrap();
        let conn = a.store().unwrap().conn();
        let mut f = Map::new();
        f.insert("age".into(), json!(77));
        outbox::update(conn, "contact", "c1", f).unwrap();
    }
    let answer = |results: Value| -> PushResponse {
        serde_json::from_value(json!({ "results": results })).unwrap()
    };
    for results in [
        json!([{"mutation_id": 999, "status": "applied", "version": 2}]),
        json!([{"mutation_id": 1, "status": "applied", "version": 2}, {"mutation_id": 1, "status": "applied", "version": 2}]),
        json!([]),
        json!([{"mutation_id": 1, "status": "conflict"}]),
        json!([{"mutation_id": 1, "status": "applied"}]),
    ] {
        let t = Arc::new(Scripted {
            pushes: Mutex::new(vec![answer(results.clone())].into()),
            ..Default::default()
        });
        let r = d.sync(t).await;
        assert!(
            matches!(r, Err(EngineError::Protocol(_))),
            "{results}: {r:?}"
        );
        assert_eq!(d.pending(), 1, "{results}: the edit is still queued");
    }
    // Wrong JSON types in an answer fail to decode: the transport's typed error.
    assert!(
        serde_json::from_value::<PushResponse>(
            json!({"results": [{"mutation_id": "1", "status": "applied"}]})
        )
        .is_err()
    );
}

/// Answers every push as the server would (applied, or duplicate for a mutation id it has seen),
/// optionally leaving the last result out; pulls bring nothing new.
#[derive(Default)]
struct EchoPush {
    drop_last: std::sync::atomic::AtomicBool,
    seen: Mutex<std::collections::HashSet<i64>>,
    inner: Scripted,
}

#[async_trait]
impl Transport for EchoPush {
    async fn schema(&self, token: &str) -> Result<Received<SchemaResponse>, TransportError> {
        self.inner.schema(token).await
    }
    async fn pull(
        &self,
        _: &str,
        _: &PullRequest,
    ) -> Result<Received<PullResponse>, TransportError> {
        received(page(vec![], None, Some(3)))
    }
    async fn push(
        &self,
        _: &str,
        request: &PushRequest,
    ) -> Result<Received<PushResponse>, TransportError> {
        let mut seen = self.seen.lock().unwrap();
        let mut results: Vec<Value> = request
            .mutations
            .iter()
            .map(|m| {
                let status = if seen.insert(m.mutation_id) {
                    "applied"
                } else {
                    "duplicate"
                };
                json!({"mutation_id": m.mutation_id, "status": status, "version": 2})
            })
            .collect();
        if self.drop_last.load(Ordering::SeqCst) {
            results.pop();
        }
        received(serde_json::from_value(json!({ "results": results })).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_answer_missing_one_result_applies_nothing() {
    let d = device();
    d.sync(scripted(vec![page(good(3, 0), None, Some(3))]))
        .await
        .unwrap();
    {
        let mut a = d.account.lock().unwrap();
        let conn = a.store().unwrap().conn();
        for id in ["c0", "c1", "c2"] {
            let mut f = Map::new();
            f.insert("age".into(), json!(77));
            outbox::update(conn, "contact", id, f).unwrap();
        }
    }
    // The server applied all three but its answer leaves the last out: a protocol violation, and
    // none of the three leaves the outbox (before, the first two did: a half-applied answer).
    let t = Arc::new(EchoPush::default());
    t.drop_last.store(true, Ordering::SeqCst);
    assert_protocol_error(d.sync(t.clone()).await, "without a result for mutation");
    assert_eq!(d.pending(), 3, "nothing of the broken answer was applied");
    // The next Synchronize sends the same three, the server answers duplicate: all settled.
    t.drop_last.store(false, Ordering::SeqCst);
    let report = d.sync(t.clone()).await.unwrap();
    assert_eq!(d.pending(), 0);
    assert_eq!(report.records_uploaded, 3);
    assert_eq!(
        t.seen.lock().unwrap().len(),
        3,
        "the retry sent the same mutation ids"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_and_malformed_bodies_over_http() {
    use axum::routing::{get, post};
    let huge = || async {
        // 70 MiB streamed without a length, past the 64 MiB page limit.
        let chunk = axum::body::Bytes::from(vec![b' '; 1 << 20]);
        let stream = futures_util::stream::iter(
            (0..70).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
        );
        axum::body::Body::from_stream(stream)
    };
    let app = axum::Router::new()
        .route(
            "/sync/schema",
            get(|| async { "{\"schema_version\": \"one\"}" }),
        )
        .route("/sync/pull", post(huge));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/sync", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = syncvault::net::Http::new(&[]).unwrap();
    let t = HttpTransport::new(http, &base);
    match t.schema("token").await {
        Err(TransportError::Protocol(reason)) => assert!(reason.contains("schema"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let request = PullRequest {
        client_id: "c".into(),
        schema_version: 1,
        cursor: None,
        page_token: None,
        limit: 10,
        device: None,
        entities: None,
    };
    match t.pull("token", &request).await {
        Err(TransportError::Protocol(reason)) => assert!(reason.contains("larger"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn page_tokens_that_cycle_stop_the_pull() {
    let d = device();
    // A, B, A, B, ...: each page non-empty and its token differs from the one just sent.
    let pages: Vec<PullResponse> = (0..50)
        .map(|i| {
            page(
                good(10, i * 10),
                Some(if i % 2 == 0 { "A" } else { "B" }),
                None,
            )
        })
        .collect();
    let t = scripted(pages);
    assert_protocol_error(d.sync(Arc::clone(&t) as _).await, "came before");
    assert_eq!(
        t.pull_calls.load(Ordering::SeqCst),
        3,
        "stopped at the first repeat"
    );
    // A server that keeps sending pages far beyond its own estimate is stopped too.
    let pages: Vec<PullResponse> = (0..50)
        .map(|i| estimated_page(good(10, i * 10), Some(&format!("p{i}")), None, Some(5)))
        .collect();
    let t = scripted(pages);
    assert_protocol_error(d.sync(Arc::clone(&t) as _).await, "estimated");
    assert!(t.pull_calls.load(Ordering::SeqCst) < 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamps_are_parsed_for_real() {
    let d = device();
    let mut bad = good(2, 0);
    bad[1]["fields"]["born"] = json!("2026-13-45T99:99:99Z and then some");
    assert_protocol_error(
        d.sync(scripted(vec![page(bad, None, Some(2))])).await,
        "born",
    );
    assert_eq!(d.count(), 0);
    let mut fine = good(2, 0);
    fine[1]["fields"]["born"] = json!("1815-12-10T00:00:00Z");
    d.sync(scripted(vec![page(fine, None, Some(2))]))
        .await
        .unwrap();
    assert_eq!(d.count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_schema_is_the_servers_fault() {
    let d = device();
    for (schema, needle) in [
        (
            json!({"name": "contact", "fields": [{"name": "Full Name!", "type": "text"}]}),
            "invalid",
        ),
        (
            json!({"name": "contact", "fields": [{"name": "version", "type": "integer"}]}),
            "reserved",
        ),
    ] {
        let t = scripted(vec![]);
        *t.schema.lock().unwrap() = Some(schema);
        assert_protocol_error(d.sync(t).await, needle);
    }
    d.sync(scripted(vec![page(good(2, 0), None, Some(2))]))
        .await
        .unwrap();
    // A field that changes type is refused, and nothing of the new schema is applied.
    let t = scripted(vec![]);
    *t.schema.lock().unwrap() = Some(json!({"name": "contact", "fields": [
        {"name": "full_name", "type": "text", "searchable": true},
        {"name": "age", "type": "text"},
        {"name": "born", "type": "timestamp"},
        {"name": "title", "type": "text"}
    ]}));
    assert_protocol_error(d.sync(t).await, "changes the type of contact.age");
    assert_eq!(d.count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_the_server_refuses_means_a_full_resync_that_keeps_unsent_edits() {
    let d = device();
    // A server that lied: a cursor far ahead of its own sequence, accepted on a valid last page.
    d.sync(scripted(vec![page(good(5, 0), None, Some(1_000_000_000))]))
        .await
        .unwrap();
    {
        let mut a = d.account.lock().unwrap();
        let conn = a.store().unwrap().conn();
        let mut f = Map::new();
        f.insert("age".into(), json!(77));
        outbox::update(conn, "contact", "c1", f.clone()).unwrap();
    }
    // Now it refuses that cursor. The client downloads everything again (c4 is gone on the
    // server, c7 is new), keeps its queued edit, and says it did.
    let refused = TransportError::Status {
        status: 400,
        code: Some("invalid_cursor".into()),
        reason: "the cursor is not one this server gave".into(),
    };
    let mut everything = good(4, 0);
    everything.push(contact("c7", json!({"full_name": "New", "age": 7})));
    let t = Arc::new(Scripted {
        pulls: Mutex::new(
            vec![
                Err(refused),
                Ok(page(everything[..3].to_vec(), Some("r1"), None)),
                Ok(page(everything[3..].to_vec(), None, Some(120))),
            ]
            .into(),
        ),
        pushes: Mutex::new(
            vec![
                serde_json::from_value(json!({"results": [
                    {"mutation_id": 1, "status": "applied", "version": 2}
                ]}))
                .unwrap(),
            ]
            .into(),
        ),
        ..Default::default()
    });
    let report = d.sync(Arc::clone(&t) as _).await.unwrap();
    assert!(report.full_resync);
    assert_eq!(report.records_uploaded, 1, "the queued edit went up first");
    assert_eq!(
        *t.pull_cursors.lock().unwrap(),
        vec![Some(1_000_000_000), None, None],
        "the refused cursor, then a full pull"
    );
    assert_eq!(d.count(), 5, "c0..c3 and c7; c4 left");
    assert_eq!(d.meta("sync.cursor").as_deref(), Some("120"));
    {
        let mut a = d.account.lock().unwrap();
        let conn = a.store().unwrap().conn();
        assert!(entities::get(conn, "contact", "c4").unwrap().is_none());
        assert!(entities::get(conn, "contact", "c7").unwrap().is_some());
    }
    // An ordinary delta sync afterwards.
    let report = d
        .sync(scripted(vec![page(vec![], None, Some(121))]))
        .await
        .unwrap();
    assert!(!report.full_resync);
}

/// A sync API whose schema answers at once and whose pull is `pull`.
async fn http_api(pull: axum::routing::MethodRouter) -> String {
    use axum::routing::get;
    let schema =
        serde_json::to_string(&json!({"schema_version": 1, "entities": [contact_schema()]}))
            .unwrap();
    let app = axum::Router::new()
        .route("/sync/schema", get(move || async move { schema }))
        .route(
            "/sync/push",
            axum::routing::post(|| async { "{\"results\": []}" }),
        )
        .route("/sync/pull", pull);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/sync", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dribbling_server_and_endless_retry_after_hit_typed_time_bounds() {
    use futures_util::StreamExt;
    use syncvault::net::MinRate;
    use syncvault::sync::TimeBound;
    let d = device();
    // One byte every 200 ms: far below 1 KiB/s.
    let dribble = axum::routing::post(|| async {
        let stream = futures_util::stream::iter(0..10_000).then(|_| async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b" "))
        });
        axum::body::Body::from_stream(stream)
    });
    let base = http_api(dribble).await;
    let transport = HttpTransport::new(syncvault::net::Http::new(&[]).unwrap(), &base)
        .with_min_rate(Some(MinRate {
            bytes_per_second: 1024,
            window: std::time::Duration::from_secs(1),
        }));
    let started = std::time::Instant::now();
    let r = d.sync(Arc::new(transport)).await;
    assert!(
        matches!(
            r,
            Err(EngineError::TimedOut(TimeBound::MinimumTransferRate))
        ),
        "{r:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // 429 with a Retry-After longer than the deadline leaves, every time: the run ends at once
    // (it used to sleep a minute at a time until the retries ran out), with the default
    // deadline as with a short one.
    let busy = |seconds: &'static str| {
        axum::routing::post(move || async move {
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, seconds)],
                "{}",
            )
        })
    };
    let base = http_api(busy("86400")).await;
    for deadline in [
        Some(std::time::Duration::from_secs(2)),
        SyncOptions::default().deadline,
    ] {
        let transport = HttpTransport::new(syncvault::net::Http::new(&[]).unwrap(), &base);
        let started = std::time::Instant::now();
        let r = d
            .sync_with(
                Arc::new(transport),
                SyncOptions {
                    deadline,
                    ..Default::default()
                },
            )
            .await;
        match r {
            Err(EngineError::ServerBusy(asked)) => assert_eq!(asked.as_secs(), 86400),
            other => panic!("{other:?}"),
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    // A short Retry-After, every time: the waits count against the deadline, which ends it
    // (before the tenth retry) within the deadline: when the next wait, the server's or the
    // backoff's, no longer fits.
    let base = http_api(busy("1")).await;
    let transport = HttpTransport::new(syncvault::net::Http::new(&[]).unwrap(), &base);
    let started = std::time::Instant::now();
    let r = d
        .sync_with(
            Arc::new(transport),
            SyncOptions {
                deadline: Some(std::time::Duration::from_secs(3)),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(
            r,
            Err(EngineError::TimedOut(TimeBound::Deadline) | EngineError::ServerBusy(_))
        ),
        "{r:?}"
    );
    assert!(
        started.elapsed() <= std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
