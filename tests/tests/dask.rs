//! Seamless on a real Dask cluster (issue 8): from a local cluster configuration with
//! `remote: daskserver`, `activate` launches seamless-dask-wrapper (a LocalCluster of one
//! worker) and our Dask front; a real transformation runs there, its result is read from the
//! hashserver and found in the database; a failing one returns its Python traceback; a running
//! one is canceled; a killed front is relaunched on the next request; a second process
//! (seamless-fingertip, recomputing on the stage's Dask) reuses the same daskserver and front;
//! `deactivate` stops our front.
//!
//! One test function: the daskserver takes seconds to start, so every check shares it.

use std::sync::Arc;
use std::time::Duration;

use seamless_daskserver_remote::remote as dask;
use seamless_daskserver_remote::{
    ConfigDaskserverLauncher, DaskError, DaskserverLaunchedHandle, Submission,
};
use seamless_jobserver_remote::{JobStatus, JobserverError};
use seamless_remote_core::{Checksum, ClientOptions, ClientRegistry};
use seamless_tests::launchenv::{alive, kill, launched_stores, stop, Env};
use seamless_tests::process::output_within;
use seamless_tests::transformation::{mixed_buffer, python};
use serde_json::json;

fn options() -> ClientOptions {
    ClientOptions {
        registry: Some(ClientRegistry::new(Duration::from_secs(3600))),
        ..ClientOptions::default()
    }
}

/// Whether the harness virtualenv has Dask (else the test is skipped, which is a failure when
/// services are required).
fn dask_available() -> bool {
    if seamless_tests::venv::bin("seamless-dask-wrapper").is_ok() {
        return true;
    }
    assert!(!seamless_tests::venv::services_required());
    eprintln!("SKIP (no venv)");
    false
}

