//! Real Seamless services on free loopback ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, wait_healthy, ServiceProcess};
use crate::venv;

/// How long a service may take to become healthy (they need 0.4-1.3 s; CI machines are slower).
const START_LIMIT: Duration = Duration::from_secs(60);

/// Options of a hashserver.
#[derive(Debug, Clone)]
pub struct HashserverOptions {
    /// `--writable`.
    pub writable: bool,
    /// `--layout` (`prefix` or `flat`).
    pub layout: &'static str,
}

impl Default for HashserverOptions {
    fn default() -> Self {
        HashserverOptions {
            writable: true,
            layout: "prefix",
        }
    }
}

/// A real hashserver on 127.0.0.1, with its own buffer directory; stopped when dropped.
pub struct Hashserver {
    process: ServiceProcess,
    port: u16,
    options: HashserverOptions,
    dir: tempfile::TempDir,
}

impl Hashserver {
    /// Starts a hashserver on a free port and waits for its healthcheck.
    pub fn start(options: HashserverOptions) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("seamless-hs-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        std::fs::create_dir_all(dir.path().join("buffers")).map_err(|e| e.to_string())?;
        let mut last_err = String::new();
        // A port picked as free can be taken before the server binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            match Self::spawn(dir.path(), port, &options) {
                Ok(process) => {
                    return Ok(Hashserver {
                        process,
                        port,
                        options,
                        dir,
                    })
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn spawn(dir: &Path, port: u16, options: &HashserverOptions) -> Result<ServiceProcess, String> {
        let mut cmd = Command::new(venv::bin("hashserver")?);
        cmd.arg(dir.join("buffers"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--layout", options.layout]);
        if options.writable {
            cmd.arg("--writable");
        }
        cmd.current_dir(dir);
        let mut process = ServiceProcess::spawn("hashserver", cmd, &dir.join("hashserver.log"))?;
        wait_healthy(&mut process, addr(port), START_LIMIT)?;
        Ok(process)
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        addr(self.port)
    }

    /// The buffer directory.
    pub fn buffer_dir(&self) -> PathBuf {
        self.dir.path().join("buffers")
    }

    /// The server's log so far (uvicorn logs every request).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Stops the server (SIGTERM) and starts it again on the same port and directory.
    pub fn restart(&mut self) -> Result<(), String> {
        self.process.stop();
        let mut last_err = String::new();
        // The old socket may linger for a moment; uvicorn sets SO_REUSEADDR, so this is rare.
        for _ in 0..5 {
            match Self::spawn(self.dir.path(), self.port, &self.options) {
                Ok(p) => {
                    self.process = p;
                    return Ok(());
                }
                Err(e) => {
                    last_err = e;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        Err(last_err)
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts the service `name` on a free port, in a fresh directory (its working directory and
/// where `<name>.log` goes), with the command `build` makes for (directory, port); waits for its
/// healthcheck.
fn start_in_tempdir(
    name: &str,
    build: impl FnOnce(&Path, u16) -> Result<Command, String>,
) -> Result<(ServiceProcess, u16, tempfile::TempDir), String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir()
        .map_err(|e| format!("tempdir: {e}"))?;
    let port = free_port();
    let mut cmd = build(dir.path(), port)?;
    cmd.current_dir(dir.path());
    let mut process = ServiceProcess::spawn(name, cmd, &dir.path().join(format!("{name}.log")))?;
    wait_healthy(&mut process, addr(port), START_LIMIT)?;
    Ok((process, port, dir))
}

/// A real seamless-database on 127.0.0.1 (writable), with its own directory; stopped when dropped.
pub struct Database {
    process: ServiceProcess,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Database {
    /// Starts a database on a free port and waits for its healthcheck. (The database does not
    /// exit when its port is taken, so the port is checked free just before.)
    pub fn start() -> Result<Self, String> {
        let (process, port, dir) = start_in_tempdir("seamless-database", |dir, port| {
            let mut cmd = Command::new(venv::bin("seamless-database")?);
            cmd.arg(dir.join("seamless.db")).args([
                "--writable",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ]);
            Ok(cmd)
        })?;
        Ok(Database {
            process,
            port,
            _dir: dir,
        })
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        addr(self.port)
    }

    /// Kills the database at once.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A real seamless-jobserver on 127.0.0.1, pointed at a hashserver (and optionally a database)
/// through its status file; stopped (with its workers) when dropped.
pub struct Jobserver {
    process: ServiceProcess,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Jobserver {
    /// Starts a jobserver with one worker process.
    pub fn start(hashserver_url: &str, database_url: Option<&str>) -> Result<Self, String> {
        let (process, port, dir) = start_in_tempdir("seamless-jobserver", |dir, port| {
            let status = dir.join("status.json");
            let database: Vec<serde_json::Value> = database_url
                .map(|u| serde_json::json!({"readonly": false, "remote_url": u}))
                .into_iter()
                .collect();
            let parameters = serde_json::json!({"parameters": {
                "buffer": [{"readonly": false, "remote_url": hashserver_url}],
                "database": database,
            }});
            std::fs::write(&status, parameters.to_string()).map_err(|e| e.to_string())?;
            let mut cmd = Command::new(venv::bin("seamless-jobserver")?);
            cmd.args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .arg("--status-file")
            .arg(&status);
            Ok(cmd)
        })?;
        Ok(Jobserver {
            process,
            port,
            _dir: dir,
        })
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        addr(self.port)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// A real sshd on a free loopback port with throwaway keys, for SSH-mode launcher tests. Remote
/// commands run as the current user with the virtualenv first on PATH (so the remote-http-launcher
/// helpers are found). Stopped when dropped.
pub struct Sshd {
    _process: ServiceProcess,
    dir: tempfile::TempDir,
    /// The `Host` alias to use as `ssh_hostname`.
    pub alias: String,
}

impl Sshd {
    /// Starts sshd (needs /usr/sbin/sshd and ssh-keygen; run as root in CI); remote commands
    /// get the virtualenv first on PATH.
    pub fn start() -> Result<Self, String> {
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            venv::venv_dir().join("bin").display()
        );
        Self::start_with_path(&path)
    }

    /// Starts sshd with `path` as the PATH of remote commands.
    pub fn start_with_path(path: &str) -> Result<Self, String> {
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("sshd not installed (apt-get install openssh-server)")?;
        let dir = tempfile::Builder::new()
            .prefix("seamless-sshd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        for key in ["hostkey", "userkey"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .output()
                .map_err(|e| format!("ssh-keygen: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ssh-keygen failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        std::fs::copy(d.join("userkey.pub"), d.join("authorized_keys"))
            .map_err(|e| e.to_string())?;
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPasswordAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {pid}\nSetEnv PATH={path}\n",
                hk = d.join("hostkey").display(),
                ak = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let alias = "seamless-ssh-test".to_string();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  IdentityFile {}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n",
                d.join("userkey").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(sshd);
        cmd.arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"));
        let mut process = ServiceProcess::spawn("sshd", cmd, &d.join("sshd.out"))?;
        let start = std::time::Instant::now();
        loop {
            let ok = Command::new("ssh")
                .arg("-F")
                .arg(d.join("ssh_config"))
                .args([alias.as_str(), "true"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            if !process.is_alive() || start.elapsed() > Duration::from_secs(20) {
                let log = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
                return Err(format!("sshd did not accept a login: {log}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(Sshd {
            _process: process,
            dir,
            alias,
        })
    }

    /// The ssh command that reaches [`Sshd::alias`].
    pub fn ssh_command(&self) -> Vec<String> {
        vec![
            "ssh".to_string(),
            "-F".to_string(),
            self.dir.path().join("ssh_config").display().to_string(),
        ]
    }

    /// Runs a command on the "remote" host.
    pub fn run(&self, remote: &str) -> String {
        let out = Command::new("ssh")
            .args(&self.ssh_command()[1..])
            .args([self.alias.as_str(), remote])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}
