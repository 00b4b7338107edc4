//! Shared core of the Seamless Rust clients.
//!
//! Every Seamless service client (buffer, database, jobserver, daskserver) is built from the
//! pieces in this crate:
//!
//! * [`Checksum`] and [`ChecksumHasher`]: the SHA-256 identity of every buffer;
//! * [`RemoteClient`]: one service at one base URL, with a pooled HTTP/1.1 keep-alive connection
//!   pool ([`http`]), a healthcheck before first use, `restart()`, and the retry loop;
//! * [`Timeouts`]: connect / idle-read / total / healthcheck timeouts from the reference's
//!   `SEAMLESS_REMOTE_*_TIMEOUT` environment variables;
//! * [`retry`]: the one retry loop and its pure policy (which failures are transient, backoff
//!   with jitter, attempt and time budget);
//! * [`ClientRegistry`]: the keepalive task that pings idle clients every 30 s, stopped by
//!   [`close_all`];
//! * [`TransportError`]: what failed, where, after how many attempts.
//!
//! * [`launch`]: start services on demand or reuse running ones (remote-http-launcher's protocol);
//! * [`config`]: the user's configuration (`seamless.yaml`, clusters, `SEAMLESS_REMOTE_CLIENTS`,
//!   `SEAMLESS_CACHE`), selections and launch descriptions, as seamless-config 0.3.2 reads them.
//!
//! HTTPS (rustls, verified certificates) is behind the default `tls` feature.

pub mod activation;
pub mod checksum;
pub mod client;
pub mod config;
pub mod env;
pub mod error;
pub mod http;
pub mod keepalive;
pub mod launch;
pub mod retry;
pub mod safe_fs;
pub mod text;
pub mod timeouts;

pub use checksum::{Checksum, ChecksumError, ChecksumHasher};
pub use client::{ClientOptions, Initializer, RemoteClient};
pub use error::{BoxError, TimeoutKind, TransportError, TransportErrorKind};
pub use http::{RequestBody, RequestSpec, Response};
pub use keepalive::{close_all, ClientRegistry};
pub use retry::{Disposition, RetryPolicy, Retryable};
pub use timeouts::Timeouts;
