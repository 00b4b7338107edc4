//! [`Launcher`]: the launch protocol (see the crate docs): reuse from the client file, the
//! server file, or launch; the per-key lock; the monitoring of a start.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use seamless_config::Handshake;

use crate::spec::LaunchSpec;

use crate::connection::{Connection, Outcome};
use crate::error::{io, LaunchError};
use crate::local::LocalSide;
use crate::probe::http_ok;
use crate::progress::{LaunchEvent, ProgressCallback};
use crate::side::Side;
use crate::ssh::SshSide;
use crate::state::{extra_ports, pid_of, port_of, read_object, remove, write_atomic, StateDirs};

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
#[derive(Clone)]
pub struct Launcher {
    dirs: StateDirs,
    timeouts: LaunchTimeouts,
    env: Vec<(String, String)>,
    ssh: Vec<String>,
    progress: Option<ProgressCallback>,
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher")
            .field("dirs", &self.dirs)
            .field("timeouts", &self.timeouts)
            .field("ssh", &self.ssh)
            .finish_non_exhaustive()
    }
}

fn handshake_target(h: &Handshake) -> (&str, &str) {
    match h {
        Handshake::Healthcheck => ("healthcheck", "port"),
        Handshake::Path { path, port_name } => (path.as_str(), port_name.as_str()),
    }
}

impl Launcher {
    /// A launcher over `dirs`.
    pub fn new(dirs: StateDirs) -> Self {
        Launcher {
            dirs,
            timeouts: LaunchTimeouts::default(),
            env: Vec::new(),
            ssh: vec!["ssh".to_string()],
            progress: None,
        }
    }

    /// Sets the ssh command used for SSH-mode descriptions (default `ssh`).
    pub fn with_ssh_command(mut self, command: Vec<String>) -> Self {
        if !command.is_empty() {
            self.ssh = command;
        }
        self
    }

    fn side<'a>(&'a self, desc: &LaunchSpec) -> Box<dyn Side + 'a> {
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

    /// Emits a progress event: a `tracing` event, and the program's callback if it set one.
    fn say(&self, event: LaunchEvent) {
        tracing::info!(target: "seamless_launcher", "{event}");
        if let Some(cb) = &self.progress {
            cb(&event);
        }
    }

    /// Sets the callback that receives the launcher's progress (the library prints nothing).
    pub fn with_progress(mut self, callback: ProgressCallback) -> Self {
        self.progress = Some(callback);
        self
    }

    /// Launches or reuses the service of `desc` (blocking; see the module docs).
    pub fn run(&self, desc: &LaunchSpec) -> Result<Connection, LaunchError> {
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
        seamless_safe_io::fs::create_private_dir(&self.dirs.root.join("server"))
            .map_err(io("creating", self.dirs.root.join("server")))?;
        let lock = seamless_safe_io::fs::create_private(&lock_path, false)
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

    fn reuse_client_file(&self, desc: &LaunchSpec) -> Option<Connection> {
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
            seamless_remote_core::client_debug!(key = %desc.key, "launcher: reused-local");
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
    fn parameters_match(&self, desc: &LaunchSpec, state: &Map<String, Value>) -> bool {
        match &desc.parameters {
            None => true,
            Some(want) => state.get("parameters").is_none_or(|have| have == want),
        }
    }

    fn with_lock(&self, desc: &LaunchSpec) -> Result<Connection, LaunchError> {
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
                        self.say(LaunchEvent::Relaunching { key: key.clone() });
                    }
                    side.stop(key, pid);
                    side.remove_server(key);
                }
                ("starting", Some(p)) if !side.pid_dead(key, p, &server) => {
                    self.say(LaunchEvent::StartedElsewhere { key: key.clone() });
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
        desc: &LaunchSpec,
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
        desc: &LaunchSpec,
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

    fn host_of(&self, desc: &LaunchSpec, server: &Map<String, Value>) -> String {
        server
            .get("network_interface")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| desc.network_interface.clone())
            .unwrap_or_else(|| "localhost".into())
    }

    fn failed(&self, desc: &LaunchSpec, side: &dyn Side, reason: &str) -> LaunchError {
        let (tail, log) = side.log(&desc.key);
        LaunchError::Failed {
            key: desc.key.clone(),
            reason: reason.to_string(),
            tail,
            log,
            server_file: self.dirs.server_file(&desc.key).display().to_string(),
        }
    }

    fn launch(&self, desc: &LaunchSpec, side: &dyn Side) -> Result<Connection, LaunchError> {
        let name = desc.name.as_str();
        self.say(LaunchEvent::Launching {
            service: name.to_string(),
            key: desc.key.clone(),
        });
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
        self.say(LaunchEvent::Ready {
            service: name.to_string(),
            key: desc.key.clone(),
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(conn)
    }

    /// Waits for the server file to say `running` (or `failed`).
    fn monitor(
        &self,
        desc: &LaunchSpec,
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
                self.say(LaunchEvent::Waiting {
                    key: key.clone(),
                    log,
                });
                told = true;
            }
            std::thread::sleep(side.poll());
        }
    }

    fn write_client(
        &self,
        desc: &LaunchSpec,
        server: &Map<String, Value>,
        (host, port): (String, u16),
        outcome: Outcome,
    ) -> Result<Connection, LaunchError> {
        let mut client = Map::new();
        let (host, port) = match (&desc.hostname, desc.tunnel) {
            (Some(remote), Some(true)) => {
                let ssh_host = desc.ssh_hostname.clone().unwrap_or_else(|| remote.clone());
                let local = crate::tunnel::tunnel(&self.ssh, &ssh_host, remote, port).map_err(
                    |reason| LaunchError::Invalid {
                        key: desc.key.clone(),
                        reason,
                    },
                )?;
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
        seamless_remote_core::client_debug!(key = %desc.key, ?outcome, %port, "launcher: done");
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
        desc: &LaunchSpec,
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
    pub fn stop_service(&self, desc: &LaunchSpec) {
        let side = self.side(desc);
        if let Some(server) = side.read_server(&desc.key) {
            side.stop(&desc.key, pid_of(&server));
        }
        remove(&self.dirs.client_file(&desc.key));
    }
}
