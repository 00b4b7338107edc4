//! The launched jobserver: the launcher seam ([`crate::remote::JobserverLauncher`]) that builds launched clients from the
//! configuration (`Config::jobserver_launch`) and the launcher.
//!
//! The jobserver learns where the hashserver and database are through its status file
//! (`file_parameters`, the reference's `collect_remote_clients`). Those are computed at each
//! initialization from the live clients ([`RemoteClientsSource`]), so a jobserver whose
//! parameters no longer match the live services is relaunched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use seamless_activation::{FromConfig, LaunchClients, LaunchedClientInfo};
use seamless_config::{Config, RemoteClients};
use seamless_launcher::{DescriptionSource, LaunchSpec, LaunchedService, Launcher};
use seamless_remote_core::{BoxError, ClientOptions};

use crate::client::JobserverClient;
use crate::error::JobserverError;
use crate::remote::LaunchKey;

/// Produces the live hashserver/database clients of a cluster (launching them if needed).
pub type RemoteClientsSource = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<RemoteClients, BoxError>> + Send>>
        + Send
        + Sync,
>;

/// Launched jobservers from a configuration.
pub struct ConfigJobserverLauncher {
    from: Arc<FromConfig>,
    clients: RemoteClientsSource,
}

impl std::fmt::Debug for ConfigJobserverLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConfigJobserverLauncher")
            .field(&self.from)
            .finish_non_exhaustive()
    }
}

impl ConfigJobserverLauncher {
    /// Launched jobservers of `config`; `clients` gives the live buffer/database clients that
    /// go into their parameters.
    pub fn new(
        config: Config,
        launcher: Launcher,
        options: ClientOptions,
        clients: RemoteClientsSource,
    ) -> Arc<Self> {
        let from = FromConfig::new(config, launcher, options);
        Arc::new(ConfigJobserverLauncher { from, clients })
    }
}

impl LaunchClients<JobserverClient, JobserverError> for ConfigJobserverLauncher {
    fn launched_client(&self, key: &LaunchKey) -> Result<JobserverClient, JobserverError> {
        let config = self.from.config().clone();
        let selection = key.selection.clone();
        let clients = self.clients.clone();
        // Fail now on a configuration that cannot give a jobserver.
        config.jobserver_launch(&selection, &RemoteClients::default(), None)?;
        let source: DescriptionSource = Arc::new(move || {
            let config = config.clone();
            let selection = selection.clone();
            let clients = clients.clone();
            Box::pin(async move {
                let live = clients(selection.cluster.clone()).await?;
                Ok(LaunchSpec::from(
                    config.jobserver_launch(&selection, &live, None)?,
                ))
            })
        });
        let service = LaunchedService::dynamic(source, self.from.launcher().clone());
        Ok(JobserverClient::from_remote(
            self.from.client(key, service)?,
        ))
    }

    fn inspect(&self) -> Vec<LaunchedClientInfo> {
        self.from.launched_info(false)
    }
}

/// The reference's `collect_remote_clients`: the launched hashserver and database of a cluster
/// (launched now if needed), as the jobserver's parameters.
pub fn live_clients(
    buffers: Arc<seamless_buffer_remote::BufferRemote>,
    databases: Arc<seamless_database_remote::DatabaseRemote>,
) -> RemoteClientsSource {
    live_clients_from(Arc::new(move || {
        (
            buffers.active().read_servers().to_vec(),
            buffers.inspect_launched_clients(),
            databases.active().read_servers().to_vec(),
            databases.inspect_launched_clients(),
        )
    }))
}

/// [`live_clients`] of the process-wide buffer and database state.
pub fn live_clients_process_wide() -> RemoteClientsSource {
    live_clients_from(Arc::new(|| {
        let (b, d) = (
            seamless_buffer_remote::remote::global().read(),
            seamless_database_remote::remote::global().read(),
        );
        (
            b.active().read_servers().to_vec(),
            b.inspect_launched_clients(),
            d.active().read_servers().to_vec(),
            d.inspect_launched_clients(),
        )
    }))
}

type Snapshot = Arc<
    dyn Fn() -> (
            Vec<seamless_buffer_remote::BufferClient>,
            Vec<LaunchedClientInfo>,
            Vec<seamless_database_remote::DatabaseClient>,
            Vec<LaunchedClientInfo>,
        ) + Send
        + Sync,
>;

fn live_clients_from(snapshot: Snapshot) -> RemoteClientsSource {
    Arc::new(move |cluster: String| {
        let snapshot = snapshot.clone();
        Box::pin(async move {
            let (buffers, _, databases, _) = snapshot();
            for s in &buffers {
                s.remote().ensure_initialized().await?;
            }
            for s in &databases {
                s.remote().ensure_initialized().await?;
            }
            let (_, buffer_infos, _, database_infos) = snapshot();
            let pick = |infos: Vec<LaunchedClientInfo>| {
                infos
                    .into_iter()
                    .filter(|i| i.cluster == cluster)
                    .map(|i| i.entry())
                    .collect::<Vec<_>>()
            };
            Ok(seamless_config::RemoteClients {
                buffer: pick(buffer_infos),
                database: pick(database_infos),
                record: None,
            })
        })
    })
}
