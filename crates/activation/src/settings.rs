//! [`Settings`]: every environment variable the Seamless clients read, read in one place.
//!
//! The programs (the two binaries, the Python module) call [`Settings::from_env`] once and
//! [`Settings::install`] it: that sets the process-wide switches of `seamless-remote-core`
//! (timeouts, keepalive interval, worker guard, debug output) and makes it
//! [`Settings::current`], which the process-wide layers of the service crates read. The
//! libraries themselves never read the environment; an explicit handle takes its values as
//! arguments. [`Settings::from_lookup`] is the pure parser (tests, embedding).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use seamless_config::env::ClientSource;
use seamless_config::{ConfigError, LoadOptions};
use seamless_launcher::{Launcher, StateDirs};
use seamless_remote_core::keepalive::DEFAULT_KEEPALIVE_INTERVAL;
use seamless_remote_core::{ClientOptions, Timeouts};

/// `SEAMLESS_REMOTE_KEEPALIVE_INTERVAL`: seconds between keepalive pings of idle clients.
pub const KEEPALIVE_INTERVAL_ENV: &str = "SEAMLESS_REMOTE_KEEPALIVE_INTERVAL";
/// `SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER`: remote clients allowed in a worker process.
pub const ALLOW_IN_WORKER_ENV: &str = "SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER";
/// `SEAMLESS_CLIENT_DEBUG`: client pool and healthcheck events at INFO.
pub const CLIENT_DEBUG_ENV: &str = "SEAMLESS_CLIENT_DEBUG";
/// `SEAMLESS_DEBUG_REMOTE_DB`: database requests at INFO.
pub const REMOTE_DB_DEBUG_ENV: &str = "SEAMLESS_DEBUG_REMOTE_DB";
/// `SEAMLESS_REMOTE_CLIENTS`: JSON list of extern buffer/database clients.
pub const REMOTE_CLIENTS_ENV: &str = "SEAMLESS_REMOTE_CLIENTS";
/// `SEAMLESS_CACHE`: a directory that replaces the configuration with a local cache.
pub const CACHE_ENV: &str = "SEAMLESS_CACHE";
/// `SEAMLESS_LAUNCHER_SSH`: the ssh command for services on a remote frontend.
pub const LAUNCHER_SSH_ENV: &str = "SEAMLESS_LAUNCHER_SSH";
/// `SEAMLESS_DATABASE_MAX_INFLIGHT`: requests in flight per database client (0 = unlimited).
pub const DATABASE_MAX_INFLIGHT_ENV: &str = "SEAMLESS_DATABASE_MAX_INFLIGHT";
/// `SEAMLESS_FINGERTIP_TIMEOUT`: inactivity timeout of the local fingertip services.
pub const FINGERTIP_TIMEOUT_ENV: &str = "SEAMLESS_FINGERTIP_TIMEOUT";
/// `SEAMLESS_DASK_PYTHON`: the interpreter of the Dask front on the daskserver's host.
pub const DASK_PYTHON_ENV: &str = "SEAMLESS_DASK_PYTHON";

/// Every environment-derived setting, parsed as the reference parses it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SEAMLESS_REMOTE_{CONNECT,READ,TOTAL,HEALTHCHECK}_TIMEOUT`.
    pub timeouts: Timeouts,
    /// `SEAMLESS_REMOTE_KEEPALIVE_INTERVAL` (default 30 s).
    pub keepalive_interval: Duration,
    /// `SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER`.
    pub allow_in_worker: bool,
    /// `SEAMLESS_CLIENT_DEBUG`.
    pub client_debug: bool,
    /// `SEAMLESS_DEBUG_REMOTE_DB`.
    pub remote_db_debug: bool,
    /// `SEAMLESS_REMOTE_CLIENTS`, as given.
    pub remote_clients: Option<String>,
    /// `SEAMLESS_CACHE`: trimmed, `~` expanded, absolute; empty = unset.
    pub cache: Option<PathBuf>,
    /// `SEAMLESS_LAUNCHER_SSH`, split like a shell would (default `ssh`).
    pub launcher_ssh: Vec<String>,
    /// `SEAMLESS_DATABASE_MAX_INFLIGHT` (default 30; negative = 0 = unlimited).
    pub database_max_inflight: usize,
    /// `SEAMLESS_FINGERTIP_TIMEOUT` in seconds (default 600).
    pub fingertip_timeout: u64,
    /// `SEAMLESS_DASK_PYTHON` (default `python3`).
    pub dask_python: String,
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `PATH` (where a program to launch is looked up).
    pub path: Option<String>,
}

