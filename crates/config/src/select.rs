//! The evaluated configuration: the selection (`get_current`), its defaults, the delegation level
//! it implies, and the plan of activations a stage change performs.

use std::path::PathBuf;

use serde::Serialize;

use super::cluster::Clusters;
use super::ConfigError;

/// How transformations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Execution {
    /// In this process.
    Process,
    /// In spawned local worker processes.
    Spawn,
    /// On a remote backend (jobserver or Dask).
    Remote,
}

impl Execution {
    /// Parses `process`, `spawn` or `remote`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "process" => Some(Execution::Process),
            "spawn" => Some(Execution::Spawn),
            "remote" => Some(Execution::Remote),
            _ => None,
        }
    }
}

/// The remote execution backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Remote {
    /// seamless-jobserver.
    Jobserver,
    /// seamless-dask-wrapper.
    Daskserver,
}

/// The delegation level of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Delegation {
    /// Level 0: everything in-process, nothing persistent.
    InProcess,
    /// Level 1: buffers on a hashserver only (the resolve tool).
    Buffers,
    /// Level 2: buffers and the result database.
    Database,
    /// Level 3: buffers, database and remote execution.
    Remote(Remote),
    /// Dask without persistence (`persistent: false`, `execution: remote`).
    PureDask,
}

impl Delegation {
    /// The numeric level (0-3; pure Dask counts as 3).
    pub fn level(self) -> u8 {
        match self {
            Delegation::InProcess => 0,
            Delegation::Buffers => 1,
            Delegation::Database => 2,
            Delegation::Remote(_) | Delegation::PureDask => 3,
        }
    }
}

/// One step of a stage change, in the reference's order (`change_stage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PlanStep {
    /// `pure_daskserver.deactivate()`.
    DeactivatePureDask,
    /// `daskserver_remote.deactivate()`.
    DeactivateDaskserver,
    /// `buffer_remote.activate()`.
    ActivateBuffer,
    /// `database_remote.activate()`.
    ActivateDatabase,
    /// `jobserver_remote.activate()`.
    ActivateJobserver,
    /// `daskserver_remote.activate()`.
    ActivateDaskserver,
    /// `pure_daskserver.activate()`.
    ActivatePureDask,
    /// `seamless.transformer.spawn(workers)`.
    Spawn(u32),
}

/// The selection that launched clients are keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Current {
    /// Cluster.
    pub cluster: String,
    /// Project.
    pub project: String,
    /// Subproject.
    pub subproject: Option<String>,
    /// Stage.
    pub stage: Option<String>,
    /// Substage.
    pub substage: Option<String>,
}

/// The evaluated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Known clusters.
    pub clusters: Clusters,
    /// Selected cluster.
    pub cluster: Option<String>,
    /// Selected project.
    pub project: Option<String>,
    /// Selected subproject.
    pub subproject: Option<String>,
    /// Current stage.
    pub stage: Option<String>,
    /// Current substage.
    pub substage: Option<String>,
    /// `execution`, when set (by a command or explicitly).
    pub execution: Option<Execution>,
    /// `persistent`, when set.
    pub persistent: Option<bool>,
    /// Selected queue (of the selected cluster).
    pub queue: Option<String>,
    /// Pinned remote backend.
    pub remote: Option<Remote>,
    /// Execution-record mode.
    pub record: bool,
    /// Requested node.
    pub node: Option<String>,
    /// Parallelism.
    pub nparallel: Option<u32>,
    /// `SEAMLESS_CACHE` mode: the cache directory.
    pub seamless_cache: Option<PathBuf>,
    /// Warnings found while evaluating (the reference prints them with `warnings.warn`).
    pub warnings: Vec<String>,
}

