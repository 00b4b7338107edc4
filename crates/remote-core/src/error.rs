//! The transport error: what failed (its kind), on which request, after how many attempts.
//!
//! The *kind* drives the retry policy ([`crate::retry`]); the rest is context for the message a
//! user reads, e.g. `GET http://127.0.0.1:5100/healthcheck: could not connect (Connection refused)
//! after 5 attempts in 1.6s`.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::{Method, StatusCode};

/// A boxed error source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The TCP/TLS connection was not established in time.
    Connect,
    /// No byte moved for the idle-read timeout.
    Read,
    /// The whole request took longer than the total timeout.
    Total,
    /// The healthcheck did not complete in time.
    Healthcheck,
}

/// What went wrong, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Could not connect (refused, unreachable, DNS, TLS handshake).
    Connect,
    /// A timeout fired.
    Timeout(TimeoutKind),
    /// The connection was lost mid-request or mid-body (reset, closed early, body cut short).
    Interrupted,
    /// "Device or resource busy" (EBUSY): the reference answers it with a client restart.
    Busy,
    /// The peer did not speak valid HTTP (a store failure, not a configuration error).
    Protocol,
    /// The URL is unusable (not `http://`/`https://`, no host, a query or fragment, TLS not built
    /// in): a configuration error, never retried.
    InvalidUrl,
    /// The service could not be launched (the launcher's own error is the source); a launch that
    /// failed is not retried.
    Launch,
    /// The answer is larger than the request allows (an announced or a size cap); never retried.
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The server answered with a status the caller did not expect.
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The first bytes of the body, as lossy UTF-8.
        body: String,
    },
    /// Remote clients are not allowed in a Seamless worker process
    /// (see `SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER`).
    WorkerForbidden,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportErrorKind::Connect => f.write_str("could not connect"),
            TransportErrorKind::Timeout(TimeoutKind::Connect) => f.write_str("connect timed out"),
            TransportErrorKind::Timeout(TimeoutKind::Read) => {
                f.write_str("timed out waiting for the server (read timeout)")
            }
            TransportErrorKind::Timeout(TimeoutKind::Total) => {
                f.write_str("request took longer than the total timeout")
            }
            TransportErrorKind::Timeout(TimeoutKind::Healthcheck) => {
                f.write_str("healthcheck timed out")
            }
            TransportErrorKind::Interrupted => f.write_str("connection lost mid-transfer"),
            TransportErrorKind::Busy => f.write_str("device or resource busy"),
            TransportErrorKind::Protocol => f.write_str("the peer does not speak valid HTTP"),
            TransportErrorKind::InvalidUrl => f.write_str("invalid URL"),
            TransportErrorKind::Launch => f.write_str("the service could not be launched"),
            TransportErrorKind::TooLarge { limit } => {
                write!(f, "the answer is larger than the {limit} bytes allowed")
            }
            TransportErrorKind::Status { status, body } => {
                write!(f, "HTTP {status}")?;
                let body = body.trim();
                if !body.is_empty() {
                    write!(f, ": {}", seamless_safe_io::text::escape(body))?;
                }
                Ok(())
            }
            TransportErrorKind::WorkerForbidden => {
                f.write_str("remote clients are unavailable inside Seamless worker processes (set SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER=1 to allow them)")
            }
        }
    }
}

/// A failed HTTP exchange with a Seamless service.
#[derive(Debug)]
pub struct TransportError {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: TransportErrorKind,
    method: Method,
    url: String,
    attempts: u32,
    elapsed: Option<Duration>,
    source: Option<BoxError>,
}

impl TransportError {
    /// A new error for one attempt of `method url`.
    pub fn new(kind: TransportErrorKind, method: Method, url: impl Into<String>) -> Self {
        TransportError {
            inner: Box::new(Inner {
                kind,
                method,
                url: url.into(),
                attempts: 1,
                elapsed: None,
                source: None,
            }),
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &TransportErrorKind {
        &self.inner.kind
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.inner.method
    }

    /// The request URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How many attempts were made before giving up.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Time from the first attempt to giving up, when known.
    pub fn elapsed(&self) -> Option<Duration> {
        self.inner.elapsed
    }

    /// The HTTP status, for [`TransportErrorKind::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match &self.inner.kind {
            TransportErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a timeout fired.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, TransportErrorKind::Timeout(_))
    }

    /// Replaces a leading `from` of the URL with `to` (the base URL as it may be shown).
    pub(crate) fn rebase_url(mut self, from: &str, to: &str) -> Self {
        if let Some(rest) = self.inner.url.strip_prefix(from) {
            self.inner.url = format!("{to}{rest}");
        }
        self
    }

