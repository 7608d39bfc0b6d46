//! The simulated network: every device's request stops here until the simulation delivers it.
//! The simulation delivers only when every running device is waiting for an answer (or done),
//! so which request goes next, and what goes wrong with it, is the seed's choice alone, never
//! the threads'. Each device has at most one request in flight (the engine sends one at a time).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use syncvault::sync::protocol::{
    PullRequest, PullResponse, PushRequest, PushResponse, SchemaResponse,
};
use syncvault::sync::{Received, Transport, TransportError};
use tokio::sync::{Notify, oneshot};

/// One HTTP request of the sync API, as a device sent it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `schema`, `pull` or `push` (the trace names requests by it).
    pub call: &'static str,
    pub token: String,
    pub body: Bytes,
}

/// The server's answer as the device receives it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Bytes,
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
    async fn call(
        &self,
        call: &'static str,
        token: &str,
        body: Bytes,
    ) -> Result<Answer, TransportError> {
        let answer = self
            .net
            .send(
                self.device,
                Request {
                    call,
                    token: token.to_string(),
                    body,
                },
            )
            .await?;
        classify(call, answer)
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
}
