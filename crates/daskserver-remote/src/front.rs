//! The Dask front: a small Python program (`python/seamless_dask_front.py`, shipped inside this
//! crate) that holds a `distributed.Client` + seamless-dask's `SeamlessDaskClient` and serves
//! the seamless-jobserver protocol, so that [`seamless_jobserver_remote::JobserverClient`]
//! talks to Dask unchanged.
//!
//! It is launched as a service of its own, next to the daskserver: same host, same conda
//! environment, same port range, the same launcher conventions (status file with `parameters`,
//! `--port-range`, `--host`, `--timeout`). The program is written to
//! `~/.remote-http-launcher/programs/seamless-dask-front-<sha>.py` on that host; its checksum is
//! one of the parameters, so a new version of the program relaunches the front.

use seamless_config::{Handshake, LaunchDescription, RemoteClients};
use seamless_launcher::{Connection, LaunchSpec};
use seamless_remote_core::Checksum;
use serde_json::{json, Value};

/// The front program's source.
pub const FRONT_PROGRAM: &str = include_str!("../python/seamless_dask_front.py");

/// Where the program is written on the service host.
pub fn program_path() -> String {
    let sha = Checksum::of(FRONT_PROGRAM.as_bytes()).to_hex();
    format!(
        "~/.remote-http-launcher/programs/seamless-dask-front-{}.py",
        &sha[..16]
    )
}

/// What a launched daskserver is, derived from its description and the launcher's answer (the
/// reference's `DaskserverLaunchedHandle` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaskInfo {
    /// `tcp://host:port` of the scheduler, from this machine.
    pub scheduler_address: String,
    /// `tcp://host:port` of the scheduler, from the daskserver's host (what the front uses).
    pub scheduler_address_on_host: String,
    /// The dashboard, if the launcher reported its port.
    pub dashboard_url: Option<String>,
    /// Seamless workers per Dask worker (`cores` of the queue, default 1).
    pub cores: u32,
    /// Interactive cluster (wait for workers to connect).
    pub interactive: bool,
    /// A `distributed::LocalCluster`.
    pub is_local_cluster: bool,
    /// Record mode of the daskserver.
    pub record: bool,
}

fn parse_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        ),
        _ => false,
    }
}

impl DaskInfo {
    /// The reference's `Dask dashboard: <url>` line.
    pub fn dashboard_line(&self) -> String {
        match &self.dashboard_url {
            Some(url) => format!("Dask dashboard: {url}"),
            None => "Dask dashboard: (not reachable from here; the daskserver is tunnelled)".into(),
        }
    }

    /// Derives the info of a daskserver launched from `desc`.
    pub fn derive(desc: &LaunchDescription, conn: &Connection) -> DaskInfo {
        let params = desc.file_parameters.clone().unwrap_or(Value::Null);
        let cores = params
            .get("cores")
            .and_then(Value::as_u64)
            .filter(|c| *c > 0)
            .map_or(1, |c| u32::try_from(c).unwrap_or(u32::MAX));
        let host_side = match desc.network_interface.as_deref() {
            None | Some("0.0.0.0") | Some("") => "127.0.0.1".to_string(),
            Some(h) => h.to_string(),
        };
        let port_on_host = conn.port_named("tunneled-port").unwrap_or(conn.port);
        DaskInfo {
            scheduler_address: format!("tcp://{}:{}", conn.hostname, conn.port),
            scheduler_address_on_host: format!("tcp://{host_side}:{port_on_host}"),
            dashboard_url: conn
                .port_named("dashboard_port")
                .map(|p| format!("http://{}:{p}", conn.hostname)),
            cores,
            interactive: parse_bool(params.get("interactive")),
            is_local_cluster: desc
                .cluster_string
                .as_deref()
                .is_some_and(|c| c.contains("LocalCluster")),
            record: parse_bool(params.get("record")),
        }
    }
}

/// The interpreter that runs the front, from the process's settings (`SEAMLESS_DASK_PYTHON`,
/// else `python3`: the one of the daskserver's environment once its conda environment is
/// active).
pub fn python_from_settings() -> String {
    seamless_activation::Settings::current().dask_python.clone()
}

