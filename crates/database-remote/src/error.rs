//! The database crate's error type.

use seamless_remote_core::TransportError;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The HTTP exchange failed (connect, timeout, interrupted...).
    #[error(transparent)]
    Transport(#[from] TransportError),

    /// The configuration or the activation is invalid, or what a call needs is not active.
    #[error(transparent)]
    Setup(#[from] seamless_activation::SetupError),

    /// The database refused the request (400, 405, 5xx): a definite answer, never retried.
    #[error("{url} refused the {request} request (HTTP {status}): {message}")]
    Rejected {
        /// The database URL.
        url: String,
        /// The request type (`transformation`, `metadata`, ...).
        request: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },

    /// A consistency conflict (409) other than "already exists with different metadata".
    #[error("{url}: conflict on {request} for {checksum}: {message}")]
    Conflict {
        /// The database URL.
        url: String,
        /// The request type.
        request: String,
        /// The checksum concerned.
        checksum: String,
        /// The server's message.
        message: String,
    },

    /// The answer is not what the request type returns (not hex, not the JSON shape expected).
    #[error("malformed answer from {url} to a {request} request: {detail}")]
    Malformed {
        /// The database URL.
        url: String,
        /// The request type.
        request: String,
        /// What was wrong.
        detail: String,
    },

    /// A write on a read-only client.
    #[error("cannot {action}: database client {target} is read-only")]
    ReadOnly {
        /// What was attempted.
        action: &'static str,
        /// The client's URL.
        target: String,
    },

    /// A request could not be encoded as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] serde_json::Error),
}

seamless_remote_core::retryable_through_transport!(DatabaseError, DatabaseError::Transport);

seamless_activation::setup_error_from!(DatabaseError);
