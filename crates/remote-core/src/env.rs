//! Process-wide switches, with the meaning of the reference's environment variables. This crate
//! never reads the environment: a program reads it once (`seamless_activation::Settings`) and
//! installs the values here.
//!
//! * allow in worker (`SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER`): remote clients in a process
//!   marked as a Seamless worker with [`set_is_worker`]. Without it, every request of such a
//!   process fails with [`crate::TransportErrorKind::WorkerForbidden`].
//! * client debug (`SEAMLESS_CLIENT_DEBUG`): connection-pool create/drop and healthcheck events
//!   are emitted at INFO level (target `seamless_remote::client_debug`) instead of DEBUG.
//! * database debug (`SEAMLESS_DEBUG_REMOTE_DB`): database requests and answers at INFO (target
//!   `seamless_remote::remote_db`); used by the database crate.
//! * default timeouts (what [`crate::ClientOptions::default`] uses) and the keepalive interval of
//!   the process-wide [`crate::ClientRegistry`] (set before its first use).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::Timeouts;

static IS_WORKER: AtomicBool = AtomicBool::new(false);
static ALLOW_IN_WORKER: AtomicBool = AtomicBool::new(false);
static CLIENT_DEBUG: AtomicBool = AtomicBool::new(false);
static REMOTE_DB_DEBUG: AtomicBool = AtomicBool::new(false);
static KEEPALIVE_MILLIS: AtomicU64 = AtomicU64::new(0);
static DEFAULT_TIMEOUTS: RwLock<Option<Timeouts>> = RwLock::new(None);

/// Marks this process as a Seamless worker (or not).
pub fn set_is_worker(is_worker: bool) {
    IS_WORKER.store(is_worker, Ordering::SeqCst);
}

/// Whether this process is marked as a Seamless worker.
pub fn is_worker() -> bool {
    IS_WORKER.load(Ordering::SeqCst)
}

/// Allows remote clients in a worker process (or not).
pub fn set_allow_in_worker(allow: bool) {
    ALLOW_IN_WORKER.store(allow, Ordering::SeqCst);
}

/// Whether remote clients may be used in this process.
pub fn remote_clients_allowed() -> bool {
    !is_worker() || ALLOW_IN_WORKER.load(Ordering::SeqCst)
}

/// Turns client debug events on or off.
pub fn set_client_debug(on: bool) {
    CLIENT_DEBUG.store(on, Ordering::SeqCst);
}

/// Whether client debug events are on.
pub fn client_debug() -> bool {
    CLIENT_DEBUG.load(Ordering::SeqCst)
}

/// Turns database debug events on or off.
pub fn set_remote_db_debug(on: bool) {
    REMOTE_DB_DEBUG.store(on, Ordering::SeqCst);
}

/// Whether database debug events are on.
pub fn remote_db_debug() -> bool {
    REMOTE_DB_DEBUG.load(Ordering::SeqCst)
}

/// Sets the timeouts that [`crate::ClientOptions::default`] uses.
pub fn set_default_timeouts(timeouts: Timeouts) {
    *DEFAULT_TIMEOUTS.write().unwrap_or_else(|p| p.into_inner()) = Some(timeouts);
}

/// The timeouts that [`crate::ClientOptions::default`] uses (the built-in ones unless set).
pub fn default_timeouts() -> Timeouts {
    DEFAULT_TIMEOUTS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or_default()
}

/// Sets the keepalive interval of the process-wide registry (effective if set before its first
/// use).
pub fn set_keepalive_interval(interval: Duration) {
    let millis = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    KEEPALIVE_MILLIS.store(millis, Ordering::SeqCst);
}

/// The keepalive interval set with [`set_keepalive_interval`], if any.
pub(crate) fn keepalive_interval() -> Option<Duration> {
    match KEEPALIVE_MILLIS.load(Ordering::SeqCst) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
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
