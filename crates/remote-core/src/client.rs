//! [`RemoteClient`]: one Seamless service at one base URL, with its connection pool, its
//! healthcheck-before-first-use, its restart, and the retry loop around every operation.
//!
//! Every service client (buffer, database, jobserver) is built on this type. The base URL is
//! either known up front or produced by an [`Initializer`] before the first request: that is the
//! seam where a launched service is started or found (the launcher).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use http::Method;

use crate::error::{BoxError, TimeoutKind, TransportError, TransportErrorKind};
use crate::http::{HttpPool, RequestSpec, Response, TlsOptions};
use crate::keepalive::ClientRegistry;
use crate::retry::{self, Disposition, RetryPolicy, Retryable};
use crate::timeouts::Timeouts;

/// Produces a client's base URL before its first request, and again after every restart.
///
/// A launched client implements this by launching or reusing its service.
pub trait Initializer: Send + Sync {
    /// Returns the base URL (`http://host:port`, optionally with a path prefix).
    fn init(&self) -> Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send + '_>>;
}

/// The largest healthcheck answer read (the services answer `OK`).
const HEALTHCHECK_BODY_LIMIT: u64 = 64 * 1024;

/// Options of a [`RemoteClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeouts (default: from the `SEAMLESS_REMOTE_*_TIMEOUT` environment variables).
    pub timeouts: Timeouts,
    /// Retry policy (default: 5 attempts, exponential backoff with jitter).
    pub retry: RetryPolicy,
    /// Whether to GET `/healthcheck` before the first request and after each restart.
    pub healthcheck: bool,
    /// TLS settings.
    pub tls: TlsOptions,
    /// The registry whose keepalive task pings this client (default: the process-wide one).
    pub registry: Option<ClientRegistry>,
    /// At most this many requests in flight (and so connections open) at once; a response
    /// holds its slot until its body is read or dropped (default 100, as aiohttp's pool).
    pub max_connections: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeouts: crate::env::default_timeouts(),
            retry: RetryPolicy::default(),
            healthcheck: true,
            tls: TlsOptions::default(),
            registry: None,
            max_connections: 100,
        }
    }
}

/// A client of one Seamless service. Cheap to clone; clones share the pool and state.
#[derive(Clone, Debug)]
pub struct RemoteClient {
    inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    /// The base URL as given (credentials included; never shown: see [`RemoteClient::url`]).
    url: RwLock<Option<String>>,
    init: Option<Arc<dyn Initializer>>,
    pool: RwLock<Arc<HttpPool>>,
    initialized: AtomicBool,
    closed: AtomicBool,
    init_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    options: ClientOptions,
    registry: ClientRegistry,
    slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("url", &self.shown_url())
            .field("initialized", &self.initialized.load(Ordering::Relaxed))
            .finish()
    }
}

/// Checks and normalises a base URL: `http://` or `https://`, a host, no query or fragment, no
/// trailing `/` ([`seamless_safe_io::url::check_base_url`]). Credentials (`user:password@`) are
/// kept; [`RemoteClient`] sends them as HTTP Basic authentication and never shows the password.
pub fn normalize_base_url(url: &str) -> Result<String, TransportError> {
    seamless_safe_io::url::check_base_url(url).map_err(|why| {
        TransportError::new(
            TransportErrorKind::InvalidUrl,
            Method::GET,
            seamless_safe_io::text::redact_url(url),
        )
        .with_source(why)
    })
}

/// A base URL split for use: the URL requests go to (without credentials), and the
/// `Authorization: Basic` header its credentials become.
fn split_credentials(url: &str) -> (String, Option<http::HeaderValue>) {
    use base64::Engine;
    let (stripped, info) = seamless_safe_io::text::split_userinfo(url);
    let auth = info.and_then(|(user, password)| {
        let raw = format!("{user}:{}", password.unwrap_or_default());
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
        let mut value = http::HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    });
    (stripped, auth)
}

impl RemoteClient {
    /// A client of the service at `url`, with default options.
    pub fn new(url: &str) -> Result<Self, TransportError> {
        Self::with_options(url, ClientOptions::default())
    }

    /// A client of the service at `url`.
    pub fn with_options(url: &str, options: ClientOptions) -> Result<Self, TransportError> {
        let url = normalize_base_url(url)?;
        Self::build(Some(url), None, options)
    }

    /// A client whose URL comes from `init` (a launched service), resolved on first use.
    pub fn with_initializer(
        init: Arc<dyn Initializer>,
        options: ClientOptions,
    ) -> Result<Self, TransportError> {
        Self::build(None, Some(init), options)
    }

