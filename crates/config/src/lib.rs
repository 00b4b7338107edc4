//! Seamless configuration in Rust (`seamless-config`), read exactly as the Python
//! seamless-config 0.3.2 reads it. Pure: it reads files and the environment variables named
//! below, and launches nothing.
//!
//! * [`cluster`]: the cluster schema of `~/.seamless/clusters.yaml`, `~/.seamless/clusters/*.yaml`
//!   and inline `clusters:` commands, as typed structs (unknown keys and missing fields are errors
//!   naming the file, the cluster and the field).
//! * [`files`]: `seamless.yaml` / `seamless.profile.yaml`, their command language, parent
//!   inheritance and stage blocks, and [`load`], which produces a [`Config`].
//! * [`select`]: the current selection (`get_current`), the delegation level it implies and the
//!   plan of activations a stage change performs.
//! * [`launch`]: the launch descriptions of hashserver, database, jobserver and daskserver, with
//!   their final `key` and `command` strings.
//! * [`env`](mod@env): `SEAMLESS_REMOTE_CLIENTS` and `SEAMLESS_CACHE`.
//! * [`activation`]: the launch-key rules of every service's `activate()`.
//!
//! ```
//! use seamless_config::validate_name;
//! assert!(validate_name("project", "demo").is_ok());
//! assert!(validate_name("project", "../etc").is_err());
//! ```
//!
//! Where the reference has a bug, this module does what the user obviously meant; each case is
//! listed in `ARCHITECTURE.md` ("Configuration: decisions").

#![deny(missing_docs, unreachable_pub)]

pub mod activation;
pub mod cluster;
pub mod env;
pub mod files;
pub mod launch;
pub mod select;

use std::path::PathBuf;

pub use cluster::{Cluster, ClusterType, Clusters};
pub use env::{RemoteClientEntry, RemoteClients};
pub use files::{load, LoadOptions};
pub use launch::{display_command, Handshake, LaunchDescription, Service};
pub use select::{Config, Current, Delegation, Execution, PlanStep, Remote};

/// What is wrong with a configuration, with the file, key or variable to look at.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not valid YAML (the message has the line and column).
    #[error("{path}: invalid YAML: {detail}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// A project file that is not a list of commands.
    #[error("{path}: expected a YAML list of commands, for example:\n- project: myproject")]
    NotAList {
        /// The file.
        path: PathBuf,
    },
    /// A command that does not exist or has a bad argument.
    #[error("{path}: {detail}")]
    Command {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the command.
        detail: String,
    },
    /// A cluster definition with a missing, unknown or invalid field.
    #[error("{source_name}: cluster '{cluster}': {detail}")]
    Cluster {
        /// The file (or `clusters:` command) that defined it.
        source_name: String,
        /// The cluster.
        cluster: String,
        /// What is wrong, naming the field.
        detail: String,
    },
    /// An invalid cluster, project, stage or substage name.
    #[error("invalid {what} name '{value}': {why}")]
    InvalidName {
        /// cluster, project, subproject, stage or substage.
        what: &'static str,
        /// The name.
        value: String,
        /// Why.
        why: &'static str,
    },
    /// The selection cannot do what is asked (no cluster, no project, conflicting backends...).
    #[error("{0}")]
    Selection(String),
    /// `SEAMLESS_REMOTE_CLIENTS` is malformed.
    #[error("SEAMLESS_REMOTE_CLIENTS: {0}")]
    RemoteClients(String),
}

/// The longest cluster, project, stage or substage name (a subproject: each `/` part).
pub const MAX_NAME_LEN: usize = 100;

/// Checks a cluster, project, stage or substage name. These names become directories and launch
/// keys, so beyond the reference's rules (`--`, `STAGE-` and `/` are not allowed; a subproject
/// may contain `/` between parts) a name is not empty, not `.` or `..` (nor is a subproject
/// part), has no whitespace or control character (NUL included) and at most [`MAX_NAME_LEN`]
/// characters.
pub fn validate_name(what: &'static str, value: &str) -> Result<(), ConfigError> {
    let bad = |why| ConfigError::InvalidName {
        what,
        value: seamless_safe_io::text::escape(value),
        why,
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(bad("it cannot contain control characters"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(bad("it cannot contain whitespace"));
    }
    let parts: Vec<&str> = if what == "subproject" {
        value.split('/').collect()
    } else {
        vec![value]
    };
    for part in parts {
        if part == ".." || part == "." {
            return Err(bad("it cannot be or contain '.' or '..' as a path part"));
        }
        if part.is_empty() {
            return Err(bad("it cannot start or end with '/' or contain '//'"));
        }
        if part.chars().count() > MAX_NAME_LEN {
            return Err(bad("it is longer than 100 characters"));
        }
        if part.contains('\\') {
            return Err(bad("it cannot contain '\\'"));
        }
    }
    if value.contains("--") {
        return Err(bad("it cannot contain '--'"));
    }
    if value.contains("STAGE-") {
        return Err(bad("it cannot contain 'STAGE-'"));
    }
    if what != "subproject" && value.contains('/') {
        return Err(bad("it cannot contain '/'"));
    }
    Ok(())
}
