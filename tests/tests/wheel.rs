//! The `seamless-remote` wheel (crates/python) in a virtualenv with the released Seamless
//! callers (seamless-core, seamless-transformer, seamless-config, seamless-dask) instead of the
//! Python seamless-remote, against the real services: Seamless programs run unchanged on it,
//! share services and stores with the Python package, survive fork/spawn, and keep the
//! reference's behaviours (and our fixes).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use seamless_tests::launchenv::{launched_pid, Env, LaunchedIn};
use seamless_tests::process::output_within;
use seamless_tests::services::{Database, Hashserver, HashserverOptions, Jobserver};
use seamless_tests::venv::{self, workspace_root};
use serde_json::{json, Value};

fn wheel() -> Option<std::path::PathBuf> {
    seamless_tests::require!(venv::wheel_python())
}

fn hashserver() -> Option<Hashserver> {
    seamless_tests::require!(Hashserver::start(HashserverOptions::default()))
}

/// A hashserver, a database and a jobserver that uses both.
fn stack() -> Option<(Hashserver, Database, Jobserver)> {
    let hs = hashserver()?;
    let db = seamless_tests::require!(Database::start())?;
    let js = seamless_tests::require!(Jobserver::start(&hs.url(), Some(&db.url())))?;
    Some((hs, db, js))
}

fn script(name: &str) -> std::path::PathBuf {
    workspace_root().join("tests").join("python").join(name)
}

/// Runs a Python driver; its last JSON line.
fn report(mut cmd: Command, what: &str) -> Value {
    let out = output_within(
        {
            cmd.env_remove("SEAMLESS_CACHE")
                .env_remove("SEAMLESS_REMOTE_CLIENTS");
            cmd
        },
        Duration::from_secs(300),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{what}: no JSON report in {stdout}"))
}

fn workflow(env: &Env, python: &Path) -> Value {
    workflow_on(env, python, "remote")
}

fn workflow_on(env: &Env, python: &Path, stage: &str) -> Value {
    let mut cmd = env.cmd(python);
    cmd.arg(script("wheel_workflow.py"))
        .arg("config")
        .arg(env.project())
        .arg(stage)
        .env("DASK_TEMPORARY_DIRECTORY", env.home().join("dask-scratch"))
        .current_dir(env.project());
    report(cmd, "the workflow")
}

fn received(env: &Env) -> usize {
    let dir = env.home().join(".remote-http-launcher").join("server");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("jobserver-") && n.ends_with(".log")
                })
                .map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .matches("Received transformation")
                        .count()
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn seamless_transformer_runs_on_the_wheel_and_shares_services_with_the_python_package() {
    let Some(python) = wheel() else { return };
    let env = Env::new();
    let _stop = LaunchedIn(env.home());

    // Level 3 through seamless.yaml + clusters: our launcher starts the hashserver, the
    // database and the jobserver.
    let ours = workflow(&env, &python);
    assert_eq!(ours["implementation"], "rust");
    assert_eq!(ours["results"], json!([1, 4, 7]));
    assert_eq!(ours["repeat"], json!(1));
    let jobs = received(&env);
    assert_eq!(jobs, 3, "three transformations ran on the jobserver");
    let jobserver = launched_pid(&env.home(), "jobserver-").expect("a launched jobserver");

    // The Python package, in another process, on the same project: it reuses our services and
    // gets every result from the result cache (the jobserver receives nothing new).
    let reference = workflow(&env, &venv::python().expect("the harness python"));
    assert_eq!(reference["implementation"], "python");
    assert_eq!(reference["results"], ours["results"]);
    assert_eq!(received(&env), jobs, "answered from the result cache");
    assert_eq!(launched_pid(&env.home(), "jobserver-"), Some(jobserver));

    // And the wheel again: the same services (same pid), the same cached answers.
    let again = workflow(&env, &python);
    assert_eq!(again["results"], ours["results"]);
    assert_eq!(received(&env), jobs);
    assert_eq!(launched_pid(&env.home(), "jobserver-"), Some(jobserver));
}

