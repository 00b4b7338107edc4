//! Child processes that are always stopped, free loopback ports, and health polling.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound once and released; the caller starts its server on it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A running child process, stopped when dropped (SIGTERM, then SIGKILL after a grace period),
/// also when the test fails. Its stdout and stderr go to a log file.
pub struct ServiceProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ServiceProcess {
    /// Spawns `command` with its output appended to `log`. The child gets SIGKILL if the thread
    /// that started it dies without cleaning up (PR_SET_PDEATHSIG), as a last resort.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self, String> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open log {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot open log {}: {e}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            // Its own process group: stopping it also stops its children (a jobserver's
            // spawned workers and their resource tracker).
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(ServiceProcess {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process still runs.
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Kills the process and its group at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            kill_group(&child, libc::SIGKILL);
        }
    }

    /// Stops the process: SIGTERM, up to 5 s of grace, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        kill_group(&child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                kill_group(&child, libc::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{}: no exit 5 s after SIGTERM, sending SIGKILL", self.name);
        let _ = child.kill();
        let _ = child.wait();
        kill_group(&child, libc::SIGKILL);
    }
}

/// Signals the process group that `child` leads (what is left of it).
fn kill_group(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the process group our own child leads; ESRCH (empty) is fine.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One blocking `GET path` with `Connection: close`; returns the status code.
/// (Deliberately independent of the code under test.)
pub fn raw_get_status(addr: SocketAddr, path: &str, timeout: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 12 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `GET /healthcheck` every 100 ms until it answers 200, the process dies, or `limit`
/// passes. On failure the error quotes the end of the log.
pub fn wait_healthy(
    process: &mut ServiceProcess,
    addr: SocketAddr,
    limit: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if !process.is_alive() {
            return Err(format!(
                "{} exited during start-up; log tail:\n{}",
                process.name,
                process.log_tail(20)
            ));
        }
        if raw_get_status(addr, "/healthcheck", Duration::from_secs(2)) == Some(200) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "{} not healthy on {addr} after {limit:?}; log tail:\n{}",
                process.name,
                process.log_tail(20)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `cmd` to completion with its output captured; past `limit` it is killed and this is an
/// error naming the command.
pub fn output_within(mut cmd: Command, limit: Duration) -> Result<std::process::Output, String> {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.map_err(|e| format!("{cmd:?}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            Err(format!("{cmd:?} did not finish within {limit:?}"))
        }
    }
}

/// How a child run by [`run_measured`] ended.
#[derive(Debug)]
pub struct Measured {
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Its stderr (lossy UTF-8).
    pub stderr: String,
    /// Its peak resident memory, KiB: the highest `VmHWM` of its own program seen while it ran
    /// (sampled every 5 ms: a run shorter than that reports what it had at the first sample; a
    /// growing one is always seen). `wait4`'s `ru_maxrss` is not used: on Linux it includes the
    /// memory of the test process the child was spawned from (`vfork` shares it until `exec`).
    pub peak_rss_kib: i64,
    /// Whether it had to be killed at the time limit.
    pub killed: bool,
}

/// Runs `cmd` (stdout as the caller set it, stderr captured) and reports its exit code and peak
/// memory (see [`Measured::peak_rss_kib`]); past `limit` it is killed (`killed`). For memory
/// bounds, never for timings.
pub fn run_measured(mut cmd: Command, limit: Duration) -> Measured {
    let stderr_file = tempfile::tempfile().unwrap();
    let child = cmd
        .stderr(Stdio::from(stderr_file.try_clone().unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let start = std::time::Instant::now();
    let mut killed = false;
    let mut peak: i64 = 0;
    let (status, _usage) = loop {
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak = peak.max(hwm);
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4(2) on our own child, with valid pointers to locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        if r < 0 {
            panic!("wait4: {}", std::io::Error::last_os_error());
        }
        if start.elapsed() > limit && !killed {
            // SAFETY: kill(2) on our own child that has not been reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The child was reaped by wait4: the handle must not wait for it again.
    std::mem::forget(child);
    let mut stderr = String::new();
    {
        use std::io::{Read, Seek};
        let mut f = stderr_file;
        let _ = f.rewind();
        let _ = f.take(1 << 20).read_to_string(&mut stderr);
    }
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Measured {
        code,
        stderr,
        peak_rss_kib: peak,
        killed,
    }
}

/// `VmHWM` (peak resident set of the current program image) of a live process, KiB.
fn vm_hwm_kib(pid: libc::pid_t) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
