//! The harness virtualenv: the real Seamless services and the Python reference, pinned.
//!
//! Created at `target/seamless-venv` with `python3 -m venv`, filled with `pip install -r
//! xtask/python/requirements.txt -c xtask/python/constraints.txt`, and reused while the stamp
//! (a SHA-256 of both files and the Python version) is unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

const STAMP: &str = ".seamless-xtask-stamp";

/// The virtualenv directory.
pub fn dir(root: &Path) -> PathBuf {
    root.join("target").join("seamless-venv")
}

fn python3() -> String {
    std::env::var("SEAMLESS_XTASK_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn stamp(root: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for f in ["requirements.txt", "constraints.txt"] {
        let path = root.join("xtask").join("python").join(f);
        h.update(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    let version = Command::new(python3())
        .arg("--version")
        .output()
        .context("python3 not found: install Python 3 (with venv and pip)")?;
    h.update(&version.stdout);
    h.update(&version.stderr);
    Ok(hex::encode(h.finalize()))
}

/// Creates or refreshes the virtualenv; returns its path.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    let venv = dir(root);
    let want = stamp(root)?;
    let stamp_file = venv.join(STAMP);
    if std::fs::read_to_string(&stamp_file).is_ok_and(|s| s.trim() == want) {
        return Ok(venv);
    }
    eprintln!(
        "xtask: == creating the harness virtualenv at {}",
        venv.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .with_context(|| format!("removing the stale virtualenv {}", venv.display()))?;
    }
    let status = Command::new(python3())
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv failed ({status}); on Debian, install python3-venv");
    }
    let pydir = root.join("xtask").join("python");
    let status = Command::new(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            "-r",
        ])
        .arg(pydir.join("requirements.txt"))
        .arg("-c")
        .arg(pydir.join("constraints.txt"))
        .status()
        .context("running pip install")?;
    if !status.success() {
        bail!("pip install of the pinned services failed ({status})");
    }
    std::fs::write(&stamp_file, want)
        .with_context(|| format!("writing {}", stamp_file.display()))?;
    Ok(venv)
}
