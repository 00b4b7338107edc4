//! The HTTP transport: one pooled HTTP/1.1 keep-alive connection pool, streaming request and
//! response bodies, and the three timeouts (connect, idle read, total) applied per request.
//!
//! This is the only module that knows about hyper. It never sends `Expect: 100-continue` (the
//! hashserver answers some PUTs before reading the body, which desynchronises a kept-alive
//! connection when the client waits for a `100 Continue`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{classify, BoxError, TimeoutKind, TransportError, TransportErrorKind};
use crate::timeouts::Timeouts;

/// A boxed request body.
pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// Makes a fresh body for each attempt of a streamed request.
pub type BodyFactory = Arc<dyn Fn() -> Result<BoxBody, std::io::Error> + Send + Sync>;

/// A request body that can be sent again on a retry.
#[derive(Clone)]
pub enum RequestBody {
    /// No body.
    Empty,
    /// Bytes in memory, with an optional content type.
    Bytes {
        /// The bytes.
        data: Bytes,
        /// The `Content-Type` to send, if any.
        content_type: Option<&'static str>,
    },
    /// A streamed body, re-created for each attempt.
    Stream {
        /// The exact length, if known (sent as `Content-Length`; otherwise chunked).
        len: Option<u64>,
        /// Creates the body.
        make: BodyFactory,
    },
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Bytes { data, content_type } => f
                .debug_struct("Bytes")
                .field("len", &data.len())
                .field("content_type", content_type)
                .finish(),
            RequestBody::Stream { len, .. } => f.debug_struct("Stream").field("len", len).finish(),
        }
    }
}

impl RequestBody {
    /// A JSON body (`Content-Type: application/json`).
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(RequestBody::Bytes {
            data: Bytes::from(serde_json::to_vec(value)?),
            content_type: Some("application/json"),
        })
    }

    /// Raw bytes (`Content-Type: application/octet-stream`).
    pub fn octets(data: impl Into<Bytes>) -> Self {
        RequestBody::Bytes {
            data: data.into(),
            content_type: Some("application/octet-stream"),
        }
    }

    /// Builds the body for one attempt: the body, its exact length if known, its content type.
    fn build(&self) -> Result<(BoxBody, Option<u64>, Option<&'static str>), std::io::Error> {
        Ok(match self {
            RequestBody::Empty => (Empty::new().map_err(|e| match e {}).boxed(), None, None),
            RequestBody::Bytes { data, content_type } => (
                Full::new(data.clone()).map_err(|e| match e {}).boxed(),
                None,
                *content_type,
            ),
            RequestBody::Stream { len, make } => (make()?, *len, None),
        })
    }
}

/// One request: method, path below the client's base URL, headers, body, timeouts.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// The path, starting with `/`, appended to the base URL.
    pub path: String,
    /// Extra headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: RequestBody,
    /// Overrides the client's timeouts for this request (e.g. no read timeout for a long job).
    pub timeouts: Option<Timeouts>,
}

impl RequestSpec {
    /// A request without a body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        RequestSpec {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: RequestBody::Empty,
            timeouts: None,
        }
    }

    /// A GET.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A PUT.
    pub fn put(path: impl Into<String>) -> Self {
        Self::new(Method::PUT, path)
    }

    /// A POST.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// Sets the body.
    pub fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    /// Sets a JSON body (also on a GET, as the Seamless services require).
    pub fn json<T: serde::Serialize + ?Sized>(
        mut self,
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        self.body = RequestBody::json(value)?;
        Ok(self)
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Overrides the timeouts for this request.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }
}

#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = HttpConnector;

/// TLS settings of a pool.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted root certificates (DER), on top of the webpki roots.
    pub root_certificates: Vec<Vec<u8>>,
}

/// A pool of HTTP/1.1 keep-alive connections. Dropping it closes its idle connections.
pub(crate) struct HttpPool {
    client: Client<Connector, BoxBody>,
}

impl std::fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpPool")
    }
}

fn http_connector(connect_timeout: Option<Duration>) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(connect_timeout);
    http.set_nodelay(true);
    http.enforce_http(false);
    http
}

