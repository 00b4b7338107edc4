//! `seamless_remote.buffer_remote`: the process-wide buffer state of seamless-buffer-remote.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList};
use seamless_buffer_remote::remote::{self as remote, ExternSpec};
use seamless_buffer_remote::Spooled;

use crate::convert::{checksum, checksums, error, value};
use crate::runtime::{awaitable, block_on};
use crate::setup::{activate_options, extern_infos, launched_infos, PySelection};

#[pyfunction]
#[pyo3(signature = (name, kind, url=None, directory=None, readonly=true))]
fn buffer_define_extern_client(
    name: &str,
    kind: &str,
    url: Option<String>,
    directory: Option<String>,
    readonly: bool,
) -> PyResult<()> {
    let spec = match (kind, url, directory) {
        ("hashserver", Some(url), None) => ExternSpec::Hashserver { url, readonly },
        ("bufferfolder", None, Some(directory)) => ExternSpec::Bufferfolder {
            directory: directory.into(),
        },
        ("hashserver" | "bufferfolder", _, _) => {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a hashserver takes a url, a bufferfolder a directory",
            ))
        }
        ("urlmap" | "foldermap" | "git-lfs-server", _, _) => {
            return Err(pyo3::exceptions::PyNotImplementedError::new_err(
                kind.to_string(),
            ))
        }
        (other, _, _) => return Err(pyo3::exceptions::PyTypeError::new_err(other.to_string())),
    };
    remote::define_extern_client(name, spec).map_err(error)
}

#[pyfunction]
fn buffer_activate(
    readonly: bool,
    main: Option<PySelection>,
    extras: Vec<Bound<'_, PyDict>>,
    externs: Vec<String>,
    workdir: &str,
) -> PyResult<()> {
    let options = activate_options(readonly, main, extras, externs, workdir)?;
    remote::activate(&options).map_err(error)
}

#[pyfunction]
fn buffer_deactivate() {
    remote::deactivate()
}

#[pyfunction]
fn buffer_has_write_server() -> bool {
    remote::has_write_server()
}

#[pyfunction]
fn buffer_has_read_server() -> bool {
    remote::has_read_server()
}

fn servers(kind: &str) -> PyResult<Vec<seamless_buffer_remote::BufferClient>> {
    let active = remote::active();
    match kind {
        "read" => Ok(active.read_servers().to_vec()),
        "write" => Ok(active.write_servers().to_vec()),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "unknown server list {other}"
        ))),
    }
}

fn server(kind: &str, index: usize) -> PyResult<seamless_buffer_remote::BufferClient> {
    servers(kind)?
        .get(index)
        .cloned()
        .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("no such server (activate again)"))
}

/// The active `read` or `write` servers: `(url or None before the first request, readonly)`.
#[pyfunction]
fn buffer_servers(kind: &str) -> PyResult<Vec<(Option<String>, bool)>> {
    Ok(servers(kind)?
        .iter()
        .map(|c| (c.url(), c.readonly()))
        .collect())
}

/// The active read folders' directories.
#[pyfunction]
fn buffer_read_folders() -> Vec<String> {
    remote::active()
        .read_folders()
        .iter()
        .map(|f| f.directory().display().to_string())
        .collect()
}

/// Initializes server `index` of a list (launching it if needed); its URL.
#[pyfunction]
fn buffer_server_url(py: Python<'_>, kind: &str, index: usize) -> PyResult<String> {
    let c = server(kind, index)?;
    block_on(py, async move { c.remote().ensure_initialized().await })?.map_err(error)
}

/// A promise to one write server.
#[pyfunction]
fn buffer_server_promise<'py>(
    py: Python<'py>,
    index: usize,
    hex: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (c, cs) = (server("write", index)?, checksum(hex)?);
    awaitable(py, async move { c.promise(&cs).await }, |py, r| {
        r.map_err(error).and_then(|()| value(py, ()))
    })
}

