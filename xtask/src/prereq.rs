//! The system programs the commands need, checked before anything is built: when one is
//! missing and we run as root with apt, the Debian packages are installed (and named);
//! otherwise the command stops, naming the packages and the command that installs them.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// One prerequisite: how to check it, and the Debian packages that provide it.
struct Prereq {
    what: &'static str,
    present: fn() -> bool,
    packages: &'static [&'static str],
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

fn python_has_venv_and_pip() -> bool {
    Command::new(std::env::var("SEAMLESS_XTASK_PYTHON").unwrap_or_else(|_| "python3".into()))
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success())
}

const PYTHON: Prereq = Prereq {
    what: "python3 with venv and pip (the services' virtualenv)",
    present: python_has_venv_and_pip,
    packages: &["python3", "python3-venv", "python3-pip"],
};

const SSHD: Prereq = Prereq {
    what: "an OpenSSH server and client (the SSH-mode launcher tests run a real sshd on loopback)",
    present: || Path::new("/usr/sbin/sshd").is_file() && on_path("ssh") && on_path("ssh-keygen"),
    packages: &["openssh-server", "openssh-client"],
};

const SCRIPT: Prereq = Prereq {
    what: "`script` (a pseudo-terminal for the CLI tests)",
    present: || on_path("script"),
    packages: &["bsdutils"],
};

const PKILL: Prereq = Prereq {
    what: "`pkill` and `ps`",
    present: || on_path("pkill") && on_path("ps"),
    packages: &["procps"],
};

const SETPRIV: Prereq = Prereq {
    what: "`setpriv` (runs a CLI test as an unprivileged user)",
    present: || on_path("setpriv"),
    packages: &["util-linux"],
};

/// What `cargo xtask test` needs.
pub fn for_test() -> Result<()> {
    ensure(&[PYTHON, SSHD, SCRIPT, PKILL, SETPRIV])
}

/// What `cargo xtask demo` and `cargo xtask bench` need.
pub fn for_services() -> Result<()> {
    ensure(&[PYTHON])
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn ensure(prereqs: &[Prereq]) -> Result<()> {
    let missing: Vec<&Prereq> = prereqs.iter().filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing
        .iter()
        .flat_map(|p| p.packages.iter().copied())
        .collect();
    for p in &missing {
        eprintln!("xtask: missing: {}", p.what);
    }
    if !(is_root() && on_path("apt-get")) {
        bail!(
            "install the missing system packages first:\n  sudo apt-get install -y {}",
            packages.join(" ")
        );
    }
    eprintln!("xtask: == installing {} (apt-get)", packages.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-q"])
        .status()
        .context("running apt-get update")?;
    if !update.success() {
        bail!("apt-get update failed ({update})");
    }
    let install = Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !install.success() {
        bail!("apt-get install {} failed ({install})", packages.join(" "));
    }
    let still: Vec<&str> = missing
        .iter()
        .filter(|p| !(p.present)())
        .map(|p| p.what)
        .collect();
    if !still.is_empty() {
        bail!("still missing after the install: {}", still.join("; "));
    }
    Ok(())
}
