//! The cluster schema (seamless-config's `cluster.py`), as typed structs.
//!
//! A clusters mapping holds cluster definitions by name plus the special key `local_cluster`,
//! which names the cluster that runs on this machine. Unknown keys and missing required fields
//! are errors that name the file, the cluster and the field. Queues may inherit from a queue
//! defined before them (`TEMPLATE: name`); keys with `-` are read as `_`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::ConfigError;

/// The scheduler type of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterType {
    /// Dask LocalCluster.
    Local,
    /// dask_jobqueue SLURMCluster.
    Slurm,
    /// dask_jobqueue OARCluster.
    Oar,
}

impl ClusterType {
    /// The `cluster_string` passed to `seamless-dask-wrapper`.
    pub fn cluster_string(self) -> &'static str {
        match self {
            ClusterType::Local => "distributed::LocalCluster",
            ClusterType::Slurm => "dask_jobqueue::SLURMCluster",
            ClusterType::Oar => "dask_jobqueue::OARCluster",
        }
    }
}

/// A frontend's hashserver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashserverDef {
    /// Buffer directory (verbatim; `~` is not expanded here).
    pub bufferdir: String,
    /// Conda environment.
    #[serde(default)]
    pub conda: Option<String>,
    /// Bind address.
    #[serde(default)]
    pub network_interface: Option<String>,
    /// Port range start.
    #[serde(default)]
    pub port_start: Option<u16>,
    /// Port range end.
    #[serde(default)]
    pub port_end: Option<u16>,
}

/// A frontend's database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseDef {
    /// Database directory.
    pub database_dir: String,
    /// Conda environment.
    #[serde(default)]
    pub conda: Option<String>,
    /// Bind address.
    #[serde(default)]
    pub network_interface: Option<String>,
    /// Port range start.
    #[serde(default)]
    pub port_start: Option<u16>,
    /// Port range end.
    #[serde(default)]
    pub port_end: Option<u16>,
}

/// Deserializes a required key whose value may be null: missing = `None`, null = `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A frontend's jobserver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobserverDef {
    /// Conda environment: a required key; null means no conda.
    #[serde(default, deserialize_with = "present")]
    pub conda: Option<Option<String>>,
    /// Bind address.
    pub network_interface: String,
    /// Port range start.
    pub port_start: u16,
    /// Port range end.
    pub port_end: u16,
}

/// A frontend's daskserver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaskserverDef {
    /// Bind address.
    pub network_interface: String,
    /// Port range start.
    pub port_start: u16,
    /// Port range end.
    pub port_end: u16,
}

/// A frontend: a host that runs services.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// Host name (defaults to `localhost` for a `type: local` cluster).
    #[serde(default)]
    pub hostname: Option<String>,
    /// SSH target (defaults to `hostname`).
    #[serde(default)]
    pub ssh_hostname: Option<String>,
    /// Hashserver.
    #[serde(default)]
    pub hashserver: Option<HashserverDef>,
    /// Database.
    #[serde(default)]
    pub database: Option<DatabaseDef>,
    /// Jobserver.
    #[serde(default)]
    pub jobserver: Option<JobserverDef>,
    /// Daskserver.
    #[serde(default)]
    pub daskserver: Option<DaskserverDef>,
}

impl Frontend {
    /// The host name (always set after parsing).
    pub fn host(&self) -> &str {
        self.hostname.as_deref().unwrap_or("localhost")
    }
}

