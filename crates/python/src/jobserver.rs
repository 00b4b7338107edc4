//! `seamless_remote.jobserver_remote`: the process-wide jobserver state (and, when a Dask
//! backend is active, its front, which speaks the same protocol).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use seamless_jobserver_remote::{remote, ActiveJobservers, JobResult, RunRequest};
use serde_json::json;

use crate::convert::{checksum, error, json, value};
use crate::runtime::{awaitable, block_on};
use crate::setup::{activate_options, launched_infos, PySelection};

/// The jobservers to use: the active Dask front if Dask is the backend, else the jobservers.
fn active() -> ActiveJobservers {
    match seamless_daskserver_remote::remote::active() {
        Some(handle) => ActiveJobservers::new(vec![handle.client().clone()]),
        None => remote::active(),
    }
}

#[pyfunction]
fn jobserver_define_extern_client(name: &str, url: &str) -> PyResult<()> {
    remote::define_extern_client(name, url).map_err(error)
}

#[pyfunction]
fn jobserver_activate(
    main: Option<PySelection>,
    extras: Vec<Bound<'_, PyDict>>,
    externs: Vec<String>,
    workdir: &str,
) -> PyResult<()> {
    let options = activate_options(false, main, extras, externs, workdir)?;
    remote::activate(&options).map_err(error)
}

#[pyfunction]
fn jobserver_deactivate() {
    remote::deactivate()
}

#[pyfunction]
fn jobserver_is_active() -> bool {
    !active().is_empty()
}

/// Runs a transformation; the answer is JSON text: `{"result_checksum", "probe_context", ...}`,
/// `{"remote_job_written", "record_runtime"}` or `{"checksum"}`. A failed or canceled job
/// raises [`RemoteError`](crate::RemoteError); cancelling the awaitable cancels the job.
#[pyfunction]
fn jobserver_run_transformation<'py>(
    py: Python<'py>,
    transformation_dict: &str,
    tf_checksum: &str,
    tf_dunder: &str,
    scratch: bool,
    strict_dunder: bool,
    record: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let mut request = RunRequest::new(json(transformation_dict)?, checksum(tf_checksum)?);
    request.tf_dunder = json(tf_dunder)?;
    request.scratch = scratch;
    request.strict_dunder = strict_dunder;
    request.record = record;
    let jobs = active();
    awaitable(
        py,
        async move { jobs.run_transformation(&request).await },
        |py, r| {
            let answer = match r.map_err(error)? {
                JobResult::Result {
                    result_checksum,
                    probe_context,
                    compilation_context,
                    job_validation,
                    record_runtime,
                } => json!({
                    "result_checksum": result_checksum.to_hex(),
                    "probe_context": probe_context,
                    "compilation_context": compilation_context,
                    "job_validation": job_validation,
                    "record_runtime": record_runtime,
                }),
                JobResult::RemoteJobWritten {
                    marker,
                    record_runtime,
                } => json!({"remote_job_written": marker, "record_runtime": record_runtime}),
                JobResult::Checksum(c) => json!({"checksum": c.to_hex()}),
            };
            value(py, answer.to_string())
        },
    )
}

#[pyfunction]
fn jobserver_cancel_transformation(py: Python<'_>, tf_checksum: &str) -> PyResult<bool> {
    let tf = checksum(tf_checksum)?;
    let jobs = active();
    block_on(py, async move { jobs.cancel_transformation(&tf).await })?.map_err(error)
}

#[pyfunction]
fn jobserver_cancel_transformation_async<'py>(
    py: Python<'py>,
    tf_checksum: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let tf = checksum(tf_checksum)?;
    let jobs = active();
    awaitable(
        py,
        async move { jobs.cancel_transformation(&tf).await },
        |py, r| r.map_err(error).and_then(|ok| value(py, ok)),
    )
}

#[pyfunction]
fn jobserver_transformation_status(py: Python<'_>, tf_checksum: &str) -> PyResult<String> {
    let tf = checksum(tf_checksum)?;
    let jobs = active();
    block_on(py, async move { jobs.transformation_status(&tf).await })?
        .map(|s| s.as_str().to_string())
        .map_err(error)
}

#[pyfunction]
fn jobserver_inspect_launched_clients(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    launched_infos(py, remote::inspect_launched_clients())
}

/// Initializes (launches) the active jobservers, blocking.
#[pyfunction]
fn jobserver_ensure_initialized(py: Python<'_>) -> PyResult<()> {
    let jobs = remote::active();
    block_on(py, async move {
        for c in jobs.clients() {
            c.remote().ensure_initialized().await?;
        }
        Ok::<(), seamless_remote_core::TransportError>(())
    })?
    .map_err(error)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(jobserver_define_extern_client, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_activate, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_deactivate, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_is_active, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_run_transformation, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_cancel_transformation, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_cancel_transformation_async, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_transformation_status, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_inspect_launched_clients, m)?)?;
    m.add_function(wrap_pyfunction!(jobserver_ensure_initialized, m)?)?;
    Ok(())
}
