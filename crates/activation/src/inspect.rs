//! [`LaunchedClientInfo`] and [`LaunchedSet`]: what `inspect_launched_clients` reports.

use std::sync::{Arc, Mutex};

use seamless_config::activation::LaunchKey;
use seamless_launcher::LaunchedService;

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

    /// The info of `service` (`with_directories` for a hashserver: its workdir is its buffer
    /// directory); URLs and directories stay empty until it was launched.
    pub fn of(
        service: &LaunchedService,
        key: &LaunchKey,
        with_directories: bool,
    ) -> LaunchedClientInfo {
        let readonly = key.readonly;
        let (url, remote_url, directory, remote_directory) = match service.last() {
            None => (None, None, None, None),
            Some((spec, conn)) => {
                let port = conn.port_named("tunneled-port").unwrap_or(conn.port);
                let host = spec
                    .hostname
                    .clone()
                    .unwrap_or_else(|| conn.hostname.clone());
                let local = spec.hostname.is_none();
                (
                    Some(conn.url()),
                    Some(format!("http://{host}:{port}")),
                    (with_directories && local)
                        .then(|| service.launcher().dirs().expand(&spec.workdir)),
                    (with_directories && !readonly).then(|| spec.workdir.clone()),
                )
            }
        };
        LaunchedClientInfo {
            cluster: key.selection.cluster.clone(),
            readonly,
            url,
            remote_url,
            directory,
            remote_directory,
        }
    }
}

/// The launched services made for one service crate, by key (what `inspect_launched_clients`
/// lists).
#[derive(Default)]
pub struct LaunchedSet {
    services: Mutex<Vec<(LaunchKey, Arc<LaunchedService>)>>,
}

impl std::fmt::Debug for LaunchedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchedSet").finish_non_exhaustive()
    }
}

impl LaunchedSet {
    /// Records the service of `key`.
    pub fn add(&self, key: &LaunchKey, service: Arc<LaunchedService>) {
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
            .map(|(k, s)| LaunchedClientInfo::of(s, k, with_directories))
            .collect()
    }
}
