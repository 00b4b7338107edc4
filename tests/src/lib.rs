//! Test harness for the integration tests against the real Seamless services.
//!
//! * [`venv`]: where the pinned Python services live (the virtualenv that `cargo xtask test`
//!   creates under `target/`), and whether a missing service is a skip or a failure.
//! * [`process`]: child processes that are always stopped (SIGTERM, then SIGKILL), free loopback
//!   ports, and waiting for `/healthcheck`.
//! * [`services`]: start a real hashserver (and later database, jobserver) on a free loopback port.
//! * [`hostile`]: a hostile HTTP peer (endless, oversized and lying answers, compression
//!   bombs, control bytes, no HTTP at all), standing for a broken or malicious store.
//! * [`proxy`]: a fault-injection TCP proxy placed in front of a real service: it can refuse,
//!   reset after N bytes, stall, corrupt a byte, or answer 503, and it counts the requests it saw.
//!
//! Mocks are for fault injection only: every test talks to a real service through the proxy.

#![allow(clippy::unwrap_used)]

pub mod hostile;
pub mod launchenv;
pub mod process;
pub mod proxy;
pub mod services;
pub mod transformation;
pub mod venv;

/// Installs a tracing subscriber for test output (once; `RUST_LOG` selects what is shown).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Starts a service, or skips the calling test when services are not available and not
/// required: `let Some(hs) = require!(Hashserver::start(opts)) else { return };`
#[macro_export]
macro_rules! require {
    ($start:expr) => {
        match $start {
            Ok(service) => Some(service),
            Err(why) => {
                if $crate::venv::services_required() {
                    panic!("required service could not start: {why}");
                }
                eprintln!("SKIP (service unavailable: {why})");
                None
            }
        }
    };
}

/// Client options for tests: the default timeouts (whatever the environment says), a fast
/// backoff so that retry tests do not wait seconds, and a private keepalive registry (no pings
/// across tests).
pub fn client_options() -> seamless_remote_core::ClientOptions {
    use std::time::Duration;
    let mut retry = seamless_remote_core::RetryPolicy::default();
    retry.backoff.initial = Duration::from_millis(20);
    retry.backoff.max = Duration::from_millis(200);
    seamless_remote_core::ClientOptions {
        timeouts: seamless_remote_core::Timeouts::default(),
        retry,
        registry: Some(seamless_remote_core::ClientRegistry::new(
            Duration::from_secs(3600),
        )),
        ..seamless_remote_core::ClientOptions::default()
    }
}
