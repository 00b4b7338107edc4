//! A scratch environment for launcher tests: a HOME with a local cluster on free port ranges
//! (`.seamless/clusters.yaml`), a project directory, the launcher state under that HOME, and a
//! guard that stops every service named by a server file when dropped (the launcher detaches
//! services into their own session, so they are not children of the test).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A scratch HOME with a local cluster on free port ranges, and a project directory.
pub struct Env {
    root: tempfile::TempDir,
}

/// A range of `width` free loopback ports below the ephemeral range.
pub fn free_range(width: u16) -> u16 {
    loop {
        let base = 21000 + (fastrand_u16() % 8000);
        if (base..base + width).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
}

fn fastrand_u16() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u16
}

impl Env {
    /// A new environment (hashserver, database and jobserver ranges; stage `remote` runs on the
    /// jobserver).
    pub fn new() -> Env {
        Self::build(false)
    }

    /// A new environment that also has a daskserver (a LocalCluster of one worker with one
    /// core, no conda) and a stage `dask` with `execution: remote`, `remote: daskserver`.
    pub fn with_dask() -> Env {
        Self::build(true)
    }

    fn build(dask: bool) -> Env {
        let root = tempfile::tempdir().unwrap();
        let (hs, db, js) = (free_range(10), free_range(10), free_range(10));
        let home = root.path().join("home");
        std::fs::create_dir_all(home.join(".seamless")).unwrap();
        let data = root.path().join("data");
        std::fs::write(
            home.join(".seamless").join("clusters.yaml"),
            format!(
                "local_cluster: local\nlocal:\n  type: local\n  workers: 1\n  frontends:\n    - hashserver: {{bufferdir: {d}/buffers, network_interface: 127.0.0.1, port_start: {hs}, port_end: {}}}\n      database: {{database_dir: {d}/db, network_interface: 127.0.0.1, port_start: {db}, port_end: {}}}\n      jobserver: {{conda: null, network_interface: 127.0.0.1, port_start: {js}, port_end: {}}}\n",
                hs + 9,
                db + 9,
                js + 9,
                d = data.display()
            ),
        )
        .unwrap();
        if dask {
            let ds = free_range(20);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(home.join(".seamless").join("clusters.yaml"))
                .unwrap();
            use std::io::Write;
            write!(
                f,
                "      daskserver: {{network_interface: 127.0.0.1, port_start: {ds}, port_end: {}}}\n  default_queue: default\n  queues:\n    default: {{conda: '', walltime: '01:00:00', memory: 2000MB, cores: 1, maximum_jobs: 1, unknown_task_duration: 1m, target_duration: 10m}}\n",
                ds + 19
            )
            .unwrap();
        }
        let project = root.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("seamless.yaml"), "- project: demo\n").unwrap();
        std::fs::write(
            project.join("seamless.profile.yaml"),
            "- cluster: local\n- execution: process\n- stage remote:\n    - execution: remote\n    - remote: jobserver\n- stage dask:\n    - execution: remote\n    - remote: daskserver\n",
        )
        .unwrap();
        Env { root }
    }

    /// The configuration of the `dask` stage (see [`Env::with_dask`]) and its launcher.
    pub fn dask_config(&self) -> (seamless_config::Config, seamless_launcher::Launcher) {
        self.stage_config("dask")
    }

    /// The configuration of `stage` (`remote`: execution on the jobserver; `dask`, with
    /// [`Env::with_dask`]: on the daskserver) and a launcher over this HOME whose services find
    /// the harness programs on PATH and keep Dask's scratch space here.
    pub fn stage_config(
        &self,
        stage: &str,
    ) -> (seamless_config::Config, seamless_launcher::Launcher) {
        let cfg = seamless_config::load(&seamless_config::LoadOptions {
            workdir: self.project(),
            home: Some(self.home()),
            stage: Some(stage.into()),
            ..Default::default()
        })
        .unwrap();
        let scratch = self.home().join("dask-scratch");
        let launcher =
            seamless_launcher::Launcher::new(seamless_launcher::StateDirs::new(self.home()))
                .with_env("PATH", &self.path_env())
                .with_env("DASK_TEMPORARY_DIRECTORY", &scratch.display().to_string());
        (cfg, launcher)
    }

    /// Runs the Python reference on this project's `dask` stage (`tests/python/dask_interop.py`:
    /// seamless-config activates the stage, then its `SeamlessDaskClient` submits each round of
    /// `(transformation dict, checksum)` at once). Returns its JSON report (`port`,
    /// `dashboard_url`, `rounds[].wall`, `rounds[].results`).
    pub fn python_on_dask(
        &self,
        rounds: &[Vec<(Value, seamless_remote_core::Checksum)>],
    ) -> Result<Value, String> {
        let rounds: Vec<Vec<Value>> = rounds
            .iter()
            .map(|r| {
                r.iter()
                    .map(|(dict, tf)| serde_json::json!({"dict": dict, "tf": tf}))
                    .collect()
            })
            .collect();
        let jobs = self.home().join("dask-jobs.json");
        std::fs::write(&jobs, serde_json::json!({ "rounds": rounds }).to_string())
            .map_err(|e| e.to_string())?;
        let mut cmd = self.cmd(&crate::venv::python()?);
        cmd.arg(crate::venv::workspace_root().join("tests/python/dask_interop.py"))
            .arg(self.project())
            .arg("dask")
            .arg(&jobs)
            .current_dir(self.project());
        let out = crate::process::output_within(cmd, std::time::Duration::from_secs(300))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "the Python reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // The reference prints progress before the report.
        text.lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| format!("no JSON report from the Python reference: {text}"))
    }

    /// See the module docs.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// See the module docs.
    pub fn project(&self) -> PathBuf {
        self.root.path().join("project")
    }

    /// See the module docs.
    pub fn state(&self, dir: &str, key: &str) -> PathBuf {
        self.home()
            .join(".remote-http-launcher")
            .join(dir)
            .join(format!("{key}.json"))
    }

    /// See the module docs.
    pub fn path_env(&self) -> String {
        let venv = crate::venv::venv_dir().join("bin");
        format!(
            "{}:{}",
            venv.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// See the module docs.
    pub fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", self.home())
            .env("PATH", self.path_env())
            .env_remove("SEAMLESS_CACHE");
        c
    }

    /// Runs our launcher in a separate process.
    /// See the module docs.
    pub fn rust_launch(&self, bin: &Path, service: &str, mode: &str) -> Result<Value, String> {
        let out = self
            .cmd(bin)
            .arg(self.project())
            .args([service, mode])
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Runs the Python reference launcher in a separate process.
    /// See the module docs.
    pub fn python_launch(&self, service: &str, mode: &str) -> Option<Value> {
        let python = crate::require!(crate::venv::python())?;
        let script = crate::venv::workspace_root().join("tests/python/launcher_interop.py");
        let out = self
            .cmd(&python)
            .arg(script)
            .arg(self.project())
            .args([service, mode])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python launcher: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    /// See the module docs.
    pub fn pid_of(&self, key: &str) -> i64 {
        let text = std::fs::read_to_string(self.state("server", key)).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["pid"]
            .as_i64()
            .unwrap()
    }
}

impl Drop for Env {
    /// Stops every service named by a server file (SIGTERM, then SIGKILL).
    fn drop(&mut self) {
        stop_launched(&self.home());
    }
}

/// Stops every service named by a server file under `home`'s launcher state (SIGTERM, then
/// SIGKILL).
pub fn stop_launched(home: &Path) {
    let dir = home.join(".remote-http-launcher").join("server");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            if let Some(pid) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["pid"].as_i64())
            {
                stop(pid);
            }
        }
    }
}

