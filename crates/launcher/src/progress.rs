//! What the launcher is doing, for a front end to show. The library itself never prints: it
//! emits a `tracing` event (target `seamless_launcher`) and calls the [`ProgressCallback`] that
//! the program gave it ([`crate::Launcher::with_progress`]), if any.

use std::fmt;
use std::sync::Arc;

/// One step of a launch.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchEvent {
    /// A service is being launched.
    Launching {
        /// The service (`hashserver`, `database`, ...).
        service: String,
        /// Its launch key.
        key: String,
    },
    /// Still waiting for the service to report running; its log is there.
    Waiting {
        /// The launch key.
        key: String,
        /// Where its log is.
        log: String,
    },
    /// The service answers.
    Ready {
        /// The service.
        service: String,
        /// Its launch key.
        key: String,
        /// Seconds since the launch started.
        seconds: f64,
    },
    /// A running service's parameters changed: it is relaunched.
    Relaunching {
        /// The launch key.
        key: String,
    },
    /// Another process is starting the service: waiting for it.
    StartedElsewhere {
        /// The launch key.
        key: String,
    },
}

impl fmt::Display for LaunchEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchEvent::Launching { service, .. } => write!(f, "Launch {service}..."),
            LaunchEvent::Waiting { key, log } => {
                write!(f, "  waiting for {key} to report running (log: {log})")
            }
            LaunchEvent::Ready {
                service, seconds, ..
            } => write!(f, "{service} ready ({seconds:.1}s)"),
            LaunchEvent::Relaunching { key } => write!(f, "{key}: parameters changed, relaunching"),
            LaunchEvent::StartedElsewhere { key } => {
                write!(f, "Waiting for {key} (being started by another process)...")
            }
        }
    }
}

/// Receives the launcher's [`LaunchEvent`]s (e.g. to draw a spinner on a terminal).
pub type ProgressCallback = Arc<dyn Fn(&LaunchEvent) + Send + Sync>;