    fn build(
        url: Option<String>,
        init: Option<Arc<dyn Initializer>>,
        options: ClientOptions,
    ) -> Result<Self, TransportError> {
        let pool = HttpPool::new(options.timeouts.connect, &options.tls)?;
        let registry = options
            .registry
            .clone()
            .unwrap_or_else(ClientRegistry::global);
        let inner = Arc::new(ClientInner {
            url: RwLock::new(url),
            init,
            pool: RwLock::new(Arc::new(pool)),
            initialized: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            init_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            slots: Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1))),
            options,
            registry: registry.clone(),
        });
        registry.register(Arc::downgrade(&inner));
        crate::client_debug!(url = ?inner.shown_url(), "client created");
        Ok(RemoteClient { inner })
    }

    pub(crate) fn from_inner(inner: Arc<ClientInner>) -> Self {
        RemoteClient { inner }
    }

    pub(crate) fn inner_ref(&self) -> &ClientInner {
        &self.inner
    }

    /// The base URL, once known, as it may be shown: a password is replaced by `***`.
    pub fn url(&self) -> Option<String> {
        self.inner.shown_url()
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Whether the client has been initialized (URL known, healthcheck passed) since its last restart.
    pub fn is_initialized(&self) -> bool {
        self.inner.initialized.load(Ordering::SeqCst)
    }

    /// How many times the client has been restarted.
    pub fn restarts(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    fn check_allowed(&self, method: &Method, path: &str) -> Result<(), TransportError> {
        if crate::env::remote_clients_allowed() {
            Ok(())
        } else {
            let url = format!("{}{path}", self.url().unwrap_or_default());
            Err(TransportError::new(
                TransportErrorKind::WorkerForbidden,
                method.clone(),
                url,
            ))
        }
    }

    /// Initializes the client if needed: resolves the URL (through the initializer) and runs the
    /// healthcheck. Concurrent callers wait for one initialization. Returns the base URL.
    pub async fn ensure_initialized(&self) -> Result<String, TransportError> {
        if let Some(url) = self.ready_url() {
            return Ok(url);
        }
        let _guard = self.inner.init_lock.lock().await;
        if let Some(url) = self.ready_url() {
            return Ok(url);
        }
        let url = match (&self.inner.init, self.inner.current_url()) {
            (Some(init), _) => {
                let raw = init.init().await.map_err(|e| {
                    TransportError::new(
                        TransportErrorKind::Launch,
                        Method::GET,
                        "(launched service)",
                    )
                    .with_source(e)
                })?;
                let url = normalize_base_url(&raw)?;
                if let Ok(mut slot) = self.inner.url.write() {
                    *slot = Some(url.clone());
                }
                url
            }
            (None, Some(url)) => url,
            (None, None) => {
                return Err(TransportError::new(
                    TransportErrorKind::InvalidUrl,
                    Method::GET,
                    "(no URL)",
                )
                .with_source("the client has neither a URL nor an initializer"))
            }
        };
        if self.inner.options.healthcheck {
            self.healthcheck_at(&url).await?;
        }
        self.inner.closed.store(false, Ordering::SeqCst);
        self.inner.initialized.store(true, Ordering::SeqCst);
        if self.inner.options.healthcheck {
            self.inner.registry.ensure_keepalive();
        }
        crate::client_debug!(url = %seamless_safe_io::text::redact_url(&url), "client initialized");
        Ok(url)
    }

    fn ready_url(&self) -> Option<String> {
        if self.inner.initialized.load(Ordering::SeqCst) {
            self.inner.current_url()
        } else {
            None
        }
    }

    /// `GET /healthcheck` once (no retry), under the healthcheck timeout; 2xx is healthy.
    pub async fn healthcheck(&self) -> Result<(), TransportError> {
        let url = self.inner.current_url().ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::InvalidUrl,
                Method::GET,
                "(no URL)/healthcheck",
            )
            .with_source("the client has no URL yet")
        })?;
        self.healthcheck_at(&url).await
    }

    async fn healthcheck_at(&self, url: &str) -> Result<(), TransportError> {
        self.check_allowed(&Method::GET, "/healthcheck")?;
        let h = self.inner.options.timeouts.healthcheck;
        let timeouts = Timeouts {
            read: h,
            total: h,
            ..self.inner.options.timeouts
        };
        let (url, auth) = split_credentials(url);
        let url = url.as_str();
        let mut spec = RequestSpec::get("/healthcheck");
        if let Some(auth) = auth {
            spec = spec.header(http::header::AUTHORIZATION, auth);
        }
        let pool = self.inner.pool();
        crate::client_debug!(url = %url, "healthcheck");
        let result = async {
            let response = pool.send(url, &spec, &timeouts).await?;
            if response.status().is_success() {
                response
                    .bytes_limited(HEALTHCHECK_BODY_LIMIT)
                    .await
                    .map(|_| ())
            } else {
                Err(response.into_status_error().await)
            }
        }
        .await;
        result.map_err(|mut e| {
            if let TransportErrorKind::Timeout(TimeoutKind::Total | TimeoutKind::Read) = e.kind() {
                let source = e.to_string();
                e = TransportError::new(
                    TransportErrorKind::Timeout(TimeoutKind::Healthcheck),
                    Method::GET,
                    format!("{url}/healthcheck"),
                )
                .with_source(source);
            }
            e
        })
    }

    /// Drops the pooled connections and forces a fresh initialization (and healthcheck) on the
    /// next request, as the reference's `restart()`.
    pub fn restart(&self) {
        self.inner.restart();
    }

    /// Sends one request (a single attempt) after initializing the client.
    ///
    /// 502, 503 and 504 answers come back as a [`TransportErrorKind::Status`] error (transient);
    /// every other status is returned for the caller to interpret.
    pub async fn send(&self, spec: &RequestSpec) -> Result<Response, TransportError> {
        self.check_allowed(&spec.method, &spec.path)?;
        let url = self.ensure_initialized().await?;
        let timeouts = spec.timeouts.unwrap_or(self.inner.options.timeouts);
        let pool = self.inner.pool();
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self.inner.slots.clone().acquire_owned().await.ok();
        let (url, auth) = split_credentials(&url);
        let mut response = match auth {
            None => pool.send(&url, spec, &timeouts).await?,
            Some(auth) => {
                // Errors and messages name the URL with its user and `***`.
                let shown = self.url().unwrap_or_default();
                let spec = spec.clone().header(http::header::AUTHORIZATION, auth);
                let mut response = pool
                    .send(&url, &spec, &timeouts)
                    .await
                    .map_err(|e| e.rebase_url(&url, &shown))?;
                response.rebase_url(&url, &shown);
                response
            }
        };
        response.hold(permit);
        if matches!(response.status().as_u16(), 502..=504) {
            return Err(response.into_status_error().await);
        }
        Ok(response)
    }

    /// Runs `op` under the client's retry policy. Each attempt first initializes the client
    /// (after a restart: healthcheck, or relaunch); a [`Disposition::TransientRestart`] failure
    /// restarts the client before the next attempt.
    pub async fn execute<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: Retryable + std::fmt::Display + From<TransportError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.execute_with(self.inner.options.retry, op).await
    }

    /// As [`RemoteClient::execute`], with another policy (e.g. fewer attempts for a request that
    /// is not idempotent).
    pub async fn execute_with<T, E, F, Fut>(&self, policy: RetryPolicy, op: F) -> Result<T, E>
    where
        E: Retryable + std::fmt::Display + From<TransportError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut op = op;
        retry::run(
            policy,
            || {
                let attempt = op();
                async move {
                    self.ensure_initialized().await?;
                    attempt.await
                }
            },
            |_, disposition| {
                if disposition == Disposition::TransientRestart {
                    self.restart();
                }
            },
        )
        .await
    }

    /// Sends `spec` with retries and returns the response head (the body is read by the caller,
    /// outside the retry loop).
    pub async fn request(&self, spec: &RequestSpec) -> Result<Response, TransportError> {
        self.execute(|| self.send(spec)).await
    }

    /// Sends `spec` with retries, reading the whole body (at most `limit` bytes: a longer one is
    /// a [`TransportErrorKind::TooLarge`] error) inside each attempt, so that a body cut short is
    /// retried too. Returns the status and the body.
    pub async fn request_bytes(
        &self,
        spec: &RequestSpec,
        limit: u64,
    ) -> Result<(http::StatusCode, bytes::Bytes), TransportError> {
        self.execute(|| async {
            let response = self.send(spec).await?;
            let status = response.status();
            Ok((status, response.bytes_limited(limit).await?))
        })
        .await
    }
}

impl ClientInner {
    pub(crate) fn current_url(&self) -> Option<String> {
        self.url.read().ok().and_then(|u| u.clone())
    }

    /// The URL as it may be shown (password hidden).
    pub(crate) fn shown_url(&self) -> Option<String> {
        self.current_url()
            .map(|u| seamless_safe_io::text::redact_url(&u))
    }

    fn pool(&self) -> Arc<HttpPool> {
        match self.pool.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::SeqCst) && !self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn restart(&self) {
        self.initialized.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        match HttpPool::new(self.options.timeouts.connect, &self.options.tls) {
            Ok(fresh) => {
                let mut slot = match self.pool.write() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *slot = Arc::new(fresh);
            }
            Err(e) => tracing::warn!(error = %e, "could not rebuild the connection pool"),
        }
        crate::client_debug!(url = ?self.shown_url(), "client restarted: pool dropped");
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.restart();
    }
}
