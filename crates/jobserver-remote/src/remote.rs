//! The jobserver activation API: the jobservers of the current stage (launched per substage, or
//! extern), and `run_transformation`, `cancel_transformation`, `transformation_status` over them.
//!
//! `run_transformation` uses the first active client; if it cannot be reached (a transport
//! failure after its own retry) the next one is tried. A failed or canceled job is the answer
//! and is returned at once. `cancel_transformation` asks every client; `transformation_status`
//! returns the first status that is not `not-running`.

use seamless_config::activation::{ActivationError, PerKey};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, RwLock};

use seamless_config::activation::{launch_keys, KeyScope};
pub use seamless_config::activation::{ActivateOptions, ExtraLaunched, LaunchKey};
use seamless_remote_core::Checksum;

use crate::client::{JobResult, JobStatus, JobserverClient, RunRequest};
use crate::error::JobserverError;

/// Produces launched jobserver clients (the seam the launcher fills).
pub trait JobserverLauncher: Send + Sync {
    /// The launched client for `key`.
    fn launched_client(&self, key: &LaunchKey) -> Result<JobserverClient, JobserverError>;

    /// The launched clients made so far, with the reference's inspection fields.
    fn inspect(&self) -> Vec<seamless_launcher::LaunchedClientInfo> {
        Vec::new()
    }
}

/// The active jobservers: a cheap, clonable value.
#[derive(Debug, Clone, Default)]
pub struct ActiveJobservers {
    clients: Vec<JobserverClient>,
}

/// The defined clients and the active set.
#[derive(Default)]
pub struct JobserverRemote {
    extern_clients: BTreeMap<String, JobserverClient>,
    launched: PerKey<JobserverClient>,
    launcher: Option<Arc<dyn JobserverLauncher>>,
    active: ActiveJobservers,
}

impl std::fmt::Debug for JobserverRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobserverRemote")
            .field(
                "extern_clients",
                &self.extern_clients.keys().collect::<Vec<_>>(),
            )
            .field("active", &self.active)
            .finish()
    }
}

impl JobserverRemote {
    /// Nothing defined, nothing active.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what produces launched clients.
    pub fn set_launcher(&mut self, launcher: Arc<dyn JobserverLauncher>) {
        self.launcher = Some(launcher);
    }

    /// Defines an extern `jobserver` client.
    pub fn define_extern_client(&mut self, name: &str, url: &str) -> Result<(), JobserverError> {
        self.extern_clients
            .insert(name.to_string(), JobserverClient::new(url)?);
        Ok(())
    }

    /// Defines an extern client from an existing client.
    pub fn define_extern(&mut self, name: &str, client: JobserverClient) {
        self.extern_clients.insert(name.to_string(), client);
    }

    /// Defines the launched client of a key.
    pub fn define_launched_client(&mut self, key: LaunchKey, client: JobserverClient) {
        self.launched.insert(key, client);
    }

    /// Computes and installs the active set (launched per substage; `readonly` plays no role).
    pub fn activate(&mut self, options: &ActivateOptions) -> Result<(), JobserverError> {
        let mut clients = Vec::new();
        let keys = launch_keys(options, KeyScope::Substage)?;
        for key in keys {
            let key = LaunchKey {
                readonly: false,
                ..key
            };
            let launcher = self.launcher.clone();
            let client = self.launched.get_or_make(
                &key,
                "jobserver",
                launcher.map(|l| move |k: &LaunchKey| l.launched_client(k)),
            )?;
            if !clients
                .iter()
                .any(|c: &JobserverClient| c.url() == client.url() && c.url().is_some())
            {
                clients.push(client);
            }
        }
        for name in &options.extern_clients {
            let c = self.extern_clients.get(name).ok_or_else(|| {
                JobserverError::from(ActivationError::UnknownExternClient {
                    service: "jobserver",
                    name: name.clone(),
                })
            })?;
            clients.push(c.clone());
        }
        self.active = ActiveJobservers { clients };
        Ok(())
    }

