//! The launcher: start a service on demand, or reuse one that already runs, with the
//! remote-http-launcher 0.4.5 protocol, natively (no Python helper programs).
//!
//! [`Launcher::run`] takes a [`LaunchDescription`] and returns the [`Connection`] (the client
//! file's contents: `hostname`, `port`, other `*_port`s, `parameters`):
//!
//! 1. **Client file** (`client/<key>.json`): one handshake; if it answers, reuse it
//!    (`reused-local`); a `stale` or dead one is deleted.
//! 2. Take the **per-key lock** (`server/<key>.lock`; our addition: N processes launching the
//!    same key end with one service), then look at the client file again.
//! 3. **Server file** (`server/<key>.json`): `running` → check the port and handshake (15 tries,
//!    1 s apart) and reuse it (`reused-remote`), else stop its pid and relaunch; `starting` with a
//!    live pid → wait for it; anything else → delete and launch.
//! 4. **Launch**: spawn the command in its own session (`setsid`), cwd = workdir (created),
//!    output to `server/<key>.log`; write the `starting` server file atomically; wait for the
//!    service to rewrite it `running` (or `failed`: an error quoting the end of the log); check
//!    the port and the handshake (6 tries); write the client file (0600, atomic).
//!
//! SSH mode (a description with `hostname`): the same steps run on the remote host through
//! `ssh <ssh_hostname>` and the remote-http-launcher helpers on its PATH (`rhl-inspect`,
//! `rhl-launch-service`, ...), as the reference does; with `tunnel: true` a detached
//! `ssh -N -L` forwards a local port. The ssh command is `ssh`, or `SEAMLESS_LAUNCHER_SSH`
//! (split like a shell would; our addition, e.g. `ssh -F /path/config`).

mod service;
mod side;
mod state;
mod sys;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

pub use service::{DescriptionSource, LaunchedClientInfo, LaunchedService, LaunchedSet};
use side::{LocalSide, Side, SshSide};
pub use state::StateDirs;
use state::{extra_ports, port_of, read_object, remove, write_atomic};

use crate::config::{Handshake, LaunchDescription};

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

/// How to reach a launched service: the client file's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// The host to connect to.
    pub hostname: String,
    /// The main port.
    pub port: u16,
    /// The whole client file (with `*_port`s and `parameters`).
    pub raw: Map<String, Value>,
    /// How it was obtained.
    pub outcome: Outcome,
}

impl Connection {
    /// `http://hostname:port`.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.hostname, self.port)
    }

    /// Another port of the client file (e.g. `dashboard_port`).
    pub fn port_named(&self, name: &str) -> Option<u16> {
        port_of(&self.raw, name)
    }
}

/// How a [`Connection`] was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// From the client file.
    ReusedLocal,
    /// From the server file of a running service.
    ReusedRemote,
    /// A new service was started.
    Launched,
}

/// Launcher timing (the reference's numbers by default).
#[derive(Debug, Clone, Copy)]
pub struct LaunchTimeouts {
    /// No change of the server file for this long while starting: give up (60 s).
    pub no_progress: Duration,
    /// One handshake request (10 s).
    pub handshake: Duration,
}

impl Default for LaunchTimeouts {
    fn default() -> Self {
        LaunchTimeouts {
            no_progress: Duration::from_secs(60),
            handshake: Duration::from_secs(10),
        }
    }
}

/// Launches and finds services, in one state directory.
#[derive(Debug, Clone)]
pub struct Launcher {
    dirs: StateDirs,
    timeouts: LaunchTimeouts,
    env: Vec<(String, String)>,
    ssh: Vec<String>,
    /// Print progress on stderr.
    pub progress: bool,
}

impl Default for Launcher {
    fn default() -> Self {
        Launcher::new(StateDirs::from_env())
    }
}

