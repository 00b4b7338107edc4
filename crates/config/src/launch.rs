//! Launch descriptions: what the launcher needs to start (or find) a service, with the final
//! `key` and `command` strings (seamless-config's `configure_*` followed by remote-http-launcher's
//! template evaluation, produced directly).
//!
//! With `P = /project[/subproject]`, `S = "" | /STAGE-stage`, `SS = S[SUBSTAGE-substage]` and
//! `trim(x)` = `x` without leading/trailing `/`, other `/` replaced by `--`:
//!
//! | service | key | workdir |
//! |---|---|---|
//! | hashserver | `hashserver-{cluster}-{ro\|rw}-{trim(P+S)}` | `{bufferdir}{P}{S}` |
//! | database | `database-{cluster}-{ro\|rw}-{trim(P+S)}` | `{database_dir}{P}{S}` |
//! | jobserver | `jobserver-{cluster}-rw-{trim(P+SS)}` | `/tmp` |
//! | daskserver | `daskserver-{cluster}-rw-{trim(P+SS)}` | `/tmp` |

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::cluster::{Cluster, ClusterType, Frontend};
use super::env::RemoteClients;
use super::select::{Config, Current};
use super::ConfigError;

/// The inactivity timeout passed to every service (seconds).
pub const SERVICE_TIMEOUT: u64 = 600;

/// A launchable service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// hashserver.
    Hashserver,
    /// seamless-database.
    Database,
    /// seamless-jobserver.
    Jobserver,
    /// seamless-dask-wrapper.
    Daskserver,
}

impl Service {
    /// The name used in keys and log paths.
    pub fn name(self) -> &'static str {
        match self {
            Service::Hashserver => "hashserver",
            Service::Database => "database",
            Service::Jobserver => "jobserver",
            Service::Daskserver => "daskserver",
        }
    }
}

/// How the launcher checks that a service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// `GET /healthcheck` on `port`.
    Healthcheck,
    /// `GET /{path}` on the port named `port_name` in the server file (Dask: `/health` on
    /// `dashboard_port`).
    Path {
        /// The path, without `/`.
        path: String,
        /// The server-file field with the port.
        port_name: String,
    },
}

impl Serialize for Handshake {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Handshake::Healthcheck => s.serialize_str("healthcheck"),
            Handshake::Path { path, port_name } => {
                json!({"path": path, "port_name": port_name}).serialize(s)
            }
        }
    }
}

/// A launch description, serialized with the reference's keys (so that it can be compared with
/// the Python one, and written where remote-http-launcher expects one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchDescription {
    /// The service.
    #[serde(skip)]
    pub service: Service,
    /// The state-file basename.
    pub key: String,
    /// The program and its arguments, passed to `exec` as they are (never split or given to a
    /// shell): what the launcher runs.
    #[serde(skip)]
    pub argv: Vec<String>,
    /// The command line for people and for comparison with the reference's description
    /// ([`display_command`] of `argv`); never parsed.
    pub command: String,
    /// The service's working directory (`~` not expanded: it may be on another host).
    pub workdir: String,
    /// Bind address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_interface: Option<String>,
    /// Port range start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_start: Option<u16>,
    /// Port range end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_end: Option<u16>,
    /// Conda environment: absent, null (none), or a name (`""` = none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conda: Option<Option<String>>,
    /// jobserver `--workers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// daskserver cluster class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_string: Option<String>,
    /// Written into the server file as `parameters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_parameters: Option<Value>,
    /// HTTP host of a remote frontend (absent for the local cluster: then no SSH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// SSH target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_hostname: Option<String>,
    /// SSH-tunnel the ports (only present when true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<bool>,
    /// Launcher progress output.
    pub log_level: String,
    /// Launcher log (phases).
    pub log_file: String,
    /// Launcher debug log.
    pub debug_log_file: String,
    /// Service inactivity timeout (seconds).
    pub timeout: u64,
    /// The readiness check.
    pub handshake: Handshake,
}