    /// Records how many attempts were made and how long they took (set by the retry loop).
    pub fn set_attempts(&mut self, attempts: u32, elapsed: Duration) {
        self.inner.attempts = attempts;
        self.inner.elapsed = Some(elapsed);
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        write!(
            f,
            "{} {}: {}",
            i.method,
            seamless_safe_io::text::redact_url(&i.url),
            i.kind
        )?;
        if let Some(source) = &i.source {
            // The innermost cause is the most telling ("Connection refused (os error 111)").
            let mut cause: &(dyn StdError + 'static) = source.as_ref();
            while let Some(next) = cause.source() {
                cause = next;
            }
            write!(
                f,
                " ({})",
                seamless_safe_io::text::escape(&cause.to_string())
            )?;
        }
        let attempts = if i.attempts == 1 {
            "1 attempt".to_string()
        } else {
            format!("{} attempts", i.attempts)
        };
        match i.elapsed {
            Some(e) => write!(f, " after {attempts} in {:.1?}", e),
            None => write!(f, " after {attempts}"),
        }
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn StdError + 'static))
    }
}

/// Classifies a failure of hyper's client (connect, send, or receive) by walking its source chain.
pub(crate) fn classify(err: &(dyn StdError + 'static), connecting: bool) -> TransportErrorKind {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    let mut kind = None;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc_ebusy()) {
                return TransportErrorKind::Busy;
            }
            use std::io::ErrorKind as K;
            let k = match io.kind() {
                K::ConnectionRefused | K::AddrNotAvailable | K::NotFound => {
                    Some(TransportErrorKind::Connect)
                }
                K::TimedOut if connecting => {
                    Some(TransportErrorKind::Timeout(TimeoutKind::Connect))
                }
                K::TimedOut => Some(TransportErrorKind::Timeout(TimeoutKind::Read)),
                K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::NotConnected => Some(if connecting {
                    TransportErrorKind::Connect
                } else {
                    TransportErrorKind::Interrupted
                }),
                K::InvalidData => Some(TransportErrorKind::Protocol),
                _ => None,
            };
            if k.is_some() {
                kind = k;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() || h.is_user() {
                kind.get_or_insert(TransportErrorKind::Protocol);
            } else if h.is_timeout() {
                kind.get_or_insert(TransportErrorKind::Timeout(TimeoutKind::Read));
            } else if h.is_incomplete_message()
                || h.is_canceled()
                || h.is_closed()
                || h.is_body_write_aborted()
            {
                kind.get_or_insert(TransportErrorKind::Interrupted);
            }
        }
        if e.to_string()
            .to_ascii_lowercase()
            .contains("device or resource busy")
        {
            return TransportErrorKind::Busy;
        }
        current = e.source();
    }
    kind.unwrap_or(if connecting {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Interrupted
    })
}

/// EBUSY on every Unix we target (Linux, macOS, the BSDs).
const fn libc_ebusy() -> i32 {
    16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_method_url_cause_attempts_and_time() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let mut e = TransportError::new(
            TransportErrorKind::Connect,
            Method::GET,
            "http://127.0.0.1:1/healthcheck",
        )
        .with_source(io);
        e.set_attempts(5, Duration::from_millis(1500));
        let msg = e.to_string();
        assert_eq!(
            msg,
            "GET http://127.0.0.1:1/healthcheck: could not connect (Connection refused) after 5 attempts in 1.5s"
        );
    }

    #[test]
    fn status_message_includes_body() {
        let e = TransportError::new(
            TransportErrorKind::Status {
                status: StatusCode::BAD_REQUEST,
                body: "Incorrect checksum".into(),
            },
            Method::PUT,
            "http://h/x",
        );
        assert_eq!(e.status(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            e.to_string(),
            "PUT http://h/x: HTTP 400 Bad Request: Incorrect checksum after 1 attempt"
        );
    }

    #[test]
    fn classifies_io_errors() {
        use std::io::{Error, ErrorKind};
        let c = |k, connecting| classify(&Error::new(k, "x"), connecting);
        assert_eq!(
            c(ErrorKind::ConnectionRefused, true),
            TransportErrorKind::Connect
        );
        assert_eq!(
            c(ErrorKind::ConnectionReset, false),
            TransportErrorKind::Interrupted
        );
        assert_eq!(
            c(ErrorKind::TimedOut, true),
            TransportErrorKind::Timeout(TimeoutKind::Connect)
        );
        assert_eq!(
            classify(&Error::from_raw_os_error(16), false),
            TransportErrorKind::Busy
        );
        assert_eq!(
            classify(&Error::other("Device or resource busy"), false),
            TransportErrorKind::Busy
        );
    }
}
