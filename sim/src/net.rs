//! The simulated network: every device's request stops here until the simulation delivers it.
//! The simulation delivers only when every running device is waiting for an answer (or done),
//! so which request goes next, and what goes wrong with it, is the seed's choice alone, never
//! the threads'. Each device has at most one request in flight (the engine sends one at a time).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use syncvault::sync::protocol::UploadState;
use syncvault::sync::protocol::{
    PullRequest, PullResponse, PushRequest, PushResponse, SchemaResponse,
};
use syncvault::sync::transport::ContentStream;
use syncvault::sync::{Received, Transport, TransportError};
use tokio::sync::{Notify, oneshot};

/// One HTTP request of the sync API, as a device sent it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `schema`, `pull`, `push`, `upload`, `chunk`, `finish` or `content` (the trace names
    /// requests by it).
    pub call: &'static str,
    pub method: &'static str,
    /// The path and query below `/api/sync/v2/`.
    pub path: String,
    pub content_type: Option<&'static str>,
    /// A download's `Range: bytes=N-`.
    pub range_from: Option<u64>,
    pub token: String,
    pub body: Bytes,
}

impl Request {
    /// A call of the protocol's JSON API: GET without a body, POST with one.
    fn json(call: &'static str, token: &str, body: Bytes) -> Request {
        Request {
            call,
            method: if body.is_empty() { "GET" } else { "POST" },
            path: call.to_string(),
            content_type: (!body.is_empty()).then_some("application/json"),
            range_from: None,
            token: token.to_string(),
            body,
        }
    }
}

/// The server's answer as the device receives it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    /// Where a `206 Partial Content` answer starts (its `Content-Range`).
    pub range_start: Option<u64>,
    pub body: Bytes,
    /// The body broke off after these bytes (a download's connection reset mid-body).
    pub broken: bool,
}

/// What a request in flight waits for.
pub type Reply = Result<Answer, TransportError>;

struct Waiting {
    request: Request,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct State {
    /// Each device's request in flight.
    waiting: BTreeMap<usize, Waiting>,
    /// Devices whose Synchronize is running.
    running: BTreeMap<usize, ()>,
}

/// The network between the devices and the server.
#[derive(Default)]
pub struct Network {
    state: Mutex<State>,
    changed: Notify,
}

impl Network {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A device's Synchronize starts.
    pub fn started(&self, device: usize) {
        self.state().running.insert(device, ());
    }

    /// A device's Synchronize ended (or the device crashed): its request in flight, if any, is
    /// dropped.
    pub fn stopped(&self, device: usize) {
        let mut s = self.state();
        s.running.remove(&device);
        s.waiting.remove(&device);
        drop(s);
        self.changed.notify_waiters();
    }

    /// Sends a request and waits for the simulation to deliver it.
    pub async fn send(&self, device: usize, request: Request) -> Reply {
        let (tx, rx) = oneshot::channel();
        {
            let mut s = self.state();
            assert!(
                s.running.contains_key(&device),
                "device {device} sent a request while no Synchronize of it runs"
            );
            let earlier = s.waiting.insert(device, Waiting { request, reply: tx });
            assert!(
                earlier.is_none(),
                "device {device} sent a second request while one was in flight"
            );
        }
        self.changed.notify_waiters();
        rx.await.unwrap_or_else(|_| {
            Err(TransportError::Retryable {
                reason: "the connection was dropped".into(),
                retry_after: None,
            })
        })
    }

    /// Waits until every running device is waiting for an answer; returns those devices (none:
    /// nothing runs).
    pub async fn quiescent(&self) -> Vec<usize> {
        loop {
            let notified = self.changed.notified();
            {
                let s = self.state();
                if s.running.keys().all(|d| s.waiting.contains_key(d)) {
                    return s.waiting.keys().copied().collect();
                }
            }
            notified.await;
        }
    }

    /// Takes a device's request in flight, to deliver it.
    pub fn take(&self, device: usize) -> Option<(Request, oneshot::Sender<Reply>)> {
        self.state()
            .waiting
            .remove(&device)
            .map(|w| (w.request, w.reply))
    }
}

/// Marks a device's Synchronize ended when dropped: when it returns, panics or is killed.
pub struct Running {
    pub device: usize,
    pub net: Arc<Network>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.net.stopped(self.device);
    }
}

/// One device's end of the network: the engine's `Transport`.
pub struct DeviceLink {
    pub device: usize,
    pub net: Arc<Network>,
}

impl DeviceLink {
    async fn send(&self, request: Request) -> Result<Answer, TransportError> {
        let call = request.call;
        let answer = self.net.send(self.device, request).await?;
        classify(call, answer)
    }

    async fn call(
        &self,
        call: &'static str,
        token: &str,
        body: Bytes,
    ) -> Result<Answer, TransportError> {
        self.send(Request::json(call, token, body)).await
    }
}

