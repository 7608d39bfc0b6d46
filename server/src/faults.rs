//! Fault injection for tests: the sync API answers some requests with an error status, a 429 with
//! Retry-After, a delay, a connection reset, a truncated body or a slowly dribbled body.
//! Resets and truncations happen *after* the handler ran, so a push is applied and its answer
//! lost — the case that duplicates edits in clients that are not idempotent.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use rand::Rng;
use std::sync::Arc;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status (429 carries `Retry-After: 1`).
    Status(u16),
    /// Wait 300 ms before handling.
    Delay,
    /// Handle, then break the connection before the body.
    Reset,
    /// Handle, then send half the body and break the connection.
    Truncate,
    /// Handle, then send the body in small chunks with pauses.
    Slow,
}

/// Faults and their probabilities, e.g. parsed from `500:0.1,429:0.05,reset:0.05`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec(pub Vec<(FaultKind, f64)>);

impl FaultSpec {
    /// Parses `KIND:RATE,...` where KIND is an HTTP status or delay/reset/truncate/slow, and
    /// `all:RATE` spreads RATE over every kind.
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut faults = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, rate) = part
                .split_once(':')
                .ok_or_else(|| format!("{part:?}: expected KIND:RATE"))?;
            let rate: f64 = rate
                .parse()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| format!("{part:?}: RATE is a number from 0 to 1"))?;
            let kinds = match kind {
                "all" => vec![
                    FaultKind::Status(500),
                    FaultKind::Status(503),
                    FaultKind::Status(429),
                    FaultKind::Delay,
                    FaultKind::Reset,
                    FaultKind::Truncate,
                    FaultKind::Slow,
                ],
                "delay" => vec![FaultKind::Delay],
                "reset" => vec![FaultKind::Reset],
                "truncate" => vec![FaultKind::Truncate],
                "slow" => vec![FaultKind::Slow],
                status => match status.parse::<u16>() {
                    Ok(s) if (400..=599).contains(&s) => vec![FaultKind::Status(s)],
                    _ => return Err(format!("{kind:?}: unknown fault kind")),
                },
            };
            let share = rate / kinds.len() as f64;
            faults.extend(kinds.into_iter().map(|k| (k, share)));
        }
        if faults.iter().map(|(_, r)| r).sum::<f64>() > 1.0 {
            return Err("the rates add up to more than 1".into());
        }
        Ok(FaultSpec(faults))
    }
}

/// The live fault configuration of a server (tests switch it on and off).
#[derive(Default)]
pub struct Faults {
    spec: Mutex<FaultSpec>,
    injected: AtomicU64,
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Self {
        Faults {
            spec: Mutex::new(spec),
            injected: AtomicU64::new(0),
        }
    }

    /// Replaces the configuration.
    pub fn set(&self, spec: FaultSpec) {
        *self.spec.lock().unwrap() = spec;
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn pick(&self) -> Option<FaultKind> {
        let spec = self.spec.lock().unwrap();
        let mut roll: f64 = rand::rng().random();
        for (kind, rate) in &spec.0 {
            if roll < *rate {
                self.injected.fetch_add(1, Ordering::Relaxed);
                return Some(*kind);
            }
            roll -= rate;
        }
        None
    }
}

fn broken() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected fault")
}

/// Middleware over the sync API.
pub async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let Some(kind) = faults.pick() else {
        return next.run(req).await;
    };
    tracing::debug!(?kind, "injecting a fault");
    match kind {
        FaultKind::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = r#"{"error":"injected_fault","error_description":"fault injection"}"#;
            let mut resp =
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            if status == StatusCode::TOO_MANY_REQUESTS {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            resp
        }
        FaultKind::Delay => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            next.run(req).await
        }
        FaultKind::Reset | FaultKind::Truncate | FaultKind::Slow => {
            let (mut parts, body) = next.run(req).await.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts.headers.remove(header::CONTENT_LENGTH);
            let body = match kind {
                FaultKind::Reset => Body::from_stream(stream::iter([Err::<Bytes, _>(broken())])),
                FaultKind::Truncate => {
                    let half = bytes.slice(..bytes.len() / 2);
                    Body::from_stream(stream::iter([Ok(half), Err(broken())]))
                }
                _ => {
                    let chunk = bytes.len().div_ceil(8).max(1);
                    let pieces: Vec<Bytes> = (0..bytes.len())
                        .step_by(chunk)
                        .map(|i| bytes.slice(i..(i + chunk).min(bytes.len())))
                        .collect();
                    Body::from_stream(stream::unfold(pieces.into_iter(), |mut it| async move {
                        let piece = it.next()?;
                        tokio::time::sleep(Duration::from_millis(25)).await;
                        Some((Ok::<_, std::io::Error>(piece), it))
                    }))
                }
            };
            Response::from_parts(parts, body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let spec = FaultSpec::parse("500:0.1, 429:0.05,reset:0.05").unwrap();
        assert_eq!(spec.0.len(), 3);
        assert_eq!(spec.0[1], (FaultKind::Status(429), 0.05));
        assert_eq!(FaultSpec::parse("all:0.7").unwrap().0.len(), 7);
        assert!(FaultSpec::parse("teapot:0.1").is_err());
        assert!(FaultSpec::parse("500:2").is_err());
        assert!(FaultSpec::parse("500:0.6,503:0.6").is_err());
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
    }
}
