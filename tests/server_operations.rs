//! What an operator sees of a running server (docs/deploy.md): `/healthz`, `/readyz` and the
//! Prometheus metrics at `/metrics`, read over real HTTP while a device syncs.

mod common;

use common::org::*;
use syncvault::ConflictMode;
use syncvault_server::ServerConfig;

/// The value of the sample named exactly `series` (name and labels), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn get(url: &str) -> (u16, String) {
    let answer = reqwest::Client::new().get(url).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_syncs_and_the_change_feed() {
    let srv = server(ServerConfig {
        records: 300,
        ..Default::default()
    })
    .await;
    assert_eq!(
        get(&format!("{}/healthz", srv.url)).await,
        (200, "ok".into())
    );
    assert_eq!(
        get(&format!("{}/readyz", srv.url)).await,
        (200, "ready".into())
    );

    let dir = tempfile::tempdir().unwrap();
    let c = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 100),
        "ada@contoso.example",
    )
    .await;
    sync(&c).await.unwrap();
    // A probe of a path nobody serves is one `unmatched` series, not one per path.
    assert_eq!(get(&format!("{}/no/such/page-1", srv.url)).await.0, 404);
    assert_eq!(get(&format!("{}/no/such/page-2", srv.url)).await.0, 404);

    let (status, text) = get(&format!("{}/metrics", srv.url)).await;
    assert_eq!(status, 200);
    let pulls = sample(
        &text,
        r#"syncvault_http_requests_total{method="POST",route="/api/sync/v2/pull",status="2xx"}"#,
    )
    .unwrap_or_else(|| panic!("no pull counter in\n{text}"));
    assert!(pulls >= 3.0, "300 records in pages of 100: {pulls} pulls");
    let timed = sample(
        &text,
        r#"syncvault_http_request_duration_seconds_count{method="POST",route="/api/sync/v2/pull"}"#,
    )
    .unwrap();
    assert_eq!(timed, pulls, "every pull is timed");
    assert_eq!(
        sample(
            &text,
            r#"syncvault_http_requests_total{method="GET",route="unmatched",status="4xx"}"#
        ),
        Some(2.0)
    );
    assert!(!text.contains("page-1"), "a path became a label");
    assert_eq!(sample(&text, "syncvault_active_syncs"), Some(0.0));
    assert_eq!(sample(&text, "syncvault_change_feed_devices"), Some(1.0));
    assert_eq!(sample(&text, "syncvault_change_feed_max_lag"), Some(0.0));
    let head = sample(&text, "syncvault_change_feed_sequence").unwrap();
    assert_eq!(head, srv.org.data.change_sequence() as f64);

    // Other users' edits put the device behind by as many changes, until it syncs.
    srv.org.data.simulate_edits(7, "edited elsewhere").unwrap();
    let text = get(&format!("{}/metrics", srv.url)).await.1;
    assert_eq!(sample(&text, "syncvault_change_feed_max_lag"), Some(7.0));
    sync(&c).await.unwrap();
    let text = get(&format!("{}/metrics", srv.url)).await.1;
    assert_eq!(sample(&text, "syncvault_change_feed_max_lag"), Some(0.0));
    assert!(
        !text.contains("Bearer") && !text.contains("ada@contoso"),
        "a secret or a person in the metrics"
    );
}
