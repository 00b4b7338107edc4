//! The jobserver crate's error type.

use std::time::Duration;

use seamless_remote_core::retry::{Disposition, Retryable};
use seamless_remote_core::{Checksum, TransportError};

/// Why a jobserver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobserverError {
    /// The HTTP exchange failed (connect, interrupted...).
    #[error(transparent)]
    Transport(#[from] TransportError),

    /// The transformation failed on the server; the server's traceback follows.
    #[error("transformation {tf} failed on {url}:\n{traceback}")]
    Failed {
        /// The transformation.
        tf: Checksum,
        /// The jobserver URL.
        url: String,
        /// The Python traceback (or error text) the server returned.
        traceback: String,
    },

    /// The transformation was canceled.
    #[error("transformation {tf} was canceled")]
    Canceled {
        /// The transformation.
        tf: Checksum,
    },

    /// The jobserver refused the request (400, 404, 405, a record-mode mismatch 409...).
    #[error("{url} refused the request (HTTP {status}): {message}")]
    Rejected {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The server's message.
        message: String,
    },

    /// The answer is not in the protocol's shape.
    #[error("malformed answer from {url}: {detail}")]
    Malformed {
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },

    /// An activation or configuration problem.
    #[error("{0}")]
    Config(String),
}

impl Retryable for JobserverError {
    fn disposition(&self) -> Disposition {
        match self {
            JobserverError::Transport(e) => e.disposition(),
            _ => Disposition::Definite,
        }
    }
    fn set_attempts(&mut self, attempts: u32, elapsed: Duration) {
        if let JobserverError::Transport(e) = self {
            e.set_attempts(attempts, elapsed);
        }
    }
}
