//! [`DaskserverLaunchedHandle`]: the daskserver of a stage and its Dask front, launched (or
//! reused) through our launcher, and the [`JobserverClient`] that talks to the front.
//!
//! Both are [`LaunchedService`]s. The front's description is computed at each initialization:
//! it first makes sure the daskserver runs (one `/health` handshake on its dashboard port, or a
//! launch), then derives the scheduler address and writes the front program on the daskserver's
//! host. So a front that died is relaunched on the next request (the client's restart), and a
//! daskserver that died is relaunched with it: the new scheduler address changes the front's
//! parameters, which makes the launcher replace the old front.

use std::sync::{Arc, Mutex};

use seamless_activation::LaunchClients;
use seamless_config::{Config, Current};
use seamless_jobserver_remote::launched::RemoteClientsSource;
use seamless_jobserver_remote::{JobserverClient, JobserverError};
use seamless_launcher::{DescriptionSource, LaunchError, LaunchSpec, LaunchedService, Launcher};
use seamless_remote_core::{BoxError, ClientOptions, RemoteClient};

use crate::error::DaskError;
use crate::front::{self, DaskInfo};
use crate::remote::LaunchKey;

/// The launched daskserver and Dask front of one selection.
pub struct DaskserverLaunchedHandle {
    selection: Current,
    daskserver: Arc<LaunchedService>,
    front: Arc<LaunchedService>,
    client: JobserverClient,
    launcher: Launcher,
    info: Arc<Mutex<Option<DaskInfo>>>,
    python: String,
}

impl std::fmt::Debug for DaskserverLaunchedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaskserverLaunchedHandle")
            .field("selection", &self.selection)
            .field("info", &self.info())
            .finish_non_exhaustive()
    }
}

impl DaskserverLaunchedHandle {
    /// The handle of `selection`'s daskserver (nothing is launched yet: see [`Self::ensure`]).
    /// `clients` gives the cluster's live hashserver/database clients, which the Seamless
    /// workers on Dask use. The front runs with [`front::python_from_settings`].
    pub fn new(
        config: &Config,
        selection: &Current,
        launcher: Launcher,
        options: ClientOptions,
        clients: RemoteClientsSource,
    ) -> Result<Arc<Self>, DaskError> {
        Self::with_python(
            config,
            selection,
            launcher,
            options,
            clients,
            front::python_from_settings(),
        )
    }

    /// As [`Self::new`], with the interpreter that runs the front on the daskserver's host.
    pub fn with_python(
        config: &Config,
        selection: &Current,
        launcher: Launcher,
        options: ClientOptions,
        clients: RemoteClientsSource,
        python: String,
    ) -> Result<Arc<Self>, DaskError> {
        let dask_desc = config.daskserver_launch(selection, None)?;
        let daskserver = LaunchedService::new(dask_desc.clone(), launcher.clone());
        let info: Arc<Mutex<Option<DaskInfo>>> = Arc::default();
        let source: DescriptionSource = {
            let (daskserver, info, launcher) = (daskserver.clone(), info.clone(), launcher.clone());
            let cluster = selection.cluster.clone();
            let python = python.clone();
            Arc::new(move || {
                let (daskserver, info, launcher) =
                    (daskserver.clone(), info.clone(), launcher.clone());
                let (clients, cluster, dask_desc, python) = (
                    clients.clone(),
                    cluster.clone(),
                    dask_desc.clone(),
                    python.clone(),
                );
                Box::pin(async move {
                    let conn = daskserver.ensure().await?;
                    let derived = DaskInfo::derive(&dask_desc, &conn);
                    let live = clients(cluster).await?;
                    let desc = front::description(&dask_desc, &derived, &live, &python);
                    let d = desc.clone();
                    tokio::task::spawn_blocking(move || {
                        launcher.install_file(
                            &d,
                            &front::program_path(),
                            front::FRONT_PROGRAM.as_bytes(),
                        )
                    })
                    .await
                    .map_err(|e| -> BoxError { e.to_string().into() })??;
                    *info.lock().unwrap_or_else(|p| p.into_inner()) = Some(derived);
                    Ok(desc)
                })
            })
        };
        let front = LaunchedService::dynamic(source, launcher.clone());
        // The front answers one request per transformation, for as long as it runs: allow
        // many at once (the retry policy and timeouts are the client's).
        let remote =
            RemoteClient::with_initializer(front.clone(), options).map_err(JobserverError::from)?;
        Ok(Arc::new(DaskserverLaunchedHandle {
            selection: selection.clone(),
            daskserver,
            front,
            client: JobserverClient::from_remote(remote),
            launcher,
            info,
            python,
        }))
    }

