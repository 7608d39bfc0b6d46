//! How the engine reaches the server: a trait, so tests can drive the engine through an
//! in-process transport that misbehaves on purpose, and the HTTP implementation apps use.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::{
    PullRequest, PullResponse, PushRequest, PushResponse, SchemaResponse, UploadState,
};
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

/// The calls of protocol v2 (docs/protocol.md).
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

    /// `POST attachments/uploads`: the upload session for this content (found again after a
    /// lost answer or a crash), and the offset to continue at.
    async fn create_upload(
        &self,
        _token: &str,
        _sha256: &str,
        _size: u64,
    ) -> Result<Received<UploadState>, TransportError> {
        Err(no_attachments())
    }

    /// `PUT attachments/uploads/{id}?offset=N`: one chunk; returns the offset the server holds.
    async fn upload_chunk(
        &self,
        _token: &str,
        _upload_id: &str,
        _offset: u64,
        _bytes: bytes::Bytes,
    ) -> Result<Received<u64>, TransportError> {
        Err(no_attachments())
    }

    /// `POST attachments/uploads/{id}/finish`.
    async fn finish_upload(
        &self,
        _token: &str,
        _upload_id: &str,
    ) -> Result<Received<()>, TransportError> {
        Err(no_attachments())
    }

    /// `GET attachments/{id}/content` from `offset`.
    async fn download(
        &self,
        _token: &str,
        _id: &str,
        _offset: u64,
    ) -> Result<ContentStream, TransportError> {
        Err(no_attachments())
    }
}

