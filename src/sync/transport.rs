//! How the engine reaches the server: a trait, so tests can drive the engine through an
//! in-process transport that misbehaves on purpose, and the HTTP implementation apps use.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::{PullRequest, PullResponse, PushRequest, PushResponse, SchemaResponse};
use crate::net::{Http, MinRate, NetError};

/// A transport failure, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// 401: the access token was refused (the engine refreshes once).
    #[error("the server refused the access token")]
    Unauthorized,
    /// Worth retrying: network errors, broken bodies, 408, 429, 5xx.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// TLS failures: retrying will not help.
    #[error("the secure connection failed: {0}")]
    Tls(String),
    /// A final error status (4xx other than 401/408/429), with the protocol's error code.
    #[error("server error {status}: {reason}")]
    Status {
        status: u16,
        code: Option<String>,
        reason: String,
    },
    /// The answer breaks the protocol (wrong shape, too large).
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
    /// The answer came slower than the minimum transfer rate (not retried: a bound).
    #[error("{0}")]
    TooSlow(String),
}

/// A decoded answer and how many bytes went over the wire for it (request and response).
#[derive(Debug, Clone)]
pub struct Received<T> {
    pub value: T,
    pub bytes: u64,
}

/// The three calls of protocol v1.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn schema(&self, token: &str) -> Result<Received<SchemaResponse>, TransportError>;
    async fn pull(
        &self,
        token: &str,
        request: &PullRequest,
    ) -> Result<Received<PullResponse>, TransportError>;
    async fn push(
        &self,
        token: &str,
        request: &PushRequest,
    ) -> Result<Received<PushResponse>, TransportError>;
}

/// Largest page body accepted (a page of 5000 large records stays well under it).
pub const PAGE_BODY_LIMIT: usize = 64 << 20;
/// Largest schema or push answer accepted.
pub const SMALL_BODY_LIMIT: usize = 8 << 20;

/// Protocol v1 over HTTPS (or http on loopback) with our reqwest client.
pub struct HttpTransport {
    http: Http,
    base: String,
    min_rate: Option<MinRate>,
}

impl HttpTransport {
    /// `base` is the discovered sync API, e.g. `https://org.example/api/sync/v2`.
    pub fn new(http: Http, base: &str) -> Self {
        HttpTransport {
            http,
            base: base.trim_end_matches('/').to_string(),
            min_rate: None,
        }
    }

    /// Answers must arrive at least this fast (`net::MinRate`).
    pub fn with_min_rate(mut self, rate: Option<MinRate>) -> Self {
        self.min_rate = rate;
        self
    }

    async fn exchange<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        body: Option<&B>,
        limit: usize,
    ) -> Result<Received<T>, TransportError> {
        let url = format!("{}/{path}", self.base);
        let client = self.http.client();
        let (request, sent) = match body {
            Some(b) => {
                let json =
                    serde_json::to_vec(b).map_err(|e| TransportError::Protocol(e.to_string()))?;
                let len = json.len() as u64;
                (
                    client
                        .post(url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(json),
                    len,
                )
            }
            None => (client.get(url), 0),
        };
        let response = self
            .http
            .send_at_least(request.bearer_auth(token), limit, self.min_rate)
            .await
            .map_err(|e| match e {
                NetError::Tls { .. } => TransportError::Tls(e.to_string()),
                NetError::TooSlow(_) => TransportError::TooSlow(e.to_string()),
                NetError::TooLarge(n) => {
                    TransportError::Protocol(format!("an answer larger than {n} bytes"))
                }
                other => TransportError::Retryable {
                    reason: other.to_string(),
                    retry_after: None,
                },
            })?;
        let status = response.status;
        if status.is_success() {
            let value = serde_json::from_slice(&response.body).map_err(|e| {
                tracing::debug!(path, "undecodable answer: {e}");
                TransportError::Protocol(format!(
                    "{path}: an answer of the wrong shape (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            return Ok(Received {
                value,
                bytes: sent + response.body.len() as u64,
            });
        }
        let retry_after = response
            .headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let error: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let code = error["error"].as_str().map(str::to_string);
        // The server's own words stay in the log; errors carry the status and code.
        let reason = error["error_description"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        tracing::debug!(path, %status, code = code.as_deref(), "{reason}");
        let retryable = || TransportError::Retryable {
            reason: format!("the server answered HTTP {}", status.as_u16()),
            retry_after,
        };
        Err(match status {
            StatusCode::UNAUTHORIZED => TransportError::Unauthorized,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => retryable(),
            s if s.is_server_error() => retryable(),
            s => TransportError::Status {
                status: s.as_u16(),
                code,
                reason,
            },
        })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn schema(&self, token: &str) -> Result<Received<SchemaResponse>, TransportError> {
        self.exchange::<(), _>(token, "schema", None, SMALL_BODY_LIMIT)
            .await
    }

    async fn pull(
        &self,
        token: &str,
        request: &PullRequest,
    ) -> Result<Received<PullResponse>, TransportError> {
        self.exchange(token, "pull", Some(request), PAGE_BODY_LIMIT)
            .await
    }

    async fn push(
        &self,
        token: &str,
        request: &PushRequest,
    ) -> Result<Received<PushResponse>, TransportError> {
        self.exchange(token, "push", Some(request), SMALL_BODY_LIMIT)
            .await
    }
}
