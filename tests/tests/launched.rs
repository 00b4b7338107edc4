//! Launched clients from a local cluster configuration: the activation APIs start hashserver,
//! database and jobserver on first use through our launcher, a hashserver killed in the middle
//! of a run of writes is relaunched and the run completes, and a jobserver whose parameters no
//! longer match the live services is relaunched.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use seamless_config::{self as config, LoadOptions};
use seamless_jobserver_remote::launched::ConfigJobserverLauncher;
use seamless_jobserver_remote::{JobserverRemote, RunRequest};
use seamless_launcher::{Launcher, StateDirs};
use seamless_remote_core::{Checksum, ClientOptions, ClientRegistry};
use seamless_tests::launchenv::{alive, kill, launched_stores, Env};
use seamless_tests::transformation::python;
use serde_json::json;

fn options() -> ClientOptions {
    ClientOptions {
        registry: Some(ClientRegistry::new(Duration::from_secs(3600))),
        ..ClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launched_clients_start_on_first_use_and_survive_a_killed_hashserver() {
    if seamless_tests::venv::bin("hashserver").is_err() {
        assert!(!seamless_tests::venv::services_required());
        eprintln!("SKIP (no venv)");
        return;
    }
    seamless_tests::init_tracing();
    let env = Env::new();
    let cfg = config::load(&LoadOptions {
        workdir: env.project(),
        home: Some(env.home()),
        ..LoadOptions::default()
    })
    .unwrap();
    let current = cfg.current().unwrap();
    let launcher = Launcher::new(StateDirs::new(env.home())).with_env("PATH", &env.path_env());
    let (buffers, databases, _) = launched_stores(&cfg, &launcher, options());
    let active = buffers.active();
    assert!(
        active.has_write_server() && active.read_folders().len() == 1,
        "local: a read folder too"
    );
    assert!(
        !env.state("server", "hashserver-local-rw-demo").exists(),
        "nothing launched before first use"
    );

    // A run of writes; the hashserver is killed in the middle.
    let bufs: Vec<Bytes> = (0..120)
        .map(|i| Bytes::from(format!("buffer number {i}\n")))
        .collect();
    for (i, b) in bufs.iter().enumerate() {
        if i == 40 {
            let pid = env.pid_of("hashserver-local-rw-demo");
            kill(pid, "KILL");
            while alive(pid) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert!(active
            .write_buffer(&Checksum::of(b), b.clone())
            .await
            .unwrap());
    }
    for b in &bufs {
        assert_eq!(
            active.get_buffer(&Checksum::of(b)).await.unwrap().as_ref(),
            Some(b)
        );
    }
    // Read through the server too (not only the folder).
    let server_only =
        seamless_buffer_remote::ActiveBuffers::new(vec![], active.read_servers().to_vec(), vec![]);
    assert_eq!(
        server_only
            .get_buffer(&Checksum::of(&bufs[0]))
            .await
            .unwrap()
            .as_ref(),
        Some(&bufs[0])
    );

    // The database, launched on first use.
    let dbs = databases.active();
    let (tf, r) = (Checksum::of(b"launched tf"), Checksum::of(b"launched r"));
    assert!(dbs.set_transformation_result(&tf, &r).await.unwrap());
    assert_eq!(dbs.get_transformation_result(&tf).await.unwrap(), Some(r));

    // inspect_launched_clients, with the reference's fields.
    let info = buffers.inspect_launched_clients();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].cluster, "local");
    assert!(info[0]
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("http://127.0.0.1:")));
    assert!(info[0].directory.is_some() && info[0].remote_directory.is_some());
    assert_eq!(databases.inspect_launched_clients()[0].directory, None);

    // The jobserver: its parameters carry the live hashserver/database URLs.
    let buffers = Arc::new(buffers);
    let databases = Arc::new(databases);
    let clients =
        seamless_jobserver_remote::launched::live_clients(buffers.clone(), databases.clone());
    let mut jobs = JobserverRemote::new();
    jobs.set_launcher(ConfigJobserverLauncher::new(
        cfg.clone(),
        launcher.clone(),
        options(),
        clients,
    ));
    jobs.activate(&seamless_jobserver_remote::remote::ActivateOptions {
        main: Some(current.clone()),
        ..Default::default()
    })
    .unwrap();
    let t = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(20)), ("b", json!(22))],
    );
    for (cs, b) in &t.buffers {
        active.write_buffer(cs, b.clone()).await.unwrap();
    }
    let job = jobs.active();
    let res = job
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await
        .unwrap();
    assert_eq!(res.result_checksum(), Some(Checksum::of(b"42\n")));
    let js_key = "jobserver-local-rw-demo";
    let js_pid = env.pid_of(js_key);

    // The hashserver moves (killed, relaunched on another port by the next write): a new
    // initialization of the jobserver client (as in a new process) relaunches the jobserver.
    let hs_pid = env.pid_of("hashserver-local-rw-demo");
    let old_url = buffers.inspect_launched_clients()[0].url.clone().unwrap();
    let old_port: u16 = old_url.rsplit(':').next().unwrap().parse().unwrap();
    kill(hs_pid, "KILL");
    while alive(hs_pid) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let extra = Bytes::from_static(b"after the second kill\n");
    active
        .write_buffer(&Checksum::of(&extra), extra.clone())
        .await
        .unwrap();
    let t2 = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(1)), ("b", json!(1))],
    );
    for (cs, b) in &t2.buffers {
        active.write_buffer(cs, b.clone()).await.unwrap();
    }
    let js_client = &jobs_clients(&jobs)[0];
    js_client.remote().restart();
    let res = js_client
        .run_transformation(&RunRequest::new(t2.dict.clone(), t2.tf_checksum))
        .await
        .unwrap();
    assert_eq!(res.result_checksum(), Some(Checksum::of(b"2\n")));
    let new_url = buffers.inspect_launched_clients()[0].url.clone().unwrap();
    let new_port: u16 = new_url.rsplit(':').next().unwrap().parse().unwrap();
    if new_port != old_port {
        // The hashserver moved: the jobserver's parameters no longer match.
        assert_ne!(
            env.pid_of(js_key),
            js_pid,
            "the jobserver was relaunched with the new parameters"
        );
        assert!(!alive(js_pid), "the stale jobserver was stopped");
    } else {
        // The relaunched hashserver got the same port (a 10-port range): nothing to change.
        assert_eq!(
            env.pid_of(js_key),
            js_pid,
            "the jobserver is reused: its parameters still match"
        );
    }
}

fn jobs_clients(jobs: &JobserverRemote) -> Vec<seamless_jobserver_remote::JobserverClient> {
    jobs.active().clients().to_vec()
}
