//! Where a service runs: this machine ([`LocalSide`]: files and processes directly, no helper
//! programs), or a remote host through `ssh` ([`SshSide`]: the remote-http-launcher helpers
//! `rhl-inspect`, `rhl-launch-service`, `rhl-verify-port`, `rhl-handshake`, `rhl-stop`, `rhl-rm`,
//! `rhl-pid-alive` on the remote PATH, as the reference runs them).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::spec::LaunchSpec;
use crate::LaunchError;

/// The service side of the launch protocol.
pub(crate) trait Side {
    /// The server state file, if it exists and is a JSON object.
    fn read_server(&self, key: &str) -> Option<Map<String, Value>>;
    /// Removes the server state file.
    fn remove_server(&self, key: &str);
    /// Whether `pid` (of `server`, the state of `key`) is known to be dead, or to be another
    /// process than the service.
    fn pid_dead(&self, key: &str, pid: i32, server: &Map<String, Value>) -> bool;
    /// Stops the service (SIGINT, SIGTERM, SIGKILL) and marks it stale.
    fn stop(&self, key: &str, pid: Option<i32>);
    /// Whether the port answers a TCP connect, from the service's host.
    fn port_open(&self, host: &str, port: u16) -> bool;
    /// `GET /path` with a 2xx answer, from the service's host.
    fn handshake(&self, host: &str, port: u16, path: &str) -> bool;
    /// The end of the service's log, and where it is.
    fn log(&self, key: &str) -> (String, String);
    /// Starts the service; it then writes its state as `starting` and later `running`.
    fn start(&self, desc: &LaunchSpec, argv: &[String]) -> Result<(), LaunchError>;
    /// How often to poll the state file while starting.
    fn poll(&self) -> Duration;
    /// Writes a file (e.g. a program the service runs) on the service's host, atomically;
    /// `path` may start with `~/`.
    fn install(&self, path: &str, contents: &[u8]) -> Result<(), String>;
}