fn io(
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

/// One blocking `GET http://host:port/path`; true on a 2xx answer.
fn http_ok(host: &str, port: u16, path: &str, timeout: Duration) -> bool {
    let Ok(mut addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    let Some(addr) = addrs.next() else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let path = path.trim_start_matches('/');
    let request =
        format!("GET /{path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < 12 {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let text = String::from_utf8_lossy(&head[..got]);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .is_some_and(|s| (200..300).contains(&s))
}

/// The `pid` of a state file: a positive process id in the range of `pid_t`; anything else
/// (negative, zero, `pid + 2^32`, not a number) is no pid, never wrapped.
fn pid_of(state: &Map<String, Value>) -> Option<i32> {
    state
        .get("pid")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
}

fn port_open(host: &str, port: u16) -> bool {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn handshake_target(h: &Handshake) -> (&str, &str) {
    match h {
        Handshake::Healthcheck => ("healthcheck", "port"),
        Handshake::Path { path, port_name } => (path.as_str(), port_name.as_str()),
    }
}

/// The last `lines` lines of a log (at most its last 64 KiB are read), control characters
/// escaped.
fn log_tail(path: &std::path::Path, lines: usize) -> String {
    use std::io::{Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let Ok(mut file) = crate::safe_fs::open_checked(path, crate::safe_fs::Accept::RegularOnly)
    else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut raw = Vec::new();
    let _ = file.take(TAIL).read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let all: Vec<&str> = text.lines().collect();
    crate::text::escape_lines(&all[all.len().saturating_sub(lines)..].join("\n"))
}

impl Launcher {
    /// A launcher over `dirs`.
    pub fn new(dirs: StateDirs) -> Self {
        Launcher {
            dirs,
            timeouts: LaunchTimeouts::default(),
            env: Vec::new(),
            ssh: std::env::var("SEAMLESS_LAUNCHER_SSH")
                .ok()
                .and_then(|s| shlex::split(&s))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec!["ssh".to_string()]),
            progress: true,
        }
    }

    /// Sets the ssh command used for SSH-mode descriptions (default `ssh`).
    pub fn with_ssh_command(mut self, command: Vec<String>) -> Self {
        if !command.is_empty() {
            self.ssh = command;
        }
        self
    }

    fn side<'a>(&'a self, desc: &LaunchDescription) -> Box<dyn Side + 'a> {
        match &desc.hostname {
            Some(host) => Box::new(SshSide {
                ssh: self.ssh.clone(),
                host: desc.ssh_hostname.clone().unwrap_or_else(|| host.clone()),
                helpers: std::sync::OnceLock::new(),
            }),
            None => Box::new(LocalSide {
                dirs: &self.dirs,
                env: &self.env,
                handshake_timeout: self.timeouts.handshake,
            }),
        }
    }

    /// Sets an environment variable for the services it starts (e.g. `PATH`, which is also
    /// where the service program is looked up).
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the timing.
    pub fn with_timeouts(mut self, timeouts: LaunchTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The state directories.
    pub fn dirs(&self) -> &StateDirs {
        &self.dirs
    }

    fn say(&self, msg: &str) {
        if self.progress {
            eprintln!("{msg}");
        }
    }

    /// Launches or reuses the service of `desc` (blocking; see the module docs).
    pub fn run(&self, desc: &LaunchDescription) -> Result<Connection, LaunchError> {
        let key = desc.key.clone();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(LaunchError::Invalid {
                key,
                reason: "the key must match ^[A-Za-z0-9._-]+$".into(),
            });
        }
        if let Some(c) = self.reuse_client_file(desc) {
            return Ok(c);
        }
        let lock_path = self.dirs.lock_file(&key);
        crate::safe_fs::create_private_dir(&self.dirs.root.join("server"))
            .map_err(io("creating", self.dirs.root.join("server")))?;
        let lock =
            crate::safe_fs::create_private(&lock_path, false).map_err(io("opening", &lock_path))?;
        lock.lock().map_err(io("locking", &lock_path))?;
        // Another process may have finished a launch while we waited for the lock.
        if let Some(c) = self.reuse_client_file(desc) {
            return Ok(c);
        }
        let result = self.with_lock(desc);
        let _ = lock.unlock();
        result
    }

    fn reuse_client_file(&self, desc: &LaunchDescription) -> Option<Connection> {
        let path = self.dirs.client_file(&desc.key);
        let client = read_object(&path)?;
        if client.get("status").and_then(Value::as_str) == Some("stale") {
            remove(&path);
            return None;
        }
        let (hpath, port_name) = handshake_target(&desc.handshake);
        let host = client.get("hostname").and_then(Value::as_str)?.to_string();
        let (Some(port), Some(hport)) = (port_of(&client, "port"), port_of(&client, port_name))
        else {
            remove(&path);
            return None;
        };
        if http_ok(&host, hport, hpath, self.timeouts.handshake)
            && self.parameters_match(desc, &client)
        {
            crate::client_debug!(key = %desc.key, "launcher: reused-local");
            return Some(Connection {
                hostname: host,
                port,
                raw: client,
                outcome: Outcome::ReusedLocal,
            });
        }
        remove(&path);
        None
    }

    /// A running service whose `parameters` differ from the description's (e.g. a jobserver
    /// pointed at a hashserver that has since moved) must be relaunched.
    fn parameters_match(&self, desc: &LaunchDescription, state: &Map<String, Value>) -> bool {
        match &desc.file_parameters {
            None => true,
            Some(want) => state.get("parameters").is_none_or(|have| have == want),
        }
    }

    fn with_lock(&self, desc: &LaunchDescription) -> Result<Connection, LaunchError> {
        let side = self.side(desc);
        let side = side.as_ref();
        let key = &desc.key;
        for _ in 0..3 {
            let Some(server) = side.read_server(key) else {
                return self.launch(desc, side);
            };
            let status = server.get("status").and_then(Value::as_str).unwrap_or("");
            let pid = pid_of(&server);
            match (status, pid) {
                ("running", Some(p)) if side.pid_dead(key, p, &server) => {
                    // Dead: no need to probe its port.
                    side.remove_server(key);
                }
                ("running", _) => {
                    if self.parameters_match(desc, &server) {
                        if let Some(c) = self.validate_running(desc, &server, 15, side) {
                            return self.write_client(desc, &server, c, Outcome::ReusedRemote);
                        }
                    } else {
                        self.say(&format!("{key}: parameters changed, relaunching"));
                    }
                    side.stop(key, pid);
                    side.remove_server(key);
                }
                ("starting", Some(p)) if !side.pid_dead(key, p, &server) => {
                    self.say(&format!(
                        "Waiting for {key} (being started by another process)..."
                    ));
                    match self.monitor(desc, side) {
                        Ok(server) => {
                            let c = self.checked(desc, &server, 6, side)?;
                            return self.write_client(desc, &server, c, Outcome::ReusedRemote);
                        }
                        Err(_) => side.remove_server(key),
                    }
                }
                _ => side.remove_server(key),
            }
        }
        self.launch(desc, side)
    }

    /// Checks a running server file: its port answers and the handshake succeeds (both from the
    /// service's host). Returns how this machine connects: (host, port).
    fn validate_running(
        &self,
        desc: &LaunchDescription,
        server: &Map<String, Value>,
        tries: u32,
        side: &dyn Side,
    ) -> Option<(String, u16)> {
        let host = self.host_of(desc, server);
        let (hpath, port_name) = handshake_target(&desc.handshake);
        let port = port_of(server, "port")?;
        let hport = port_of(server, port_name)?;
        if !(0..3).any(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            side.port_open(&host, port)
        }) {
            return None;
        }
        for i in 0..tries {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            if side.handshake(&host, hport, hpath) {
                let client_host = desc.hostname.clone().unwrap_or(host);
                return Some((client_host, port));
            }
        }
        None
    }

    fn checked(
        &self,
        desc: &LaunchDescription,
        server: &Map<String, Value>,
        tries: u32,
        side: &dyn Side,
    ) -> Result<(String, u16), LaunchError> {
        self.validate_running(desc, server, tries, side)
            .ok_or_else(|| {
                self.failed(
                    desc,
                    side,
                    "it reported running, but its port does not answer the handshake",
                )
            })
    }

    fn host_of(&self, desc: &LaunchDescription, server: &Map<String, Value>) -> String {
        server
            .get("network_interface")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| desc.network_interface.clone())
            .unwrap_or_else(|| "localhost".into())
    }

    fn failed(&self, desc: &LaunchDescription, side: &dyn Side, reason: &str) -> LaunchError {
        let (tail, log) = side.log(&desc.key);
        LaunchError::Failed {
            key: desc.key.clone(),
            reason: reason.to_string(),
            tail,
            log,
            server_file: self.dirs.server_file(&desc.key).display().to_string(),
        }
    }

    fn launch(&self, desc: &LaunchDescription, side: &dyn Side) -> Result<Connection, LaunchError> {
        let name = desc.service.name();
        self.say(&format!("Launch {name}..."));
        let started = Instant::now();
        // The argument vector goes to `exec` as it is: a value with spaces or shell characters
        // stays one argument.
        if desc.argv.first().is_none_or(|p| p.is_empty()) {
            return Err(LaunchError::Invalid {
                key: desc.key.clone(),
                reason: "the description has no program to run".into(),
            });
        }
        let argv = &desc.argv;
        // `~` is the service host's home: expanded here for a local launch, by
        // rhl-launch-service on a remote host.
        let argv: Vec<String> = if desc.hostname.is_none() {
            argv.iter().map(|a| self.dirs.expand(a)).collect()
        } else {
            argv.clone()
        };
        side.start(desc, &argv)?;
        let server = self.monitor(desc, side)?;
        let c = self.checked(desc, &server, 6, side)?;
        let conn = self.write_client(desc, &server, c, Outcome::Launched)?;
        self.say(&format!(
            "{name} ready ({:.1}s)",
            started.elapsed().as_secs_f64()
        ));
        Ok(conn)
    }

    /// Waits for the server file to say `running` (or `failed`).
    fn monitor(
        &self,
        desc: &LaunchDescription,
        side: &dyn Side,
    ) -> Result<Map<String, Value>, LaunchError> {
        let key = &desc.key;
        let mut last_change = Instant::now();
        let mut last: Option<Map<String, Value>> = None;
        let mut dead_since: Option<Instant> = None;
        let mut told = false;
        let start = Instant::now();
        loop {
            let current = side.read_server(key);
            if current != last {
                last = current.clone();
                last_change = Instant::now();
            }
            match &current {
                Some(m) => {
                    match m.get("status").and_then(Value::as_str) {
                        Some("running") if port_of(m, "port").is_some() => return Ok(m.clone()),
                        Some("failed") => {
                            return Err(self.failed(
                                desc,
                                side,
                                "the service reported that it failed to start",
                            ))
                        }
                        _ => {}
                    }
                    if let Some(pid) = pid_of(m) {
                        if side.pid_dead(key, pid, m) {
                            // Give a dying service a moment to write `failed`; then report its log.
                            let since = *dead_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(1) {
                                return Err(self.failed(
                                    desc,
                                    side,
                                    &format!("the process (pid {pid}) exited during start-up"),
                                ));
                            }
                        }
                    }
                }
                None if start.elapsed() > Duration::from_secs(20) => {
                    return Err(self.failed(desc, side, "no server state file appeared"));
                }
                None => {}
            }
            if last_change.elapsed() > self.timeouts.no_progress {
                let pid = last.as_ref().and_then(pid_of);
                side.stop(key, pid);
                return Err(self.failed(
                    desc,
                    side,
                    &format!(
                        "no progress for {:?}; it was stopped",
                        self.timeouts.no_progress
                    ),
                ));
            }
            if !told && start.elapsed() > Duration::from_millis(1500) {
                let (_, log) = side.log(key);
                self.say(&format!(
                    "  waiting for {key} to report running (log: {log})"
                ));
                told = true;
            }
            std::thread::sleep(side.poll());
        }
    }

    fn write_client(
        &self,
        desc: &LaunchDescription,
        server: &Map<String, Value>,
        (host, port): (String, u16),
        outcome: Outcome,
    ) -> Result<Connection, LaunchError> {
        let mut client = Map::new();
        let (host, port) = match (&desc.hostname, desc.tunnel) {
            (Some(remote), Some(true)) => {
                let ssh_host = desc.ssh_hostname.clone().unwrap_or_else(|| remote.clone());
                let local = side::tunnel(&self.ssh, &ssh_host, remote, port).map_err(|reason| {
                    LaunchError::Invalid {
                        key: desc.key.clone(),
                        reason,
                    }
                })?;
                client.insert("tunneled-host".into(), json!(ssh_host));
                client.insert("tunneled-port".into(), json!(port));
                ("localhost".to_string(), local)
            }
            _ => (host, port),
        };
        client.insert("hostname".into(), json!(host));
        client.insert("port".into(), json!(port));
        if desc.tunnel != Some(true) {
            client.extend(extra_ports(server));
        }
        if let (Some(h), Some(sh)) = (&desc.hostname, &desc.ssh_hostname) {
            if h != sh && desc.tunnel != Some(true) {
                client.insert("ssh_hostname".into(), json!(sh));
            }
        }
        if let Some(p @ Value::Object(_)) = server.get("parameters") {
            client.insert("parameters".into(), p.clone());
        }
        let path = self.dirs.client_file(&desc.key);
        write_atomic(&path, &Value::Object(client.clone())).map_err(io("writing", &path))?;
        crate::client_debug!(key = %desc.key, ?outcome, %port, "launcher: done");
        Ok(Connection {
            hostname: host,
            port,
            raw: client,
            outcome,
        })
    }

    /// Writes `contents` to `path` (`~/` allowed) on the host where `desc`'s service runs
    /// (this machine, or its SSH host), atomically; an identical local file is left alone.
    pub fn install_file(
        &self,
        desc: &LaunchDescription,
        path: &str,
        contents: &[u8],
    ) -> Result<(), LaunchError> {
        self.side(desc)
            .install(path, contents)
            .map_err(|reason| LaunchError::Invalid {
                key: desc.key.clone(),
                reason,
            })
    }

    /// Stops the service of `desc` (if its server file names a live pid) and marks its state
    /// stale, as `seamless-service-stop` does.
    pub fn stop_service(&self, desc: &LaunchDescription) {
        let side = self.side(desc);
        if let Some(server) = side.read_server(&desc.key) {
            side.stop(&desc.key, pid_of(&server));
        }
        remove(&self.dirs.client_file(&desc.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pids_out_of_range_are_no_pid() {
        let state = |v: Value| json!({ "pid": v }).as_object().cloned().unwrap_or_default();
        assert_eq!(pid_of(&state(json!(1234))), Some(1234));
        assert_eq!(pid_of(&state(json!(1234_i64 + (1 << 32)))), None);
        assert_eq!(pid_of(&state(json!(-1))), None);
        assert_eq!(pid_of(&state(json!(0))), None);
        assert_eq!(pid_of(&state(json!("1234"))), None);
        assert_eq!(pid_of(&state(json!(1.5e300))), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "\\PC{0,16}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("pid".to_string()),
                        Just("port".to_string()),
                        Just("status".to_string()),
                        Just("dashboard_port".to_string()),
                        "[a-z_-]{1,10}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Any state file (arbitrary bytes or JSON) parses to a map or nothing, and its pid and
        /// ports are in range or absent, never a panic or a wrapped value.
        #[test]
        fn state_files_never_panic(raw in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200).boxed(),
            json_value().prop_map(|v| v.to_string().into_bytes()).boxed(),
        ]) {
            if let Some(m) = state::parse_object(&raw) {
                if let Some(p) = pid_of(&m) {
                    prop_assert!(p > 0);
                }
                if let Some(p) = port_of(&m, "port") {
                    prop_assert!(p > 0);
                }
                for (k, _) in extra_ports(&m) {
                    prop_assert!(port_of(&m, &k).is_some());
                }
            }
        }
    }
}
