//! The few process syscalls the launcher needs, in one place.
//!
//! This is the only module of remote-core with `unsafe` code: `setsid()` between fork and exec
//! (the reference starts services with `start_new_session=True`), and `kill()`.

#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes `command` start in a new session (detached from our terminal and process group).
pub(crate) fn new_session(command: &mut Command) {
    // SAFETY: setsid() is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to `pid`; false if the process does not exist (or is not ours).
pub(crate) fn kill(pid: i32, signal: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with a positive pid has no memory effects.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether `pid` is alive (and not a zombie that we would reap).
pub(crate) fn pid_alive(pid: i32) -> bool {
    reap_adopted();
    if !kill(pid, 0) {
        return false;
    }
    // A zombie still answers kill(0); look at /proc where available.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Whether `pid` is the service of `key`: a live process of our uid whose command line names
/// the service's state file (`<key>.json`, the `--status-file` argument every launched service
/// gets). Without a key, the uid alone decides.
pub(crate) fn is_service(pid: i32, key: Option<&str>) -> bool {
    use std::os::unix::fs::MetadataExt;
    if pid <= 0 || !pid_alive(pid) {
        return false;
    }
    let proc_dir = format!("/proc/{pid}");
    let (Ok(theirs), Ok(ours)) = (
        std::fs::metadata(&proc_dir).map(|m| m.uid()),
        std::fs::metadata("/proc/self").map(|m| m.uid()),
    ) else {
        return false;
    };
    if theirs != ours {
        return false;
    }
    let Some(key) = key else { return true };
    let Ok(cmdline) = std::fs::read(format!("{proc_dir}/cmdline")) else {
        return false;
    };
    let marker = format!("{key}.json");
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg.windows(marker.len()).any(|w| w == marker.as_bytes()))
}

/// Services launched by this process stay our children until we exit: keep their handles so
/// that a dead one is reaped (not mistaken for alive as a zombie), and only those.
static CHILDREN: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());

/// Keeps the handle of a launched service.
pub(crate) fn adopt(child: std::process::Child) {
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(child);
}

/// Reaps the launched services that have exited.
pub(crate) fn reap_adopted() {
    let mut children = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

pub(crate) use libc::{SIGINT, SIGKILL, SIGTERM};