/// A Dask queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Conda environment of the workers ("" = none).
    pub conda: String,
    /// Walltime (`hh:mm:ss`).
    pub walltime: String,
    /// Memory per job.
    pub memory: String,
    /// Dask `unknown-task-duration`.
    pub unknown_task_duration: String,
    /// Dask `target-duration`.
    pub target_duration: String,
    /// Maximum number of jobs.
    pub maximum_jobs: i64,
    /// Dask `lifetime-stagger`. Unset fields stay unset (the reference's dataclass defaults
    /// never apply, because its template step passes explicit nulls); the wrapper then uses its
    /// own default (`4m`).
    #[serde(default)]
    pub lifetime_stagger: Option<String>,
    /// Interactive queue.
    #[serde(default)]
    pub interactive: Option<bool>,
    /// Whole-node jobs.
    #[serde(default)]
    pub exclusive: Option<bool>,
    /// Scheduler project.
    #[serde(default)]
    pub project: Option<String>,
    /// Scheduler partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// Temporary directory (unset: the wrapper's default, `/tmp`).
    #[serde(default)]
    pub tmpdir: Option<String>,
    /// Worker threads.
    #[serde(default)]
    pub worker_threads: Option<i64>,
    /// Worker processes.
    #[serde(default)]
    pub processes: Option<i64>,
    /// Worker lifetime.
    #[serde(default)]
    pub lifetime: Option<String>,
    /// Extra Dask configuration.
    #[serde(default)]
    pub extra_dask_config: Option<serde_json::Value>,
    /// Extra scheduler directives.
    #[serde(default)]
    pub job_extra_directives: Option<Vec<String>>,
    /// Job script prologue lines.
    #[serde(default)]
    pub job_script_prologue: Option<Vec<String>>,
    /// Dask worker resources.
    #[serde(default)]
    pub dask_resources: Option<serde_json::Value>,
    /// Cores per job.
    #[serde(default)]
    pub cores: Option<i64>,
    /// Cores requested from the scheduler.
    #[serde(default)]
    pub job_cores: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterDef {
    frontends: Vec<Frontend>,
    #[serde(default)]
    tunnel: bool,
    #[serde(default, rename = "type")]
    kind: Option<ClusterType>,
    #[serde(default)]
    workers: Option<u32>,
    #[serde(default)]
    memory_per_core_property_name: Option<String>,
    #[serde(default)]
    queues: Option<Mapping>,
    #[serde(default)]
    default_queue: Option<String>,
}

/// A cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Its name.
    pub name: String,
    /// Its frontends, in order.
    pub frontends: Vec<Frontend>,
    /// SSH-tunnel the service ports.
    pub tunnel: bool,
    /// Scheduler type.
    pub kind: Option<ClusterType>,
    /// Worker count (jobserver `--workers`, `spawn`, local Dask cores).
    pub workers: Option<u32>,
    /// OAR only.
    pub memory_per_core_property_name: Option<String>,
    /// Dask queues, by name.
    pub queues: BTreeMap<String, Queue>,
    /// The default queue.
    pub default_queue: Option<String>,
}

/// All known clusters, and which one runs on this machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clusters {
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// The cluster that runs on this machine (`local_cluster:`).
    pub local_cluster: Option<String>,
}

/// A raw clusters mapping being merged from several files, remembering where each cluster
/// came from.
#[derive(Debug, Clone, Default)]
pub struct RawClusters {
    entries: Vec<(String, Value, String)>,
    local_cluster: Option<(String, String)>,
}

impl RawClusters {
    /// Merges a mapping over what is there (a shallow update, as the reference: a later
    /// definition of a cluster replaces it whole).
    pub fn update(&mut self, mapping: &Mapping, source: &str) -> Result<(), ConfigError> {
        for (k, v) in mapping {
            let Some(name) = k.as_str() else {
                return Err(ConfigError::Cluster {
                    source_name: source.into(),
                    cluster: format!("{k:?}"),
                    detail: "cluster names must be strings".into(),
                });
            };
            if name == "local_cluster" {
                let Some(local) = v.as_str() else {
                    return Err(ConfigError::Cluster {
                        source_name: source.into(),
                        cluster: "local_cluster".into(),
                        detail: "'local_cluster' must name a cluster".into(),
                    });
                };
                self.local_cluster = Some((local.to_string(), source.to_string()));
                continue;
            }
            self.entries.retain(|(n, _, _)| n != name);
            self.entries
                .push((name.to_string(), v.clone(), source.to_string()));
        }
        Ok(())
    }

