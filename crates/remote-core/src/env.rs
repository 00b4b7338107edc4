//! Process-wide switches that keep the reference's environment variables and their meaning.
//!
//! * `SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER` (`1`/`true`/`yes`, any case): allows remote clients
//!   in a process marked as a Seamless worker with [`set_is_worker`]. Without it, every request
//!   of such a process fails with [`crate::TransportErrorKind::WorkerForbidden`].
//! * `SEAMLESS_CLIENT_DEBUG` (`1`/`true`/`yes`): connection-pool create/drop and healthcheck events
//!   are emitted at INFO level (target `seamless_remote::client_debug`) instead of DEBUG.
//! * `SEAMLESS_DEBUG_REMOTE_DB` (`1`/`true`/`yes`): database requests and answers are emitted at
//!   INFO level (target `seamless_remote::remote_db`); used by the database crate.

use std::sync::atomic::{AtomicBool, Ordering};

/// Environment variable that allows remote clients inside a worker process.
pub const ALLOW_IN_WORKER_ENV: &str = "SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER";
/// Environment variable for client debug output.
pub const CLIENT_DEBUG_ENV: &str = "SEAMLESS_CLIENT_DEBUG";
/// Environment variable for database debug output.
pub const REMOTE_DB_DEBUG_ENV: &str = "SEAMLESS_DEBUG_REMOTE_DB";

static IS_WORKER: AtomicBool = AtomicBool::new(false);

/// Marks this process as a Seamless worker (or not).
pub fn set_is_worker(is_worker: bool) {
    IS_WORKER.store(is_worker, Ordering::SeqCst);
}

/// Whether this process is marked as a Seamless worker.
pub fn is_worker() -> bool {
    IS_WORKER.load(Ordering::SeqCst)
}

/// Whether an environment flag is set to `1`, `true` or `yes` (any case), as the reference reads it.
pub fn flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Whether remote clients may be used in this process.
pub fn remote_clients_allowed() -> bool {
    !is_worker() || flag(ALLOW_IN_WORKER_ENV)
}

/// Whether `SEAMLESS_CLIENT_DEBUG` is on.
pub fn client_debug() -> bool {
    flag(CLIENT_DEBUG_ENV)
}

/// Whether `SEAMLESS_DEBUG_REMOTE_DB` is on.
pub fn remote_db_debug() -> bool {
    flag(REMOTE_DB_DEBUG_ENV)
}

/// Emits a client-debug event: INFO when `SEAMLESS_CLIENT_DEBUG` is on, DEBUG otherwise.
#[macro_export]
#[doc(hidden)]
macro_rules! client_debug {
    ($($arg:tt)*) => {
        if $crate::env::client_debug() {
            tracing::info!(target: "seamless_remote::client_debug", $($arg)*);
        } else {
            tracing::debug!(target: "seamless_remote::client_debug", $($arg)*);
        }
    };
}
