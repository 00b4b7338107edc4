//! Our tokio runtime (one per process, fork-safe) and the bridge from a Rust future to an asyncio
//! future of the caller's loop.
//!
//! Seamless forks and spawns worker processes. A forked child inherits the memory of the
//! parent's runtime but none of its threads, so the runtime is keyed by pid: the first call in a
//! child makes a new one (the parent's is leaked, never dropped: its threads do not exist here)
//! and drops every client's connections (they belong to the parent).
//!
//! pyo3-async-runtimes does the same bridging but keeps one global runtime for the process
//! lifetime, which a forked child cannot use; so the bridge is written here, in a few lines.

use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

struct PerPid {
    pid: u32,
    runtime: Arc<tokio::runtime::Runtime>,
}

static RUNTIME: Mutex<Option<PerPid>> = Mutex::new(None);

/// The runtime of this process (made on first use, and again after a fork).
pub(crate) fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = slot.as_ref() {
        if r.pid == pid {
            return Ok(r.runtime.clone());
        }
    }
    if let Some(old) = slot.take() {
        // A fork: the parent's runtime has no threads here; dropping it could wait forever.
        std::mem::forget(old);
        seamless_remote_core::close_all();
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("seamless-remote")
            .enable_all()
            .build()
            .map_err(|e| {
                pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "cannot start the seamless-remote runtime: {e}"
                ))
            })?,
    );
    *slot = Some(PerPid {
        pid,
        runtime: runtime.clone(),
    });
    Ok(runtime)
}

/// Runs `fut` on our runtime and blocks until it is done, with the GIL released.
pub(crate) fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    let rt = runtime()?;
    Ok(py.detach(|| rt.block_on(fut)))
}

/// Aborts the Rust task when its asyncio future is cancelled (its done callback).
#[pyclass]
struct AbortOnCancel(tokio::task::AbortHandle);

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()? {
            self.0.abort();
        }
        Ok(())
    }
}

/// An asyncio future of the running loop that `fut` completes from our runtime. Its value is
/// made by `convert` with the GIL held; a cancelled asyncio future cancels (drops) `fut`.
pub(crate) fn awaitable<'py, F, T, C>(
    py: Python<'py>,
    fut: F,
    convert: C,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
    C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_future = event_loop.call_method0("create_future")?;
    let (loop_ref, fut_ref) = (event_loop.unbind(), py_future.clone().unbind());
    let task = runtime()?.spawn(async move {
        let value = fut.await;
        Python::attach(|py| {
            let (ok, value) = match convert(py, value) {
                Ok(v) => (true, v.unbind()),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            let resolve = py
                .import("seamless_remote._bridge")
                .and_then(|m| m.getattr("resolve"));
            if let Ok(resolve) = resolve {
                // The loop may be closed by now: then nobody waits for the answer.
                let _ = loop_ref.call_method1(
                    py,
                    "call_soon_threadsafe",
                    (resolve, fut_ref, ok, value),
                );
            }
        });
    });
    py_future.call_method1("add_done_callback", (AbortOnCancel(task.abort_handle()),))?;
    Ok(py_future)
}
