//! `seamless_remote.database_remote`: the process-wide database state. Records, probes and
//! dunders cross as JSON text.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use seamless_database_remote::{remote, ActiveDatabases, Checksum, DatabaseError};
use serde_json::{Map, Value};

use crate::convert::{checksum, error, json, opt_str, value};
use crate::runtime::awaitable;
use crate::setup::{activate_options, extern_infos, launched_infos, PySelection};

fn object(text: &str) -> PyResult<Map<String, Value>> {
    match json(text)? {
        Value::Object(m) => Ok(m),
        _ => Err(pyo3::exceptions::PyValueError::new_err(
            "expected a JSON object",
        )),
    }
}

#[pyfunction]
fn database_define_extern_client(name: &str, url: &str, readonly: bool) -> PyResult<()> {
    remote::define_extern_client(name, url, readonly).map_err(error)
}

#[pyfunction]
fn database_activate(
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
fn database_deactivate() {
    remote::deactivate()
}

#[pyfunction]
fn database_has_write_server() -> bool {
    remote::has_write_server()
}

#[pyfunction]
fn database_has_read_server() -> bool {
    remote::has_read_server()
}

#[pyfunction]
fn database_get_transformation_result<'py>(
    py: Python<'py>,
    tf: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let tf = checksum(tf)?;
    let active = remote::active();
    awaitable(
        py,
        async move { active.get_transformation_result(&tf).await },
        |py, r| r.map(|c| opt_str(py, c.map(|c| c.to_hex()))).map_err(error),
    )
}

#[pyfunction]
fn database_get_rev_transformations<'py>(
    py: Python<'py>,
    result: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let result = checksum(result)?;
    let active = remote::active();
    awaitable(
        py,
        async move { active.get_rev_transformations(&result).await },
        |py, r| {
            let v = r.map_err(error)?;
            value(
                py,
                v.map(|v| v.iter().map(|c| c.to_hex()).collect::<Vec<_>>()),
            )
        },
    )
}

/// `kind`: `execution_record`, `bucket_probe` or `irreproducible`; the answer as JSON text.
#[pyfunction]
#[pyo3(signature = (kind, a, b=None))]
fn database_get_json<'py>(
    py: Python<'py>,
    kind: &str,
    a: String,
    b: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let active = remote::active();
    let fut: std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Value>, _>> + Send>> =
        match kind {
            "execution_record" => {
                let tf = checksum(&a)?;
                Box::pin(
                    async move { Ok(active.get_execution_record(&tf).await?.map(Value::Object)) },
                )
            }
            "bucket_probe" => Box::pin(async move {
                let label = b.unwrap_or_default();
                Ok(active
                    .get_bucket_probe(&a, &label)
                    .await?
                    .map(Value::Object))
            }),
            "irreproducible" => {
                let tf = checksum(&a)?;
                let result = b.as_deref().map(checksum).transpose()?;
                Box::pin(async move {
                    Ok(active
                        .get_irreproducible_records(&tf, result.as_ref())
                        .await?
                        .map(Value::Array))
                })
            }
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown request {other}"
                )))
            }
        };
    awaitable(
        py,
        fut,
        |py, r: Result<Option<Value>, seamless_database_remote::DatabaseError>| {
            r.map(|v| opt_str(py, v.map(|v| v.to_string())))
                .map_err(error)
        },
    )
}

/// A write of `(tf, result)` to every write database; whether something was written.
fn tf_result_write<'py, F, Fut>(
    py: Python<'py>,
    tf: &str,
    result: &str,
    write: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: FnOnce(ActiveDatabases, Checksum, Checksum) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<bool, DatabaseError>> + Send + 'static,
{
    let (tf, result) = (checksum(tf)?, checksum(result)?);
    let active = remote::active();
    awaitable(py, write(active, tf, result), |py, r| {
        r.map_err(error).and_then(|ok| value(py, ok))
    })
}

#[pyfunction]
fn database_set_transformation_result<'py>(
    py: Python<'py>,
    tf: &str,
    result: &str,
) -> PyResult<Bound<'py, PyAny>> {
    tf_result_write(py, tf, result, |a, tf, r| async move {
        a.set_transformation_result(&tf, &r).await
    })
}

#[pyfunction]
fn database_undo_transformation_result<'py>(
    py: Python<'py>,
    tf: &str,
    result: &str,
) -> PyResult<Bound<'py, PyAny>> {
    tf_result_write(py, tf, result, |a, tf, r| async move {
        a.undo_transformation_result(&tf, &r).await
    })
}

#[pyfunction]
fn database_set_execution_record<'py>(
    py: Python<'py>,
    tf: &str,
    result: &str,
    record: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (tf, result, record) = (checksum(tf)?, checksum(result)?, object(record)?);
    let active = remote::active();
    awaitable(
        py,
        async move { active.set_execution_record(&tf, &result, &record).await },
        |py, r| r.map_err(error).and_then(|ok| value(py, ok)),
    )
}

#[pyfunction]
fn database_set_bucket_probe<'py>(
    py: Python<'py>,
    kind: String,
    label: String,
    bucket_checksum: &str,
    freshness_tokens: &str,
    captured_at: String,
) -> PyResult<Bound<'py, PyAny>> {
    let (bucket, tokens) = (checksum(bucket_checksum)?, object(freshness_tokens)?);
    let active = remote::active();
    awaitable(
        py,
        async move {
            active
                .set_bucket_probe(&kind, &label, &bucket, &tokens, &captured_at)
                .await
        },
        |py, r| r.map_err(error).and_then(|ok| value(py, ok)),
    )
}

#[pyfunction]
fn database_inspect_extern_clients(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    extern_infos(py, remote::inspect_extern_clients())
}

#[pyfunction]
fn database_inspect_launched_clients(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    launched_infos(py, remote::inspect_launched_clients())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(database_define_extern_client, m)?)?;
    m.add_function(wrap_pyfunction!(database_activate, m)?)?;
    m.add_function(wrap_pyfunction!(database_deactivate, m)?)?;
    m.add_function(wrap_pyfunction!(database_has_write_server, m)?)?;
    m.add_function(wrap_pyfunction!(database_has_read_server, m)?)?;
    m.add_function(wrap_pyfunction!(database_get_transformation_result, m)?)?;
    m.add_function(wrap_pyfunction!(database_get_rev_transformations, m)?)?;
    m.add_function(wrap_pyfunction!(database_get_json, m)?)?;
    m.add_function(wrap_pyfunction!(database_set_transformation_result, m)?)?;
    m.add_function(wrap_pyfunction!(database_undo_transformation_result, m)?)?;
    m.add_function(wrap_pyfunction!(database_set_execution_record, m)?)?;
    m.add_function(wrap_pyfunction!(database_set_bucket_probe, m)?)?;
    m.add_function(wrap_pyfunction!(database_inspect_extern_clients, m)?)?;
    m.add_function(wrap_pyfunction!(database_inspect_launched_clients, m)?)?;
    Ok(())
}
