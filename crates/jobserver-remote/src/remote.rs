//! The jobserver activation API: the jobservers of the current stage (launched per substage, or
//! extern), and `run_transformation`, `cancel_transformation`, `transformation_status` over them.
//!
//! `run_transformation` uses the first active client; if it cannot be reached (a transport
//! failure after its own retry) the next one is tried. A failed or canceled job is the answer
//! and is returned at once. `cancel_transformation` asks every client; `transformation_status`
//! returns the first status that is not `not-running`.

use seamless_activation::{launch_keys, ActivationError, ExternInfo, KeyScope};
pub use seamless_activation::{
    ActivateOptions, ExternClientInfo, ExtraLaunched, LaunchKey, LaunchedClientInfo,
};
use seamless_remote_core::Checksum;

use crate::client::{JobResult, JobStatus, JobserverClient, RunRequest};
use crate::error::JobserverError;

/// The active jobservers: a cheap, clonable value.
#[derive(Debug, Clone, Default)]
pub struct ActiveJobservers {
    clients: Vec<JobserverClient>,
}

impl ExternInfo for JobserverClient {
    fn extern_info(&self, name: &str) -> ExternClientInfo {
        ExternClientInfo {
            name: name.to_string(),
            readonly: false,
            url: self.url(),
            directory: None,
        }
    }
}

seamless_activation::activation_api! {
    remote: JobserverRemote,
    service: "jobserver",
    launched: JobserverClient,
    extern_client: JobserverClient,
    error: JobserverError,
    active: ActiveJobservers,
    launcher: JobserverLauncher,
}

impl JobserverRemote {
    /// Defines an extern `jobserver` client.
    pub fn define_extern_client(&mut self, name: &str, url: &str) -> Result<(), JobserverError> {
        self.define_extern(name, JobserverClient::new(url)?);
        Ok(())
    }

    /// Defines an extern client from an existing client.
    pub fn define_extern(&mut self, name: &str, client: JobserverClient) {
        self.clients.define_extern(name, client);
    }

    /// The active set that `options` select (launched per substage; `readonly` plays no role).
    fn activate_into(
        &mut self,
        options: &ActivateOptions,
    ) -> Result<ActiveJobservers, JobserverError> {
        let mut clients = Vec::new();
        let keys = launch_keys(options, KeyScope::Substage)?;
        for key in keys {
            let key = LaunchKey {
                readonly: false,
                ..key
            };
            let client = self.clients.launched(&key)?;
            if !clients
                .iter()
                .any(|c: &JobserverClient| c.url() == client.url() && c.url().is_some())
            {
                clients.push(client);
            }
        }
        for name in &options.extern_clients {
            let c = self.clients.extern_client(name)?;
            clients.push(c.clone());
        }
        Ok(ActiveJobservers { clients })
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

/// Defines an extern jobserver client on the process-wide state.
pub fn define_extern_client(name: &str, url: &str) -> Result<(), JobserverError> {
    global().write().define_extern_client(name, url)
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
