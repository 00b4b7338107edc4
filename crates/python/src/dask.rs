//! `seamless_remote.daskserver_remote`: activate / deactivate the Dask backend of the current
//! stage (the daskserver and our Dask front, launched or reused).

use pyo3::prelude::*;

use crate::convert::{error, opt_str};
use crate::runtime::block_on;

use crate::setup::{activate_options, PySelection};

/// Launches or reuses the daskserver and the front (blocking); the dashboard line, if any.
#[pyfunction]
fn dask_activate<'py>(
    py: Python<'py>,
    main: Option<PySelection>,
    workdir: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let options = activate_options(false, main, Vec::new(), Vec::new(), workdir)?;
    let info = block_on(py, async move {
        seamless_daskserver_remote::remote::activate(&options).await
    })?
    .map_err(error)?;
    Ok(opt_str(py, info.map(|i| i.dashboard_line())))
}

/// Stops our front (blocking) and leaves no Dask backend active.
#[pyfunction]
fn dask_deactivate(py: Python<'_>) -> PyResult<()> {
    py.detach(seamless_daskserver_remote::remote::deactivate);
    Ok(())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dask_activate, m)?)?;
    m.add_function(wrap_pyfunction!(dask_deactivate, m)?)?;
    Ok(())
}