impl LaunchDescription {
    /// The server state file, as the reference writes it into the command
    /// (`~/.remote-http-launcher/server/<key>.json`).
    pub fn status_file(&self) -> String {
        status_file(&self.key)
    }

    /// As JSON (the reference's dict, with the evaluated key and command).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `argv` as one line: words with spaces or shell characters are single-quoted (a leading `~/`
/// stays unquoted, as in the reference's command strings). For display only.
pub fn display_command(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let special = w.is_empty()
                || w.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || "'\"\\$`;&|<>(){}*?[]!#".contains(c)
                });
            if special {
                shlex::try_quote(w)
                    .map(|q| q.into_owned())
                    .unwrap_or_else(|_| format!("{w:?}"))
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn words(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn status_file(key: &str) -> String {
    format!("~/.remote-http-launcher/server/{key}.json")
}

fn trim(path: &str) -> String {
    path.trim_matches('/').replace('/', "--")
}

struct Dirs {
    p: String,
    s: String,
    ss: String,
}

fn dirs(cur: &Current) -> Dirs {
    let mut p = format!("/{}", cur.project);
    if let Some(sub) = &cur.subproject {
        p.push('/');
        p.push_str(sub);
    }
    let s = cur
        .stage
        .as_ref()
        .map(|st| format!("/STAGE-{st}"))
        .unwrap_or_default();
    let ss = match (&cur.stage, &cur.substage) {
        (Some(_), Some(sub)) => format!("{s}SUBSTAGE-{sub}"),
        _ => s.clone(),
    };
    Dirs { p, s, ss }
}

fn frontend<'a>(
    clus: &'a Cluster,
    service: Service,
    frontend_name: Option<&str>,
) -> Result<&'a Frontend, ConfigError> {
    clus.frontends
        .iter()
        .filter(|f| frontend_name.is_none_or(|n| f.host() == n))
        .find(|f| match service {
            Service::Hashserver => f.hashserver.is_some(),
            Service::Database => f.database.is_some(),
            Service::Jobserver => f.jobserver.is_some(),
            Service::Daskserver => f.daskserver.is_some(),
        })
        .ok_or_else(|| {
            ConfigError::Selection(match frontend_name {
                Some(n) => format!(
                    "No frontend of cluster '{}' with name '{n}' can support a {}",
                    clus.name,
                    service.name()
                ),
                None => format!(
                    "No frontend of cluster '{}' can support a {}",
                    clus.name,
                    service.name()
                ),
            })
        })
}

impl Config {
    fn base(
        &self,
        service: Service,
        cur: &Current,
        mode: &str,
        stage_part: &str,
        f: &Frontend,
        clus: &Cluster,
    ) -> LaunchDescription {
        let d = dirs(cur);
        let name = service.name();
        let local = self.clusters.local_cluster.as_deref() == Some(clus.name.as_str());
        let logdir = format!(
            "~/.remote-http-launcher/logs/{}{}{stage_part}",
            cur.cluster, d.p
        );
        LaunchDescription {
            service,
            key: format!(
                "{name}-{}-{mode}-{}",
                cur.cluster,
                trim(&format!("{}{stage_part}", d.p))
            ),
            argv: Vec::new(),
            command: String::new(),
            workdir: String::new(),
            network_interface: None,
            port_start: None,
            port_end: None,
            conda: None,
            workers: None,
            cluster_string: None,
            file_parameters: None,
            hostname: (!local).then(|| f.host().to_string()),
            ssh_hostname: if local { None } else { f.ssh_hostname.clone() },
            tunnel: (!local && clus.tunnel).then_some(true),
            log_level: "minimal".into(),
            log_file: format!("{logdir}/{name}.log"),
            debug_log_file: format!("{logdir}/{name}.debug.log"),
            timeout: SERVICE_TIMEOUT,
            handshake: Handshake::Healthcheck,
        }
    }