const DASK_KEY: &str = "daskserver-local-rw-demo--STAGE-dask";
const FRONT_KEY: &str = "daskfront-local-rw-demo--STAGE-dask";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dask_runs_fails_cancels_is_reused_and_deactivates() {
    if !dask_available() {
        return;
    }
    seamless_tests::init_tracing();
    let env = Env::with_dask();
    let (cfg, launcher) = env.dask_config();
    let (buffers, databases, activate) = launched_stores(&cfg, &launcher, options());
    let (active_buffers, active_dbs) = (buffers.active(), databases.active());
    let clients =
        seamless_jobserver_remote::launched::live_clients(Arc::new(buffers), Arc::new(databases));
    dask::set_launcher(ConfigDaskserverLauncher::new(
        cfg.clone(),
        launcher.clone(),
        options(),
        clients,
    ));

    // activate: both launched, the dashboard known.
    dask::activate(&activate).await.unwrap();
    let handle = dask::active().expect("active after activate");
    let info = handle.info().unwrap();
    assert!(info.is_local_cluster && info.cores == 1, "{info:?}");
    let dashboard = info.dashboard_url.clone().expect("dashboard url");
    assert!(dashboard.starts_with("http://127.0.0.1:"), "{dashboard}");
    let dask_pid = env.pid_of(DASK_KEY);
    let front_pid = env.pid_of(FRONT_KEY);

    // A real transformation: result in the hashserver and in the database.
    let t = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(19)), ("b", json!(23))],
    );
    let tf_inputs: Vec<_> = t
        .buffers
        .iter()
        .filter(|(c, _)| *c != t.tf_checksum)
        .cloned()
        .collect();
    let result = dask::submit(
        &Submission::new(t.dict.clone(), tf_inputs),
        &active_buffers,
        &active_dbs,
    )
    .await
    .unwrap();
    let forty_two = Checksum::of(&mixed_buffer(&json!(42)));
    assert_eq!(result, forty_two);
    assert_eq!(
        active_buffers.get_buffer(&result).await.unwrap().as_deref(),
        Some(&b"42\n"[..])
    );
    assert_eq!(
        active_dbs
            .get_transformation_result(&t.tf_checksum)
            .await
            .unwrap(),
        Some(forty_two),
        "the worker recorded the result in the database"
    );
    assert_eq!(
        dask::transformation_status(&t.tf_checksum).await.unwrap(),
        JobStatus::Done
    );

    // The Python reference (DaskserverLaunchedHandle + SeamlessDaskClient) reuses our
    // daskserver and runs a transformation there.
    let tp = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(1)), ("b", json!(2))],
    );
    for (cs, b) in &tp.buffers {
        active_buffers.write_buffer(cs, b.clone()).await.unwrap();
    }
    let py = env
        .python_on_dask(&[vec![(tp.dict.clone(), tp.tf_checksum)]])
        .unwrap();
    assert_eq!(
        py["dashboard_url"].as_str(),
        Some(dashboard.as_str()),
        "the Python reference reused our daskserver"
    );
    assert_eq!(
        py["rounds"][0]["results"][0].as_str(),
        Some(Checksum::of(&mixed_buffer(&json!(3))).to_hex().as_str())
    );
    assert_eq!(env.pid_of(DASK_KEY), dask_pid, "not relaunched");

    // A failing transformation: the Python traceback comes back, and is not retried.
    let bad = python(
        "def boom(a):\n    raise ValueError('boom ' + str(a))\n",
        &[("a", json!(3))],
    );
    let err = dask::submit(
        &Submission::new(bad.dict.clone(), bad.buffers.clone()),
        &active_buffers,
        &active_dbs,
    )
    .await
    .unwrap_err();
    match &err {
        DaskError::Job(JobserverError::Failed { traceback, .. }) => {
            assert!(traceback.contains("ValueError: boom 3"), "{traceback}")
        }
        other => panic!("expected a failed transformation, got {other:?}"),
    }

    // An input nobody has: a clear error before anything runs.
    let orphan = python("def f(a):\n    return a\n", &[("a", json!("nowhere"))]);
    let code_only: Vec<_> = orphan.buffers[..1].to_vec();
    let err = dask::submit(
        &Submission::new(orphan.dict.clone(), code_only.clone()),
        &active_buffers,
        &active_dbs,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, DaskError::MissingInputs { missing, .. } if missing[0].0 == "a"),
        "{err}"
    );

    // The same input held only in a local buffer folder: not available to a remote worker
    // (has_buffers asks the servers only), so submit uploads it from the folder first.
    let a: Checksum = orphan.dict["a"][2].as_str().unwrap().parse().unwrap();
    let a_bytes = orphan
        .buffers
        .iter()
        .find(|(c, _)| *c == a)
        .map(|(_, b)| b.clone())
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join(a.to_hex()), &a_bytes).unwrap();
    let with_folder = seamless_buffer_remote::ActiveBuffers::new(
        vec![seamless_buffer_remote::BufferFolder::new(folder.path())],
        active_buffers.read_servers().to_vec(),
        active_buffers.write_servers().to_vec(),
    );
    assert_eq!(with_folder.has_buffers(&[a]).await, vec![false]);
    dask::submit(
        &Submission::new(orphan.dict.clone(), code_only.clone()),
        &with_folder,
        &active_dbs,
    )
    .await
    .unwrap();
    assert_eq!(with_folder.has_buffers(&[a]).await, vec![true]);

    // Cancel a running transformation.
    let slow = python(
        "def slow(a):\n    import time\n    time.sleep(a)\n    return a\n",
        &[("a", json!(90))],
    );
    let slow_tf = slow.tf_checksum;
    let run = tokio::spawn({
        let (b, d) = (active_buffers.clone(), active_dbs.clone());
        let s = Submission::new(slow.dict.clone(), slow.buffers.clone());
        async move { dask::submit(&s, &b, &d).await }
    });
    let mut running = false;
    for _ in 0..300 {
        if dask::transformation_status(&slow_tf).await.unwrap() == JobStatus::Running {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(running, "the slow transformation never showed as running");
    // Give the base task a moment to reach the worker, then cancel.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(dask::cancel_transformation(&slow_tf).await.unwrap());
    let outcome = tokio::time::timeout(Duration::from_secs(80), run)
        .await
        .expect("the canceled run returned before the transformation could finish")
        .unwrap();
    assert!(
        matches!(
            outcome,
            Err(DaskError::Job(JobserverError::Canceled { .. }))
        ),
        "{outcome:?}"
    );

    // A front that died is relaunched on the next request (same daskserver).
    kill(front_pid, "KILL");
    while alive(front_pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t2 = python(
        "def mul(a, b):\n    return a * b\n",
        &[("a", json!(6)), ("b", json!(7))],
    );
    let r2 = dask::submit(
        &Submission::new(t2.dict.clone(), t2.buffers.clone()),
        &active_buffers,
        &active_dbs,
    )
    .await
    .unwrap();
    assert_eq!(r2, forty_two);
    let front_pid2 = env.pid_of(FRONT_KEY);
    assert_ne!(front_pid2, front_pid, "a new front");
    assert_eq!(env.pid_of(DASK_KEY), dask_pid, "the same daskserver");

    // A second process reuses them: seamless-fingertip recomputes, through the stage's Dask, a
    // result known to the database whose buffer is stored nowhere.
    let t3 = python(
        "def sub(a, b):\n    return a - b\n",
        &[("a", json!(50)), ("b", json!(7))],
    );
    for (cs, b) in &t3.buffers {
        active_buffers.write_buffer(cs, b.clone()).await.unwrap();
    }
    let r3 = Checksum::of(&mixed_buffer(&json!(43)));
    active_dbs
        .set_transformation_result(&t3.tf_checksum, &r3)
        .await
        .unwrap();
    assert_eq!(active_buffers.get_buffer(&r3).await.unwrap(), None);
    let mut cmd = env.cmd(&fingertip_bin());
    cmd.args([&r3.to_hex(), "--stage", "dask"])
        .current_dir(env.project())
        .env_remove("SEAMLESS_REMOTE_CLIENTS");
    let out = tokio::task::spawn_blocking(move || output_within(cmd, Duration::from_secs(180)))
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fingertip: {stderr}");
    assert_eq!(out.stdout, b"43\n", "{stderr}");
    assert!(
        !stderr.contains("Launch") && !stderr.contains("temporary"),
        "reused the running services, recomputed on Dask: {stderr}"
    );
    assert_eq!(env.pid_of(FRONT_KEY), front_pid2, "the same front");
    assert_eq!(env.pid_of(DASK_KEY), dask_pid, "the same daskserver");
    assert_eq!(
        active_buffers.get_buffer(&r3).await.unwrap().as_deref(),
        Some(&b"43\n"[..]),
        "recomputed on Dask and stored"
    );

    // A daskserver that died is relaunched on the next request, and a front with it.
    kill(dask_pid, "TERM");
    for _ in 0..300 {
        if !alive(dask_pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(dask_pid), "the daskserver stopped");
    let t4 = python(
        "def mul(a, b):\n    return a * b\n",
        &[("a", json!(3)), ("b", json!(14))],
    );
    let r4 = dask::submit(
        &Submission::new(t4.dict.clone(), t4.buffers.clone()),
        &active_buffers,
        &active_dbs,
    )
    .await
    .unwrap();
    assert_eq!(r4, forty_two);
    let (dask_pid2, front_pid3) = (env.pid_of(DASK_KEY), env.pid_of(FRONT_KEY));
    assert_ne!(dask_pid2, dask_pid, "a new daskserver");
    assert_ne!(front_pid3, front_pid2, "a new front, for the new scheduler");
    let dask_pid = dask_pid2;
    let front_pid2 = front_pid3;

    // deactivate stops our front; the daskserver stays for other clients.
    tokio::task::spawn_blocking(dask::deactivate).await.unwrap();
    assert!(dask::active().is_none());
    assert!(!alive(front_pid2), "the front is stopped");
    assert!(alive(dask_pid), "the daskserver keeps running");
}

/// The seamless-fingertip binary of this build (next to the test's own directory).
fn fingertip_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    dir.join("seamless-fingertip")
}

/// The other direction: a daskserver launched by the Python reference is reused by ours (same
/// process, same scheduler), and our front runs a transformation on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daskserver_launched_by_python_is_reused() {
    if !dask_available() {
        return;
    }
    let env = Env::with_dask();
    let py = env.python_on_dask(&[]).unwrap();
    let python_pid = env.pid_of(DASK_KEY);

    let (cfg, launcher) = env.dask_config();
    let (buffers, databases, _) = launched_stores(&cfg, &launcher, options());
    let (active_buffers, active_dbs) = (buffers.active(), databases.active());
    let clients =
        seamless_jobserver_remote::launched::live_clients(Arc::new(buffers), Arc::new(databases));
    let handle =
        DaskserverLaunchedHandle::new(&cfg, &cfg.current().unwrap(), launcher, options(), clients)
            .unwrap();
    let info = handle.ensure().await.unwrap();
    assert_eq!(info.dashboard_url.as_deref(), py["dashboard_url"].as_str());
    assert_eq!(env.pid_of(DASK_KEY), python_pid, "reused, not relaunched");
    let result = add_on(&handle, 100, 11, &active_buffers, &active_dbs).await;
    assert_eq!(result, Checksum::of(&mixed_buffer(&json!(111))));
    tokio::task::spawn_blocking(move || handle.stop_front())
        .await
        .unwrap();
}

/// SSH mode: a cluster whose frontend is reached with `ssh` (a real sshd on loopback; the
/// "remote" host is this machine, without the rhl-* helper programs) and `tunnel: true`. The
/// hashserver, database, daskserver and the Dask front run on the "remote" host; the front
/// program is written there, the front talks to the scheduler there, and only HTTP comes back
/// through `ssh -L` tunnels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dask_over_ssh_through_a_tunnel() {
    use seamless_launcher::{Launcher, StateDirs};
    use seamless_tests::services::Sshd;
    let venv_bin = seamless_tests::venv::venv_dir().join("bin");
    if !dask_available() {
        return;
    }
    // The remote PATH: the services, no rhl-* helpers (their guard only runs whitelisted
    // service programs, and python is not one of them). The front runs with the virtualenv's
    // python, named explicitly (the remote login shell may put another python3 first).
    let bin = tempfile::tempdir().unwrap();
    for program in ["hashserver", "seamless-database", "seamless-dask-wrapper"] {
        std::os::unix::fs::symlink(venv_bin.join(program), bin.path().join(program)).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let Some(sshd) = seamless_tests::require!(Sshd::start_with_path(&path)) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let project = root.path().join("project");
    std::fs::create_dir_all(home.join(".seamless")).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let (hs, db, ds) = (
        seamless_tests::launchenv::free_range(10),
        seamless_tests::launchenv::free_range(10),
        seamless_tests::launchenv::free_range(20),
    );
    let name = format!("dask{}", std::process::id());
    std::fs::write(
        home.join(".seamless/clusters.yaml"),
        format!(
            "far:\n  type: local\n  tunnel: true\n  workers: 1\n  frontends:\n    - hostname: 127.0.0.1\n      ssh_hostname: {alias}\n      hashserver: {{bufferdir: {d}/buffers, network_interface: 127.0.0.1, port_start: {hs}, port_end: {}}}\n      database: {{database_dir: {d}/db, network_interface: 127.0.0.1, port_start: {db}, port_end: {}}}\n      daskserver: {{network_interface: 127.0.0.1, port_start: {ds}, port_end: {}}}\n  default_queue: default\n  queues:\n    default: {{conda: '', walltime: '01:00:00', memory: 2000MB, cores: 1, maximum_jobs: 1, unknown_task_duration: 1m, target_duration: 10m}}\n",
            hs + 9,
            db + 9,
            ds + 19,
            alias = sshd.alias,
            d = root.path().join("data").display()
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("seamless.yaml"),
        format!("- project: {name}\n- cluster: far\n"),
    )
    .unwrap();
    let cfg = seamless_config::load(&seamless_config::LoadOptions {
        workdir: project.clone(),
        home: Some(home.clone()),
        ..Default::default()
    })
    .unwrap();
    let cur = cfg.current().unwrap();
    let keys: Vec<String> = ["hashserver", "database", "daskserver", "daskfront"]
        .iter()
        .map(|s| format!("{s}-far-rw-{name}"))
        .collect();
    let _cleanup = RemoteCleanup {
        keys: keys.clone(),
        client_dir: home.join(".remote-http-launcher/client"),
    };
    let launcher = Launcher::new(StateDirs::new(&home)).with_ssh_command(sshd.ssh_command());
    let (buffers, databases, _) = launched_stores(&cfg, &launcher, options());
    let (active_buffers, active_dbs) = (buffers.active(), databases.active());
    let clients =
        seamless_jobserver_remote::launched::live_clients(Arc::new(buffers), Arc::new(databases));
    let handle = DaskserverLaunchedHandle::with_python(
        &cfg,
        &cur,
        launcher,
        options(),
        clients,
        venv_bin.join("python3").display().to_string(),
    )
    .unwrap();
    let info = handle.ensure().await.unwrap();
    assert!(
        info.scheduler_address.starts_with("tcp://localhost:"),
        "reached through a tunnel: {info:?}"
    );
    let (_, front) = handle.descriptions();
    let front_params = front.unwrap().parameters.unwrap();
    assert_ne!(
        front_params["scheduler_address"].as_str(),
        Some(info.scheduler_address.as_str()),
        "the front uses the scheduler's address on its own host"
    );
    let result = add_on(&handle, 40, 2, &active_buffers, &active_dbs).await;
    assert_eq!(result, Checksum::of(&mixed_buffer(&json!(42))));
    assert_eq!(
        active_buffers.get_buffer(&result).await.unwrap().as_deref(),
        Some(&b"42\n"[..])
    );
}

/// Stops the services of `keys` on the "remote" host (this machine, the user's real HOME) and
/// the local ends of their tunnels.
struct RemoteCleanup {
    keys: Vec<String>,
    client_dir: std::path::PathBuf,
}

impl Drop for RemoteCleanup {
    fn drop(&mut self) {
        let server_dir = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".remote-http-launcher/server");
        for key in &self.keys {
            let read = |p: std::path::PathBuf| {
                std::fs::read_to_string(p)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            };
            if let Some(port) =
                read(self.client_dir.join(format!("{key}.json"))).and_then(|v| v["port"].as_u64())
            {
                let _ = std::process::Command::new("pkill")
                    .args(["-f", "--", &format!("-L 127.0.0.1:{port}:")])
                    .output();
            }
            if let Some(pid) =
                read(server_dir.join(format!("{key}.json"))).and_then(|v| v["pid"].as_i64())
            {
                stop(pid);
            }
            for ext in ["json", "log", "lock"] {
                let _ = std::fs::remove_file(server_dir.join(format!("{key}.{ext}")));
            }
        }
    }
}

/// Runs `a + b` on `handle`'s front with [`seamless_daskserver_remote::submit::submit`].
async fn add_on(
    handle: &DaskserverLaunchedHandle,
    a: i64,
    b: i64,
    buffers: &seamless_buffer_remote::ActiveBuffers,
    databases: &seamless_database_remote::ActiveDatabases,
) -> Checksum {
    let t = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(a)), ("b", json!(b))],
    );
    seamless_daskserver_remote::submit::submit(
        handle.client(),
        &Submission::new(t.dict.clone(), t.buffers.clone()),
        buffers,
        databases,
    )
    .await
    .unwrap()
}

