//! [`SshSide`]: a service on a remote host, reached with `ssh`: through the remote-http-launcher
//! helpers (`rhl-*`) when the host has them, else through plain bash doing the same steps.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::side::Side;
use crate::spec::LaunchSpec;
use crate::state::parse_object;
use crate::LaunchError;

/// What a command on the remote host did.
#[derive(Debug, Default)]
pub(crate) struct RemoteRun {
    /// Whether it exited with status 0.
    pub(crate) ok: bool,
    /// Its stdout (lossy UTF-8).
    pub(crate) stdout: String,
    /// Its stderr (lossy UTF-8), or why it could not run.
    pub(crate) stderr: String,
}

impl RemoteRun {
    fn from_output(output: std::io::Result<std::process::Output>) -> Self {
        match output {
            Ok(o) => RemoteRun {
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => RemoteRun {
                ok: false,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
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
            .get_or_init(|| self.bash("command -v rhl-inspect >/dev/null").ok)
    }

    /// Runs a bash script on the remote host.
    fn bash(&self, script: &str) -> RemoteRun {
        self.bash_with_input(script, None)
    }

    /// Runs a bash script on the remote host, with `input` on its stdin (else none).
    fn bash_with_input(&self, script: &str, input: Option<&[u8]>) -> RemoteRun {
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
        RemoteRun::from_output(run())
    }

    fn key_file(key: &str, ext: &str) -> String {
        format!(
            "{REMOTE_SERVER_DIR}/{}",
            remote_word(&format!("{key}.{ext}"))
        )
    }
    /// Runs a helper on the remote host.
    fn helper(&self, argv: &[&str]) -> RemoteRun {
        let remote = shlex::try_join(argv.iter().copied()).unwrap_or_default();
        let mut c = Command::new(&self.ssh[0]);
        c.args(&self.ssh[1..])
            .arg(&self.host)
            .arg(remote)
            .stdin(Stdio::null());
        RemoteRun::from_output(c.output())
    }
}

impl Side for SshSide {
    fn read_server(&self, key: &str) -> Option<Map<String, Value>> {
        let RemoteRun {
            ok, stdout: out, ..
        } = if self.has_helpers() {
            self.helper(&["rhl-inspect", key])
        } else {
            self.bash(&format!("cat {}", Self::key_file(key, "json")))
        };
        if !ok || out.len() as u64 > seamless_safe_io::fs::STATE_FILE_CAP {
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
            !self.helper(&["rhl-pid-alive", &pid.to_string()]).ok
        } else {
            !self.bash(&format!("kill -0 {pid} 2>/dev/null")).ok
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
            return self
                .helper(&["rhl-verify-port", host, &port.to_string()])
                .ok;
        }
        let target = remote_word(&format!("/dev/tcp/{host}/{port}"));
        self.bash(&format!("timeout 2 bash -c \"exec 3<>\"{target}"))
            .ok
    }

    fn handshake(&self, host: &str, port: u16, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        if self.has_helpers() {
            let url = format!("http://{host}:{port}/{path}");
            return self.helper(&["rhl-handshake", &url]).ok;
        }
        let request = remote_word(&format!(
            "GET /{path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n"
        ));
        let target = remote_word(&format!("/dev/tcp/{host}/{port}"));
        let script =
            format!("exec 3<>{target} && printf %b {request} >&3 && timeout 10 head -c 12 <&3");
        let RemoteRun {
            ok, stdout: out, ..
        } = self.bash(&script);
        ok && (out.starts_with("HTTP/1.1 2") || out.starts_with("HTTP/1.0 2"))
    }

    fn log(&self, key: &str) -> (String, String) {
        let RemoteRun { stdout: out, .. } = if self.has_helpers() {
            self.helper(&["rhl-logs", key, "--tail", "15"])
        } else {
            self.bash(&format!("tail -n 15 {}", Self::key_file(key, "log")))
        };
        (
            out,
            format!("{}:~/.remote-http-launcher/server/{key}.log", self.host),
        )
    }

    fn start(&self, desc: &LaunchSpec, argv: &[String]) -> Result<(), LaunchError> {
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
        if let Some(env) = desc.conda.as_deref() {
            args.extend(["--conda-env".into(), env.to_string()]);
        }
        if let Some(p) = &desc.parameters {
            args.extend(["--parameters".into(), p.to_string()]);
        }
        args.push("--".into());
        args.extend(argv.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let RemoteRun {
            ok, stderr: err, ..
        } = self.helper(&refs);
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
            RemoteRun { ok: true, .. } => Ok(()),
            RemoteRun { stderr: err, .. } => Err(format!(
                "cannot write {path} on {}: {}",
                self.host,
                err.trim()
            )),
        }
    }
}

impl SshSide {
    /// The launch without helpers: the same contract as `rhl-launch-service`, in bash.
    fn start_without_helpers(&self, desc: &LaunchSpec, argv: &[String]) -> Result<(), LaunchError> {
        let words: Vec<String> = argv.iter().map(|a| remote_word(a)).collect();
        let mut exec = words.join(" ");
        if let Some(env) = desc.conda.as_deref() {
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
        if let Some(p) = &desc.parameters {
            state["parameters"] = p.clone();
        }
        let key = remote_word(&desc.key);
        let script = format!(
            "set -e\nS={REMOTE_SERVER_DIR}\nmkdir -p \"$S\"\nW={w}\nmkdir -p \"$W\"\ncd \"$W\"\nsetsid {exec} > \"$S\"/{key}.log 2>&1 < /dev/null &\nPID=$!\nprintf %s {json} | sed -e \"s|\\\"__PID__\\\"|$PID|\" -e \"s|\\\"__UID__\\\"|$(id -u)|\" -e \"s|__SERVERDIR__|$S|\" -e \"s|__KEY__|\"{key}\"|\" > \"$S\"/{key}.json.tmp\nmv \"$S\"/{key}.json.tmp \"$S\"/{key}.json\n",
            w = remote_word(&desc.workdir),
            json = remote_word(&state.to_string()),
        );
        let RemoteRun {
            ok, stderr: err, ..
        } = self.bash(&script);
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