    /// The hashserver launch description for `cur` (`readonly` = mode `ro`).
    pub fn hashserver_launch(
        &self,
        readonly: bool,
        cur: &Current,
        frontend_name: Option<&str>,
    ) -> Result<LaunchDescription, ConfigError> {
        self.storage_launch(Service::Hashserver, readonly, cur, frontend_name)
    }

    /// The database launch description for `cur`.
    pub fn database_launch(
        &self,
        readonly: bool,
        cur: &Current,
        frontend_name: Option<&str>,
    ) -> Result<LaunchDescription, ConfigError> {
        self.storage_launch(Service::Database, readonly, cur, frontend_name)
    }

    /// Hashserver and database: the same shape, keyed by stage, with a data directory.
    fn storage_launch(
        &self,
        service: Service,
        readonly: bool,
        cur: &Current,
        frontend_name: Option<&str>,
    ) -> Result<LaunchDescription, ConfigError> {
        let clus = self.clusters.get(&cur.cluster)?;
        let f = frontend(clus, service, frontend_name)?;
        let missing = || ConfigError::Selection(format!("no {}", service.name()));
        // (data directory, conda, interface, port range) of the service's frontend definition.
        let (dir, conda, ni, ports) = match service {
            Service::Hashserver => {
                let h = f.hashserver.as_ref().ok_or_else(missing)?;
                (
                    &h.bufferdir,
                    &h.conda,
                    &h.network_interface,
                    (h.port_start, h.port_end),
                )
            }
            _ => {
                let d = f.database.as_ref().ok_or_else(missing)?;
                (
                    &d.database_dir,
                    &d.conda,
                    &d.network_interface,
                    (d.port_start, d.port_end),
                )
            }
        };
        let mode = if readonly { "ro" } else { "rw" };
        let d = dirs(cur);
        let mut desc = self.base(service, cur, mode, &d.s, f, clus);
        desc.workdir = format!("{dir}{}{}", d.p, d.s);
        desc.network_interface = ni.clone();
        (desc.port_start, desc.port_end) = ports;
        desc.conda = conda.clone().map(Some);
        // A database binds 0.0.0.0 unless told otherwise: one launched for the local cluster
        // stays on loopback unless the cluster names a network interface.
        let local = self.clusters.local_cluster.as_deref() == Some(clus.name.as_str());
        let host = ni
            .clone()
            .or_else(|| (local && service == Service::Database).then(|| "127.0.0.1".to_string()));
        let mut argv = words(&[match service {
            Service::Hashserver => "hashserver",
            _ => "seamless-database",
        }]);
        if let (Some(a), Some(b)) = ports {
            argv.extend(["--port-range".into(), a.to_string(), b.to_string()]);
        }
        argv.extend(["--status-file".into(), status_file(&desc.key)]);
        if let Some(host) = host {
            argv.extend(["--host".into(), host]);
        }
        argv.extend(["--timeout".into(), SERVICE_TIMEOUT.to_string()]);
        match service {
            Service::Hashserver => {
                argv.push(desc.workdir.clone());
                if !readonly {
                    argv.push("--writable".into());
                }
            }
            _ => {
                if !readonly {
                    argv.push("--writable".into());
                }
                argv.push(format!("{}/seamless.db", desc.workdir));
            }
        }
        desc.command = display_command(&argv);
        desc.argv = argv;
        Ok(desc)
    }

