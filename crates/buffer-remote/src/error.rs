//! The buffer crate's error type.

use std::path::PathBuf;

use seamless_remote_core::{Checksum, ChecksumError, TransportError};

/// Why a buffer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// The HTTP exchange failed (connect, timeout, interrupted, unexpected status...).
    #[error(transparent)]
    Transport(#[from] TransportError),

    /// The configuration or the activation is invalid, or what a call needs is not active.
    #[error(transparent)]
    Setup(#[from] seamless_activation::SetupError),

    /// The bytes received do not hash to the requested checksum (after one re-fetch).
    #[error("integrity error: {source_name} returned a buffer whose SHA-256 is {got}, not the requested {checksum}; the buffer was discarded")]
    Integrity {
        /// The requested checksum.
        checksum: Checksum,
        /// What was received.
        got: Checksum,
        /// Where it came from (URL or path).
        source_name: String,
    },

    /// The source sent more bytes than it announced for the buffer (its `Content-Length`, its
    /// `/buffer-length`, a folder's file size or `.BUFFERLENGTH`): cut at once and discarded.
    #[error("integrity error: {source_name} sent more than the {limit} bytes announced for {checksum}; the transfer was cut and discarded")]
    Oversized {
        /// The requested checksum.
        checksum: Checksum,
        /// Where it came from (URL or path).
        source_name: String,
        /// The announced length.
        limit: u64,
    },

    /// The server answered something that is not the expected JSON.
    #[error("malformed answer from {url}: {detail}")]
    Malformed {
        /// The request URL.
        url: String,
        /// What was wrong.
        detail: String,
    },

    /// A write or promise on a read-only client or server.
    #[error("cannot {action} {checksum}: {target} is read-only")]
    ReadOnly {
        /// `write` or `promise`.
        action: &'static str,
        /// The checksum.
        checksum: Checksum,
        /// The client's URL or name.
        target: String,
    },

    /// The server refused an upload because the body does not match the checksum.
    #[error("{url} rejected the upload of {checksum}: the data does not have this checksum (HTTP 400 Incorrect checksum)")]
    IncorrectChecksum {
        /// The checksum.
        checksum: Checksum,
        /// The request URL.
        url: String,
    },

    /// The output (a file, a writer) could not take the buffer.
    #[error("cannot write the output {path}: {source}")]
    Output {
        /// The output file (or `(output)` for a writer).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A store's file (a buffer folder, a file to upload) could not be read.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A transfer into a caller's writer broke after bytes were written: it cannot be retried.
    #[error("download of {checksum} from {url} broke after {written} bytes were written to the output; the output is incomplete: {source}")]
    Partial {
        /// The checksum.
        checksum: Checksum,
        /// The URL.
        url: String,
        /// Bytes already written.
        written: u64,
        /// The cause.
        source: Box<BufferError>,
    },

    /// A checksum string was invalid.
    #[error(transparent)]
    InvalidChecksum(#[from] ChecksumError),

    /// A request could not be encoded as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] serde_json::Error),
}

impl BufferError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        BufferError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn output(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BufferError::Output {
            path: path.into(),
            source,
        }
    }

    /// Whether this is an integrity failure (bytes that do not match their checksum, or more
    /// bytes than announced).
    pub fn is_integrity(&self) -> bool {
        match self {
            BufferError::Integrity { .. } | BufferError::Oversized { .. } => true,
            BufferError::Partial { source, .. } => source.is_integrity(),
            _ => false,
        }
    }
}

seamless_remote_core::retryable_through_transport!(BufferError, BufferError::Transport);

seamless_activation::setup_error_from!(BufferError);
