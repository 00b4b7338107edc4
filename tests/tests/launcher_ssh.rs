//! SSH mode of the launcher against a real sshd on a loopback port (throwaway keys): a cluster
//! whose frontend has a `hostname` is launched on the "remote" host through `ssh` and the
//! remote-http-launcher helpers there, reused through the client file and through the remote
//! server file, and reached through an `ssh -L` tunnel when the cluster says `tunnel: true`.
//!
//! The "remote" host is this machine, reached as the current user: its launcher state is that
//! user's real `~/.remote-http-launcher` (keys made unique per test run, and removed afterwards).

use std::time::Duration;

use seamless_buffer_remote::BufferClient;
use seamless_config::{self as config, LoadOptions};
use seamless_launcher::{Launcher, Outcome, StateDirs};
use seamless_remote_core::{Checksum, ClientOptions, ClientRegistry, RemoteClient};
use seamless_tests::require;
use seamless_tests::services::Sshd;

struct Cleanup<'a> {
    sshd: &'a Sshd,
    keys: Vec<String>,
    tunnel_ports: Vec<u16>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for port in &self.tunnel_ports {
            let _ = std::process::Command::new("pkill")
                .args(["-f", "--", &format!("-L 127.0.0.1:{port}:")])
                .output();
        }
        for key in &self.keys {
            self.sshd
                .run(&format!("rhl-stop {key}; rhl-rm {key} --server"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_and_reuse_over_ssh_with_and_without_a_tunnel() {
    seamless_tests::init_tracing();
    if seamless_tests::venv::bin("rhl-inspect").is_err()
        && !seamless_tests::venv::services_required()
    {
        eprintln!("SKIP (no venv)");
        return;
    }
    let Some(sshd) = require!(Sshd::start()) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let data = root.path().join("data");
    let project = root.path().join("project");
    std::fs::create_dir_all(home.join(".seamless")).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let hs_ports = seamless_tests::launchenv::free_range(10);
    // A unique project name: the remote state lives in the real home of the ssh user.
    let name = format!("ssh{}", std::process::id());
    std::fs::write(
        home.join(".seamless/clusters.yaml"),
        format!(
            "far:\n  type: slurm\n  frontends:\n    - hostname: 127.0.0.1\n      ssh_hostname: {alias}\n      hashserver: {{bufferdir: {d}/far, network_interface: 127.0.0.1, port_start: {p}, port_end: {}}}\ntunneled:\n  type: slurm\n  tunnel: true\n  frontends:\n    - hostname: 127.0.0.1\n      ssh_hostname: {alias}\n      hashserver: {{bufferdir: {d}/tunneled, network_interface: 127.0.0.1, port_start: {p}, port_end: {}}}\n",
            hs_ports + 9,
            hs_ports + 9,
            p = hs_ports,
            alias = sshd.alias,
            d = data.display()
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("seamless.yaml"),
        format!("- project: {name}\n- cluster: far\n"),
    )
    .unwrap();
    let cfg = config::load(&LoadOptions {
        workdir: project.clone(),
        home: Some(home.clone()),
        ..LoadOptions::default()
    })
    .unwrap();
    let launcher = Launcher::new(StateDirs::new(&home)).with_ssh_command(sshd.ssh_command());
    let cur = cfg.current().unwrap();
    let desc = cfg.hashserver_launch(false, &cur, None).unwrap();
    assert_eq!(desc.hostname.as_deref(), Some("127.0.0.1"), "SSH mode");
    let mut cleanup = Cleanup {
        sshd: &sshd,
        keys: vec![desc.key.clone()],
        tunnel_ports: vec![],
    };

    // Launched on the remote host through rhl-launch-service.
    let run = |d: seamless_config::LaunchDescription| {
        let l = launcher.clone();
        async move {
            tokio::task::spawn_blocking(move || l.run(&d.into()))
                .await
                .unwrap()
        }
    };
    let first = run(desc.clone()).await.unwrap();
    assert_eq!(first.outcome, Outcome::Launched);
    assert_eq!(first.hostname, "127.0.0.1");
    let remote_state = sshd.run(&format!("rhl-inspect {}", desc.key));
    assert!(remote_state.contains("\"running\""), "{remote_state}");
    let options = || ClientOptions {
        registry: Some(ClientRegistry::new(Duration::from_secs(3600))),
        ..ClientOptions::default()
    };
    let client = BufferClient::from_remote(
        RemoteClient::with_options(&first.url(), options()).unwrap(),
        false,
    );
    let data_cs = Checksum::of(b"over ssh\n");
    client
        .write(&data_cs, bytes::Bytes::from_static(b"over ssh\n"))
        .await
        .unwrap();

    // Reused through the (local) client file, then through the remote server file.
    let second = run(desc.clone()).await.unwrap();
    assert_eq!(second.outcome, Outcome::ReusedLocal);
    assert_eq!(second.port, first.port);
    std::fs::remove_file(launcher.dirs().client_file(&desc.key)).unwrap();
    let third = run(desc.clone()).await.unwrap();
    assert_eq!(third.outcome, Outcome::ReusedRemote);
    assert_eq!(third.port, first.port);

    // A tunnelled cluster: reached through a local port forwarded by `ssh -L`.
    let cur_t = seamless_config::Current {
        cluster: "tunneled".into(),
        ..cur.clone()
    };
    let tdesc = cfg.hashserver_launch(false, &cur_t, None).unwrap();
    assert_eq!(tdesc.tunnel, Some(true));
    cleanup.keys.push(tdesc.key.clone());
    let tunneled = run(tdesc.clone()).await.unwrap();
    cleanup.tunnel_ports.push(tunneled.port);
    assert_eq!(tunneled.hostname, "localhost");
    assert_ne!(
        tunneled.port,
        tunneled.port_named("tunneled-port").unwrap_or(0)
    );
    let tclient = BufferClient::from_remote(
        RemoteClient::with_options(&tunneled.url(), options()).unwrap(),
        false,
    );
    let tcs = Checksum::of(b"through the tunnel\n");
    tclient
        .write(&tcs, bytes::Bytes::from_static(b"through the tunnel\n"))
        .await
        .unwrap();
    assert_eq!(
        &tclient.get(&tcs).await.unwrap().unwrap()[..],
        b"through the tunnel\n"
    );
    assert_eq!(run(tdesc).await.unwrap().outcome, Outcome::ReusedLocal);
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_over_ssh_on_a_host_without_the_helper_programs() {
    seamless_tests::init_tracing();
    let Ok(hashserver) = seamless_tests::venv::bin("hashserver") else {
        assert!(!seamless_tests::venv::services_required());
        eprintln!("SKIP (no venv)");
        return;
    };
    // The remote PATH has the service but none of the rhl-* helpers.
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&hashserver, bin.path().join("hashserver")).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let Some(sshd) = require!(Sshd::start_with_path(&path)) else {
        return;
    };
    assert!(sshd
        .run("command -v rhl-inspect || echo none")
        .contains("none"));
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let project = root.path().join("project");
    std::fs::create_dir_all(home.join(".seamless")).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let ports = seamless_tests::launchenv::free_range(10);
    let name = format!("nohelpers{}", std::process::id());
    std::fs::write(
        home.join(".seamless/clusters.yaml"),
        format!(
            "far:\n  type: slurm\n  frontends:\n    - hostname: 127.0.0.1\n      ssh_hostname: {}\n      hashserver: {{bufferdir: {}/far, network_interface: 127.0.0.1, port_start: {ports}, port_end: {}}}\n",
            sshd.alias,
            root.path().display(),
            ports + 9
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("seamless.yaml"),
        format!("- project: {name}\n- cluster: far\n"),
    )
    .unwrap();
    let cfg = config::load(&LoadOptions {
        workdir: project,
        home: Some(home.clone()),
        ..LoadOptions::default()
    })
    .unwrap();
    let desc = cfg
        .hashserver_launch(false, &cfg.current().unwrap(), None)
        .unwrap();
    let _cleanup = Cleanup {
        sshd: &sshd,
        keys: vec![],
        tunnel_ports: vec![],
    };
    let launcher = Launcher::new(StateDirs::new(&home)).with_ssh_command(sshd.ssh_command());
    let run = |d: seamless_config::LaunchDescription| {
        let l = launcher.clone();
        async move {
            tokio::task::spawn_blocking(move || l.run(&d.into()))
                .await
                .unwrap()
        }
    };
    let first = run(desc.clone()).await.unwrap();
    assert_eq!(first.outcome, Outcome::Launched);
    let state = sshd.run(&format!(
        "cat ~/.remote-http-launcher/server/{}.json",
        desc.key
    ));
    assert!(state.contains("\"running\""), "{state}");
    let client = BufferClient::from_remote(
        RemoteClient::with_options(
            &first.url(),
            ClientOptions {
                registry: Some(ClientRegistry::new(Duration::from_secs(3600))),
                ..ClientOptions::default()
            },
        )
        .unwrap(),
        false,
    );
    let cs = Checksum::of(b"no helpers\n");
    client
        .write(&cs, bytes::Bytes::from_static(b"no helpers\n"))
        .await
        .unwrap();
    std::fs::remove_file(launcher.dirs().client_file(&desc.key)).unwrap();
    let again = run(desc.clone()).await.unwrap();
    assert_eq!(again.outcome, Outcome::ReusedRemote);
    assert_eq!(again.port, first.port);
    // Stop it over ssh with plain bash too.
    let pid: i64 = serde_json::from_str::<serde_json::Value>(&state).unwrap()["pid"]
        .as_i64()
        .unwrap();
    launcher.stop_service(&(&desc).into());
    assert!(sshd
        .run(&format!(
            "kill -0 {pid} 2>/dev/null && echo alive || echo dead"
        ))
        .contains("dead"));
    sshd.run(&format!(
        "rm -f ~/.remote-http-launcher/server/{k}.json ~/.remote-http-launcher/server/{k}.log",
        k = desc.key
    ));
}