    /// The jobserver launch description for `cur`; `clients` are the live hashserver/database
    /// clients of the cluster (the reference's `collect_remote_clients`), passed to the jobserver
    /// through its status file.
    pub fn jobserver_launch(
        &self,
        cur: &Current,
        clients: &RemoteClients,
        frontend_name: Option<&str>,
    ) -> Result<LaunchDescription, ConfigError> {
        let clus = self.clusters.get(&cur.cluster)?;
        let f = frontend(clus, Service::Jobserver, frontend_name)?;
        let j = f
            .jobserver
            .as_ref()
            .ok_or_else(|| ConfigError::Selection("no jobserver".into()))?;
        let workers = clus.workers.ok_or_else(|| {
            ConfigError::Selection(format!(
                "cluster '{}' needs 'workers' to run a jobserver",
                clus.name
            ))
        })?;
        let d = dirs(cur);
        let mut desc = self.base(Service::Jobserver, cur, "rw", &d.ss, f, clus);
        desc.workdir = "/tmp".into();
        desc.network_interface = Some(j.network_interface.clone());
        desc.port_start = Some(j.port_start);
        desc.port_end = Some(j.port_end);
        desc.conda = Some(j.conda.clone().flatten());
        desc.workers = Some(workers);
        let mut params = serde_json::to_value(clients).unwrap_or_else(|_| json!({}));
        if let Value::Object(m) = &mut params {
            m.entry("database").or_insert_with(|| json!([]));
            m.entry("buffer").or_insert_with(|| json!([]));
            m.insert("record".into(), Value::Bool(self.record));
        }
        desc.file_parameters = Some(params);
        desc.argv = vec![
            "seamless-jobserver".into(),
            "--workers".into(),
            workers.to_string(),
            "--port-range".into(),
            j.port_start.to_string(),
            j.port_end.to_string(),
            "--status-file".into(),
            status_file(&desc.key),
            "--host".into(),
            j.network_interface.clone(),
            "--timeout".into(),
            SERVICE_TIMEOUT.to_string(),
        ];
        desc.command = display_command(&desc.argv);
        Ok(desc)
    }