/// A daskserver host whose front interpreter cannot import distributed: a clear error that
/// quotes the front's log (the Python traceback) and names where it is, no hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_that_cannot_start_is_a_clear_error() {
    if !dask_available() {
        return;
    }
    let env = Env::with_dask();
    // The virtualenv's python without site-packages: no distributed, no seamless_dask.
    let python = env.home().join("python-without-packages");
    std::fs::write(
        &python,
        format!(
            "#!/bin/sh\nexec {} -S \"$@\"\n",
            seamless_tests::venv::venv_dir()
                .join("bin/python3")
                .display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (cfg, launcher) = env.dask_config();
    let (buffers, databases, _) = launched_stores(&cfg, &launcher, options());
    let clients =
        seamless_jobserver_remote::launched::live_clients(Arc::new(buffers), Arc::new(databases));
    let handle = DaskserverLaunchedHandle::with_python(
        &cfg,
        &cfg.current().unwrap(),
        launcher,
        options(),
        clients,
        python.display().to_string(),
    )
    .unwrap();
    let err = handle.ensure().await.unwrap_err().to_string();
    assert!(
        err.contains("No module named 'distributed'")
            && err.contains(FRONT_KEY)
            && err.contains("SEAMLESS_DASK_PYTHON")
            && !err.contains("could not connect"),
        "{err}"
    );
}