/// The HTTP transport's rule for a status (`syncvault::sync::transport`): 401 refreshes, 408,
/// 429 and 5xx are retried (with Retry-After), other errors are final with their code.
fn classify(call: &str, answer: Answer) -> Result<Answer, TransportError> {
    match answer.status {
        200..=299 => Ok(answer),
        401 => Err(TransportError::Unauthorized),
        408 | 429 | 500..=599 => Err(TransportError::Retryable {
            reason: format!("the server answered HTTP {}", answer.status),
            retry_after: answer.retry_after.map(std::time::Duration::from_secs),
        }),
        status => {
            let error: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            Err(TransportError::Status {
                status,
                code: error["error"].as_str().map(str::to_string),
                reason: format!(
                    "{call}: {}",
                    error["error_description"].as_str().unwrap_or("")
                ),
            })
        }
    }
}

fn json<T: serde::de::DeserializeOwned>(call: &str, body: &[u8]) -> Result<T, TransportError> {
    serde_json::from_slice(body)
        .map_err(|e| TransportError::Protocol(format!("{call}: an answer of the wrong shape: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("protocol requests encode"))
}

fn received<T>(value: T, answer: &Answer, sent: usize) -> Received<T> {
    Received {
        value,
        bytes: (sent + answer.body.len()) as u64,
    }
}

#[async_trait]
impl Transport for DeviceLink {
    async fn schema(&self, token: &str) -> Result<Received<SchemaResponse>, TransportError> {
        let answer = self.call("schema", token, Bytes::new()).await?;
        Ok(received(json("schema", &answer.body)?, &answer, 0))
    }

    async fn pull(
        &self,
        token: &str,
        request: &PullRequest,
    ) -> Result<Received<PullResponse>, TransportError> {
        let body = encode(request);
        let sent = body.len();
        let answer = self.call("pull", token, body).await?;
        let page = PullResponse::decode(answer.body.to_vec()).map_err(|e| {
            TransportError::Protocol(format!("pull: an answer of the wrong shape: {e}"))
        })?;
        Ok(received(page, &answer, sent))
    }

    async fn push(
        &self,
        token: &str,
        request: &PushRequest,
    ) -> Result<Received<PushResponse>, TransportError> {
        let body = encode(request);
        let sent = body.len();
        let answer = self.call("push", token, body).await?;
        Ok(received(json("push", &answer.body)?, &answer, sent))
    }

    async fn create_upload(
        &self,
        token: &str,
        sha256: &str,
        size: u64,
    ) -> Result<Received<UploadState>, TransportError> {
        let body = encode(&serde_json::json!({"sha256": sha256, "size": size}));
        let sent = body.len();
        let mut request = Request::json("upload", token, body);
        request.path = "attachments/uploads".into();
        let answer = self.send(request).await?;
        Ok(received(json("upload", &answer.body)?, &answer, sent))
    }

    async fn upload_chunk(
        &self,
        token: &str,
        upload_id: &str,
        offset: u64,
        bytes: Bytes,
    ) -> Result<Received<u64>, TransportError> {
        #[derive(serde::Deserialize)]
        struct Held {
            offset: u64,
        }
        let sent = bytes.len();
        let answer = self
            .send(Request {
                call: "chunk",
                method: "PUT",
                path: format!("attachments/uploads/{upload_id}?offset={offset}"),
                content_type: Some("application/octet-stream"),
                range_from: None,
                token: token.to_string(),
                body: bytes,
            })
            .await?;
        let held: Held = json("chunk", &answer.body)?;
        Ok(received(held.offset, &answer, sent))
    }

    async fn finish_upload(
        &self,
        token: &str,
        upload_id: &str,
    ) -> Result<Received<()>, TransportError> {
        let mut request = Request::json("finish", token, Bytes::new());
        request.method = "POST";
        request.path = format!("attachments/uploads/{upload_id}/finish");
        let answer = self.send(request).await?;
        let _: serde_json::Value = json("finish", &answer.body)?;
        Ok(received((), &answer, 0))
    }

    async fn download(
        &self,
        token: &str,
        id: &str,
        offset: u64,
    ) -> Result<ContentStream, TransportError> {
        let mut request = Request::json("content", token, Bytes::new());
        request.path = format!("attachments/{id}/content");
        request.range_from = Some(offset);
        let answer = self.send(request).await?;
        let start = match (answer.status, answer.range_start) {
            (206, Some(start)) => start,
            (206, None) => {
                return Err(TransportError::Protocol(
                    "a partial answer without its range".into(),
                ));
            }
            _ => 0,
        };
        // The body arrives in pieces, as over a connection; a broken one ends with an error.
        let mut pieces: Vec<Result<Bytes, TransportError>> = answer
            .body
            .chunks(16 << 10)
            .map(|c| Ok(answer.body.slice_ref(c)))
            .collect();
        if answer.broken {
            pieces.push(Err(TransportError::Retryable {
                reason: "the download broke".into(),
                retry_after: None,
            }));
        }
        Ok(ContentStream::from_pieces(start, pieces))
    }
}