fn normalize(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

impl Config {
    /// `execution`, defaulting to `remote` when a cluster is selected and `process` otherwise.
    pub fn execution(&self) -> Execution {
        match (self.execution, &self.cluster) {
            (Some(e), _) => e,
            (None, Some(_)) => Execution::Remote,
            (None, None) => Execution::Process,
        }
    }

    /// `persistent`, defaulting to whether a cluster is selected.
    pub fn persistent(&self) -> bool {
        self.persistent.unwrap_or(self.cluster.is_some())
    }

    /// The current selection (`get_current()`): a cluster and a project are required.
    pub fn current(&self) -> Result<Current, ConfigError> {
        let cluster = self.cluster.clone().ok_or_else(|| {
            ConfigError::Selection(
                "No cluster defined: add '- cluster: NAME' to seamless.profile.yaml (clusters are defined in ~/.seamless/clusters.yaml)".into(),
            )
        })?;
        let project = self.project.clone().ok_or_else(|| {
            ConfigError::Selection(
                "No project defined: add '- project: NAME' to seamless.yaml, or pass --project"
                    .into(),
            )
        })?;
        let current = Current {
            cluster,
            project,
            subproject: normalize(&self.subproject),
            stage: normalize(&self.stage),
            substage: normalize(&self.substage),
        };
        // Names become directories and launch keys: checked before anything is launched,
        // wherever they came from (files, command line, API).
        super::validate_name("cluster", &current.cluster)?;
        super::validate_name("project", &current.project)?;
        for (what, v) in [
            ("subproject", &current.subproject),
            ("stage", &current.stage),
            ("substage", &current.substage),
        ] {
            if let Some(v) = v {
                super::validate_name(what, v)?;
            }
        }
        Ok(current)
    }

    /// The selected queue of `cluster`, if it is still valid.
    pub fn queue_of(&self, cluster: &str) -> Option<&str> {
        let q = self.queue.as_deref()?;
        if self.cluster.as_deref() != Some(cluster) {
            return None;
        }
        self.clusters
            .clusters
            .get(cluster)
            .filter(|c| c.queues.contains_key(q))
            .map(|_| q)
    }

    /// The remote backend of `cluster` (`check_remote_redundancy`): the pinned `remote:`, else
    /// the one service among the frontends; both without a pin is an error.
    pub fn remote_backend(&self, cluster: &str) -> Result<Option<Remote>, ConfigError> {
        if let Some(r) = self.remote {
            return Ok(Some(r));
        }
        let clus = self.clusters.get(cluster)?;
        let (mut job, mut dask) = (false, false);
        for f in &clus.frontends {
            if f.jobserver.is_some() && f.daskserver.is_some() {
                return Err(ConfigError::Selection(format!(
                    "Cluster '{cluster}' frontend '{}' has both jobserver and daskserver; in your seamless.profile.yaml, specify 'remote: jobserver' or 'remote: daskserver'",
                    f.host()
                )));
            }
            job |= f.jobserver.is_some();
            dask |= f.daskserver.is_some();
        }
        match (job, dask) {
            (true, true) => Err(ConfigError::Selection(format!(
                "Cluster '{cluster}' exposes both jobserver and daskserver; in your seamless.profile.yaml, specify 'remote: jobserver' or 'remote: daskserver'"
            ))),
            (true, false) => Ok(Some(Remote::Jobserver)),
            (false, true) => Ok(Some(Remote::Daskserver)),
            (false, false) => Ok(None),
        }
    }

    /// The delegation level of this configuration (the reference's `change_stage`).
    pub fn delegation(&self) -> Result<Delegation, ConfigError> {
        let Some(cluster) = &self.cluster else {
            return Ok(Delegation::InProcess);
        };
        let execution = self.execution();
        if !self.persistent() {
            if execution != Execution::Remote {
                return Ok(Delegation::InProcess);
            }
            return match self.remote_backend(cluster)? {
                Some(Remote::Daskserver) => Ok(Delegation::PureDask),
                _ => Err(ConfigError::Selection(
                    "Pure Dask mode (persistent: false, execution: remote) requires a daskserver remote target".into(),
                )),
            };
        }
        if execution != Execution::Remote {
            return Ok(Delegation::Database);
        }
        Ok(match self.remote_backend(cluster)? {
            Some(r) => Delegation::Remote(r),
            None => Delegation::Database,
        })
    }

    /// The activations a stage change performs, in order.
    pub fn plan(&self) -> Result<Vec<PlanStep>, ConfigError> {
        let mut steps = vec![PlanStep::DeactivatePureDask, PlanStep::DeactivateDaskserver];
        match self.delegation()? {
            Delegation::InProcess => {}
            Delegation::PureDask => steps.push(PlanStep::ActivatePureDask),
            Delegation::Buffers => steps.push(PlanStep::ActivateBuffer),
            Delegation::Database => {
                steps.extend([PlanStep::ActivateBuffer, PlanStep::ActivateDatabase])
            }
            Delegation::Remote(r) => {
                steps.extend([PlanStep::ActivateBuffer, PlanStep::ActivateDatabase]);
                steps.push(match r {
                    Remote::Jobserver => PlanStep::ActivateJobserver,
                    Remote::Daskserver => PlanStep::ActivateDaskserver,
                });
            }
        }
        if self.execution() == Execution::Spawn {
            let workers = self
                .clusters
                .local_cluster
                .as_deref()
                .and_then(|l| self.clusters.clusters.get(l))
                .and_then(|c| c.workers)
                .ok_or_else(|| {
                    ConfigError::Selection(
                        "execution 'spawn' needs a local cluster ('local_cluster:') with 'workers'"
                            .into(),
                    )
                })?;
            steps.push(PlanStep::Spawn(workers));
        }
        Ok(steps)
    }

    /// The delegation and plan of `seamless-resolve` (level 1): as the reference's resolve tool,
    /// execution is `process` and the database is not activated, so a persistent cluster gives
    /// buffers only, and nothing else is started.
    pub fn resolve_plan(&self) -> Result<(Delegation, Vec<PlanStep>), ConfigError> {
        let mut c = self.clone();
        c.execution = Some(Execution::Process);
        match c.delegation()? {
            Delegation::Database => Ok((
                Delegation::Buffers,
                vec![
                    PlanStep::DeactivatePureDask,
                    PlanStep::DeactivateDaskserver,
                    PlanStep::ActivateBuffer,
                ],
            )),
            other => Ok((other, c.plan()?)),
        }
    }

    /// The reference's `_report_execution_requirements` (run by `set_stage`): records the
    /// warnings in [`Config::warnings`] and fails on contradictions.
    pub fn check_requirements(&mut self) -> Result<(), ConfigError> {
        let execution = self.execution();
        let cluster = self.cluster.is_some();
        if self.execution.is_none() {
            self.warnings.push(if cluster {
                "No 'execution' command found; Seamless defaults to 'remote' because a cluster is defined".into()
            } else {
                "No 'execution' command found; Seamless falls back to 'process'".into()
            });
        }
        if execution == Execution::Remote && !cluster {
            return Err(ConfigError::Selection(
                "Execution is 'remote' but no cluster was defined".into(),
            ));
        }
        if execution != Execution::Remote && !cluster {
            match self.persistent {
                Some(true) => {
                    return Err(ConfigError::Selection(
                        "Persistence was explicitly enabled but no cluster was defined".into(),
                    ))
                }
                Some(false) => return Ok(()),
                None => self.warnings.push(
                    "No cluster defined; running without persistence (define a cluster when using 'execution: remote')".into(),
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::RawClusters;

    fn config(execution: Option<Execution>, persistent: Option<bool>) -> Config {
        let mapping: serde_yaml::Mapping = serde_yaml::from_str(
            "local_cluster: l\nl:\n  type: local\n  workers: 3\n  frontends:\n    - jobserver: {conda: null, network_interface: x, port_start: 1, port_end: 2}\n",
        )
        .unwrap();
        let mut raw = RawClusters::default();
        raw.update(&mapping, "test").unwrap();
        Config {
            clusters: raw.parse().unwrap(),
            cluster: Some("l".into()),
            project: Some("p".into()),
            execution,
            persistent,
            ..Config::default()
        }
    }

    #[test]
    fn levels_and_plans() {
        let c = config(Some(Execution::Process), None);
        assert_eq!(c.delegation().unwrap(), Delegation::Database);
        assert_eq!(c.resolve_plan().unwrap().0, Delegation::Buffers);
        assert_eq!(
            c.resolve_plan().unwrap().1.last(),
            Some(&PlanStep::ActivateBuffer)
        );
        let c = config(None, None);
        assert_eq!(
            c.execution(),
            Execution::Remote,
            "remote by default with a cluster"
        );
        assert_eq!(
            c.delegation().unwrap(),
            Delegation::Remote(Remote::Jobserver)
        );
        assert_eq!(c.delegation().unwrap().level(), 3);
        assert_eq!(c.resolve_plan().unwrap().0, Delegation::Buffers);
        let c = config(Some(Execution::Spawn), None);
        assert_eq!(c.plan().unwrap().last(), Some(&PlanStep::Spawn(3)));
        let c = config(Some(Execution::Process), Some(false));
        assert_eq!(c.delegation().unwrap(), Delegation::InProcess);
        assert_eq!(c.resolve_plan().unwrap().0, Delegation::InProcess);
        let none = Config::default();
        assert!(none
            .current()
            .unwrap_err()
            .to_string()
            .contains("No cluster defined"));
    }
}
