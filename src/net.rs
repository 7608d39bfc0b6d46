//! The one HTTP client of the core: rustls (ring, no OpenSSL), no automatic redirects (a redirect
//! to another host must never carry a token), timeouts, and a cap on response sizes so a hostile
//! server cannot exhaust memory. Also adapts it to the `oauth2`/`openidconnect` client trait.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Bodies larger than this are refused (discovery, OAuth and most API responses are tiny).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// A failed request, in syncvault's words (the library's own chain of messages goes to the log
/// at debug level). `{0}` / `host` is the host and port the request went to.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot reach {0}")]
    Connect(String),
    #[error("the secure connection to {host} failed: {problem}")]
    Tls { host: String, problem: TlsProblem },
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the connection to {0} broke")]
    Broken(String),
    /// The answer arrived slower than the minimum transfer rate.
    #[error("{0} sent its answer too slowly")]
    TooSlow(String),
    #[error("bad request: {0}")]
    Request(String),
}

/// Why a TLS connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    /// Something answered, but not with TLS: an http:// server at an https:// URL.
    NotHttps,
    /// The server's certificate is not trusted (unknown CA, wrong name, expired).
    Untrusted,
    /// Any other handshake failure.
    Handshake,
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsProblem::NotHttps => {
                "the server does not speak HTTPS at this address (for a local development \
                 server, use an http:// URL)"
            }
            TlsProblem::Untrusted => "its certificate is not trusted",
            TlsProblem::Handshake => "the TLS handshake failed",
        })
    }
}

/// The slowest transfer accepted: at least `bytes_per_second` on average once `window` has
/// passed, and never `window` without a byte. A server that dribbles its answer (one byte a
/// second) fails in about one window instead of holding a phone's background time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub bytes_per_second: u64,
    pub window: Duration,
}

/// A response read in full (within the size limit).
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// What the OAuth adapter returns.
pub type OAuthFuture =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, NetError>> + Send>>;

/// The shared HTTP client.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// `host:port` of a request, for messages (the path and query can carry codes; never shown).
fn endpoint(err: &reqwest::Error) -> String {
    err.url()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_else(|| "the server".into())
}

fn classify(err: reqwest::Error) -> NetError {
    let host = endpoint(&err);
    // reqwest flattens TLS failures into connect errors; the chain names them.
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    tracing::debug!(%host, "request failed: {text}");
    if err.is_timeout() {
        return NetError::Timeout(host);
    }
    let lower = text.to_lowercase();
    let tls = |problem| NetError::Tls {
        host: host.clone(),
        problem,
    };
    if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        tls(TlsProblem::NotHttps)
    } else if lower.contains("certificate") || lower.contains("unknownissuer") {
        tls(TlsProblem::Untrusted)
    } else if lower.contains("tls") || lower.contains("handshake") {
        tls(TlsProblem::Handshake)
    } else if err.is_builder() {
        NetError::Request("the request could not be built".into())
    } else if err.is_body() || err.is_decode() || (err.is_request() && !err.is_connect()) {
        NetError::Broken(host)
    } else {
        NetError::Connect(host)
    }
}

impl Http {
    /// A client trusting the platform's roots plus `extra_roots_pem` (enterprise or test CAs).
    pub fn new(extra_roots_pem: &[String]) -> Result<Self, NetError> {
        // Use ring unless the app already chose a rustls provider for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("syncvault/", env!("CARGO_PKG_VERSION")));
        for pem in extra_roots_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|_| {
                NetError::Request("an extra CA certificate is not valid PEM".into())
            })?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Http {
            client: builder.build().map_err(classify)?,
        })
    }

    /// The underlying client, for requests built elsewhere.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request and reads the whole body, refusing more than `limit` bytes.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Response, NetError> {
        self.send_at_least(request, limit, None).await
    }

    /// As [`Self::send`]; with `rate`, the body must arrive at least that fast (and then the
    /// client's overall 60-second timeout does not apply: a large page on a slow but steady
    /// network may take longer).
    pub async fn send_at_least(
        &self,
        request: reqwest::RequestBuilder,
        limit: usize,
        rate: Option<MinRate>,
    ) -> Result<Response, NetError> {
        let request = match rate {
            Some(_) => request.timeout(Duration::from_secs(24 * 3600)),
            None => request,
        };
        let built = request
            .build()
            .map_err(|_| NetError::Request("the request could not be built".into()))?;
        let host = built
            .url()
            .host_str()
            .map(|h| format!("{h}:{}", built.url().port_or_known_default().unwrap_or(0)))
            .unwrap_or_else(|| "the server".into());
        let started = std::time::Instant::now();
        let answered = self.client.execute(built);
        let mut response = match rate {
            Some(r) => tokio::time::timeout(r.window, answered)
                .await
                .map_err(|_| NetError::TooSlow(host.clone()))?,
            None => answered.await,
        }
        .map_err(classify)?;
        let length = response.content_length();
        if length.is_some_and(|n| n > limit as u64) {
            return Err(NetError::TooLarge(limit));
        }
        let status = response.status();
        let headers = response.headers().clone();
        // Sized once when the length is known: no doubling copies of a large page.
        let mut body = Vec::with_capacity(length.unwrap_or(0) as usize);
        loop {
            let chunk = match rate {
                Some(r) => tokio::time::timeout(r.window, response.chunk())
                    .await
                    .map_err(|_| NetError::TooSlow(host.clone()))?,
                None => response.chunk().await,
            }
            .map_err(classify)?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > limit {
                return Err(NetError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
            if let Some(r) = rate {
                let elapsed = started.elapsed();
                if elapsed > r.window
                    && (body.len() as f64) < r.bytes_per_second as f64 * elapsed.as_secs_f64()
                {
                    return Err(NetError::TooSlow(host));
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The `openidconnect` HTTP client: a closure over this client.
    pub fn oauth(
        &self,
    ) -> impl Fn(openidconnect::HttpRequest) -> OAuthFuture + Send + Sync + 'static {
        let http = self.clone();
        move |request: openidconnect::HttpRequest| {
            let http = http.clone();
            Box::pin(async move {
                let (parts, body) = request.into_parts();
                let mut builder = http
                    .client
                    .request(parts.method, parts.uri.to_string())
                    .body(body);
                for (name, value) in parts.headers.iter() {
                    builder = builder.header(name, value);
                }
                let r = http.send(builder, DEFAULT_BODY_LIMIT).await?;
                let mut response =
                    openidconnect::http::Response::builder().status(r.status.as_u16());
                for (name, value) in r.headers.iter() {
                    response = response.header(name.as_str(), value.as_bytes());
                }
                response
                    .body(r.body)
                    .map_err(|_| NetError::Request("an unusable response header".into()))
            })
        }
    }
}
