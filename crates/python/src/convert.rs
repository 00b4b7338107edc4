//! Conversions at the boundary: checksums as hex strings, JSON as text, errors as
//! [`RemoteError`](crate::RemoteError) (its message is the typed error's, escaped already where
//! it quotes a server).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyNone};
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

/// A typed error as a [`RemoteError`](crate::RemoteError).
pub(crate) fn error(e: impl std::fmt::Display) -> PyErr {
    crate::RemoteError::new_err(e.to_string())
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

/// `None` or Python `bytes` (one copy: Python owns its bytes objects).
pub(crate) fn opt_bytes<'py>(py: Python<'py>, b: Option<bytes::Bytes>) -> Bound<'py, PyAny> {
    match b {
        Some(b) => PyBytes::new(py, &b).into_any(),
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