/// The launch spec of the front of the daskserver launched from `dask`, run by `python`: key
/// `daskfront-...` (the daskserver's with its service name replaced), same host, environment
/// and port range, handshake `/healthcheck`.
pub fn description(
    dask: &LaunchDescription,
    info: &DaskInfo,
    remote_clients: &RemoteClients,
    python: &str,
) -> LaunchSpec {
    let rename = |s: &str| s.replacen("daskserver", "daskfront", 1);
    let key = rename(&dask.key);
    let argv: Vec<String> = vec![
        python.to_string(),
        program_path(),
        "--status-file".into(),
        format!("~/.remote-http-launcher/server/{key}.json"),
        "--port-range".into(),
        dask.port_start.unwrap_or(0).to_string(),
        dask.port_end.unwrap_or(0).to_string(),
        "--host".into(),
        dask.network_interface
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into()),
        "--timeout".into(),
        dask.timeout.to_string(),
    ];
    let parameters = json!({
        "scheduler_address": info.scheduler_address_on_host,
        "workers": info.cores,
        "remote_clients": remote_clients,
        "is_local_cluster": info.is_local_cluster,
        "interactive": info.interactive,
        "record": info.record,
        "program": program_path(),
    });
    LaunchSpec {
        key,
        name: "dask-front".into(),
        argv,
        workdir: "/tmp".into(),
        parameters: Some(parameters),
        handshake: Handshake::Healthcheck,
        ..LaunchSpec::from(dask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dask_desc() -> LaunchDescription {
        LaunchDescription {
            service: seamless_config::Service::Daskserver,
            key: "daskserver-local-rw-demo".into(),
            argv: vec!["seamless-dask-wrapper".into()],
            command: "seamless-dask-wrapper ...".into(),
            workdir: "/tmp".into(),
            network_interface: Some("127.0.0.1".into()),
            port_start: Some(5340),
            port_end: Some(5359),
            conda: Some(Some(String::new())),
            workers: None,
            cluster_string: Some("distributed::LocalCluster".into()),
            file_parameters: Some(json!({"cores": 2, "interactive": "yes", "record": false})),
            hostname: None,
            ssh_hostname: None,
            tunnel: None,
            log_level: "minimal".into(),
            log_file: "~/.remote-http-launcher/logs/local/demo/daskserver.log".into(),
            debug_log_file: "~/.remote-http-launcher/logs/local/demo/daskserver.debug.log".into(),
            timeout: 600,
            handshake: Handshake::Path {
                path: "health".into(),
                port_name: "dashboard_port".into(),
            },
        }
    }

    #[test]
    fn info_and_front_description_follow_the_daskserver() {
        let desc = dask_desc();
        let mut raw = serde_json::Map::new();
        raw.insert("dashboard_port".into(), json!(5358));
        let conn = Connection {
            hostname: "127.0.0.1".into(),
            port: 5355,
            raw,
            outcome: seamless_launcher::Outcome::Launched,
        };
        let info = DaskInfo::derive(&desc, &conn);
        assert_eq!(info.scheduler_address, "tcp://127.0.0.1:5355");
        assert_eq!(info.scheduler_address_on_host, "tcp://127.0.0.1:5355");
        assert_eq!(info.dashboard_url.as_deref(), Some("http://127.0.0.1:5358"));
        assert_eq!(info.cores, 2);
        assert!(info.interactive && info.is_local_cluster && !info.record);

        let front = description(&desc, &info, &RemoteClients::default(), "python3");
        assert_eq!(front.key, "daskfront-local-rw-demo");
        assert_eq!(front.handshake, Handshake::Healthcheck);
        assert_eq!(front.conda, None, "an empty conda name is no environment");
        let command = seamless_config::display_command(&front.argv);
        assert!(command.contains(&program_path()));
        assert!(command.contains("--port-range 5340 5359 --host 127.0.0.1 --timeout 600"));
        let p = front.parameters.unwrap();
        assert_eq!(p["scheduler_address"], "tcp://127.0.0.1:5355");
        assert_eq!(p["workers"], 2);
    }

    #[test]
    fn the_interpreter_is_one_argument() {
        let desc = dask_desc();
        let conn = Connection {
            hostname: "127.0.0.1".into(),
            port: 5355,
            raw: serde_json::Map::new(),
            outcome: seamless_launcher::Outcome::Launched,
        };
        let info = DaskInfo::derive(&desc, &conn);
        let front = description(&desc, &info, &RemoteClients::default(), "/a b/python; x");
        assert_eq!(front.argv[0], "/a b/python; x");
        let command = seamless_config::display_command(&front.argv);
        assert!(command.starts_with("'/a b/python; x' "), "{command}");
    }
}
