//! What an operator watches (docs/deploy.md): Prometheus metrics at `/metrics` — requests and
//! latencies per route (the route's pattern, never its ids), requests in flight, active syncs,
//! the change feed's head and how far the device furthest behind is — and `/readyz`, which
//! answers 200 only while both stores answer. `prometheus-client` (the Prometheus project's own
//! Rust client) does the bookkeeping and the text format.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Org;

/// One route as Prometheus sees it: the matched pattern keeps the label set small.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// A route and the class of its answer (`2xx`, `4xx`, `5xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    method: String,
    route: String,
    status: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The server's metrics; one per process, shared by every request.
pub struct Metrics {
    registry: Registry,
    requests: Family<AnswerLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Family<RouteLabels, Gauge>,
    active_syncs: Gauge,
    feed_head: Gauge,
    feed_devices: Gauge,
    feed_max_behind: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("syncvault");
        let requests = Family::<AnswerLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let in_flight = Family::<RouteLabels, Gauge>::default();
        let active_syncs = Gauge::default();
        let feed_head = Gauge::default();
        let feed_devices = Gauge::default();
        let feed_max_behind = Gauge::default();
        registry.register(
            "http_requests",
            "Requests answered, by route and status class",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being answered now, by route",
            in_flight.clone(),
        );
        registry.register(
            "active_syncs",
            "Pulls and pushes being answered now",
            active_syncs.clone(),
        );
        registry.register(
            "change_feed_sequence",
            "The last change sequence handed out",
            feed_head.clone(),
        );
        registry.register(
            "change_feed_devices",
            "Devices with a stored cursor",
            feed_devices.clone(),
        );
        registry.register(
            "change_feed_max_lag",
            "Changes between the head and the cursor of the device furthest behind",
            feed_max_behind.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            active_syncs,
            feed_head,
            feed_devices,
            feed_max_behind,
        }
    }
}

/// The route label: the pattern axum matched, or one bucket for everything unmatched (404s must
/// not add a label per probed path).
fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into())
}

fn is_sync(route: &str) -> bool {
    route.ends_with("/pull") || route.ends_with("/push")
}

/// Counts and times every request (a layer over the whole router).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = RouteLabels {
        method: request.method().as_str().to_string(),
        route: route_of(&request),
    };
    let sync = is_sync(&route.route);
    let in_flight = metrics.in_flight.get_or_create(&route).clone();
    in_flight.inc();
    if sync {
        metrics.active_syncs.inc();
    }
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&route)
        .observe(started.elapsed().as_secs_f64());
    in_flight.dec();
    if sync {
        metrics.active_syncs.dec();
    }
    let code = response.status().as_u16();
    // The access log: the route's pattern, never a path with ids, a query or a header.
    tracing::info!(
        target: "syncvault::http",
        method = %route.method,
        route = %route.route,
        status = code,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    let status = format!("{}xx", code / 100);
    metrics
        .requests
        .get_or_create(&AnswerLabels {
            method: route.method,
            route: route.route,
            status,
        })
        .inc();
    response
}

/// `GET /metrics`: the text exposition (OpenMetrics, which Prometheus scrapes).
pub async fn render(State(org): State<Arc<Org>>) -> Response {
    let metrics = Arc::clone(&org.metrics);
    let data = Arc::clone(&org.data);
    let feed = tokio::task::spawn_blocking(move || data.feed_lag()).await;
    if let Ok(Ok(feed)) = feed {
        metrics.feed_head.set(feed.head);
        metrics.feed_devices.set(feed.devices);
        metrics.feed_max_behind.set(feed.max_behind);
    }
    let mut body = String::new();
    if encode(&mut body, &metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /readyz`: 200 while the organization's state and its records answer, else 503 (a load
/// balancer takes the instance out of rotation).
pub async fn ready(State(org): State<Arc<Org>>) -> Response {
    let check = Arc::clone(&org);
    let answered = tokio::task::spawn_blocking(move || {
        check.data.feed_lag().is_ok() && check.store.connection().is_ok()
    })
    .await
    .unwrap_or(false);
    if answered {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pull_and_push_are_syncs() {
        assert!(is_sync("/api/sync/v2/pull"));
        assert!(is_sync("/api/sync/v2/push"));
        assert!(!is_sync("/api/sync/v2/schema"));
        assert!(!is_sync("/api/sync/v2/attachments/{id}/content"));
    }
}
