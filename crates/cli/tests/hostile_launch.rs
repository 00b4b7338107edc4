//! The built binaries against hostile configuration and launcher state (SECURITY.md, classes 1,
//! 2 and 6): values never reach a shell or become extra arguments, names are checked before
//! anything is launched, launched services stay on loopback, the launcher's files are private
//! and never followed through links, a pid is verified before it is signalled, and a launch
//! failure is reported once with exit 5. Services are the real ones, launched by our launcher.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use seamless_tests::launchenv::{alive, free_range, Env};

const RESOLVE: &str = env!("CARGO_BIN_EXE_seamless-resolve");
const FINGERTIP: &str = env!("CARGO_BIN_EXE_seamless-fingertip");

/// A checksum no store has.
const MISSING: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn clusters(env: &Env, frontend: &str) {
    std::fs::write(
        env.home().join(".seamless").join("clusters.yaml"),
        format!("local_cluster: local\nlocal:\n  type: local\n  workers: 1\n  frontends:\n    - {frontend}\n"),
    )
    .unwrap();
}

fn hashserver_entry(extra: &str) -> String {
    let hs = free_range(10);
    format!(
        "hashserver: {{{extra}port_start: {hs}, port_end: {}}}",
        hs + 9
    )
}

fn run(env: &Env, bin: &str, args: &[&str]) -> Output {
    let mut c = env.cmd(Path::new(bin));
    c.args(args)
        .current_dir(env.project())
        .env_remove("SEAMLESS_REMOTE_CLIENTS")
        .stdin(Stdio::null());
    seamless_tests::process::output_within(c, std::time::Duration::from_secs(180)).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn server_state(env: &Env, key: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(env.state("server", key)).unwrap()).unwrap()
}

fn cmdline(pid: i64) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn ready() -> bool {
    seamless_tests::require!(seamless_tests::venv::bin("hashserver")).is_some()
}