    /// The launched clients, with the reference's fields.
    pub fn inspect_launched_clients(&self) -> Vec<seamless_launcher::LaunchedClientInfo> {
        self.launcher
            .as_ref()
            .map(|l| l.inspect())
            .unwrap_or_default()
    }

    /// Deactivates every jobserver.
    pub fn deactivate(&mut self) {
        self.active = ActiveJobservers::default();
    }

    /// The active set.
    pub fn active(&self) -> ActiveJobservers {
        self.active.clone()
    }
}

fn none_available() -> JobserverError {
    ActivationError::NothingActive("No jobserver clients are available (activate a stage with 'remote: jobserver', or define an extern jobserver)").into()
}

impl ActiveJobservers {
    /// An active set from explicit clients.
    pub fn new(clients: Vec<JobserverClient>) -> Self {
        ActiveJobservers { clients }
    }

    /// The active clients, in order.
    pub fn clients(&self) -> &[JobserverClient] {
        &self.clients
    }

    /// Whether any jobserver is active.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Runs a transformation on the first reachable jobserver.
    pub async fn run_transformation(
        &self,
        request: &RunRequest,
    ) -> Result<JobResult, JobserverError> {
        let mut last = None;
        for c in &self.clients {
            match c.run_transformation(request).await {
                Err(JobserverError::Transport(e)) => {
                    tracing::warn!(error = %e, "jobserver unreachable, trying the next one");
                    last = Some(JobserverError::Transport(e));
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(none_available))
    }

    /// Asks every jobserver to cancel; whether any of them was running it.
    pub async fn cancel_transformation(&self, tf: &Checksum) -> Result<bool, JobserverError> {
        if self.clients.is_empty() {
            return Err(none_available());
        }
        let mut canceled = false;
        for c in &self.clients {
            canceled |= c.cancel_transformation(tf).await?;
        }
        Ok(canceled)
    }

    /// The first status that is not `not-running`.
    pub async fn transformation_status(&self, tf: &Checksum) -> Result<JobStatus, JobserverError> {
        if self.clients.is_empty() {
            return Err(none_available());
        }
        for c in &self.clients {
            let s = c.transformation_status(tf).await?;
            if s != JobStatus::NotRunning {
                return Ok(s);
            }
        }
        Ok(JobStatus::NotRunning)
    }
}

static GLOBAL: LazyLock<RwLock<JobserverRemote>> =
    LazyLock::new(|| RwLock::new(JobserverRemote::new()));

/// The process-wide jobserver activation state.
pub fn global() -> &'static RwLock<JobserverRemote> {
    &GLOBAL
}

/// The process-wide active set.
pub fn active() -> ActiveJobservers {
    GLOBAL.read().unwrap_or_else(|p| p.into_inner()).active()
}

/// Activates the process-wide state.
pub fn activate(options: &ActivateOptions) -> Result<(), JobserverError> {
    GLOBAL
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .activate(options)
}

/// Deactivates the process-wide state.
pub fn deactivate() {
    GLOBAL
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .deactivate()
}

/// [`ActiveJobservers::run_transformation`] on the process-wide state.
pub async fn run_transformation(request: &RunRequest) -> Result<JobResult, JobserverError> {
    active().run_transformation(request).await
}

/// [`ActiveJobservers::cancel_transformation`] on the process-wide state.
pub async fn cancel_transformation(tf: &Checksum) -> Result<bool, JobserverError> {
    active().cancel_transformation(tf).await
}

/// [`ActiveJobservers::transformation_status`] on the process-wide state.
pub async fn transformation_status(tf: &Checksum) -> Result<JobStatus, JobserverError> {
    active().transformation_status(tf).await
}

/// Defines an extern jobserver client on the process-wide state.
pub fn define_extern_client(name: &str, url: &str) -> Result<(), JobserverError> {
    GLOBAL
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .define_extern_client(name, url)
}