#[test]
fn a_spawned_worker_pool_computes_through_the_wheel() {
    let Some(python) = wheel() else { return };
    let env = Env::new();
    let _stop = LaunchedIn(env.home());
    // `execution: spawn`: seamless-transformer starts its worker processes; buffers and results
    // go to the stage's launched hashserver and database through the wheel.
    std::fs::write(
        env.project().join("seamless.profile.yaml"),
        "- cluster: local\n- execution: process\n- stage spawn:\n    - execution: spawn\n",
    )
    .unwrap();
    let ours = workflow_on(&env, &python, "spawn");
    assert_eq!(ours["implementation"], "rust");
    assert_eq!(ours["results"], json!([1, 4, 7]));
    assert!(launched_pid(&env.home(), "hashserver-").is_some());
    assert!(launched_pid(&env.home(), "database-").is_some());
}

#[test]
fn seamless_transformer_runs_on_dask_through_the_wheel() {
    let Some(python) = wheel() else { return };
    let env = Env::with_dask();
    let _stop = LaunchedIn(env.home());
    // The stage's daskserver (a LocalCluster) and our Dask front, launched by our launcher;
    // seamless-transformer's remote calls go to the front.
    let ours = workflow_on(&env, &python, "dask");
    assert_eq!(ours["implementation"], "rust");
    assert_eq!(ours["results"], json!([1, 4, 7]));
    assert!(launched_pid(&env.home(), "daskserver-").is_some());
    assert!(launched_pid(&env.home(), "daskfront-").is_some());
    assert!(
        launched_pid(&env.home(), "jobserver-").is_none(),
        "no jobserver: the work went to Dask"
    );
    // The Python package on the same stage (its own SeamlessDaskClient on our daskserver).
    let daskserver = launched_pid(&env.home(), "daskserver-");
    let reference = workflow_on(&env, &venv::python().expect("the harness python"), "dask");
    assert_eq!(reference["implementation"], "python");
    assert_eq!(reference["results"], ours["results"]);
    assert_eq!(
        launched_pid(&env.home(), "daskserver-"),
        daskserver,
        "reused"
    );
}

#[test]
fn seamless_transformer_runs_on_the_wheel_through_extern_clients() {
    let Some(python) = wheel() else { return };
    let Some((hs, db, js)) = stack() else { return };
    let dir = tempfile::tempdir().unwrap();
    let urls = json!({"hashserver": hs.url(), "database": db.url(), "jobserver": js.url()});
    let run = |python: &Path| {
        let mut cmd = Command::new(python);
        cmd.arg(script("wheel_workflow.py"))
            .arg("extern")
            .arg(dir.path())
            .arg(urls.to_string())
            .env("HOME", dir.path());
        report(cmd, "the extern workflow")
    };
    let ours = run(&python);
    assert_eq!(ours["implementation"], "rust");
    assert_eq!(ours["results"], json!([1, 4, 7]));
    assert_eq!(js.log().matches("Received transformation").count(), 3);
    let reference = run(&venv::python().expect("the harness python"));
    assert_eq!(reference["results"], ours["results"]);
    assert_eq!(
        js.log().matches("Received transformation").count(),
        3,
        "the Python package finds our results in the database"
    );
}

fn check(python: &Path, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut cmd = Command::new(python);
    cmd.arg(script("wheel_checks.py")).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    report(cmd, &format!("wheel_checks.py {}", args[0]))
}

#[test]
fn close_all_clients_never_cuts_an_upload_and_the_null_buffer_round_trips() {
    let Some(python) = wheel() else { return };
    let Some(hs) = hashserver() else { return };
    let r = check(&python, &["upload", &hs.url()], &[]);
    assert_eq!(r["written"], true, "{r}");
    assert_eq!(r["equal"], true, "{r}");
    assert_eq!(r["null_written"], true, "{r}");
    assert_eq!(r["null_equal"], true, "{r}");
    assert_eq!(r["missing"], true, "{r}");
    assert_eq!(r["lengths"], json!([64 << 20, null]), "{r}");
    assert_eq!(r["write_urls"], json!([hs.url()]), "{r}");
    assert_eq!(r["views"], json!([hs.url(), false, hs.url(), 0]), "{r}");
    assert_eq!(
        r["unreachable"], "ConnectionError: RemoteConnectionError",
        "{r}"
    );
}

#[test]
fn forked_and_spawned_workers_get_a_working_runtime() {
    let Some(python) = wheel() else { return };
    let Some(hs) = hashserver() else { return };
    let r = check(&python, &["fork", &hs.url()], &[]);
    assert_eq!(
        r,
        json!({"parent": true, "fork": [true, true, true, true],
               "spawn": [true, true, true, true], "parent_after": true})
    );
}

