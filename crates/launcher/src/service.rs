//! [`LaunchedService`]: the [`Initializer`] of a launched client.
//!
//! On a client's first request, and again after every restart (its service died, a request
//! failed to connect), the launcher runs: it reuses the running service (one handshake) or
//! launches a new one. So a service that dies while the process runs is relaunched on the next
//! request, through the retry loop's restart (the reference caches the first address forever).
//! The description is rebuilt at each initialization, so a jobserver is relaunched when the
//! hashserver/database URLs in its parameters change.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use seamless_config::LaunchDescription;
use seamless_remote_core::BoxError;
use seamless_remote_core::Initializer;

use super::{Connection, Launcher};

/// Builds the launch description at each initialization.
pub type DescriptionSource = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<LaunchDescription, BoxError>> + Send>>
        + Send
        + Sync,
>;

/// A service started (or found) by the launcher on first use.
pub struct LaunchedService {
    source: DescriptionSource,
    launcher: Launcher,
    last: Mutex<Option<(LaunchDescription, Connection)>>,
}

impl std::fmt::Debug for LaunchedService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchedService")
            .field("last", &self.last())
            .finish()
    }
}

impl LaunchedService {
    /// A service with a fixed description.
    pub fn new(desc: LaunchDescription, launcher: Launcher) -> Arc<Self> {
        let source: DescriptionSource = Arc::new(move || {
            let d = desc.clone();
            Box::pin(async move { Ok(d) })
        });
        Self::dynamic(source, launcher)
    }

    /// A service whose description is computed at each initialization.
    pub fn dynamic(source: DescriptionSource, launcher: Launcher) -> Arc<Self> {
        Arc::new(LaunchedService {
            source,
            launcher,
            last: Mutex::new(None),
        })
    }

    /// The last description launched and its connection, if any.
    pub fn last(&self) -> Option<(LaunchDescription, Connection)> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs the launcher now (blocking work on a blocking thread); returns the connection.
    pub async fn ensure(&self) -> Result<Connection, BoxError> {
        let desc = (self.source)().await?;
        let launcher = self.launcher.clone();
        let d = desc.clone();
        let conn = tokio::task::spawn_blocking(move || launcher.run(&d))
            .await
            .map_err(|e| -> BoxError { format!("launcher task failed: {e}").into() })??;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((desc, conn.clone()));
        Ok(conn)
    }
}

impl Initializer for LaunchedService {
    fn init(&self) -> Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send + '_>> {
        Box::pin(async move { Ok(self.ensure().await?.url()) })
    }
}

/// What `inspect_launched_clients` reports for one launched client (the reference's fields);
/// also the entry the jobserver receives in its `file_parameters`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LaunchedClientInfo {
    /// The cluster.
    pub cluster: String,
    /// Read-only.
    pub readonly: bool,
    /// URL from this machine.
    pub url: Option<String>,
    /// URL from inside the cluster.
    pub remote_url: Option<String>,
    /// Buffer directory readable from this machine (local hashservers).
    pub directory: Option<String>,
    /// Buffer directory on the service's host (writable hashservers).
    pub remote_directory: Option<String>,
}

impl LaunchedClientInfo {
    /// As a `SEAMLESS_REMOTE_CLIENTS` / jobserver-parameters entry.
    pub fn entry(&self) -> seamless_config::RemoteClientEntry {
        seamless_config::RemoteClientEntry {
            readonly: Some(self.readonly),
            url: self.url.clone(),
            remote_url: self.remote_url.clone(),
            directory: self.directory.clone(),
            remote_directory: self.remote_directory.clone(),
        }
    }
}

impl LaunchedService {
    /// The inspection info of this service (`with_directories` for a hashserver), once launched.
    pub fn info(
        &self,
        cluster: &str,
        readonly: bool,
        with_directories: bool,
    ) -> LaunchedClientInfo {
        let last = self.last();
        let (url, remote_url, directory, remote_directory) = match &last {
            None => (None, None, None, None),
            Some((desc, conn)) => {
                let port = conn.port_named("tunneled-port").unwrap_or(conn.port);
                let host = desc
                    .hostname
                    .clone()
                    .unwrap_or_else(|| conn.hostname.clone());
                let local = desc.hostname.is_none();
                (
                    Some(conn.url()),
                    Some(format!("http://{host}:{port}")),
                    (with_directories && local).then(|| self.launcher.dirs().expand(&desc.workdir)),
                    (with_directories && !readonly).then(|| desc.workdir.clone()),
                )
            }
        };
        LaunchedClientInfo {
            cluster: cluster.to_string(),
            readonly,
            url,
            remote_url,
            directory,
            remote_directory,
        }
    }
}

/// The launched services that a launcher made, by key (what `inspect_launched_clients` lists).
#[derive(Default)]
pub struct LaunchedSet {
    services: Mutex<Vec<(seamless_config::activation::LaunchKey, Arc<LaunchedService>)>>,
}

impl std::fmt::Debug for LaunchedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchedSet").finish_non_exhaustive()
    }
}

impl LaunchedSet {
    /// Records the service of `key`.
    pub fn add(&self, key: &seamless_config::activation::LaunchKey, service: Arc<LaunchedService>) {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key.clone(), service));
    }

    /// The inspection info of every service (`with_directories` for hashservers).
    pub fn inspect(&self, with_directories: bool) -> Vec<LaunchedClientInfo> {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, s)| s.info(&k.selection.cluster, k.readonly, with_directories))
            .collect()
    }
}
