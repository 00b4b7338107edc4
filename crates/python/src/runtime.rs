//! Our tokio runtime (one per process, fork-safe) and the bridge from a Rust future to an asyncio
//! future of the caller's loop.
//!
//! Seamless forks and spawns worker processes. A forked child inherits the memory of the
//! parent's runtime but none of its threads, so the runtime is keyed by pid: the first call in a
//! child makes a new one (the parent's is leaked, never dropped: its threads do not exist here)
//! and drops every client's connections (they belong to the parent).
//!
//! The bridge never calls Python from our threads: a finished task queues its completion in the
//! loop's mailbox and, if the mailbox was empty, signals the loop's wake-up descriptor (an
//! eventfd, or a pipe where there is none); the loop (`add_reader`) runs the completions on its
//! own thread. (A thread that touches Python while the interpreter exits
//! is killed by it, which aborts the process.) pyo3-async-runtimes completes futures from its
//! own threads and keeps one global runtime that a forked child cannot use, so the bridge is
//! written here.

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
    // One worker thread: the caller's Python thread does the rest. Small requests cost less
    // CPU without a second worker to wake and hand work to (measured in `cargo xtask bench
    // python`), and a 1 GiB transfer is no slower: the hashserver is the bottleneck.
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
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

/// Work for a loop's thread: completes one asyncio future (runs with the GIL, on that thread).
type Completion = Box<dyn FnOnce(Python<'_>) + Send>;

/// One asyncio loop's mailbox: its wake-up descriptor (an eventfd, or the write end of a pipe;
/// the loop reads it with `add_reader`) and the completions waiting for it.
struct Mailbox {
    wake_fd: i32,
    /// Bytes per wake-up: 8 for an eventfd (a `u64` added to its counter), 1 for a pipe.
    wake_width: usize,
    queue: Vec<Completion>,
}

static MAILBOXES: std::sync::LazyLock<Mutex<std::collections::HashMap<u64, Mailbox>>> =
    std::sync::LazyLock::new(Default::default);
static NEXT_MAILBOX: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Registers a loop's wake-up descriptor (non-blocking; `width` 8 for an eventfd, 1 for the
/// write end of a pipe); the mailbox key.
#[pyfunction]
fn bridge_register(wake_fd: i32, width: usize) -> PyResult<u64> {
    if width != 1 && width != 8 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "a wake-up is 1 byte (pipe) or 8 bytes (eventfd)",
        ));
    }
    let key = NEXT_MAILBOX.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    MAILBOXES.lock().unwrap_or_else(|p| p.into_inner()).insert(
        key,
        Mailbox {
            wake_fd,
            wake_width: width,
            queue: Vec::new(),
        },
    );
    Ok(key)
}

/// Forgets a mailbox (its loop is gone); completions still queued are dropped.
#[pyfunction]
fn bridge_unregister(key: u64) {
    MAILBOXES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key);
}

/// Runs the completions queued for a mailbox (called by its loop, when woken).
#[pyfunction]
fn bridge_drain(py: Python<'_>, key: u64) {
    let queue = MAILBOXES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(&key)
        .map(|m| std::mem::take(&mut m.queue))
        .unwrap_or_default();
    for completion in queue {
        completion(py);
    }
}

/// Queues `completion` for the loop of `key` and wakes it. Runs on our threads: no Python
/// here (a thread that touches Python while the interpreter exits is killed by it).
fn post(key: u64, completion: Completion) {
    let mut boxes = MAILBOXES.lock().unwrap_or_else(|p| p.into_inner());
    let Some(mailbox) = boxes.get_mut(&key) else {
        return; // the loop is gone: nobody waits for the answer
    };
    let was_empty = mailbox.queue.is_empty();
    mailbox.queue.push(completion);
    if !was_empty {
        // A wake-up is pending: the loop reads its descriptor before it takes the queue, so the
        // completion queued now is taken with the others.
        return;
    }
    // 1 as a u64 for an eventfd, or its first byte for a pipe (any byte wakes a pipe's reader).
    let one = 1u64.to_ne_bytes();
    let wake = &one[..mailbox.wake_width]; // 1 or 8: checked at registration
                                           // Non-blocking: a full pipe already holds a wake-up.
                                           // SAFETY: write(2) from a valid buffer of `wake.len()` bytes to a descriptor we were given.
    #[allow(unsafe_code)]
    let _ = unsafe { libc::write(mailbox.wake_fd, wake.as_ptr().cast(), wake.len()) };
}

/// An asyncio future of the running loop that `fut` completes. The result is made by `convert`
/// on the loop's own thread (with the GIL); our threads never call Python. A cancelled asyncio
/// future cancels (drops) `fut`.
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
    let key: u64 = py
        .import("seamless_remote._bridge")?
        .call_method1("mailbox", (&event_loop,))?
        .extract()?;
    let py_future = event_loop.call_method0("create_future")?;
    let fut_ref = py_future.clone().unbind();
    let task = runtime()?.spawn(async move {
        let value = fut.await;
        post(
            key,
            Box::new(move |py: Python<'_>| {
                let fut = fut_ref.bind(py);
                if fut
                    .call_method0("done")
                    .and_then(|d| d.is_truthy())
                    .unwrap_or(true)
                {
                    return; // cancelled meanwhile
                }
                let _ = match convert(py, value) {
                    Ok(v) => fut.call_method1("set_result", (v,)),
                    Err(e) => fut.call_method1("set_exception", (e.into_value(py),)),
                };
            }),
        );
    });
    py_future.call_method1("add_done_callback", (AbortOnCancel(task.abort_handle()),))?;
    Ok(py_future)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bridge_register, m)?)?;
    m.add_function(wrap_pyfunction!(bridge_unregister, m)?)?;
    m.add_function(wrap_pyfunction!(bridge_drain, m)?)?;
    Ok(())
}
