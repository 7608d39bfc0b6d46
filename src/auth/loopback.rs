//! The desktop redirect (RFC 8252 §7.3): a listener on 127.0.0.1 at a random port that accepts
//! exactly one authorization callback, answers the browser with a short page, and hands the
//! callback URL back. Other requests (favicon, probes) get 404 and are ignored.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::AuthError;

/// A bound loopback listener.
pub struct LoopbackRedirect {
    listener: std::net::TcpListener,
    path: String,
}

impl LoopbackRedirect {
    /// Binds 127.0.0.1 on a port the OS picks.
    pub async fn bind() -> Result<Self, AuthError> {
        Self::bind_now()
    }

    /// As [`Self::bind`], without awaiting (for `AuthorizationUi::redirect_uri`, a plain call).
    pub fn bind_now() -> Result<Self, AuthError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| {
                AuthError::InvalidRedirect(format!("cannot listen on loopback ({:?})", e.kind()))
            })?;
        Ok(LoopbackRedirect {
            listener,
            path: "/callback".into(),
        })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        let port = self.listener.local_addr().map(|a| a.port()).unwrap_or(0);
        format!("http://127.0.0.1:{port}{}", self.path)
    }

    /// Waits for the callback; `Cancelled` after `timeout`.
    pub async fn wait(self, timeout: Duration) -> Result<String, AuthError> {
        let uri = self.redirect_uri();
        let listener = TcpListener::from_std(self.listener).map_err(|e| {
            AuthError::InvalidRedirect(format!("the loopback listener failed ({:?})", e.kind()))
        })?;
        tokio::time::timeout(timeout, accept_one(&listener, &uri, &self.path))
            .await
            .map_err(|_| AuthError::Cancelled)?
    }
}

/// Serves requests until the callback arrives; returns its full URL.
async fn accept_one(listener: &TcpListener, uri: &str, path: &str) -> Result<String, AuthError> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| {
            AuthError::InvalidRedirect(format!("the loopback listener failed ({:?})", e.kind()))
        })?;
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        // Read the request line and headers (small; callbacks carry no body).
        while n < buf.len() {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf[n..])).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(k)) => n += k,
                Ok(Err(_)) => break,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]);
        let target = head.lines().next().and_then(|l| {
            let mut parts = l.split(' ');
            (parts.next() == Some("GET"))
                .then(|| parts.next())
                .flatten()
        });
        match target {
            Some(t) if t.split('?').next() == Some(path) => {
                let page = "<!doctype html><title>Signed in</title><p>You can close this window and return to the app.</p>";
                let _ = stream
                        .write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}", page.len()).as_bytes())
                        .await;
                return Ok(format!("{}{}", uri.trim_end_matches(path), t));
            }
            _ => {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            }
        }
    }
}
