//! Where a service runs: this machine ([`LocalSide`]: files and processes directly, no helper
//! programs), or a remote host through `ssh` ([`SshSide`]: the remote-http-launcher helpers
//! `rhl-inspect`, `rhl-launch-service`, `rhl-verify-port`, `rhl-handshake`, `rhl-stop`, `rhl-rm`,
//! `rhl-pid-alive` on the remote PATH, as the reference runs them).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::state::{
    parse_object, read_object, remove, write_atomic, write_bytes_atomic, StateDirs,
};
use super::{http_ok, log_tail, port_open, sys, LaunchError};
use crate::config::LaunchDescription;

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
    fn start(&self, desc: &LaunchDescription, argv: &[String]) -> Result<(), LaunchError>;
    /// How often to poll the state file while starting.
    fn poll(&self) -> Duration;
    /// Writes a file (e.g. a program the service runs) on the service's host, atomically;
    /// `path` may start with `~/`.
    fn install(&self, path: &str, contents: &[u8]) -> Result<(), String>;
}

/// This machine.
pub(crate) struct LocalSide<'a> {
    pub(crate) dirs: &'a StateDirs,
    pub(crate) env: &'a [(String, String)],
    pub(crate) handshake_timeout: Duration,
}

fn stop_pid(pid: i32) {
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

/// A value as one shell word.
fn shell_word(s: &str) -> String {
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| "''".into())
}

/// Whether the server file was written for our uid (so its pid is a process we can see).
fn uid_is_ours(server: &Map<String, Value>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    server
        .get("uid")
        .and_then(Value::as_u64)
        .and_then(|u| u32::try_from(u).ok())
        == ours
}