/// A flag as the reference reads it: `1`, `true` or `yes`, any case.
fn flag(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Settings {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every variable through `lookup` (pure: for tests and embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        let home = lookup("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let cache = lookup(CACHE_ENV)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| {
                let p = seamless_config::env::expand_tilde(&v, home.as_deref());
                if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
                }
            });
        Settings {
            timeouts: Timeouts::from_lookup(&lookup),
            keepalive_interval: lookup(KEEPALIVE_INTERVAL_ENV)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .unwrap_or(DEFAULT_KEEPALIVE_INTERVAL),
            allow_in_worker: flag(lookup(ALLOW_IN_WORKER_ENV)),
            client_debug: flag(lookup(CLIENT_DEBUG_ENV)),
            remote_db_debug: flag(lookup(REMOTE_DB_DEBUG_ENV)),
            remote_clients: lookup(REMOTE_CLIENTS_ENV),
            cache,
            launcher_ssh: lookup(LAUNCHER_SSH_ENV)
                .and_then(|s| shlex::split(&s))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec!["ssh".into()]),
            database_max_inflight: match lookup(DATABASE_MAX_INFLIGHT_ENV) {
                None => 30,
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map_or(30, |n| usize::try_from(n.max(0)).unwrap_or(usize::MAX)),
            },
            fingertip_timeout: lookup(FINGERTIP_TIMEOUT_ENV)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|t| *t > 0)
                .unwrap_or(seamless_config::launch::SERVICE_TIMEOUT),
            dask_python: lookup(DASK_PYTHON_ENV)
                .filter(|p| !p.trim().is_empty())
                .unwrap_or_else(|| "python3".into()),
            home,
            path: lookup("PATH"),
        }
    }

    /// Where the clients come from, as the reference's `set_remote_clients_from_env`:
    /// `SEAMLESS_CACHE` set → the config files (cache mode); `SEAMLESS_REMOTE_CLIENTS` set →
    /// those clients (an error if malformed); else the config files.
    pub fn client_source(&self) -> Result<ClientSource, ConfigError> {
        seamless_config::env::client_source(self.cache.as_deref(), self.remote_clients.as_deref())
    }

    /// Configuration-loading options for `workdir` (with `HOME` and `SEAMLESS_CACHE`).
    pub fn load_options(&self, workdir: impl Into<PathBuf>) -> LoadOptions {
        LoadOptions {
            workdir: workdir.into(),
            home: self.home.clone(),
            seamless_cache: self.cache.clone(),
            ..LoadOptions::default()
        }
    }

    /// The launcher's state directories (under `HOME`, else `/`).
    pub fn state_dirs(&self) -> StateDirs {
        StateDirs::new(self.home.clone().unwrap_or_else(|| PathBuf::from("/")))
    }

    /// A launcher over [`Self::state_dirs`] with the ssh command.
    pub fn launcher(&self) -> Launcher {
        Launcher::new(self.state_dirs()).with_ssh_command(self.launcher_ssh.clone())
    }

    /// Client options with these timeouts.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            timeouts: self.timeouts,
            ..ClientOptions::default()
        }
    }

    /// Makes these the process's settings: sets remote-core's process-wide switches (default
    /// timeouts, keepalive interval, worker guard, debug output) and [`Self::current`].
    pub fn install(self) -> Arc<Settings> {
        use seamless_remote_core::env as switches;
        switches::set_default_timeouts(self.timeouts);
        switches::set_keepalive_interval(self.keepalive_interval);
        switches::set_allow_in_worker(self.allow_in_worker);
        switches::set_client_debug(self.client_debug);
        switches::set_remote_db_debug(self.remote_db_debug);
        let settings = Arc::new(self);
        *CURRENT.write().unwrap_or_else(|p| p.into_inner()) = Some(settings.clone());
        settings
    }

    /// The installed settings; if none were installed, those of the environment, installed now.
    pub fn current() -> Arc<Settings> {
        if let Some(s) = CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return s;
        }
        Settings::from_env().install()
    }
}

static CURRENT: RwLock<Option<Arc<Settings>>> = RwLock::new(None);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn from(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|n| map.get(n).cloned())
    }

    #[test]
    fn defaults_and_the_references_parsing() {
        let s = from(&[]);
        assert_eq!(s.database_max_inflight, 30);
        assert_eq!(s.fingertip_timeout, 600);
        assert_eq!(s.dask_python, "python3");
        assert_eq!(s.launcher_ssh, vec!["ssh".to_string()]);
        assert_eq!(s.keepalive_interval, DEFAULT_KEEPALIVE_INTERVAL);
        assert!(!s.allow_in_worker && !s.client_debug && !s.remote_db_debug);
        let s = from(&[
            ("HOME", "/home/u"),
            (CACHE_ENV, " ~/cache "),
            (DATABASE_MAX_INFLIGHT_ENV, "-3"),
            (FINGERTIP_TIMEOUT_ENV, "0"),
            (LAUNCHER_SSH_ENV, "ssh -F '/a b/config'"),
            (ALLOW_IN_WORKER_ENV, "Yes"),
            (KEEPALIVE_INTERVAL_ENV, "0.5"),
            (DASK_PYTHON_ENV, "  "),
        ]);
        assert_eq!(s.cache.as_deref(), Some(Path::new("/home/u/cache")));
        assert_eq!(s.database_max_inflight, 0, "negative means unlimited");
        assert_eq!(s.fingertip_timeout, 600, "0 is not a timeout");
        assert_eq!(s.launcher_ssh, ["ssh", "-F", "/a b/config"]);
        assert!(s.allow_in_worker);
        assert_eq!(s.keepalive_interval, Duration::from_millis(500));
        assert_eq!(s.dask_python, "python3");
        assert_eq!(
            s.state_dirs().root,
            Path::new("/home/u/.remote-http-launcher")
        );
    }
}
