//! Why a launch failed.

use std::path::PathBuf;

/// Why a launch failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A state file or directory could not be used.
    #[error("launcher: {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The service could not be started, or stopped during start-up.
    #[error("could not start {key}: {reason}\nlog {log}:\n{tail}\nFix the cause above (or remove the state with `rm {server_file}`) and try again.")]
    Failed {
        /// The launch key.
        key: String,
        /// What happened.
        reason: String,
        /// The service log.
        log: String,
        /// Its last lines.
        tail: String,
        /// The server state file.
        server_file: String,
    },
    /// The description cannot be launched as it is.
    #[error("cannot launch {key}: {reason}")]
    Invalid {
        /// The launch key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// An I/O failure on `path` while doing `action`.
pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> LaunchError {
    let path = path.into();
    move |source| LaunchError::Io {
        action,
        path,
        source,
    }
}
