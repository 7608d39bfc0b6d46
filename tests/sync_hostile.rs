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
    pulls: Mutex<VecDeque<PullResponse>>,
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
        })
    }
    async fn pull(
        &self,
        _: &str,
        _: &PullRequest,
    ) -> Result<Received<PullResponse>, TransportError> {
        self.pull_calls.fetch_add(1, Ordering::SeqCst);
        let next = self.pulls.lock().unwrap().pop_front();
        next.map(received).unwrap_or_else(|| Err(script_ended()))
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

fn contact(id: &str, fields: Value) -> Change {
    Change {
        entity: "contact".into(),
        id: id.into(),
        version: 1,
        op: ChangeOp::Upsert,
        fields: fields.as_object().cloned().unwrap_or_default(),
    }
}

fn page(changes: Vec<Change>, page_token: Option<&str>, cursor: Option<i64>) -> PullResponse {
    PullResponse {
        changes,
        page_token: page_token.map(str::to_string),
        cursor,
        estimated_total: None,
    }
}

fn good(n: usize, from: usize) -> Vec<Change> {
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
        syncvault::sync::run(SyncContext {
            account: Arc::clone(&self.account),
            transport,
            tokens: Arc::new(StaticToken),
            options: SyncOptions {
                page_size: 10,
                ..Default::default()
            },
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
        pulls: Mutex::new(pulls.into()),
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
    alien[1].entity = "invoice".into();
    assert_protocol_error(
        d.sync(scripted(vec![page(alien, None, Some(3))])).await,
        "invoice",
    );

    let mut unknown_field = good(2, 0);
    unknown_field[0].fields.insert("salary".into(), json!(1));
    assert_protocol_error(
        d.sync(scripted(vec![page(unknown_field, None, Some(2))]))
            .await,
        "salary",
    );

    let mut zero = good(2, 0);
    zero[1].version = 0;
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
    let t = scripted(vec![page(vec![], Some("p1"), None); 50]);
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
    newer[0].version = 2;
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
        .map(|i| PullResponse {
            estimated_total: Some(5),
            ..page(good(10, i * 10), Some(&format!("p{i}")), None)
        })
        .collect();
    let t = scripted(pages);
    assert_protocol_error(d.sync(Arc::clone(&t) as _).await, "estimated");
    assert!(t.pull_calls.load(Ordering::SeqCst) < 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamps_are_parsed_for_real() {
    let d = device();
    let mut bad = good(2, 0);
    bad[1]
        .fields
        .insert("born".into(), json!("2026-13-45T99:99:99Z and then some"));
    assert_protocol_error(
        d.sync(scripted(vec![page(bad, None, Some(2))])).await,
        "born",
    );
    assert_eq!(d.count(), 0);
    let mut fine = good(2, 0);
    fine[1]
        .fields
        .insert("born".into(), json!("1815-12-10T00:00:00Z"));
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