#[cfg(feature = "tls")]
fn connector(
    connect_timeout: Option<Duration>,
    tls: &TlsOptions,
) -> Result<Connector, TransportError> {
    let setup = |msg: String| {
        TransportError::new(TransportErrorKind::Protocol, Method::GET, "(TLS setup)")
            .with_source(msg)
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in &tls.root_certificates {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| setup(format!("invalid root certificate: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| setup(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http_connector(connect_timeout)))
}

#[cfg(not(feature = "tls"))]
fn connector(
    connect_timeout: Option<Duration>,
    _tls: &TlsOptions,
) -> Result<Connector, TransportError> {
    Ok(http_connector(connect_timeout))
}

impl HttpPool {
    /// A new, empty pool.
    pub(crate) fn new(
        connect_timeout: Option<Duration>,
        tls: &TlsOptions,
    ) -> Result<Self, TransportError> {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            // Room for the connections of a gather of 100 requests (seamless-core writes and
            // reads 100 buffers at a time): fewer would close and reopen the rest every batch.
            .pool_max_idle_per_host(128)
            .build(connector(connect_timeout, tls)?);
        Ok(HttpPool { client })
    }

    /// Sends one request to `base_url + spec.path` and waits for the response head.
    ///
    /// Every status is returned as a [`Response`]; the caller decides what it means.
    pub(crate) async fn send(
        &self,
        base_url: &str,
        spec: &RequestSpec,
        timeouts: &Timeouts,
    ) -> Result<Response, TransportError> {
        let url = format!("{base_url}{}", spec.path);
        let err = |kind| TransportError::new(kind, spec.method.clone(), url.clone());
        let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
            err(TransportErrorKind::InvalidUrl).with_source(e)
        })?;
        #[cfg(not(feature = "tls"))]
        if uri.scheme_str() == Some("https") {
            return Err(err(TransportErrorKind::InvalidUrl)
                .with_source("https:// URLs need the `tls` feature of seamless-remote-core"));
        }
        let (body, exact_len, content_type) = spec
            .body
            .build()
            .map_err(|e| err(TransportErrorKind::Protocol).with_source(e))?;
        let start = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        let body = Tracked {
            inner: body,
            exact_len,
            start,
            activity: activity.clone(),
        }
        .boxed();
        let mut builder = http::Request::builder()
            .method(spec.method.clone())
            .uri(uri);
        if let Some(headers) = builder.headers_mut() {
            if let Some(ct) = content_type {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            if matches!(spec.body, RequestBody::Empty)
                && matches!(spec.method, Method::PUT | Method::POST)
            {
                headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            for (k, v) in &spec.headers {
                headers.insert(k, v.clone());
            }
        }
        let request = builder
            .body(body)
            .map_err(|e| err(TransportErrorKind::InvalidUrl).with_source(e))?;

        // A timeout too large to add to the clock is no limit at all.
        let deadline = timeouts.total.and_then(|t| start.checked_add(t));
        let fut = self.client.request(request);
        tokio::pin!(fut);
        let result = loop {
            let idle = timeouts.read.and_then(|r| {
                (start + Duration::from_nanos(activity.load(Ordering::Relaxed))).checked_add(r)
            });
            let wake = match (idle, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(wake) = wake else { break fut.await };
            tokio::select! {
                r = &mut fut => break r,
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        return Err(err(TransportErrorKind::Timeout(TimeoutKind::Total)));
                    }
                    let last = start + Duration::from_nanos(activity.load(Ordering::Relaxed));
                    if timeouts
                        .read
                        .and_then(|r| last.checked_add(r))
                        .is_some_and(|idle| now >= idle)
                    {
                        return Err(err(TransportErrorKind::Timeout(TimeoutKind::Read)));
                    }
                }
            }
        };
        let response = result.map_err(|e| {
            let kind = classify(&e, e.is_connect());
            err(kind).with_source(e)
        })?;
        let (parts, body) = response.into_parts();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
            read_timeout: timeouts.read,
            deadline,
            method: spec.method.clone(),
            url,
            permit: None,
        })
    }
}

/// Records when the request body last made progress, so that the idle-read clock does not run
/// while a large upload is still being taken by the server. A known exact length is reported as
/// the size hint, so that hyper sends `Content-Length` rather than chunks.
struct Tracked {
    inner: BoxBody,
    exact_len: Option<u64>,
    start: Instant,
    activity: Arc<AtomicU64>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if poll.is_ready() {
            let nanos = self.start.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            self.activity.store(nanos, Ordering::Relaxed);
        }
        poll
    }
    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(n) => SizeHint::with_exact(n),
            None => self.inner.size_hint(),
        }
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// A response whose body is read chunk by chunk, each chunk under the idle-read timeout.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    read_timeout: Option<Duration>,
    deadline: Option<Instant>,
    method: Method,
    url: String,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Response {
    /// Keeps a connection slot until the response is dropped.
    pub(crate) fn hold(&mut self, permit: Option<tokio::sync::OwnedSemaphorePermit>) {
        self.permit = permit;
    }

    /// Replaces a leading `from` of the URL with `to` (the base URL as it may be shown).
    pub(crate) fn rebase_url(&mut self, from: &str, to: &str) {
        if let Some(rest) = self.url.strip_prefix(from) {
            self.url = format!("{to}{rest}");
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// An error of `kind` for this request.
    pub fn error(&self, kind: TransportErrorKind) -> TransportError {
        TransportError::new(kind, self.method.clone(), self.url.clone())
    }

    /// The length the server announced (`Content-Length`), if any.
    pub fn announced_length(&self) -> Option<u64> {
        self.headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    }

    /// The next chunk of the body, or `None` at its end. The total timeout bounds the whole
    /// body: a server that sends without pause is cut at the deadline too.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.error(TransportErrorKind::Timeout(TimeoutKind::Total)));
            }
            let idle = self
                .read_timeout
                .and_then(|r| Instant::now().checked_add(r));
            let wait = match (idle, self.deadline) {
                (Some(r), Some(d)) => Some(r.min(d)),
                (r, d) => r.or(d),
            };
            let frame = match wait {
                None => self.body.frame().await,
                Some(wait) => match tokio::time::timeout_at(wait.into(), self.body.frame()).await {
                    Ok(f) => f,
                    Err(_) => {
                        let kind = if self.deadline.is_some_and(|d| Instant::now() >= d) {
                            TimeoutKind::Total
                        } else {
                            TimeoutKind::Read
                        };
                        return Err(self.error(TransportErrorKind::Timeout(kind)));
                    }
                },
            };
            match frame {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
                Some(Err(e)) => {
                    let kind = classify(&e, false);
                    return Err(self.error(kind).with_source(e));
                }
            }
        }
    }

    /// The whole body in memory, at most `limit` bytes: a longer body (announced or sent) is a
    /// [`TransportErrorKind::TooLarge`] error as soon as it is known, before it is all read.
    pub async fn bytes_limited(mut self, limit: u64) -> Result<Bytes, TransportError> {
        let too_large = |r: &Response| r.error(TransportErrorKind::TooLarge { limit });
        if self.announced_length().is_some_and(|n| n > limit) {
            return Err(too_large(&self));
        }
        let mut out = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            if (out.len() as u64).saturating_add(chunk.len() as u64) > limit {
                return Err(too_large(&self));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// The body as text (lossy UTF-8), at most `limit` bytes.
    pub async fn text_limited(self, limit: u64) -> Result<String, TransportError> {
        let bytes = self.bytes_limited(limit).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// At most `max` bytes of the body (the rest is not read; the connection is then dropped
    /// rather than reused).
    pub async fn bytes_prefix(&mut self, max: usize) -> Result<Bytes, TransportError> {
        let mut out = BytesMut::new();
        while out.len() < max {
            match self.chunk().await? {
                Some(chunk) => out.extend_from_slice(&chunk),
                None => break,
            }
        }
        out.truncate(max);
        Ok(out.freeze())
    }

    /// Turns an unexpected answer into a [`TransportErrorKind::Status`] error that quotes the
    /// first bytes of the body.
    pub async fn into_status_error(mut self) -> TransportError {
        const PREFIX: usize = 512;
        let body =
            match tokio::time::timeout(Duration::from_secs(5), self.bytes_prefix(PREFIX)).await {
                Ok(Ok(b)) => String::from_utf8_lossy(&b).into_owned(),
                _ => String::new(),
            };
        self.error(TransportErrorKind::Status {
            status: self.status,
            body,
        })
    }
}
