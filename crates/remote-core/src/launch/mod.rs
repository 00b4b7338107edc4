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
//! SSH mode (a description with `hostname`) is not implemented yet: it is a clear error.

mod service;
mod state;
mod sys;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

pub use service::{DescriptionSource, LaunchedClientInfo, LaunchedService};
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

/// Whether the server file was written for our uid (so its pid is a process we can see).
fn server_uid_is_ours(server: &Map<String, Value>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    server.get("uid").and_then(Value::as_u64).map(|u| u as u32) == ours
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

fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Launcher {
    /// A launcher over `dirs`.
    pub fn new(dirs: StateDirs) -> Self {
        Launcher {
            dirs,
            timeouts: LaunchTimeouts::default(),
            env: Vec::new(),
            progress: true,
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
        if desc.hostname.is_some() {
            return Err(LaunchError::Invalid {
                key,
                reason: "SSH mode (a cluster frontend with a hostname) is not supported by this launcher yet; use `local_cluster:` for services on this machine".into(),
            });
        }
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
        std::fs::create_dir_all(self.dirs.root.join("server"))
            .map_err(io("creating", self.dirs.root.join("server")))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("opening", &lock_path))?;
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
        let server_path = self.dirs.server_file(&desc.key);
        for _ in 0..3 {
            let Some(server) = read_object(&server_path) else {
                return self.launch(desc);
            };
            let status = server.get("status").and_then(Value::as_str).unwrap_or("");
            let pid = server.get("pid").and_then(Value::as_i64).map(|p| p as i32);
            match (status, pid) {
                ("running", Some(p)) if !sys::pid_alive(p) && server_uid_is_ours(&server) => {
                    // Dead (this machine, our uid): no need to probe its port.
                    remove(&server_path);
                }
                ("running", _) => {
                    if self.parameters_match(desc, &server) {
                        if let Some(c) = self.validate_running(desc, &server, 15) {
                            return self.write_client(desc, &server, c, Outcome::ReusedRemote);
                        }
                    } else {
                        self.say(&format!("{}: parameters changed, relaunching", desc.key));
                    }
                    self.stop(pid);
                    remove(&server_path);
                }
                ("starting", Some(p)) if sys::pid_alive(p) => {
                    self.say(&format!(
                        "Waiting for {} (being started by another process)...",
                        desc.key
                    ));
                    match self.monitor(desc, p) {
                        Ok(server) => {
                            let c = self.checked(desc, &server, 6)?;
                            return self.write_client(desc, &server, c, Outcome::ReusedRemote);
                        }
                        Err(_) => remove(&server_path),
                    }
                }
                _ => remove(&server_path),
            }
        }
        self.launch(desc)
    }

    /// Checks a running server file: its port answers and the handshake succeeds.
    fn validate_running(
        &self,
        desc: &LaunchDescription,
        server: &Map<String, Value>,
        tries: u32,
    ) -> Option<(String, u16)> {
        let host = self.host_of(desc, server);
        let (hpath, port_name) = handshake_target(&desc.handshake);
        let port = port_of(server, "port")?;
        let hport = port_of(server, port_name)?;
        if !(0..3).any(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            port_open(&host, port)
        }) {
            return None;
        }
        for i in 0..tries {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            if http_ok(&host, hport, hpath, self.timeouts.handshake) {
                return Some((host, port));
            }
        }
        None
    }

    fn checked(
        &self,
        desc: &LaunchDescription,
        server: &Map<String, Value>,
        tries: u32,
    ) -> Result<(String, u16), LaunchError> {
        self.validate_running(desc, server, tries).ok_or_else(|| {
            self.failed(
                desc,
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

    fn failed(&self, desc: &LaunchDescription, reason: &str) -> LaunchError {
        let log = self.dirs.log_file(&desc.key);
        LaunchError::Failed {
            key: desc.key.clone(),
            reason: reason.to_string(),
            tail: log_tail(&log, 15),
            log: log.display().to_string(),
            server_file: self.dirs.server_file(&desc.key).display().to_string(),
        }
    }

    /// Stops a service as `rhl-stop` does: SIGINT, 5 s, SIGTERM, 5 s, SIGKILL.
    fn stop(&self, pid: Option<i32>) {
        let Some(pid) = pid else { return };
        for (signal, wait) in [(sys::SIGINT, 5), (sys::SIGTERM, 5), (sys::SIGKILL, 1)] {
            if !sys::pid_alive(pid) {
                return;
            }
            sys::kill(pid, signal);
            let deadline = Instant::now() + Duration::from_secs(wait);
            while Instant::now() < deadline && sys::pid_alive(pid) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn launch(&self, desc: &LaunchDescription) -> Result<Connection, LaunchError> {
        let name = desc.service.name();
        self.say(&format!("Launch {name}..."));
        let started = Instant::now();
        let key = &desc.key;
        let argv: Vec<String> = shlex::split(&desc.command)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| LaunchError::Invalid {
                key: key.clone(),
                reason: format!("the command cannot be parsed: {}", desc.command),
            })?
            .iter()
            .map(|a| self.dirs.expand(a))
            .collect();
        let workdir = PathBuf::from(self.dirs.expand(&desc.workdir));
        if !workdir.is_absolute() {
            return Err(LaunchError::Invalid {
                key: key.clone(),
                reason: format!("the workdir {} is not absolute", desc.workdir),
            });
        }
        std::fs::create_dir_all(&workdir).map_err(io("creating the workdir", &workdir))?;
        let log_path = self.dirs.log_file(key);
        let log = std::fs::File::create(&log_path).map_err(io("creating", &log_path))?;
        let log2 = log.try_clone().map_err(io("opening", &log_path))?;
        let mut command = match desc
            .conda
            .as_ref()
            .and_then(|c| c.as_deref())
            .filter(|c| !c.is_empty())
        {
            None => {
                let mut c = std::process::Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            Some(env) => {
                let source = self.conda_source();
                let inner = shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default();
                let mut c = std::process::Command::new("bash");
                c.arg("-lc").arg(format!(
                    "source {source} && conda activate {env} && exec {inner}"
                ));
                c
            }
        };
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
            .current_dir(&workdir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2);
        sys::new_session(&mut command);
        let child = command.spawn().map_err(|e| {
            let mut err = self.failed(desc, &format!("cannot run `{}`: {e}", argv[0]));
            if let LaunchError::Failed { reason, .. } = &mut err {
                reason.push_str(" (is it installed and on PATH?)");
            }
            err
        })?;
        let pid = child.id() as i32;
        sys::adopt(child);
        let uid = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&log_path).map(|m| m.uid()).unwrap_or(0)
        };
        let mut starting = json!({
            "workdir": desc.workdir,
            "log": log_path.display().to_string(),
            "command": shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default(),
            "uid": uid,
            "pid": pid,
            "status": "starting",
            "network_interface": desc.network_interface.clone().unwrap_or_else(|| "localhost".into()),
        });
        if let Some(p) = &desc.file_parameters {
            starting["parameters"] = p.clone();
        }
        let server_path = self.dirs.server_file(key);
        write_atomic(&server_path, &starting, 0o644).map_err(io("writing", &server_path))?;
        let server = self.monitor(desc, pid)?;
        let c = self.checked(desc, &server, 6)?;
        let conn = self.write_client(desc, &server, c, Outcome::Launched)?;
        self.say(&format!(
            "{name} ready ({:.1}s)",
            started.elapsed().as_secs_f64()
        ));
        Ok(conn)
    }

    fn conda_source(&self) -> String {
        read_object(&self.dirs.root.join("conda-setup.json"))
            .and_then(|m| {
                m.get("conda_source")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "\"$(conda info --base)/etc/profile.d/conda.sh\"".into())
    }

    /// Waits for the server file to say `running` (or `failed`).
    fn monitor(
        &self,
        desc: &LaunchDescription,
        pid: i32,
    ) -> Result<Map<String, Value>, LaunchError> {
        let path = self.dirs.server_file(&desc.key);
        let mut last_change = Instant::now();
        let mut last_text = String::new();
        let mut dead_since: Option<Instant> = None;
        let mut told = false;
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text != last_text {
                last_text = text.clone();
                last_change = Instant::now();
            }
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&text) {
                match m.get("status").and_then(Value::as_str) {
                    Some("running") if port_of(&m, "port").is_some() => return Ok(m),
                    Some("failed") => {
                        return Err(
                            self.failed(desc, "the service reported that it failed to start")
                        )
                    }
                    _ => {}
                }
            } else if text.is_empty() && start.elapsed() > Duration::from_secs(2) {
                return Err(self.failed(desc, "its server state file disappeared during start-up"));
            }
            if !sys::pid_alive(pid) {
                // Give a dying service a moment to write `failed`; then report its log.
                let since = *dead_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(1) {
                    return Err(self.failed(
                        desc,
                        &format!("the process (pid {pid}) exited during start-up"),
                    ));
                }
            }
            if last_change.elapsed() > self.timeouts.no_progress {
                self.stop(Some(pid));
                return Err(self.failed(
                    desc,
                    &format!(
                        "no progress for {:?}; it was stopped",
                        self.timeouts.no_progress
                    ),
                ));
            }
            if !told && start.elapsed() > Duration::from_millis(1500) {
                self.say(&format!(
                    "  waiting for {} to report running (log: {})",
                    desc.key,
                    self.dirs.log_file(&desc.key).display()
                ));
                told = true;
            }
            std::thread::sleep(Duration::from_millis(100));
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
        client.insert("hostname".into(), json!(host));
        client.insert("port".into(), json!(port));
        client.extend(extra_ports(server));
        if let Some(p @ Value::Object(_)) = server.get("parameters") {
            client.insert("parameters".into(), p.clone());
        }
        let path = self.dirs.client_file(&desc.key);
        write_atomic(&path, &Value::Object(client.clone()), 0o600).map_err(io("writing", &path))?;
        crate::client_debug!(key = %desc.key, ?outcome, %port, "launcher: done");
        Ok(Connection {
            hostname: host,
            port,
            raw: client,
            outcome,
        })
    }

    /// Stops the service of `desc` (if its server file names a live pid) and marks its state
    /// stale, as `seamless-service-stop` does.
    pub fn stop_service(&self, desc: &LaunchDescription) {
        let server_path = self.dirs.server_file(&desc.key);
        if let Some(mut server) = read_object(&server_path) {
            self.stop(server.get("pid").and_then(Value::as_i64).map(|p| p as i32));
            server.insert("status".into(), json!("stale"));
            let _ = write_atomic(&server_path, &Value::Object(server), 0o644);
        }
        remove(&self.dirs.client_file(&desc.key));
    }
}
