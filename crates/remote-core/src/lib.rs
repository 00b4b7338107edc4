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
//! The configuration is `seamless-config`, the launcher `seamless-launcher`, and the handling of
//! untrusted data `seamless-safe-io`.
//!
//! HTTPS (rustls, verified certificates) is behind the default `tls` feature.
//!
//! ```no_run
//! use seamless_remote_core::{Checksum, RemoteClient, RequestSpec};
//! # async fn demo() -> Result<(), seamless_remote_core::TransportError> {
//! let cs = Checksum::of(b"hello world");
//! assert_eq!(cs.to_hex().len(), 64);
//! let client = RemoteClient::new("http://127.0.0.1:5100")?;
//! let (status, body) = client
//!     .request_bytes(&RequestSpec::get(format!("/{cs}")), 1 << 20)
//!     .await?;
//! println!("{status}: {} bytes", body.len());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs, unreachable_pub)]

pub mod checksum;
pub mod client;
pub mod env;
pub mod error;
pub mod http;
pub mod keepalive;
pub mod retry;
pub mod timeouts;

pub use checksum::{Checksum, ChecksumError, ChecksumHasher};
pub use client::{ClientOptions, Initializer, RemoteClient};
pub use error::{BoxError, TimeoutKind, TransportError, TransportErrorKind};
pub use http::{RequestBody, RequestSpec, Response};
pub use keepalive::{close_all, ClientRegistry};
pub use retry::{Disposition, RetryPolicy, Retryable};
pub use timeouts::Timeouts;
