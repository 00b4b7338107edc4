//! The jobserver crate's error type.

use seamless_remote_core::{Checksum, TransportError};

/// Why a jobserver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobserverError {
    /// The HTTP exchange failed (connect, interrupted...).
    #[error(transparent)]
    Transport(#[from] TransportError),

    /// The configuration or the activation is invalid, or what a call needs is not active.
    #[error(transparent)]
    Setup(#[from] seamless_activation::SetupError),

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

    /// A request could not be encoded as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] serde_json::Error),
}

seamless_remote_core::retryable_through_transport!(JobserverError, JobserverError::Transport);

seamless_activation::setup_error_from!(JobserverError);