fn no_attachments() -> TransportError {
    TransportError::Protocol("this transport carries no attachments".into())
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
        self.exchange_with(token, path, body, limit, |b| serde_json::from_slice(&b))
            .await
    }

    /// As [`Self::exchange`], with the answer's body read by `decode` (a page keeps its body).
    async fn exchange_with<B: Serialize + Sync, T>(
        &self,
        token: &str,
        path: &str,
        body: Option<&B>,
        limit: usize,
        decode: impl FnOnce(Vec<u8>) -> Result<T, serde_json::Error>,
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
            .map_err(net_error)?;
        let status = response.status;
        if status.is_success() {
            let received = response.body.len() as u64;
            let value = decode(response.body).map_err(|e| {
                tracing::debug!(path, "undecodable answer: {e}");
                TransportError::Protocol(format!(
                    "{path}: an answer of the wrong shape (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            return Ok(Received {
                value,
                bytes: sent + received,
            });
        }
        Err(status_error(
            path,
            status,
            &response.headers,
            &response.body,
        ))
    }

    /// The sync API's URL with `segments` appended, each percent-encoded (ids in paths).
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, TransportError> {
        let bad = || TransportError::Protocol("the sync API URL is not a base URL".into());
        let mut url = reqwest::Url::parse(&self.base).map_err(|_| bad())?;
        url.path_segments_mut().map_err(|_| bad())?.extend(segments);
        Ok(url)
    }

    /// A JSON answer to an attachment call (`what` names it in logs and errors).
    async fn attachment_call<T: DeserializeOwned>(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        sent: u64,
        token: &str,
    ) -> Result<Received<T>, TransportError> {
        let response = self
            .http
            .send_at_least(request.bearer_auth(token), SMALL_BODY_LIMIT, self.min_rate)
            .await
            .map_err(net_error)?;
        if !response.status.is_success() {
            return Err(status_error(
                what,
                response.status,
                &response.headers,
                &response.body,
            ));
        }
        let value = serde_json::from_slice(&response.body).map_err(|_| {
            TransportError::Protocol(format!("{what}: an answer of the wrong shape"))
        })?;
        Ok(Received {
            value,
            bytes: sent + response.body.len() as u64,
        })
    }
}

fn net_error(e: NetError) -> TransportError {
    match e {
        NetError::Tls { .. } => TransportError::Tls(e.to_string()),
        NetError::TooSlow(_) => TransportError::TooSlow(e.to_string()),
        NetError::TooLarge(n) => {
            TransportError::Protocol(format!("an answer larger than {n} bytes"))
        }
        other => TransportError::Retryable {
            reason: other.to_string(),
            retry_after: None,
        },
    }
}

/// A non-success answer, classified for the retry policy.
fn status_error(
    path: &str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> TransportError {
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let error: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = error["error"].as_str().map(str::to_string);
    // The server's own words stay in the log; errors carry the status and code (and, for
    // `not_a_member`, its `reason` code, which the app's error turns into syncvault's words).
    let described = if code.as_deref() == Some("not_a_member") {
        "reason"
    } else {
        "error_description"
    };
    let reason = error[described]
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
    match status {
        StatusCode::UNAUTHORIZED => TransportError::Unauthorized,
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => retryable(),
        s if s.is_server_error() => retryable(),
        s => TransportError::Status {
            status: s.as_u16(),
            code,
            reason,
        },
    }
}

/// The body of a content download, as it arrives.
pub struct ContentStream {
    body: Body,
    /// The offset the server answers from (0 when it ignored the range).
    pub start: u64,
}

enum Body {
    Http {
        response: reqwest::Response,
        stall: Duration,
    },
    /// Pieces a transport that is not HTTP already holds, an error where the body breaks off.
    Pieces(std::collections::VecDeque<Result<bytes::Bytes, TransportError>>),
}

impl ContentStream {
    /// A body a transport other than HTTP hands over in pieces (the simulator's network, which
    /// can break a body off with an error where a real connection would).
    pub fn from_pieces(
        start: u64,
        pieces: impl IntoIterator<Item = Result<bytes::Bytes, TransportError>>,
    ) -> ContentStream {
        ContentStream {
            body: Body::Pieces(pieces.into_iter().collect()),
            start,
        }
    }

    /// The next piece of content (None at the end); a stall longer than the window is an error.
    pub async fn next(&mut self) -> Result<Option<bytes::Bytes>, TransportError> {
        let (response, stall) = match &mut self.body {
            Body::Pieces(pieces) => return pieces.pop_front().transpose(),
            Body::Http { response, stall } => (response, *stall),
        };
        match tokio::time::timeout(stall, response.chunk()).await {
            Err(_) => Err(TransportError::Retryable {
                reason: "the download stalled".into(),
                retry_after: None,
            }),
            Ok(Err(_)) => Err(TransportError::Retryable {
                reason: "the download broke".into(),
                retry_after: None,
            }),
            Ok(Ok(chunk)) => Ok(chunk),
        }
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
        self.exchange_with(
            token,
            "pull",
            Some(request),
            PAGE_BODY_LIMIT,
            PullResponse::decode,
        )
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

    async fn create_upload(
        &self,
        token: &str,
        sha256: &str,
        size: u64,
    ) -> Result<Received<UploadState>, TransportError> {
        let body = serde_json::to_vec(&serde_json::json!({"sha256": sha256, "size": size}))
            .map_err(|e| TransportError::Protocol(e.to_string()))?;
        let sent = body.len() as u64;
        let request = self
            .http
            .client()
            .post(self.url(&["attachments", "uploads"])?)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.attachment_call("attachments/uploads", request, sent, token)
            .await
    }

    async fn upload_chunk(
        &self,
        token: &str,
        upload_id: &str,
        offset: u64,
        bytes: bytes::Bytes,
    ) -> Result<Received<u64>, TransportError> {
        #[derive(serde::Deserialize)]
        struct Held {
            offset: u64,
        }
        let sent = bytes.len() as u64;
        let mut url = self.url(&["attachments", "uploads", upload_id])?;
        url.query_pairs_mut()
            .append_pair("offset", &offset.to_string());
        let request = self
            .http
            .client()
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        let held: Received<Held> = self
            .attachment_call("attachments/uploads/chunk", request, sent, token)
            .await?;
        Ok(Received {
            value: held.value.offset,
            bytes: held.bytes,
        })
    }

    async fn finish_upload(
        &self,
        token: &str,
        upload_id: &str,
    ) -> Result<Received<()>, TransportError> {
        let request =
            self.http
                .client()
                .post(self.url(&["attachments", "uploads", upload_id, "finish"])?);
        let done: Received<serde_json::Value> = self
            .attachment_call("attachments/uploads/finish", request, 0, token)
            .await?;
        Ok(Received {
            value: (),
            bytes: done.bytes,
        })
    }

    async fn download(
        &self,
        token: &str,
        id: &str,
        offset: u64,
    ) -> Result<ContentStream, TransportError> {
        let stall = self.min_rate.map_or(Duration::from_secs(60), |r| r.window);
        let request = self
            .http
            .client()
            .get(self.url(&["attachments", id, "content"])?)
            .header(reqwest::header::RANGE, format!("bytes={offset}-"))
            .timeout(Duration::from_secs(24 * 3600))
            .bearer_auth(token);
        let response = tokio::time::timeout(stall, request.send())
            .await
            .map_err(|_| TransportError::Retryable {
                reason: "the download did not start in time".into(),
                retry_after: None,
            })?
            .map_err(|_| TransportError::Retryable {
                reason: "the download could not start".into(),
                retry_after: None,
            })?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            let body = &body[..body.len().min(64 << 10)];
            return Err(status_error("attachments/content", status, &headers, body));
        }
        let start = if status == StatusCode::PARTIAL_CONTENT {
            response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    TransportError::Protocol("a partial answer without its range".into())
                })?
        } else {
            0
        };
        Ok(ContentStream {
            body: Body::Http { response, stall },
            start,
        })
    }
}