    /// Parses and checks every cluster.
    pub fn parse(&self) -> Result<Clusters, ConfigError> {
        let mut clusters = BTreeMap::new();
        for (name, value, source) in &self.entries {
            let cluster = parse_cluster(name, value).map_err(|detail| ConfigError::Cluster {
                source_name: source.clone(),
                cluster: name.clone(),
                detail,
            })?;
            clusters.insert(name.clone(), cluster);
        }
        let local_cluster = match &self.local_cluster {
            None => None,
            Some((local, source)) if clusters.contains_key(local) => {
                let _ = source;
                Some(local.clone())
            }
            Some((local, source)) => {
                return Err(ConfigError::Cluster {
                    source_name: source.clone(),
                    cluster: local.clone(),
                    detail: "'local_cluster' names a cluster that is not defined".into(),
                })
            }
        };
        Ok(Clusters {
            clusters,
            local_cluster,
        })
    }
}

fn parse_cluster(name: &str, value: &Value) -> Result<Cluster, String> {
    super::validate_name("cluster", name).map_err(|e| e.to_string())?;
    let def: ClusterDef = serde_yaml::from_value(value.clone()).map_err(|e| e.to_string())?;
    let mut frontends = def.frontends;
    for (i, f) in frontends.iter_mut().enumerate() {
        if f.hostname.is_none() {
            if def.kind == Some(ClusterType::Local) {
                f.hostname = Some("localhost".into());
            } else {
                return Err(format!(
                    "frontends[{i}]: missing field `hostname` (required unless the cluster is `type: local`)"
                ));
            }
        }
        if let Some(h) = &f.hashserver {
            if h.port_start.is_some() != h.port_end.is_some() {
                return Err(format!(
                    "frontends[{i}].hashserver: 'port_start' and 'port_end' must both be set or both be omitted"
                ));
            }
        }
        if let Some(d) = &f.database {
            if d.port_start.is_some() != d.port_end.is_some() {
                return Err(format!(
                    "frontends[{i}].database: 'port_start' and 'port_end' must both be set or both be omitted"
                ));
            }
        }
        if let Some(j) = &f.jobserver {
            if j.conda.is_none() {
                return Err(format!(
                    "frontends[{i}].jobserver: missing field `conda` (use `conda: null` for no conda)"
                ));
            }
        }
    }
    let queues = match &def.queues {
        Some(q) => parse_queues(q, def.kind)?,
        None => BTreeMap::new(),
    };
    Ok(Cluster {
        name: name.to_string(),
        frontends,
        tunnel: def.tunnel,
        kind: def.kind,
        workers: def.workers,
        memory_per_core_property_name: def.memory_per_core_property_name,
        queues,
        default_queue: def.default_queue,
    })
}

fn parse_queues(
    raw: &Mapping,
    kind: Option<ClusterType>,
) -> Result<BTreeMap<String, Queue>, String> {
    // Resolved raw mappings, in definition order, for templates.
    let mut resolved: Vec<(String, Mapping)> = Vec::new();
    let mut queues = BTreeMap::new();
    for (k, v) in raw {
        let name = k.as_str().ok_or("queue names must be strings")?.to_string();
        let Some(map) = v.as_mapping() else {
            return Err(format!("queues.{name}: expected a mapping"));
        };
        let mut own = Mapping::new();
        for (key, value) in map {
            let key = key
                .as_str()
                .ok_or_else(|| format!("queues.{name}: keys must be strings"))?
                .replace('-', "_");
            own.insert(Value::String(key), value.clone());
        }
        let template = own.remove("TEMPLATE");
        let mut merged = match template {
            None | Some(Value::Null) => Mapping::new(),
            Some(Value::String(t)) => resolved
                .iter()
                .find(|(n, _)| *n == t)
                .map(|(_, m)| m.clone())
                .ok_or_else(|| format!("queues.{name}: cannot use unknown queue '{t}' as TEMPLATE (a template must be defined before the queue that uses it)"))?,
            Some(other) => return Err(format!("queues.{name}: TEMPLATE must be a queue name, not {other:?}")),
        };
        for (key, value) in own {
            merged.insert(key, value);
        }
        // An explicit null unsets a template's value.
        let cleaned: Mapping = merged
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let queue: Queue = serde_yaml::from_value(Value::Mapping(cleaned))
            .map_err(|e| format!("queues.{name}: {e}"))?;
        if queue.exclusive == Some(true) {
            if queue.job_cores.is_some() {
                return Err(format!(
                    "queues.{name}: 'job_cores' must not be set in exclusive mode"
                ));
            }
            if queue.cores.is_none() && kind == Some(ClusterType::Local) {
                return Err(format!(
                    "queues.{name}: 'cores' is required for local cluster exclusive mode"
                ));
            }
        } else if queue.cores.is_none() && kind != Some(ClusterType::Local) {
            return Err(format!(
                "queues.{name}: 'cores' is required when 'exclusive' is not set"
            ));
        }
        resolved.push((name.clone(), merged));
        queues.insert(name, queue);
    }
    Ok(queues)
}