/// Stops the services launched under a HOME when dropped (see [`stop_launched`]).
pub struct LaunchedIn(pub PathBuf);

impl Drop for LaunchedIn {
    fn drop(&mut self) {
        stop_launched(&self.0);
    }
}

/// The pid in the server file of the first key starting with `prefix` under `home`, if any.
pub fn launched_pid(home: &Path, prefix: &str) -> Option<i64> {
    let dir = home.join(".remote-http-launcher").join("server");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(prefix) && name.ends_with(".json")) {
            return None;
        }
        let text = std::fs::read_to_string(e.path()).ok()?;
        serde_json::from_str::<Value>(&text).ok()?["pid"].as_i64()
    })
}

/// Stops a process: SIGTERM, up to 5 s to exit, then SIGKILL. A launched service leads its own
/// process group (the launcher starts it with `setsid`): the whole group is signalled, so its
/// children (a LocalCluster's worker processes) go with it.
pub fn stop(pid: i64) {
    let group = leads_its_group(pid);
    let signal = |sig: &str| {
        if group {
            kill(-pid, sig);
        }
        kill(pid, sig);
    };
    signal("TERM");
    for _ in 0..50 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    signal("KILL");
}

/// Whether `pid` is the leader of its process group (its pgid is its pid).
fn leads_its_group(pid: i64) -> bool {
    stat_fields(pid).and_then(|f| f.get(2)?.parse::<i64>().ok()) == Some(pid)
}

/// The fields of `/proc/PID/stat` after the command name (state, ppid, pgrp, ...).
fn stat_fields(pid: i64) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Sends a signal with kill(1) (a negative pid: the process group).
pub fn kill(pid: i64, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(pid.to_string())
        .output();
}

/// Whether a pid is alive (not a zombie).
pub fn alive(pid: i64) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|state| state != "Z"))
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

/// The buffer and database activation state of `cfg`'s current selection (read-write), with
/// launched clients made by `launcher` (nothing starts before first use), and the activation
/// options used.
pub fn launched_stores(
    cfg: &seamless_config::Config,
    launcher: &seamless_launcher::Launcher,
    options: seamless_remote_core::ClientOptions,
) -> (
    seamless_buffer_remote::BufferRemote,
    seamless_database_remote::DatabaseRemote,
    seamless_config::activation::ActivateOptions,
) {
    use seamless_buffer_remote::launched::ConfigBufferLauncher;
    use seamless_database_remote::launched::ConfigDatabaseLauncher;
    let activate = seamless_config::activation::ActivateOptions {
        readonly: false,
        main: Some(cfg.current().unwrap()),
        ..Default::default()
    };
    let mut buffers = seamless_buffer_remote::BufferRemote::new();
    buffers.set_launcher(ConfigBufferLauncher::new(
        cfg.clone(),
        launcher.clone(),
        options.clone(),
    ));
    buffers.activate(&activate).unwrap();
    let mut databases = seamless_database_remote::DatabaseRemote::new();
    databases.set_launcher(ConfigDatabaseLauncher::new(
        cfg.clone(),
        launcher.clone(),
        options,
    ));
    databases.activate(&activate).unwrap();
    (buffers, databases, activate)
}