    /// Launches or reuses the daskserver and the front now; returns what the daskserver is.
    pub async fn ensure(&self) -> Result<DaskInfo, DaskError> {
        self.client
            .remote()
            .ensure_initialized()
            .await
            .map_err(|e| {
                // A failed launch is reported with the launcher's own message (the service
                // log), not as the connection failure that carries it.
                let launch = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<LaunchError>())
                    .map(LaunchError::to_string);
                let mut reason = launch.unwrap_or_else(|| e.to_string());
                if reason.contains("No module named") {
                    reason.push_str(&format!(
                        "\nThe Dask front runs with `{}` on the daskserver's host; it needs seamless-dask and distributed (set {} to such an interpreter).",
                        self.python,
                        seamless_activation::settings::DASK_PYTHON_ENV
                    ));
                }
                DaskError::Launch {
                    what: "Dask front".into(),
                    reason,
                }
            })?;
        self.info().ok_or_else(|| DaskError::Launch {
            what: "daskserver".into(),
            reason: "not launched".into(),
        })
    }

    /// The selection this handle serves.
    pub fn selection(&self) -> &Current {
        &self.selection
    }

    /// What the daskserver is, once launched.
    pub fn info(&self) -> Option<DaskInfo> {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The client of the front (the seamless-jobserver protocol).
    pub fn client(&self) -> &JobserverClient {
        &self.client
    }

    /// The daskserver's and the front's launch specs, once launched.
    pub fn descriptions(&self) -> (Option<LaunchSpec>, Option<LaunchSpec>) {
        (
            self.daskserver.last().map(|(d, _)| d),
            self.front.last().map(|(d, _)| d),
        )
    }

    /// Stops the front (blocking; the daskserver keeps running for other clients until its
    /// idle timeout), as the reference's `deactivate` closes its Dask client.
    pub fn stop_front(&self) {
        if let Some((desc, _)) = self.front.last() {
            self.launcher.stop_service(&desc);
        }
    }
}

/// Launched Dask handles from a configuration.
pub struct ConfigDaskserverLauncher {
    config: Config,
    launcher: Launcher,
    options: ClientOptions,
    clients: RemoteClientsSource,
}

impl std::fmt::Debug for ConfigDaskserverLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDaskserverLauncher")
            .finish_non_exhaustive()
    }
}

impl ConfigDaskserverLauncher {
    /// Handles of `config`; `clients` gives the live buffer/database clients of a cluster.
    pub fn new(
        config: Config,
        launcher: Launcher,
        options: ClientOptions,
        clients: RemoteClientsSource,
    ) -> Arc<Self> {
        Arc::new(ConfigDaskserverLauncher {
            config,
            launcher,
            options,
            clients,
        })
    }
}

impl LaunchClients<Arc<DaskserverLaunchedHandle>, DaskError> for ConfigDaskserverLauncher {
    fn launched_client(&self, key: &LaunchKey) -> Result<Arc<DaskserverLaunchedHandle>, DaskError> {
        DaskserverLaunchedHandle::new(
            &self.config,
            &key.selection,
            self.launcher.clone(),
            self.options.clone(),
            self.clients.clone(),
        )
    }
}
