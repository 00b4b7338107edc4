//! `cargo xtask wheel`: the `seamless-remote` wheel (crates/python, built by maturin) in
//! `target/wheels/`, and the test virtualenv `target/wheel-venv`: the harness's pinned packages
//! (the released Seamless callers among them) with our wheel installed in place of the Python
//! seamless-remote, exactly as a user would do it (`pip uninstall seamless-remote`, `pip install
//! <wheel>`), checked with `pip check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use seamless_tests::venv::{pip, wheel_in};

fn run(what: &str, mut cmd: Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn python3() -> String {
    std::env::var("SEAMLESS_XTASK_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// A fresh virtualenv at `dir`.
fn new_venv(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let mut venv = Command::new(python3());
    venv.args(["-m", "venv"]).arg(dir);
    run("python3 -m venv", venv)?;
    Ok(dir.join("bin").join("python"))
}

/// Builds the wheel; returns its path.
pub fn build(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target").join("maturin-venv");
    let maturin = tools.join("bin").join("maturin");
    let reqs = root
        .join("xtask")
        .join("python")
        .join("build-requirements.txt");
    if !maturin.is_file() {
        let python = new_venv(&tools)?;
        let mut install = pip(&python);
        install.arg("install").arg("-r").arg(&reqs);
        run("pip install maturin", install)?;
    }
    let out = root.join("target").join("wheels");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    eprintln!(
        "xtask: == maturin build (crates/python) into {}",
        out.display()
    );
    let mut build = Command::new(&maturin);
    build
        .current_dir(root)
        .args([
            "build",
            "--profile",
            "wheel",
            "--compatibility",
            "linux",
            "--out",
        ])
        .arg(&out)
        .arg("-m")
        .arg(root.join("crates").join("python").join("Cargo.toml"));
    run("maturin build", build)?;
    let wheel = wheel_in(&out).context("maturin built no wheel")?;
    eprintln!("xtask: built {}", wheel.display());
    Ok(wheel)
}

/// The test virtualenv with `wheel` in place of the Python seamless-remote; returns its path.
pub fn venv(root: &Path, wheel: &Path) -> Result<PathBuf> {
    let dir = root.join("target").join("wheel-venv");
    eprintln!("xtask: == the wheel's test virtualenv at {}", dir.display());
    let python = new_venv(&dir)?;
    let pydir = root.join("xtask").join("python");
    let mut install = pip(&python);
    install
        .arg("install")
        .arg("-r")
        .arg(pydir.join("requirements.txt"))
        .arg("-c")
        .arg(pydir.join("constraints.txt"));
    run("pip install (the pinned Seamless packages)", install)?;
    let mut uninstall = pip(&python);
    uninstall.args(["uninstall", "-y", "seamless-remote"]);
    run("pip uninstall seamless-remote", uninstall)?;
    let mut ours = pip(&python);
    ours.args(["install", "--no-deps"]).arg(wheel);
    run("pip install <our wheel>", ours)?;
    // seamless-config and seamless-dask require seamless-remote: 0.4.0+rust must satisfy them.
    let mut check = Command::new(&python);
    check.args(["-m", "pip", "check"]);
    run("pip check", check)?;
    Ok(dir)
}

/// `cargo xtask wheel`.
pub fn run_command(root: &Path) -> Result<()> {
    let wheel = build(root)?;
    println!("{}", wheel.display());
    Ok(())
}