#[test]
fn the_worker_guard_behaves_as_in_the_reference() {
    let Some(python) = wheel() else { return };
    let Some(hs) = hashserver() else { return };
    let refused = check(&python, &["guard", &hs.url()], &[]);
    assert_eq!(refused["result"], "refused: RemoteError");
    let allowed = check(
        &python,
        &["guard", &hs.url()],
        &[("SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER", "1")],
    );
    assert_eq!(allowed["result"], "allowed");
}

#[test]
fn the_console_scripts_are_our_programs() {
    let Some(python) = wheel() else { return };
    let bin = python.parent().unwrap().to_path_buf();
    for program in ["seamless-resolve", "seamless-fingertip"] {
        let out = Command::new(bin.join(program))
            .arg("--version")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.starts_with(&format!("{program} ")),
            "{text}"
        );
    }
    let Some(hs) = hashserver() else { return };
    // A literal checksum wins over a file of that name (upstream's test of 0.4.0).
    let data = b"resolved through the wheel\n";
    let cs = seamless_remote_core::Checksum::of(data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        seamless_buffer_remote::BufferClient::new(&hs.url(), false)
            .unwrap()
            .write(&cs, bytes::Bytes::from_static(data))
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(cs.to_hex()), "not a checksum").unwrap();
    let clients = json!({"buffer": [{"remote_url": hs.url(), "readonly": true}], "database": []});
    let out = Command::new(bin.join("seamless-resolve"))
        .arg(cs.to_hex())
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("SEAMLESS_REMOTE_CLIENTS", clients.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, data);
    // A bad checksum: our exit code and one line, as the Rust program.
    let out = Command::new(bin.join("seamless-resolve"))
        .arg("nothex")
        .current_dir(dir.path())
        .env("SEAMLESS_REMOTE_CLIENTS", clients.to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).lines().count() <= 2);
}

/// tests/fault/ebusy_connect.c built into `dir` (an LD_PRELOAD library: connect(2) to a port
/// fails with EBUSY, which no test peer can make happen).
fn ebusy_shim(dir: &Path) -> std::path::PathBuf {
    let source = workspace_root()
        .join("tests")
        .join("fault")
        .join("ebusy_connect.c");
    let lib = dir.join("libebusy_connect.so");
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("a C compiler (cc) builds the fault-injection library");
    assert!(
        out.status.success(),
        "cc {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

#[test]
fn a_busy_connection_restarts_the_client_as_upstream_does() {
    let Some(python) = wheel() else { return };
    let Some(hs) = hashserver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let shim = ebusy_shim(dir.path());
    let port = hs.url().rsplit(':').next().unwrap().to_string();
    let busy = |times: &str, log: &Path| {
        check(
            &python,
            &["busy", &hs.url()],
            &[
                ("LD_PRELOAD", shim.to_str().unwrap()),
                ("SEAMLESS_TEST_EBUSY_PORT", &port),
                ("SEAMLESS_TEST_EBUSY_TIMES", times),
                ("SEAMLESS_TEST_EBUSY_LOG", log.to_str().unwrap()),
            ],
        )
    };
    let failures = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // Busy once (upstream's "busy healthcheck restart"): the client restarts and goes on.
    let once = dir.path().join("once.log");
    let out = busy("1", &once);
    assert_eq!(out["written"], true, "{out}");
    assert_eq!(
        out["back"], "written while the connection was busy\n",
        "{out}"
    );
    assert_eq!(failures(&once), 1, "the shim made connect() fail once");
    // Busy for good: a ConnectionError after the policy's attempts, not a hang.
    let always = dir.path().join("always.log");
    let out = busy("1000", &always);
    assert_eq!(out["is_connection_error"], true, "{out}");
    let message = out["message"].as_str().unwrap();
    assert!(
        message.contains("busy") && message.contains("attempts"),
        "{message}"
    );
    assert!(failures(&always) > 1, "retried after a restart");
}

/// Every file under `dir` (relative paths), without Python's byte-code caches.
fn files_under(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_name() == "__pycache__" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                out.insert(rel.display().to_string());
            }
        }
    }
    out
}

