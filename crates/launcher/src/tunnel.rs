//! SSH tunnels (`ssh -N -L`) from a local port to a service's port on its host.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::probe::port_open;
use crate::sys;

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