impl Side for LocalSide<'_> {
    fn read_server(&self, key: &str) -> Option<Map<String, Value>> {
        read_object(&self.dirs.server_file(key))
    }

    fn remove_server(&self, key: &str) {
        remove(&self.dirs.server_file(key));
    }

    fn pid_dead(&self, key: &str, pid: i32, server: &Map<String, Value>) -> bool {
        // A live pid that is not the service (reused by another process) counts as dead.
        uid_is_ours(server) && !(sys::pid_alive(pid) && sys::is_service(pid, Some(key)))
    }

    fn stop(&self, key: &str, pid: Option<i32>) {
        if let Some(p) = pid {
            // Only the service itself is signalled: our uid, and its command line names its
            // state file.
            if sys::is_service(p, Some(key)) {
                stop_pid(p);
            } else if sys::pid_alive(p) {
                tracing::warn!(
                    pid = p,
                    key,
                    "not stopped: the pid of the state file is another process"
                );
            }
        }
        let path = self.dirs.server_file(key);
        if let Some(mut server) = read_object(&path) {
            server.insert("status".into(), json!("stale"));
            let _ = write_atomic(&path, &Value::Object(server));
        }
    }

    fn port_open(&self, host: &str, port: u16) -> bool {
        port_open(host, port)
    }

    fn handshake(&self, host: &str, port: u16, path: &str) -> bool {
        http_ok(host, port, path, self.handshake_timeout)
    }

    fn log(&self, key: &str) -> (String, String) {
        let path = self.dirs.log_file(key);
        (log_tail(&path, 15), path.display().to_string())
    }

    fn start(&self, desc: &LaunchDescription, argv: &[String]) -> Result<(), LaunchError> {
        let key = &desc.key;
        let io = |action: &'static str, path: PathBuf| {
            move |source| LaunchError::Io {
                action,
                path,
                source,
            }
        };
        let workdir = PathBuf::from(self.dirs.expand(&desc.workdir));
        if !workdir.is_absolute() {
            return Err(LaunchError::Invalid {
                key: key.clone(),
                reason: format!("the workdir {} is not absolute", desc.workdir),
            });
        }
        if workdir
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(LaunchError::Invalid {
                key: key.clone(),
                reason: format!("the workdir {} must not contain '..'", desc.workdir),
            });
        }
        std::fs::create_dir_all(&workdir).map_err(io("creating the workdir", workdir.clone()))?;
        let log_path = self.dirs.log_file(key);
        crate::safe_fs::create_private_dir(&self.dirs.root.join("server"))
            .map_err(io("creating", self.dirs.root.join("server")))?;
        let log = crate::safe_fs::create_private(&log_path, true)
            .map_err(io("creating", log_path.clone()))?;
        let log2 = log.try_clone().map_err(io("opening", log_path.clone()))?;
        let mut command = match desc
            .conda
            .as_ref()
            .and_then(|c| c.as_deref())
            .filter(|c| !c.is_empty())
        {
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            Some(env) => {
                // Every value that reaches the shell is one quoted word: the environment name,
                // the conda script from the state directory, each argument.
                let source = read_object(&self.dirs.root.join("conda-setup.json"))
                    .and_then(|m| {
                        m.get("conda_source")
                            .and_then(Value::as_str)
                            .map(shell_word)
                    })
                    .unwrap_or_else(|| "\"$(conda info --base)/etc/profile.d/conda.sh\"".into());
                let inner = argv
                    .iter()
                    .map(|a| shell_word(a))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut c = Command::new("bash");
                c.arg("-lc").arg(format!(
                    "source {source} && conda activate {} && exec {inner}",
                    shell_word(env)
                ));
                c
            }
        };
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        sys::new_session(&mut command);
        let child = command.spawn().map_err(|e| LaunchError::Invalid {
            key: key.clone(),
            reason: format!(
                "cannot run `{}`: {e} (is it installed and on PATH?)",
                argv[0]
            ),
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
        write_atomic(&server_path, &starting).map_err(io("writing", server_path.clone()))
    }

    fn poll(&self) -> Duration {
        Duration::from_millis(100)
    }

    fn install(&self, path: &str, contents: &[u8]) -> Result<(), String> {
        let path = PathBuf::from(self.dirs.expand(path));
        let cap = contents.len() as u64;
        if crate::safe_fs::read_capped(&path, cap, crate::safe_fs::Accept::RegularOnly)
            .is_ok_and(|have| have == contents)
        {
            return Ok(());
        }
        write_bytes_atomic(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// A remote host reached with `ssh`.
pub(crate) struct SshSide {
    /// The ssh command (default `ssh`; `SEAMLESS_LAUNCHER_SSH` overrides it).
    pub(crate) ssh: Vec<String>,
    /// The ssh target.
    pub(crate) host: String,
    /// Whether the remote host has the `rhl-*` helpers (checked once).
    pub(crate) helpers: std::sync::OnceLock<bool>,
}

/// The remote server directory, as a shell expression.
const REMOTE_SERVER_DIR: &str = "\"$HOME/.remote-http-launcher/server\"";

/// A shell word for `s`, with a leading `~` expanded by the remote shell.
fn remote_word(s: &str) -> String {
    let q = |x: &str| {
        shlex::try_quote(x)
            .map(|c| c.into_owned())
            .unwrap_or_default()
    };
    if s == "~" {
        "\"$HOME\"".into()
    } else if let Some(rest) = s.strip_prefix("~/") {
        format!("\"$HOME\"/{}", q(rest))
    } else {
        q(s)
    }
}

impl SshSide {
    /// Whether the remote host has the helpers; without them, plain bash does the same steps
    /// (the reference falls back to inline Python scripts; bash needs nothing installed).
    fn has_helpers(&self) -> bool {
        *self
            .helpers
            .get_or_init(|| self.bash("command -v rhl-inspect >/dev/null").0)
    }

    /// Runs a bash script on the remote host.
    fn bash(&self, script: &str) -> (bool, String, String) {
        self.bash_with_input(script, None)
    }

    /// Runs a bash script on the remote host, with `input` on its stdin (else none).
    fn bash_with_input(&self, script: &str, input: Option<&[u8]>) -> (bool, String, String) {
        use std::io::Write;
        let quoted = shlex::try_quote(script)
            .map(|c| c.into_owned())
            .unwrap_or_default();
        let mut c = Command::new(&self.ssh[0]);
        c.args(&self.ssh[1..])
            .arg(&self.host)
            .arg(format!("bash -c {quoted}"))
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut run = || -> std::io::Result<std::process::Output> {
            let mut child = c.spawn()?;
            if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
                stdin.write_all(data)?;
            }
            child.wait_with_output()
        };
        match run() {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (false, String::new(), e.to_string()),
        }
    }

    fn key_file(key: &str, ext: &str) -> String {
        format!(
            "{REMOTE_SERVER_DIR}/{}",
            remote_word(&format!("{key}.{ext}"))
        )
    }
    /// Runs a helper on the remote host: (exit ok, stdout, stderr).
    fn helper(&self, argv: &[&str]) -> (bool, String, String) {
        let remote = shlex::try_join(argv.iter().copied()).unwrap_or_default();
        let mut c = Command::new(&self.ssh[0]);
        c.args(&self.ssh[1..])
            .arg(&self.host)
            .arg(remote)
            .stdin(Stdio::null());
        match c.output() {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (false, String::new(), e.to_string()),
        }
    }
}

impl Side for SshSide {
    fn read_server(&self, key: &str) -> Option<Map<String, Value>> {
        let (ok, out, _) = if self.has_helpers() {
            self.helper(&["rhl-inspect", key])
        } else {
            self.bash(&format!("cat {}", Self::key_file(key, "json")))
        };
        if !ok || out.len() as u64 > crate::safe_fs::STATE_FILE_CAP {
            return None;
        }
        parse_object(out.as_bytes())
    }

    fn remove_server(&self, key: &str) {
        let _ = if self.has_helpers() {
            self.helper(&["rhl-rm", key, "--server"])
        } else {
            self.bash(&format!("rm -f {}", Self::key_file(key, "json")))
        };
    }

    fn pid_dead(&self, _key: &str, pid: i32, _server: &Map<String, Value>) -> bool {
        if self.has_helpers() {
            !self.helper(&["rhl-pid-alive", &pid.to_string()]).0
        } else {
            !self.bash(&format!("kill -0 {pid} 2>/dev/null")).0
        }
    }

    fn stop(&self, key: &str, pid: Option<i32>) {
        if self.has_helpers() {
            let _ = self.helper(&["rhl-stop", key]);
        } else if let Some(pid) = pid {
            // Only the service: our uid's process whose command line names its state file.
            let marker = remote_word(&format!("{key}.json"));
            let _ = self.bash(&format!(
                "[ -O /proc/{pid} ] && tr '\\0' ' ' < /proc/{pid}/cmdline | grep -qF -- {marker} || exit 0\nfor s in INT TERM KILL; do kill -$s {pid} 2>/dev/null || exit 0; for i in $(seq 50); do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.1; done; done"
            ));
        }
    }

    fn port_open(&self, host: &str, port: u16) -> bool {
        if self.has_helpers() {
            return self.helper(&["rhl-verify-port", host, &port.to_string()]).0;
        }
        let target = remote_word(&format!("/dev/tcp/{host}/{port}"));
        self.bash(&format!("timeout 2 bash -c \"exec 3<>\"{target}"))
            .0
    }

    fn handshake(&self, host: &str, port: u16, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        if self.has_helpers() {
            let url = format!("http://{host}:{port}/{path}");
            return self.helper(&["rhl-handshake", &url]).0;
        }
        let request = remote_word(&format!(
            "GET /{path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n"
        ));
        let target = remote_word(&format!("/dev/tcp/{host}/{port}"));
        let script =
            format!("exec 3<>{target} && printf %b {request} >&3 && timeout 10 head -c 12 <&3");
        let (ok, out, _) = self.bash(&script);
        ok && (out.starts_with("HTTP/1.1 2") || out.starts_with("HTTP/1.0 2"))
    }

    fn log(&self, key: &str) -> (String, String) {
        let (_, out, _) = if self.has_helpers() {
            self.helper(&["rhl-logs", key, "--tail", "15"])
        } else {
            self.bash(&format!("tail -n 15 {}", Self::key_file(key, "log")))
        };
        (
            out,
            format!("{}:~/.remote-http-launcher/server/{key}.log", self.host),
        )
    }

    fn start(&self, desc: &LaunchDescription, argv: &[String]) -> Result<(), LaunchError> {
        if !self.has_helpers() {
            return self.start_without_helpers(desc, argv);
        }
        let mut args: Vec<String> = vec![
            "rhl-launch-service".into(),
            "--key".into(),
            desc.key.clone(),
            "--workdir".into(),
            desc.workdir.clone(),
            "--network-interface".into(),
            desc.network_interface
                .clone()
                .unwrap_or_else(|| "localhost".into()),
        ];
        if let Some(env) = desc
            .conda
            .as_ref()
            .and_then(|c| c.as_deref())
            .filter(|c| !c.is_empty())
        {
            args.extend(["--conda-env".into(), env.to_string()]);
        }
        if let Some(p) = &desc.file_parameters {
            args.extend(["--parameters".into(), p.to_string()]);
        }
        args.push("--".into());
        args.extend(argv.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = self.helper(&refs);
        if ok {
            Ok(())
        } else {
            Err(LaunchError::Invalid {
                key: desc.key.clone(),
                reason: format!("rhl-launch-service on {} failed: {}", self.host, err.trim()),
            })
        }
    }

    fn poll(&self) -> Duration {
        Duration::from_millis(500)
    }

    fn install(&self, path: &str, contents: &[u8]) -> Result<(), String> {
        let target = remote_word(path);
        let script = format!(
            "mkdir -p \"$(dirname {target})\" && cat > {target}.tmp.$$ && mv {target}.tmp.$$ {target}"
        );
        match self.bash_with_input(&script, Some(contents)) {
            (true, _, _) => Ok(()),
            (false, _, err) => Err(format!(
                "cannot write {path} on {}: {}",
                self.host,
                err.trim()
            )),
        }
    }
}

impl SshSide {
    /// The launch without helpers: the same contract as `rhl-launch-service`, in bash.
    fn start_without_helpers(
        &self,
        desc: &LaunchDescription,
        argv: &[String],
    ) -> Result<(), LaunchError> {
        let words: Vec<String> = argv.iter().map(|a| remote_word(a)).collect();
        let mut exec = words.join(" ");
        if let Some(env) = desc
            .conda
            .as_ref()
            .and_then(|c| c.as_deref())
            .filter(|c| !c.is_empty())
        {
            let inner = format!(
                "eval \"$(conda shell.bash hook)\" && conda activate {} && exec {exec}",
                remote_word(env)
            );
            exec = format!("bash -lc {}", remote_word(&inner));
        }
        let mut state = json!({
            "workdir": desc.workdir,
            "log": "__SERVERDIR__/__KEY__.log",
            "command": shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default(),
            "uid": "__UID__",
            "pid": "__PID__",
            "status": "starting",
            "network_interface": desc.network_interface.clone().unwrap_or_else(|| "localhost".into()),
        });
        if let Some(p) = &desc.file_parameters {
            state["parameters"] = p.clone();
        }
        let key = remote_word(&desc.key);
        let script = format!(
            "set -e\nS={REMOTE_SERVER_DIR}\nmkdir -p \"$S\"\nW={w}\nmkdir -p \"$W\"\ncd \"$W\"\nsetsid {exec} > \"$S\"/{key}.log 2>&1 < /dev/null &\nPID=$!\nprintf %s {json} | sed -e \"s|\\\"__PID__\\\"|$PID|\" -e \"s|\\\"__UID__\\\"|$(id -u)|\" -e \"s|__SERVERDIR__|$S|\" -e \"s|__KEY__|\"{key}\"|\" > \"$S\"/{key}.json.tmp\nmv \"$S\"/{key}.json.tmp \"$S\"/{key}.json\n",
            w = remote_word(&desc.workdir),
            json = remote_word(&state.to_string()),
        );
        let (ok, _, err) = self.bash(&script);
        if ok {
            Ok(())
        } else {
            Err(LaunchError::Invalid {
                key: desc.key.clone(),
                reason: format!(
                    "launching on {} (without the rhl-* helpers) failed: {}",
                    self.host,
                    err.trim()
                ),
            })
        }
    }
}

/// An SSH tunnel from a local port to `hostname:port` through `ssh_host`, left running in its
/// own session; returns the local port once it accepts connections.
pub(crate) fn tunnel(
    ssh: &[String],
    ssh_host: &str,
    hostname: &str,
    port: u16,
) -> Result<u16, String> {
    let local = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    let mut c = Command::new(&ssh[0]);
    c.args(&ssh[1..])
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("127.0.0.1:{local}:{hostname}:{port}"))
        .arg(ssh_host)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    sys::new_session(&mut c);
    let child = c.spawn().map_err(|e| format!("cannot run ssh: {e}"))?;
    let pid = child.id() as i32;
    sys::adopt(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if port_open("127.0.0.1", local) {
            return Ok(local);
        }
        if !sys::pid_alive(pid) {
            return Err(format!("ssh -L to {ssh_host} exited"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the tunnel through {ssh_host} did not open within 15 s"
    ))
}
