//! The reference organization server: what an organization's admin set up, simulated for
//! development, the demo and tests. It grows discovery, a development identity provider and the
//! sync protocol with their issues; today it answers a health check.

use std::net::SocketAddr;

use axum::{Router, routing::get};
use tokio::net::TcpListener;

/// Errors of starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server stopped: {0}")]
    Serve(std::io::Error),
}

/// The HTTP routes of the organization server.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

/// A bound listener, so callers learn the real port (for `127.0.0.1:0`) before serving.
pub struct BoundServer {
    listener: TcpListener,
}

impl BoundServer {
    /// Binds `addr` ("127.0.0.1:0" picks a free port).
    pub async fn bind(addr: &str) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Ok(BoundServer { listener })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until the process ends.
    pub async fn serve(self) -> Result<(), ServerError> {
        axum::serve(self.listener, router())
            .await
            .map_err(ServerError::Serve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn answers_health_over_real_http() {
        let server = BoundServer::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.serve());
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("ok"), "{response}");
    }
}