#[test]
fn pip_installs_the_wheel_and_pip_uninstall_leaves_a_clean_environment() {
    let Some(python) = wheel() else { return };
    let Some(wheel_file) = seamless_tests::require!(venv::wheel_file()) else {
        return;
    };
    // A fresh virtualenv of its own (the shared ones stay as they are).
    let dir = tempfile::tempdir().unwrap();
    let venv_dir = dir.path().join("venv");
    let run = |cmd: Command, what: &str| {
        let out =
            output_within(cmd, Duration::from_secs(180)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut make_venv = Command::new(&python);
    make_venv.args(["-m", "venv"]).arg(&venv_dir);
    run(make_venv, "python -m venv");
    let py = venv_dir.join("bin").join("python");
    let before = files_under(&venv_dir);
    let mut install = venv::pip(&py);
    install
        .args(["install", "--no-deps", "--no-index"])
        .arg(&wheel_file);
    run(install, "pip install <wheel>");
    let installed = files_under(&venv_dir);
    assert!(installed.len() > before.len());
    for script in ["seamless-resolve", "seamless-fingertip"] {
        assert!(venv_dir.join("bin").join(script).is_file(), "{script}");
    }
    let mut import = Command::new(&py);
    import.args([
        "-c",
        "import seamless_remote._native, importlib.metadata as m; \
         print(m.version('seamless-remote'))",
    ]);
    let imported = run(import, "import seamless_remote._native");
    assert_eq!(imported.trim(), "0.4.0+rust");
    let mut uninstall = venv::pip(&py);
    uninstall.args(["uninstall", "-y", "seamless-remote"]);
    run(uninstall, "pip uninstall");
    let after = files_under(&venv_dir);
    assert_eq!(
        after.symmetric_difference(&before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "pip uninstall left the environment different from before the install"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobserver_retry_refusal_and_cancel_through_the_wheel() {
    use seamless_tests::proxy::{Fault, FaultProxy};
    use seamless_tests::transformation::python as transformation;
    let Some(python) = wheel() else { return };
    let Some((hs, _db, js)) = stack() else { return };
    let add = "def add(a, b):\n    return a + b\n";
    let retried = transformation(add, &[("a", json!(20)), ("b", json!(22))]);
    let refused = transformation(add, &[("a", json!(1)), ("b", json!(1))]);
    let cancelled = transformation(
        "def slow(secs):\n    import time\n    time.sleep(secs)\n    return secs\n",
        &[("secs", json!(60))],
    );
    let client = seamless_buffer_remote::BufferClient::new(&hs.url(), false).unwrap();
    for t in [&retried, &refused, &cancelled] {
        for (cs, buf) in &t.buffers {
            client.write(cs, buf.clone()).await.unwrap();
        }
    }
    let proxy = FaultProxy::start(js.addr()).await;
    proxy.push("run-transformation", Fault::Status503);
    let dir = tempfile::tempdir().unwrap();
    let case = |t: &seamless_tests::transformation::Transformation| json!({"dict": t.dict, "tf": t.tf_checksum.to_hex()});
    let run = |name: &str, cases: Value| {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, cases.to_string()).unwrap();
        let (python, url) = (python.clone(), proxy.url());
        tokio::task::spawn_blocking(move || {
            check(&python, &["jobs", &url, &file.display().to_string()], &[])
        })
    };
    // A 503 is transient: retried once, and the job runs.
    let r = run("retried", json!({"retried": case(&retried)}))
        .await
        .unwrap();
    let expected = seamless_remote_core::Checksum::of(b"42\n").to_hex();
    assert_eq!(r["retried"], json!(expected), "{r}");
    assert_eq!(proxy.count("GET /run-transformation"), 2);
    // A 400 is a definite answer: not retried. Then a long job whose task is cancelled.
    proxy.push(
        "run-transformation",
        Fault::Respond(400, "bad request".into()),
    );
    let r = run(
        "refused",
        json!({"refused": case(&refused), "cancelled": case(&cancelled)}),
    )
    .await
    .unwrap();
    assert_eq!(r["refused"], "RemoteError", "{r}");
    assert_eq!(
        proxy.count("GET /run-transformation"),
        4,
        "the 400 is not retried: {:?}",
        proxy.requests()
    );
    assert_eq!(r["before_cancel"], "running", "{r}");
    assert_eq!(r["task"], "cancelled", "{r}");
    assert_eq!(r["after_cancel"], "canceled", "{r}");
}
