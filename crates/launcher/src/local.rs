//! [`LocalSide`]: a service on this machine, its files and processes handled directly (no
//! helper programs).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::probe::{http_ok, log_tail, port_open};
use crate::side::Side;
use crate::spec::LaunchSpec;
use crate::state::{read_object, remove, write_atomic, write_bytes_atomic, StateDirs};
use crate::{sys, LaunchError};

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

    fn start(&self, desc: &LaunchSpec, argv: &[String]) -> Result<(), LaunchError> {
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
        seamless_safe_io::fs::create_private_dir(&self.dirs.root.join("server"))
            .map_err(io("creating", self.dirs.root.join("server")))?;
        let log = seamless_safe_io::fs::create_private(&log_path, true)
            .map_err(io("creating", log_path.clone()))?;
        let log2 = log.try_clone().map_err(io("opening", log_path.clone()))?;
        let mut command = match desc.conda.as_deref() {
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
        if let Some(p) = &desc.parameters {
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
        if seamless_safe_io::fs::read_capped(&path, cap, seamless_safe_io::fs::Accept::RegularOnly)
            .is_ok_and(|have| have == contents)
        {
            return Ok(());
        }
        write_bytes_atomic(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}
