//! The launcher with real services and real processes: launch, reuse by a second process, reuse
//! through the server file, relaunch after a kill, interop with the Python remote-http-launcher
//! in both directions, a 4-process race, and a service that fails at start.
//!
//! Every test runs with its own HOME (cluster files and launcher state) and stops every service
//! it launched (the launcher detaches services into their own session, so a guard kills them by
//! the pids in the state files).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use seamless_tests::launchenv::{alive, kill, Env};

fn launch_once() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_launch-once"))
}

fn available() -> bool {
    let ok = seamless_tests::venv::bin("hashserver").is_ok();
    if !ok {
        assert!(
            !seamless_tests::venv::services_required(),
            "services required but the venv is missing"
        );
        eprintln!("SKIP (no venv)");
    }
    ok
}

const HS_KEY: &str = "hashserver-local-rw-demo";
const DB_KEY: &str = "database-local-rw-demo";

#[test]
fn launch_reuse_and_relaunch_from_a_local_cluster_config() {
    if !available() {
        return;
    }
    let env = Env::new();
    let first = env.rust_launch(launch_once(), "hashserver", "rw").unwrap();
    assert_eq!(first["outcome"], "launched");
    let pid = env.pid_of(HS_KEY);
    assert!(alive(pid));
    let mode = std::fs::metadata(env.state("client", HS_KEY)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o600,
        "client file is private"
    );

    // A second process reuses it through the client file: no new pid.
    let second = env.rust_launch(launch_once(), "hashserver", "rw").unwrap();
    assert_eq!(second["outcome"], "reused-local");
    assert_eq!(second["port"], first["port"]);
    assert_eq!(env.pid_of(HS_KEY), pid);

    // Without the client file: reuse through the server file.
    std::fs::remove_file(env.state("client", HS_KEY)).unwrap();
    let third = env.rust_launch(launch_once(), "hashserver", "rw").unwrap();
    assert_eq!(third["outcome"], "reused-remote");
    assert_eq!(third["port"], first["port"]);
    assert_eq!(env.pid_of(HS_KEY), pid);

    // The service killed: relaunched, new pid.
    kill(pid, "KILL");
    for _ in 0..50 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let fourth = env.rust_launch(launch_once(), "hashserver", "rw").unwrap();
    assert_eq!(fourth["outcome"], "launched");
    assert_ne!(env.pid_of(HS_KEY), pid);

    // The database too.
    let db = env.rust_launch(launch_once(), "database", "rw").unwrap();
    assert_eq!(db["outcome"], "launched");
    assert_eq!(
        env.rust_launch(launch_once(), "database", "rw").unwrap()["outcome"],
        "reused-local"
    );
}

#[test]
fn services_are_shared_with_the_python_launcher_both_ways() {
    if !available() {
        return;
    }
    let env = Env::new();
    // Rust launches, Python reuses (same port, same pid).
    let rust = env.rust_launch(launch_once(), "hashserver", "rw").unwrap();
    let pid = env.pid_of(HS_KEY);
    let Some(py) = env.python_launch("hashserver", "rw") else {
        return;
    };
    assert_eq!(py["port"], rust["port"]);
    assert_eq!(
        env.pid_of(HS_KEY),
        pid,
        "Python did not launch a second hashserver"
    );

    // Python launches, Rust reuses.
    let py = env.python_launch("database", "rw").unwrap();
    let pid = env.pid_of(DB_KEY);
    let rust = env.rust_launch(launch_once(), "database", "rw").unwrap();
    assert_eq!(rust["outcome"], "reused-local");
    assert_eq!(rust["port"], py["port"]);
    assert_eq!(env.pid_of(DB_KEY), pid);
    // And through the server file written by the Python side.
    std::fs::remove_file(env.state("client", DB_KEY)).unwrap();
    let again = env.rust_launch(launch_once(), "database", "rw").unwrap();
    assert_eq!(again["outcome"], "reused-remote");
    assert_eq!(env.pid_of(DB_KEY), pid);
}

#[test]
fn four_processes_launching_the_same_key_get_one_service() {
    if !available() {
        return;
    }
    let env = Env::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.cmd(launch_once())
                .arg(env.project())
                .args(["hashserver", "rw"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Value> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    let ports: std::collections::BTreeSet<String> =
        outs.iter().map(|o| o["port"].to_string()).collect();
    assert_eq!(ports.len(), 1, "{outs:?}");
    assert_eq!(
        outs.iter().filter(|o| o["outcome"] == "launched").count(),
        1,
        "{outs:?}"
    );
    // Exactly one hashserver process serves this HOME's key.
    let status_file = env.state("server", HS_KEY);
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let running = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains("hashserver") && l.contains(status_file.to_str().unwrap()))
        .count();
    assert_eq!(running, 1);
}

#[test]
fn a_service_that_fails_at_start_is_a_clear_error() {
    if !available() {
        return;
    }
    let env = Env::new();
    // Take every port of the hashserver's range.
    let clusters = std::fs::read_to_string(env.home().join(".seamless/clusters.yaml")).unwrap();
    let start: u16 = clusters
        .split("port_start: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap();
    let _held: Vec<_> = (start..start + 10)
        .map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).unwrap())
        .collect();
    let t = std::time::Instant::now();
    let err = env
        .rust_launch(launch_once(), "hashserver", "rw")
        .unwrap_err();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(60),
        "within the reference's bounds"
    );
    assert!(
        err.contains("could not start hashserver-local-rw-demo"),
        "{err}"
    );
    assert!(
        err.contains("No free port available"),
        "the log's tail is quoted: {err}"
    );
    // Nothing left running.
    let pid = env.pid_of(HS_KEY);
    assert!(!alive(pid));
}
