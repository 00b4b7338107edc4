//! The native module of the `seamless_remote` wheel (`seamless_remote._native`): the Rust
//! clients behind the Python API of seamless-remote 0.4.0.
//!
//! The Python package (`python/seamless_remote/`) keeps the reference's module layout and
//! signatures and calls these functions; they act on the process-wide activation state of the
//! service crates (the same layer the Rust programs use). Async calls return asyncio futures of
//! the caller's running loop, completed from our runtime (see `runtime.rs`); blocking
//! calls release the GIL while they wait.

mod buffer;
mod cli;
mod convert;
mod dask;
mod database;
mod jobserver;
mod runtime;
mod setup;

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    RemoteError,
    pyo3::exceptions::PyRuntimeError,
    "A remote operation failed (the message names what, where and after how many attempts)."
);

pyo3::create_exception!(
    _native,
    RemoteConnectionError,
    pyo3::exceptions::PyConnectionError,
    "A service could not be reached (after the retries): a ConnectionError, as the reference's aiohttp errors were."
);

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("RemoteError", m.py().get_type::<RemoteError>())?;
    m.add(
        "RemoteConnectionError",
        m.py().get_type::<RemoteConnectionError>(),
    )?;
    m.add("IMPLEMENTATION", "rust")?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    runtime::register(m)?;
    setup::register(m)?;
    buffer::register(m)?;
    database::register(m)?;
    jobserver::register(m)?;
    dask::register(m)?;
    cli::register(m)?;
    Ok(())
}
