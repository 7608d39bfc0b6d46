//! What the live view costs, side by side in one process: a delta sync of 10k server changes
//! with no watch against the same with 50 watches open (the screens of an app: lists, searches,
//! detail records, count badges, the status line), alternating rounds, means; and the time
//! from a local edit to its delivery to a watch (median and p99 over 200 edits).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncvault::{
    CountObserver, FieldValue, QueryObserver, QueryWatch, RecordObserver, RecordQuery, SyncClient,
    SyncError, SyncRecord, SyncStatus, SyncStatusObserver,
};
use tokio::sync::mpsc;

use crate::{Quiet, options, signed_in_client, simulate_edits, start_server};

const ROUNDS: usize = 2;
const DELTA: u32 = 10_000;
const EDITS: usize = 200;

/// Counts deliveries; the latency probe also reports the notes it saw.
struct Sink {
    notes: Option<mpsc::UnboundedSender<String>>,
}

impl QueryObserver for Sink {
    fn on_records(&self, _: Vec<SyncRecord>) {}
    fn on_error(&self, e: SyncError) {
        panic!("watch failed: {e:?}")
    }
}

impl RecordObserver for Sink {
    fn on_record(&self, record: Option<SyncRecord>) {
        if let (Some(tx), Some(FieldValue::Text { value })) = (
            &self.notes,
            record.as_ref().and_then(|r| r.fields.get("notes")),
        ) {
            let _ = tx.send(value.clone());
        }
    }
    fn on_error(&self, e: SyncError) {
        panic!("watch failed: {e:?}")
    }
}

impl CountObserver for Sink {
    fn on_count(&self, _: u64) {}
    fn on_error(&self, e: SyncError) {
        panic!("watch failed: {e:?}")
    }
}

impl SyncStatusObserver for Sink {
    fn on_status(&self, _: SyncStatus) {}
}

fn sink() -> Arc<Sink> {
    Arc::new(Sink { notes: None })
}

/// The 50 watches of a busy app.
fn open_watches(c: &SyncClient) -> Vec<Arc<QueryWatch>> {
    let entities = [
        ("account", "name"),
        ("contact", "full_name"),
        ("activity", "subject"),
    ];
    let mut watches = Vec::new();
    for i in 0..20 {
        let (entity, order) = entities[i % 3];
        let query = RecordQuery {
            order_by: Some(order.into()),
            limit: Some(50),
            offset: (i as u32 / 3) * 50,
            ..Default::default()
        };
        watches.push(c.watch_query(entity.into(), query, sink()).unwrap());
    }
    for (i, text) in [
        "ada", "grace", "north", "call", "lee", "con", "pa", "mar", "st", "jo",
    ]
    .iter()
    .enumerate()
    {
        let query = RecordQuery {
            search: Some(text.to_string()),
            limit: Some(20),
            ..Default::default()
        };
        let entity = entities[i % 3].0;
        watches.push(c.watch_query(entity.into(), query, sink()).unwrap());
    }
    for i in 1..=10 {
        watches.push(c.watch_record("contact".into(), format!("c{i:09}"), sink()));
    }
    for i in 0..9 {
        watches.push(c.watch_count(entities[i % 3].0.into(), sink()));
    }
    watches.push(c.watch_sync_status(sink()));
    assert_eq!(watches.len(), 50);
    watches
}

async fn delta(c: &Arc<SyncClient>, url: &str) -> f64 {
    simulate_edits(url, DELTA).await;
    let report = Arc::clone(c)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();
    assert_eq!(report.records_downloaded, DELTA as u64);
    report.seconds
}

pub async fn run(bin: &str, n: u64) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = start_server(bin, n, tmp.path()).await;
    // The default watch interval (50 ms), as an app gets it.
    let client = signed_in_client(&url, &tmp.path().join("vault"), options()).await;
    Arc::clone(&client)
        .synchronize(Arc::new(Quiet), None)
        .await
        .unwrap();

    // Each delta changes the records changed longest ago, so consecutive deltas alternate
    // between two halves of the data with different entity mixes: the order without, with,
    // with, without gives both sides each half equally often.
    let (mut without, mut with) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        for watched in [false, true, true, false] {
            let watches = watched.then(|| open_watches(&client));
            if watched {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let seconds = delta(&client, &url).await;
            *(if watched { &mut with } else { &mut without }) += seconds;
            drop(watches);
        }
    }
    let (without, with) = (without / (2 * ROUNDS) as f64, with / (2 * ROUNDS) as f64);

    // Edit to delivery: one detail screen open, edits further apart than the watch interval.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let probe = Arc::new(Sink { notes: Some(tx) });
    let id = "c000000001";
    let _watch = client.watch_record("contact".into(), id.into(), probe);
    let mut latencies = Vec::new();
    for i in 0..EDITS {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let value = format!("latency probe {i}");
        let started = Instant::now();
        client
            .update_record(
                "contact".into(),
                id.into(),
                HashMap::from([(
                    "notes".into(),
                    FieldValue::Text {
                        value: value.clone(),
                    },
                )]),
            )
            .await
            .unwrap();
        while rx.recv().await.unwrap() != value {}
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    json!({
        "records": n,
        "delta": DELTA,
        "delta_seconds_no_watches": without,
        "delta_seconds_50_watches": with,
        "rate_ratio_50_watches": without / with,
        "edit_to_delivery_ms_median": latencies[EDITS / 2],
        "edit_to_delivery_ms_p99": latencies[EDITS * 99 / 100],
    })
}
