//! The wheel's console scripts `seamless-resolve` and `seamless-fingertip`: our Rust programs,
//! run in-process (the GIL released) with the script's arguments.

use pyo3::prelude::*;
use seamless_cli::Tool;

/// Runs `seamless-resolve` (`tool == "resolve"`) or `seamless-fingertip`; the exit code.
#[pyfunction]
fn run_cli(py: Python<'_>, tool: &str, argv: Vec<String>) -> PyResult<u8> {
    let tool = match tool {
        "resolve" => Tool::Resolve,
        "fingertip" => Tool::Fingertip,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown program {other}"
            )))
        }
    };
    Ok(py.detach(move || seamless_cli::run_with_args(tool, argv)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    Ok(())
}
