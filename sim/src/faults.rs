//! What can go wrong with one request, and its delivery to the server in process. A fault is
//! drawn from the run's random stream when the request is delivered.

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use rand::Rng;
use syncvault::sync::TransportError;
use tower::ServiceExt;

use crate::net::{Answer, Reply, Request};

/// One request's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Delivered, answered.
    None,
    /// Lost on the way: the server never saw it.
    LostRequest,
    /// The server handled it; the answer was lost.
    LostAnswer,
    /// The server handled it; the answer broke off half-way.
    Truncated,
    /// Delivered twice (a retrying proxy); the device gets the second answer.
    Duplicated,
    /// A 503 from a proxy before the server.
    Unavailable,
    /// 429 with `Retry-After` seconds (the simulated clock passes them at once).
    Busy(u64),
    /// The access token expired on the way: 401 without reaching the sync API.
    TokenExpired,
}

impl Fault {
    /// Draws a fault (`None` most of the time).
    pub fn draw(rng: &mut impl Rng) -> Fault {
        match rng.random_range(0..100) {
            0..4 => Fault::LostRequest,
            4..8 => Fault::LostAnswer,
            8..10 => Fault::Truncated,
            10..13 => Fault::Duplicated,
            13..16 => Fault::Unavailable,
            16..18 => Fault::Busy(rng.random_range(1..=30)),
            18..21 => Fault::TokenExpired,
            _ => Fault::None,
        }
    }

    /// The trace's name for it.
    pub fn name(self) -> String {
        match self {
            Fault::None => "ok".into(),
            Fault::LostRequest => "lost-request".into(),
            Fault::LostAnswer => "lost-answer".into(),
            Fault::Truncated => "truncated".into(),
            Fault::Duplicated => "duplicated".into(),
            Fault::Unavailable => "503".into(),
            Fault::Busy(s) => format!("429/{s}s"),
            Fault::TokenExpired => "token-expired".into(),
        }
    }
}

fn broken(reason: &str) -> TransportError {
    TransportError::Retryable {
        reason: reason.into(),
        retry_after: None,
    }
}

/// Delivers `request` to the server through `router` with `fault`; returns what the device
/// receives and the server's status (0 when it never answered).
pub async fn deliver(router: &Router, request: &Request, fault: Fault) -> (Reply, u16) {
    match fault {
        Fault::LostRequest => return (Err(broken("the request was lost")), 0),
        Fault::Unavailable => return (Ok(synthetic(503, None)), 0),
        Fault::Busy(s) => return (Ok(synthetic(429, Some(s))), 0),
        Fault::TokenExpired => return (Ok(synthetic(401, None)), 0),
        _ => {}
    }
    let mut answer = handle(router, request).await;
    if fault == Fault::Duplicated {
        answer = handle(router, request).await;
    }
    let status = answer.status;
    match fault {
        Fault::LostAnswer => (
            Err(broken("the connection reset before the answer")),
            status,
        ),
        // A download's content streams: the device keeps what came before the break.
        Fault::Truncated if request.call == "content" && answer.status < 300 => {
            let kept = answer.body.len() / 2;
            answer.body.truncate(kept);
            answer.broken = true;
            (Ok(answer), status)
        }
        Fault::Truncated => (Err(broken("the answer broke off")), status),
        _ => (Ok(answer), status),
    }
}

fn synthetic(status: u16, retry_after: Option<u64>) -> Answer {
    let error = match status {
        401 => r#"{"error":"invalid_token","error_description":"the access token expired"}"#,
        _ => r#"{"error":"unavailable"}"#,
    };
    Answer {
        status,
        retry_after,
        range_start: None,
        body: Bytes::from_static(error.as_bytes()),
        broken: false,
    }
}

/// One request answered by the server's own router, as over HTTP.
async fn handle(router: &Router, request: &Request) -> Answer {
    let mut builder = axum::http::Request::builder()
        .method(request.method)
        .uri(format!("/api/sync/v2/{}", request.path))
        .header("host", crate::world::ORG_HOST)
        .header("authorization", format!("Bearer {}", request.token));
    if let Some(kind) = request.content_type {
        builder = builder.header("content-type", kind);
    }
    if let Some(from) = request.range_from {
        builder = builder.header("range", format!("bytes={from}-"));
    }
    let http = builder
        .body(Body::from(request.body.clone()))
        .expect("a well-formed request");
    let response = router
        .clone()
        .oneshot(http)
        .await
        .expect("the router is infallible");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse().ok());
    // `bytes N-M/T`: where a partial answer starts.
    let range_start = header("content-range")
        .and_then(|v| v.strip_prefix("bytes ")?.split('-').next()?.parse().ok());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    Answer {
        status,
        retry_after,
        range_start,
        body,
        broken: false,
    }
}
