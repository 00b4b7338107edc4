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
        let dir = tempfile::Builder::new()
            .prefix("seamless-db-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let port = free_port();
        let mut cmd = Command::new(venv::bin("seamless-database")?);
        cmd.arg(dir.path().join("seamless.db"))
            .args([
                "--writable",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .current_dir(dir.path());
        let mut process =
            ServiceProcess::spawn("seamless-database", cmd, &dir.path().join("database.log"))?;
        wait_healthy(&mut process, addr(port), START_LIMIT)?;
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
        let dir = tempfile::Builder::new()
            .prefix("seamless-js-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let port = free_port();
        let status = dir.path().join("status.json");
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
        .arg(&status)
        .current_dir(dir.path());
        let mut process =
            ServiceProcess::spawn("seamless-jobserver", cmd, &dir.path().join("jobserver.log"))?;
        wait_healthy(&mut process, addr(port), START_LIMIT)?;
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
