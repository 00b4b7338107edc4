//! Conversions at the boundary: checksums as hex strings, JSON as text, errors as
//! [`RemoteError`](crate::RemoteError) (its message is the typed error's, escaped already where
//! it quotes a server).

use pyo3::prelude::*;
use pyo3::types::PyNone;
use seamless_remote_core::Checksum;

/// A checksum from its hex string (a `ValueError` otherwise).
pub(crate) fn checksum(hex: &str) -> PyResult<Checksum> {
    Checksum::from_hex(hex)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("invalid checksum: {e}")))
}

/// Checksums from hex strings.
pub(crate) fn checksums(hexes: &[String]) -> PyResult<Vec<Checksum>> {
    hexes.iter().map(|h| checksum(h)).collect()
}

/// Whether an error is a failure to reach a service (after the retry loop): Python callers
/// treat those as connection errors (seamless-dask's best-effort recording catches
/// `ConnectionError`, as it caught aiohttp's with the reference).
pub(crate) trait Classify: std::fmt::Display {
    /// A transport failure (connect, timeout, interrupted, busy, 5xx after the retries).
    fn is_connection(&self) -> bool {
        false
    }
}

impl Classify for seamless_remote_core::TransportError {
    fn is_connection(&self) -> bool {
        use seamless_remote_core::TransportErrorKind as K;
        match self.kind() {
            K::Connect | K::Timeout(_) | K::Interrupted | K::Busy | K::Protocol => true,
            K::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

impl Classify for seamless_buffer_remote::BufferError {
    fn is_connection(&self) -> bool {
        matches!(self, seamless_buffer_remote::BufferError::Transport(e) if e.is_connection())
    }
}

impl Classify for seamless_database_remote::DatabaseError {
    fn is_connection(&self) -> bool {
        matches!(self, seamless_database_remote::DatabaseError::Transport(e) if e.is_connection())
    }
}

impl Classify for seamless_jobserver_remote::JobserverError {
    fn is_connection(&self) -> bool {
        matches!(
            self,
            seamless_jobserver_remote::JobserverError::Transport(_)
        )
    }
}

impl Classify for seamless_daskserver_remote::DaskError {
    fn is_connection(&self) -> bool {
        use seamless_daskserver_remote::DaskError;
        match self {
            DaskError::Job(e) => e.is_connection(),
            DaskError::Buffer(e) => e.is_connection(),
            DaskError::Database(e) => e.is_connection(),
            _ => false,
        }
    }
}

impl Classify for seamless_config::ConfigError {}

impl Classify for String {}

/// A typed error as a [`RemoteConnectionError`](crate::RemoteConnectionError) (a
/// `ConnectionError`) when a service could not be reached, else a
/// [`RemoteError`](crate::RemoteError) (a `RuntimeError`); the message is the typed error's.
pub(crate) fn error(e: impl Classify) -> PyErr {
    if e.is_connection() {
        crate::RemoteConnectionError::new_err(e.to_string())
    } else {
        crate::RemoteError::new_err(e.to_string())
    }
}

/// JSON text as a `serde_json::Value` (a `ValueError` otherwise).
pub(crate) fn json(text: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("invalid JSON: {e}")))
}

/// `None` or a Python string.
pub(crate) fn opt_str<'py>(py: Python<'py>, s: Option<String>) -> Bound<'py, PyAny> {
    match s {
        Some(s) => pyo3::types::PyString::new(py, &s).into_any(),
        None => PyNone::get(py).to_owned().into_any(),
    }
}

/// A Python value by conversion (a `PyErr` if it does not convert).
pub(crate) fn value<'py, T>(py: Python<'py>, v: T) -> PyResult<Bound<'py, PyAny>>
where
    T: pyo3::IntoPyObjectExt<'py>,
{
    v.into_bound_py_any(py)
}