#[test]
fn names_are_checked_before_anything_is_launched() {
    if !ready() {
        return;
    }
    let env = Env::new();
    let long = "p".repeat(101);
    for (flag, value) in [
        ("--project", "demo:../../.."),
        ("--project", ".."),
        ("--project", "de mo"),
        ("--project", "demo\u{1b}[31m"),
        ("--project", long.as_str()),
        ("--stage", "a/b"),
        ("--stage", "prod:.."),
    ] {
        let out = run(&env, RESOLVE, &[MISSING, flag, value]);
        assert_eq!(
            out.status.code(),
            Some(5),
            "{flag} {value:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains("invalid") && err.contains("name"), "{err}");
        assert!(!err.contains('\u{1b}'), "{err:?}");
        assert!(
            !env.home().join(".remote-http-launcher").exists(),
            "{flag} {value:?} launched something"
        );
    }
}

#[test]
fn launch_values_are_arguments_never_shell_code() {
    if !ready() {
        return;
    }
    let env = Env::new();
    // A bufferdir with a space and an option in it stays one argument (the store does not
    // listen on every interface).
    let data = env.home().join("data dir");
    let bufferdir = format!("{}/buf --host 0.0.0.0", data.display());
    clusters(
        &env,
        &hashserver_entry(&format!("bufferdir: '{bufferdir}', ")),
    );
    let out = run(&env, RESOLVE, &[MISSING]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let pid = server_state(&env, "hashserver-local-rw-demo")["pid"]
        .as_i64()
        .unwrap();
    let args = cmdline(pid);
    assert!(
        args.contains(&format!("{bufferdir}/demo")),
        "the bufferdir is not one argument: {args:?}"
    );
    assert!(!args.iter().any(|a| a == "0.0.0.0"), "{args:?}");

    // SEAMLESS_CACHE with a space launches.
    let cache = env.home().join("my cache");
    let mut c = env.cmd(Path::new(RESOLVE));
    c.arg(MISSING)
        .current_dir(env.project())
        .env("SEAMLESS_CACHE", &cache);
    let out =
        seamless_tests::process::output_within(c, std::time::Duration::from_secs(120)).unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(cache.is_dir());

    // A conda environment name that is shell code is one quoted word: the file is not made.
    let marker = env.home().join("pwned");
    clusters(
        &env,
        &hashserver_entry(&format!(
            "bufferdir: {}/b2, conda: 'base; touch {} #', ",
            data.display(),
            marker.display()
        )),
    );
    std::fs::remove_file(env.state("client", "hashserver-local-rw-demo")).ok();
    let out = run(&env, RESOLVE, &[MISSING, "--project", "other"]);
    assert!(!marker.exists(), "the conda name ran as shell code");
    // conda is not installed here: the launch fails, once, with the launcher's message (5).
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("Launch hashserver").count(), 1, "{err}");
    assert!(
        err.contains("could not start hashserver-local-rw-other"),
        "{err}"
    );
}

#[test]
fn a_launch_that_cannot_succeed_is_reported_once() {
    if !ready() {
        return;
    }
    let env = Env::new();
    let mut c = Command::new(RESOLVE);
    c.arg(MISSING)
        .current_dir(env.project())
        .env("HOME", env.home())
        .env("PATH", "/usr/bin:/bin")
        .env_remove("SEAMLESS_REMOTE_CLIENTS")
        .env_remove("SEAMLESS_CACHE");
    let out =
        seamless_tests::process::output_within(c, std::time::Duration::from_secs(120)).unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert_eq!(err.matches("Launch hashserver").count(), 1, "{err}");
    assert!(err.contains("cannot run `hashserver`"), "{err}");
    assert!(!err.contains("attempts"), "retried: {err}");
}

#[test]
fn the_local_database_listens_on_loopback() {
    if !ready() {
        return;
    }
    let env = Env::new();
    let (db, data) = (free_range(10), env.home().join("data"));
    clusters(
        &env,
        &format!(
            "{}\n      database: {{database_dir: {}/db, port_start: {db}, port_end: {}}}",
            hashserver_entry(&format!("bufferdir: {}/buffers, ", data.display())),
            data.display(),
            db + 9
        ),
    );
    let out = run(&env, FINGERTIP, &[MISSING]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let pid = server_state(&env, "database-local-rw-demo")["pid"]
        .as_i64()
        .unwrap();
    let args = cmdline(pid);
    let host = args
        .iter()
        .position(|a| a == "--host")
        .map(|i| &args[i + 1]);
    assert_eq!(host.map(String::as_str), Some("127.0.0.1"), "{args:?}");
}

#[test]
fn launcher_files_are_private_and_never_followed() {
    if !ready() {
        return;
    }
    let env = Env::new();
    let out = run(&env, RESOLVE, &[MISSING]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let root = env.home().join(".remote-http-launcher");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for dir in ["server", "client"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    let key = "hashserver-local-rw-demo";
    for file in [
        env.state("client", key),
        root.join("server").join(format!("{key}.log")),
        root.join("server").join(format!("{key}.lock")),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // Planted links at the log and the lock of another key: their targets are neither
    // truncated nor created; the launch is refused with a clear error (5).
    let victim = env.home().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let created = env.home().join("created-by-link");
    let other = "hashserver-local-rw-other";
    std::os::unix::fs::symlink(&victim, root.join("server").join(format!("{other}.log"))).unwrap();
    std::os::unix::fs::symlink(&created, root.join("server").join(format!("{other}.lock")))
        .unwrap();
    let out = run(&env, RESOLVE, &[MISSING, "--project", "other"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!created.exists());
}

#[test]
fn a_pid_from_a_state_file_is_verified_before_it_is_signalled() {
    if !ready() {
        return;
    }
    let env = Env::new();
    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = i64::from(victim.id());
    let key = "hashserver-local-rw-demo";
    let closed = seamless_tests::process::free_port();
    for planted in [pid + (1i64 << 32), pid, -pid] {
        let state = serde_json::json!({
            "status": "running", "pid": planted, "port": closed,
            "uid": 0, "workdir": "/tmp", "network_interface": "127.0.0.1",
        });
        std::fs::create_dir_all(env.home().join(".remote-http-launcher/server")).unwrap();
        std::fs::write(env.state("server", key), state.to_string()).unwrap();
        let out = run(&env, RESOLVE, &[MISSING]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(alive(pid), "the victim was signalled through pid {planted}");
        // Stop the service launched in its place before planting the next state.
        let launched = server_state(&env, key)["pid"].as_i64().unwrap();
        seamless_tests::launchenv::stop(launched);
        std::fs::remove_file(env.state("client", key)).ok();
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[test]
fn hostile_configuration_files_fail_fast() {
    if !ready() {
        return;
    }
    let env = Env::new();
    let clusters = env.home().join(".seamless").join("clusters.yaml");
    let deep = format!(
        "local:\n  x: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let huge = format!("local:\n  type: local\n  # {}\n", "x".repeat(8 << 20));
    for (what, contents, needle) in [
        ("deep", deep.as_str(), "levels"),
        ("huge", huge.as_str(), "larger than 1048576 bytes"),
    ] {
        std::fs::write(&clusters, contents).unwrap();
        let out = run(&env, RESOLVE, &[MISSING]);
        assert_eq!(out.status.code(), Some(5), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{what}: {}", stderr(&out));
    }
    // A device or a directory in place of the file.
    std::fs::remove_file(&clusters).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &clusters).unwrap();
    let out = run(&env, RESOLVE, &[MISSING]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("character device"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(&clusters).unwrap();
    std::fs::create_dir(&clusters).unwrap();
    let out = run(&env, RESOLVE, &[MISSING]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}