impl Clusters {
    /// A cluster by name.
    pub fn get(&self, name: &str) -> Result<&Cluster, ConfigError> {
        self.clusters.get(name).ok_or_else(|| {
            ConfigError::Selection(format!(
                "unknown cluster '{name}' (define it in ~/.seamless/clusters.yaml or with a 'clusters:' command)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Clusters, ConfigError> {
        let mapping: Mapping = serde_yaml::from_str(yaml).unwrap();
        let mut raw = RawClusters::default();
        raw.update(&mapping, "clusters.yaml")?;
        raw.parse()
    }

    #[test]
    fn minimal_local_cluster() {
        let c = parse("local_cluster: l\nl:\n  type: local\n  frontends:\n    - hashserver:\n        bufferdir: /b\n").unwrap();
        assert_eq!(c.local_cluster.as_deref(), Some("l"));
        assert_eq!(c.clusters["l"].frontends[0].host(), "localhost");
    }

    #[test]
    fn errors_name_the_cluster_and_field() {
        let e = parse("c:\n  type: slurm\n  frontends:\n    - hashserver: {bufferdir: /b}\n")
            .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("clusters.yaml") && m.contains("cluster 'c'") && m.contains("hostname"),
            "{m}"
        );
        let e = parse("c:\n  type: local\n  frontends: []\n  colour: red\n").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = parse("c:\n  type: local\n").unwrap_err();
        assert!(e.to_string().contains("frontends"), "{e}");
        let e = parse("c:\n  type: local\n  frontends:\n    - jobserver: {network_interface: x, port_start: 1, port_end: 2}\n").unwrap_err();
        assert!(e.to_string().contains("conda"), "{e}");
        let e = parse(
            "c:\n  type: local\n  frontends:\n    - hashserver: {bufferdir: /b, port_start: 1}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("port_end"), "{e}");
        let e = parse("a--b:\n  type: local\n  frontends: []\n").unwrap_err();
        assert!(e.to_string().contains("'--'"), "{e}");
        let e = parse("local_cluster: nope\n").unwrap_err();
        assert!(e.to_string().contains("not defined"), "{e}");
    }

    #[test]
    fn queue_templates_and_dashes() {
        let c = parse(
            "h:\n  type: slurm\n  frontends: [{hostname: h}]\n  queues:\n    default:\n      conda: env\n      walltime: '01:00:00'\n      cores: 8\n      memory: 1GB\n      maximum-jobs: 3\n      unknown_task_duration: 1m\n      target_duration: 10m\n    gpu:\n      TEMPLATE: default\n      cores: 4\n      job_extra_directives: ['--gres=gpu:1']\n",
        )
        .unwrap();
        let q = &c.clusters["h"].queues;
        assert_eq!(q["default"].maximum_jobs, 3);
        assert_eq!(q["gpu"].cores, Some(4));
        assert_eq!(q["gpu"].conda, "env");
        assert_eq!(q["gpu"].lifetime_stagger, None);
        let e = parse("h:\n  type: slurm\n  frontends: [{hostname: h}]\n  queues:\n    gpu: {TEMPLATE: nope}\n").unwrap_err();
        assert!(e.to_string().contains("unknown queue 'nope'"), "{e}");
        let e = parse("h:\n  type: slurm\n  frontends: [{hostname: h}]\n  queues:\n    q: {conda: e, walltime: w, memory: m, maximum_jobs: 1, unknown_task_duration: a, target_duration: b}\n").unwrap_err();
        assert!(e.to_string().contains("'cores' is required"), "{e}");
    }
}
