//! Locating the harness virtualenv.
//!
//! `cargo xtask test` creates it (once per set of pinned versions) at
//! `target/seamless-venv` and runs the tests with `SEAMLESS_TEST_VENV` pointing at it and
//! `SEAMLESS_TEST_REQUIRE_SERVICES=1`, so that a service that cannot start fails the test.
//! A plain `cargo test` without the virtualenv skips the service tests with a message.

use std::path::{Path, PathBuf};

/// Environment variable with the virtualenv path.
pub const VENV_ENV: &str = "SEAMLESS_TEST_VENV";
/// Environment variable with the virtualenv that has our wheel instead of seamless-remote
/// (`cargo xtask test` makes it: `target/wheel-venv`).
pub const WHEEL_VENV_ENV: &str = "SEAMLESS_TEST_WHEEL_VENV";
/// Environment variable that turns a missing service into a failure.
pub const REQUIRE_ENV: &str = "SEAMLESS_TEST_REQUIRE_SERVICES";

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The virtualenv directory: `$SEAMLESS_TEST_VENV`, else `<workspace>/target/seamless-venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os(VENV_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join("target").join("seamless-venv"),
    }
}

/// Whether services are required (a service that cannot start fails the test).
pub fn services_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The path of a console script of the virtualenv, if it exists.
pub fn bin(name: &str) -> Result<PathBuf, String> {
    let path = venv_dir().join("bin").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found (run `cargo xtask test`, which creates the virtualenv)",
            path.display()
        ))
    }
}

/// The virtualenv's Python interpreter.
pub fn python() -> Result<PathBuf, String> {
    bin("python")
}

/// A command that runs one of the repository's Python driver scripts (`tests/python/NAME`)
/// with the virtualenv's Python.
pub fn python_script(name: &str) -> Result<std::process::Command, String> {
    let script = workspace_root().join("tests").join("python").join(name);
    if !script.is_file() {
        return Err(format!("{} not found", script.display()));
    }
    let mut cmd = std::process::Command::new(python()?);
    cmd.arg(script);
    Ok(cmd)
}

/// The Python interpreter of the wheel's virtualenv (`$SEAMLESS_TEST_WHEEL_VENV`, else
/// `target/wheel-venv`), if it exists.
pub fn wheel_python() -> Result<PathBuf, String> {
    let dir = match std::env::var_os(WHEEL_VENV_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join("target").join("wheel-venv"),
    };
    let python = dir.join("bin").join("python");
    if python.is_file() {
        Ok(python)
    } else {
        Err(format!(
            "{} not found (run `cargo xtask test`, which builds the wheel and its virtualenv)",
            python.display()
        ))
    }
}

/// The wheel (`*.whl`) in `dir`, if there is one.
pub fn wheel_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
}

/// The wheel `cargo xtask test` built (in `target/wheels/`).
pub fn wheel_file() -> Result<PathBuf, String> {
    let dir = workspace_root().join("target").join("wheels");
    wheel_in(&dir).ok_or_else(|| {
        format!(
            "no wheel in {} (run `cargo xtask test`, which builds it)",
            dir.display()
        )
    })
}

/// `python -m pip`, quiet and non-interactive (no version check): add the pip arguments.
pub fn pip(python: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(python);
    c.args([
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
    ]);
    c
}