    /// The daskserver launch description for `cur` (queue: the selected one, else the cluster's
    /// default).
    pub fn daskserver_launch(
        &self,
        cur: &Current,
        frontend_name: Option<&str>,
    ) -> Result<LaunchDescription, ConfigError> {
        let clus = self.clusters.get(&cur.cluster)?;
        let f = frontend(clus, Service::Daskserver, frontend_name)?;
        let ds = f
            .daskserver
            .as_ref()
            .ok_or_else(|| ConfigError::Selection("no daskserver".into()))?;
        let kind = clus.kind.ok_or_else(|| {
            ConfigError::Selection(format!(
                "cluster '{}' needs a 'type' (local, slurm or oar) to run a daskserver",
                clus.name
            ))
        })?;
        let queue_name = self
            .queue_of(&clus.name)
            .map(str::to_string)
            .or_else(|| clus.default_queue.clone())
            .ok_or_else(|| {
                ConfigError::Selection(format!(
                    "No queue selected and cluster '{}' has no default queue",
                    clus.name
                ))
            })?;
        let q = clus.queues.get(&queue_name).ok_or_else(|| {
            ConfigError::Selection(format!(
                "Cluster '{}' has no queue '{queue_name}'",
                clus.name
            ))
        })?;
        let d = dirs(cur);
        let mut desc = self.base(Service::Daskserver, cur, "rw", &d.ss, f, clus);
        desc.workdir = "/tmp".into();
        desc.network_interface = Some(ds.network_interface.clone());
        desc.port_start = Some(ds.port_start);
        desc.port_end = Some(ds.port_end);
        desc.conda = Some(Some(q.conda.clone()));
        desc.cluster_string = Some(kind.cluster_string().into());
        desc.handshake = Handshake::Path {
            path: "health".into(),
            port_name: "dashboard_port".into(),
        };

        let mut directives = q.job_extra_directives.clone().unwrap_or_default();
        let mut resource_spec = None;
        if let Some(node) = &self.node {
            match kind {
                ClusterType::Slurm => {
                    let flag = format!("--nodelist={node}");
                    if !directives.contains(&flag) {
                        directives.push(flag);
                    }
                }
                ClusterType::Oar => directives.extend(["-p".to_string(), format!("host='{node}'")]),
                ClusterType::Local => {
                    return Err(ConfigError::Selection(
                        "Node selection is not supported for cluster type 'local'".into(),
                    ))
                }
            }
        }
        let mut job_cores = q.job_cores;
        if q.exclusive == Some(true) {
            match (q.cores, kind) {
                (Some(c), _) => job_cores = Some(c),
                (None, ClusterType::Slurm) => {
                    if !directives.iter().any(|d| d == "--exclusive") {
                        directives.push("--exclusive".into());
                    }
                }
                (None, ClusterType::Oar) => resource_spec = Some("/nodes=1".to_string()),
                (None, ClusterType::Local) => {}
            }
        }
        let cores = q.cores.or(if kind == ClusterType::Local {
            clus.workers.map(i64::from)
        } else {
            None
        });
        let mut p = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                if !v.is_null() {
                    p.insert(k.to_string(), v);
                }
            }
        };
        put("walltime", Some(json!(q.walltime)));
        put("exclusive", q.exclusive.map(Value::from));
        put("cores", cores.map(|c| json!(c)));
        put("job_cores", job_cores.map(|c| json!(c)));
        put("memory", Some(json!(q.memory)));
        put("tmpdir", q.tmpdir.clone().map(Value::from));
        put("partition", q.partition.clone().map(Value::from));
        put("resource_spec", resource_spec.map(Value::from));
        put(
            "job_extra_directives",
            (!directives.is_empty()).then(|| json!(directives)),
        );
        put("project", q.project.clone().map(Value::from));
        put(
            "memory_per_core_property_name",
            clus.memory_per_core_property_name.clone().map(Value::from),
        );
        put(
            "job_script_prologue",
            q.job_script_prologue.clone().map(|v| json!(v)),
        );
        put("worker_threads", q.worker_threads.map(|v| json!(v)));
        put("processes", q.processes.map(|v| json!(v)));
        put(
            "unknown-task-duration",
            Some(json!(q.unknown_task_duration)),
        );
        put("target-duration", Some(json!(q.target_duration)));
        put(
            "lifetime-stagger",
            q.lifetime_stagger.clone().map(Value::from),
        );
        put("lifetime", q.lifetime.clone().map(Value::from));
        put("dask-resources", q.dask_resources.clone());
        put("interactive", q.interactive.map(Value::from));
        put("maximum_jobs", Some(json!(q.maximum_jobs)));
        put("extra_dask_config", q.extra_dask_config.clone());
        put("record", Some(json!(self.record)));
        desc.file_parameters = Some(Value::Object(p));
        desc.argv = vec![
            "seamless-dask-wrapper".into(),
            kind.cluster_string().into(),
            "--port-range".into(),
            ds.port_start.to_string(),
            ds.port_end.to_string(),
            "--status-file".into(),
            status_file(&desc.key),
            "--host".into(),
            ds.network_interface.clone(),
            "--timeout".into(),
            SERVICE_TIMEOUT.to_string(),
        ];
        desc.command = display_command(&desc.argv);
        Ok(desc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_matches_python_strip_and_replace() {
        assert_eq!(trim("/demo"), "demo");
        assert_eq!(trim("/demo/a/b/STAGE-s1"), "demo--a--b--STAGE-s1");
        assert_eq!(trim("//x//"), "x");
    }

    #[test]
    fn stage_and_substage_dirs() {
        let cur = Current {
            cluster: "c".into(),
            project: "demo".into(),
            subproject: None,
            stage: Some("prod".into()),
            substage: Some("gpu".into()),
        };
        let d = dirs(&cur);
        assert_eq!(d.s, "/STAGE-prod");
        assert_eq!(d.ss, "/STAGE-prodSUBSTAGE-gpu");
        let cur = Current { stage: None, ..cur };
        assert_eq!(dirs(&cur).ss, "", "a substage without a stage is ignored");
    }
}