/// Buffers up to this size are downloaded into memory and copied once into a Python `bytes`;
/// larger ones are spooled (verified) to an unnamed temporary file and read straight into the
/// `bytes` object, so the process never holds two copies.
const IN_MEMORY: u64 = 64 << 20;

/// A verified buffer as Python `bytes` (the file is read with the GIL released).
fn spooled_bytes(py: Python<'_>, spooled: Spooled) -> PyResult<Bound<'_, PyAny>> {
    match spooled {
        Spooled::Memory(b) => Ok(PyBytes::new(py, &b).into_any()),
        Spooled::File { mut file, len } => {
            let len = usize::try_from(len)
                .map_err(|_| error(format!("a buffer of {len} bytes does not fit in memory")))?;
            let bytes = PyBytes::new_with(py, len, |buf| {
                py.detach(|| std::io::Read::read_exact(&mut file, buf))
                    .map_err(|e| error(format!("reading the spooled buffer: {e}")))
            })?;
            Ok(bytes.into_any())
        }
    }
}

#[pyfunction]
fn buffer_get<'py>(py: Python<'py>, hex: &str) -> PyResult<Bound<'py, PyAny>> {
    let cs = checksum(hex)?;
    let active = remote::active();
    awaitable(
        py,
        async move { active.get_buffer_spooled(&cs, IN_MEMORY).await },
        |py, r| match r.map_err(error)? {
            None => Ok(py.None().into_bound(py)),
            Some(spooled) => spooled_bytes(py, spooled),
        },
    )
}

#[pyfunction]
fn buffer_write<'py>(
    py: Python<'py>,
    hex: &str,
    data: PyBackedBytes,
) -> PyResult<Bound<'py, PyAny>> {
    let cs = checksum(hex)?;
    // No copy: the upload reads the Python bytes object, kept alive until it is done.
    let data = bytes::Bytes::from_owner(data);
    awaitable(
        py,
        async move { remote::write_buffer(&cs, data).await },
        |py, r| r.map_err(error).and_then(|ok| value(py, ok)),
    )
}

#[pyfunction]
fn buffer_promise<'py>(py: Python<'py>, hex: &str) -> PyResult<Bound<'py, PyAny>> {
    let cs = checksum(hex)?;
    awaitable(py, async move { remote::promise(&cs).await }, |py, r| {
        r.map_err(error).and_then(|()| value(py, ()))
    })
}

#[pyfunction]
fn buffer_lengths<'py>(py: Python<'py>, hexes: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
    let cs = checksums(&hexes)?;
    awaitable(
        py,
        async move { remote::get_buffer_lengths(&cs).await },
        |py, lengths| {
            let v: Vec<Option<u64>> = lengths.into_iter().map(|l| l.bytes()).collect();
            Ok(PyList::new(py, v)?.into_any())
        },
    )
}

#[pyfunction]
fn buffer_has<'py>(py: Python<'py>, hexes: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
    let cs = checksums(&hexes)?;
    awaitable(
        py,
        async move { remote::has_buffers(&cs).await },
        |py, has| Ok(PyList::new(py, has)?.into_any()),
    )
}

#[pyfunction]
fn buffer_inspect_extern_clients(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    extern_infos(py, remote::inspect_extern_clients())
}

#[pyfunction]
fn buffer_inspect_launched_clients(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    launched_infos(py, remote::inspect_launched_clients())
}

/// Initializes every active server (launching what is launched), blocking.
#[pyfunction]
fn buffer_ensure_initialized(py: Python<'_>) -> PyResult<()> {
    let active = remote::active();
    block_on(py, async move {
        for c in active.read_servers() {
            c.remote().ensure_initialized().await?;
        }
        Ok::<(), seamless_remote_core::TransportError>(())
    })?
    .map_err(error)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(buffer_define_extern_client, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_activate, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_deactivate, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_has_write_server, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_has_read_server, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_servers, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_read_folders, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_server_url, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_server_promise, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_get, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_write, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_promise, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_lengths, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_has, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_inspect_extern_clients, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_inspect_launched_clients, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_ensure_initialized, m)?)?;
    Ok(())
}
