//! `cargo xtask demo`: the main job on a local default, end to end.
//!
//! In a temporary directory: a local cluster (`~/.seamless/clusters.yaml`, a scratch HOME) and a
//! project (`seamless.yaml`, stage `remote` with a jobserver). Through our launcher it starts a
//! hashserver, a database and a jobserver, stores a few buffers (text, JSON, binary) and a
//! transformation, runs it, records the result, deletes the result buffer, then runs the built
//! `seamless-resolve` (stdout and `--output`) and `seamless-fingertip` (on the deleted result)
//! and shows what each printed. Everything it started is stopped at the end.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use seamless_jobserver_remote::launched::ConfigJobserverLauncher;
use seamless_jobserver_remote::{JobserverRemote, RunRequest};
use seamless_remote_core::{Checksum, ClientOptions};
use seamless_tests::launchenv::{launched_stores, Env};
use serde_json::json;

fn show(title: &str, bin: &Path, args: &[&str], env: &[(&str, String)], cwd: &Path) -> Result<()> {
    let mut c = Command::new(bin);
    // The demo's buffers live in stage `remote` (the stage with the jobserver).
    c.args(args).args(["--stage", "remote"]).current_dir(cwd);
    for (k, v) in env {
        c.env(k, v);
    }
    c.env_remove("SEAMLESS_REMOTE_CLIENTS")
        .env_remove("SEAMLESS_CACHE");
    let out = c
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("\n## {title}\n$ {name} {} --stage remote", args.join(" "));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.trim().is_empty() {
        println!("(stderr) {}", err.trim_end().replace('\n', "\n(stderr) "));
    }
    println!("(exit {})", out.status.code().unwrap_or(-1));
    Ok(())
}

/// Builds `seamless-resolve` and `seamless-fingertip` (debug) for the demos.
pub(crate) fn build_binaries(root: &Path) -> Result<()> {
    let status = crate::cargo()
        .current_dir(root)
        .args(["build", "-q", "-p", "seamless-cli"])
        .status()?;
    if !status.success() {
        bail!("building the binaries failed");
    }
    Ok(())
}

/// Entry point.
pub fn run(root: &Path) -> Result<()> {
    let venv = crate::venv::ensure(root)?;
    build_binaries(root)?;
    let bins = root.join("target").join("debug");
    std::env::set_var("SEAMLESS_TEST_VENV", &venv);
    // A scratch HOME with a local cluster and a project whose stage `remote` runs on the
    // jobserver; every service started under it is stopped when `env` is dropped.
    let env = Env::new();
    let (home, project) = (env.home(), env.project());
    println!(
        "# Seamless remote, in Rust: demo\nscratch HOME: {}",
        home.display()
    );
    let path = env.path_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (text, json_cs, binary, result) = runtime.block_on(store_and_compute(&env))?;
    let vars = vec![("HOME", home.display().to_string()), ("PATH", path)];
    show(
        "Resolve a text buffer",
        &bins.join("seamless-resolve"),
        &[&text.to_hex()],
        &vars,
        &project,
    )?;
    show(
        "Resolve a JSON buffer",
        &bins.join("seamless-resolve"),
        &[&json_cs.to_hex()],
        &vars,
        &project,
    )?;
    let out = home.join("binary.out");
    show(
        "Resolve a binary buffer to a file",
        &bins.join("seamless-resolve"),
        &[&binary.to_hex(), "--output", out.to_str().context("path")?],
        &vars,
        &project,
    )?;
    let written = std::fs::read(&out).unwrap_or_default();
    println!(
        "{} bytes written, SHA-256 {}",
        written.len(),
        Checksum::of(&written)
    );
    show(
        "Resolve the deleted result (not found)",
        &bins.join("seamless-resolve"),
        &[&result.to_hex()],
        &vars,
        &project,
    )?;
    show(
        "Fingertip the deleted result (recomputed by the stage's jobserver)",
        &bins.join("seamless-fingertip"),
        &[&result.to_hex()],
        &vars,
        &project,
    )?;
    show(
        "Resolve it again (written back)",
        &bins.join("seamless-resolve"),
        &[&result.to_hex()],
        &vars,
        &project,
    )?;
    println!("\nStopping the services the demo started.");
    Ok(())
}

/// Launches the services through our launcher, stores buffers, runs a transformation, records
/// the result, and deletes the result buffer. Returns (text, JSON, binary, result) checksums.
async fn store_and_compute(env: &Env) -> Result<(Checksum, Checksum, Checksum, Checksum)> {
    let (cfg, launcher) = env.stage_config("remote");
    let current = cfg.current()?;
    let options = ClientOptions::default();
    let (buffers, databases, _) = launched_stores(&cfg, &launcher, options.clone());
    let store = buffers.active();

    let text = Bytes::from_static(b"Hello from Seamless, in Rust!\nsecond line\n");
    let json_buf = seamless_tests::transformation::mixed_buffer(
        &json!({"answer": 42, "list": [1, 2.5, "three"]}),
    );
    let binary = Bytes::from((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
    for b in [&text, &json_buf, &binary] {
        store.write_buffer(&Checksum::of(b), b.clone()).await?;
    }
    println!("\nStored 3 buffers (text, JSON, binary) on the launched hashserver.");

    let buffers = Arc::new(buffers);
    let databases = Arc::new(databases);
    let clients =
        seamless_jobserver_remote::launched::live_clients(buffers.clone(), databases.clone());
    let mut jobs = JobserverRemote::new();
    jobs.set_launcher(ConfigJobserverLauncher::new(
        cfg.clone(),
        launcher,
        options,
        clients,
    ));
    jobs.activate(&seamless_jobserver_remote::remote::ActivateOptions {
        main: Some(current),
        ..Default::default()
    })?;
    let t = seamless_tests::transformation::python(
        "def describe(a, b, label):\n    return {\"sum\": a + b, \"label\": label * 2}\n",
        &[("a", json!(17)), ("b", json!(25)), ("label", json!("xy"))],
    );
    for (cs, b) in &t.buffers {
        store.write_buffer(cs, b.clone()).await?;
    }
    let result = jobs
        .active()
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await?
        .result_checksum()
        .context("no result")?;
    databases
        .active()
        .set_transformation_result(&t.tf_checksum, &result)
        .await?;
    println!(
        "Ran transformation {} on the launched jobserver: result {result}.",
        t.tf_checksum
    );
    // Delete the result buffer, so that only fingertip can get it back.
    let info = buffers.inspect_launched_clients();
    let dir = info
        .first()
        .and_then(|i| i.directory.clone())
        .context("the hashserver's directory")?;
    let hex = result.to_hex();
    let file = Path::new(&dir).join(&hex[..2]).join(&hex);
    for _ in 0..100 {
        if file.is_file() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::remove_file(&file).with_context(|| format!("deleting {}", file.display()))?;
    println!("Deleted the result buffer from the hashserver's directory.");
    Ok((
        Checksum::of(&text),
        Checksum::of(&json_buf),
        Checksum::of(&binary),
        result,
    ))
}
