//! `cargo xtask`: the project's automation, in Rust (see <https://github.com/matklad/cargo-xtask/>).
//!
//! * `cargo xtask test`: the one test command. fmt check, clippy (`-D warnings`), `cargo doc`
//!   (warnings are errors), `cargo package --workspace`, the harness
//!   virtualenv, then every unit and integration test with the real services required.
//! * `cargo xtask venv`: only create (or refresh) the harness virtualenv.
//! * `cargo xtask demo`: the main job on a local default: launch services, store buffers, run a
//!   transformation, then the two binaries (resolve, fingertip). `cargo xtask demo dask`: the
//!   same on a local Dask cluster (daskserver and Dask front).
//! * `cargo xtask bench [buffer|database|cli|dask|python]`: Rust vs the Python reference, side by
//!   side in one run, reported as ratios (`python`: our wheel vs the Python package, under the
//!   same Seamless workload).
//! * `cargo xtask dist`: release binaries, shell completions and man pages in `target/dist/`.
//! * `cargo xtask wheel`: the `seamless-remote` Python wheel (Rust inside) in `target/wheels/`.

mod bench;
mod bench_cli;
mod bench_dask;
mod bench_python;
mod demo;
mod demo_dask;
mod dist;
mod prereq;
mod venv;
mod wheel;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> &'static str {
    "usage: cargo xtask <command>\n\n\
     commands:\n  \
     test            fmt check, clippy, harness virtualenv, all tests (real services required)\n  \
     venv            create or refresh the harness virtualenv under target/\n  \
     demo [dask]     run the main job on a local default (or on a local Dask cluster)\n  \
     bench [WHAT]    benchmarks against the Python reference (buffer, database, cli, dask, python)\n  \
     dist            release binaries, shell completions and man pages in target/dist/\n  \
     wheel           the seamless-remote Python wheel (Rust inside) in target/wheels/"
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("test") => {
            prereq::for_test()?;
            test(&root, &args[1..])
        }
        Some("venv") => venv::ensure(&root).map(|p| println!("{}", p.display())),
        Some("demo") => match prereq::for_services().map(|()| args.get(1).map(String::as_str))? {
            None => demo::run(&root),
            Some("dask") => demo_dask::run(&root),
            Some(other) => bail!("unknown demo {other:?} (none, or dask)"),
        },
        Some("dist") => dist::run(&root),
        Some("wheel") => wheel::run_command(&root),
        Some("bench") => {
            prereq::for_services()?;
            bench::run(&root, &args[1..])
        }
        Some("-h") | Some("--help") | Some("help") | None => {
            println!("{}", usage());
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n\n{}", usage()),
    }
}

fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn step(name: &str, mut cmd: Command) -> Result<()> {
    eprintln!("xtask: == {name}");
    let status = cmd
        .status()
        .with_context(|| format!("could not run {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    let mut fmt = cargo();
    fmt.current_dir(root)
        .args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.current_dir(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    step("cargo clippy -D warnings", clippy)?;

    // A user can depend on one service crate without TLS: keep that build working.
    let mut no_tls = cargo();
    no_tls.current_dir(root).args([
        "check",
        "-q",
        "-p",
        "seamless-buffer-remote",
        "--no-default-features",
    ]);
    step("cargo check (without the tls feature)", no_tls)?;

    // Every library documents without warnings (broken links are errors).
    let mut doc = cargo();
    doc.current_dir(root)
        .args(["doc", "--no-deps", "--workspace", "-q"])
        .env("RUSTDOCFLAGS", "-D warnings");
    step("cargo doc --no-deps (warnings are errors)", doc)?;

    // The crates are publishable: each packages and builds on its own. A fresh package directory
    // each time: the packaged sources carry a fixed mtime, so a build left from an earlier run of
    // the same version would look up to date.
    let packaged = root.join("target").join("package");
    if packaged.exists() {
        std::fs::remove_dir_all(&packaged)
            .with_context(|| format!("removing {}", packaged.display()))?;
    }
    // Cargo also extracts the packaged crates under $CARGO_HOME/registry/src/-<hash>/ (the
    // workspace's local registry) and reuses an existing extraction of the same version: remove
    // ours, or the verification builds against an older copy of our own crates.
    remove_stale_extractions()?;
    let mut package = cargo();
    package.current_dir(root).args([
        "package",
        "--workspace",
        "--exclude",
        "seamless-tests",
        "--exclude",
        "xtask",
        "--exclude",
        "seamless-python",
        "--allow-dirty",
        "-q",
    ]);
    step("cargo package --workspace", package)?;

    // The binaries install like any Rust tool (the debug build, reusing this target dir).
    let install_root = tempfile::tempdir().context("a temporary install root")?;
    let mut install = cargo();
    install
        .current_dir(root)
        .args([
            "install",
            "-q",
            "--debug",
            "--path",
            "crates/cli",
            "--target-dir",
        ])
        .arg(root.join("target"))
        .arg("--root")
        .arg(install_root.path());
    step("cargo install --path crates/cli", install)?;
    for program in ["seamless-resolve", "seamless-fingertip"] {
        let out = Command::new(install_root.path().join("bin").join(program))
            .arg("--version")
            .output()
            .with_context(|| format!("running the installed {program}"))?;
        let version = String::from_utf8_lossy(&out.stdout);
        if !version.starts_with(&format!("{program} ")) {
            bail!("the installed {program} --version printed {version:?}");
        }
        eprintln!("xtask: installed {}", version.trim());
    }

    let venv = venv::ensure(root)?;
    // The Python wheel, installed in place of the Python seamless-remote next to the released
    // callers, for the wheel tests (tests/tests/wheel.rs).
    let wheel = wheel::build(root)?;
    let wheel_venv = wheel::venv(root, &wheel)?;

    let mut tests = cargo();
    tests
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("SEAMLESS_TEST_VENV", &venv)
        .env("SEAMLESS_TEST_WHEEL_VENV", &wheel_venv)
        .env("SEAMLESS_TEST_REQUIRE_SERVICES", "1");
    eprintln!(
        "xtask: == cargo test --workspace (services from {})",
        venv.display()
    );
    let status = run_in_own_group(tests)?;
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

/// Removes the extractions of this workspace's packaged crates (`seamless-*`) from cargo's
/// local-registry source directories (`$CARGO_HOME/registry/src/-*`; crates.io's is untouched).
fn remove_stale_extractions() -> Result<()> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(sources) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for source in sources.flatten() {
        if !source.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for krate in std::fs::read_dir(source.path())?.flatten() {
            if krate.file_name().to_string_lossy().starts_with("seamless-") {
                std::fs::remove_dir_all(krate.path())
                    .with_context(|| format!("removing {}", krate.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Runs `cmd` as the leader of a new process group and, once it has exited, kills whatever is
/// left in that group: a safety net so that no service started by a test outlives the run.
fn run_in_own_group(mut cmd: Command) -> Result<std::process::ExitStatus> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let mut child = cmd.spawn().context("could not start cargo test")?;
    let pgid = child.id() as libc::pid_t;
    let status = child.wait().context("waiting for cargo test")?;
    // SAFETY: kill(2) on the process group we created; ESRCH (nothing left) is fine.
    let leftover = unsafe { libc::kill(-pgid, 0) } == 0;
    if leftover {
        eprintln!("xtask: killing processes left behind by the tests");
        // SAFETY: as above.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    Ok(status)
}
