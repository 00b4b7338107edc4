//! The launched hashserver: the [`BufferLauncher`] that builds launched clients from the
//! configuration (`Config::hashserver_launch`) and the launcher.
//!
//! A hashserver launched on this machine also serves as a read folder (its workdir), as in the
//! reference. Nothing starts before the client's first request; a hashserver that dies is
//! relaunched on the next request (see `LaunchedService`).

use std::sync::Arc;

use seamless_config::Config;
use seamless_launcher::{LaunchedClientInfo, LaunchedService, LaunchedSet, Launcher};
use seamless_remote_core::{ClientOptions, RemoteClient};

use crate::error::BufferError;
use crate::folder::BufferFolder;
use crate::remote::{BufferLauncher, LaunchKey, LaunchedBuffer};
use crate::BufferClient;

/// Launched hashservers from a configuration.
pub struct ConfigBufferLauncher {
    config: Config,
    launcher: Launcher,
    options: ClientOptions,
    services: LaunchedSet,
}

impl std::fmt::Debug for ConfigBufferLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigBufferLauncher")
            .finish_non_exhaustive()
    }
}

impl ConfigBufferLauncher {
    /// Launched hashservers of `config`, started by `launcher`, reached with `options`.
    pub fn new(config: Config, launcher: Launcher, options: ClientOptions) -> Arc<Self> {
        Arc::new(ConfigBufferLauncher {
            config,
            launcher,
            options,
            services: LaunchedSet::default(),
        })
    }
}

impl BufferLauncher for ConfigBufferLauncher {
    fn launched_client(&self, key: &LaunchKey) -> Result<LaunchedBuffer, BufferError> {
        let desc = self
            .config
            .hashserver_launch(key.readonly, &key.selection, None)?;
        let folder = desc
            .hostname
            .is_none()
            .then(|| BufferFolder::new(self.launcher.dirs().expand(&desc.workdir)));
        let service = LaunchedService::new(desc, self.launcher.clone());
        let remote = RemoteClient::with_initializer(service.clone(), self.options.clone())?;
        self.services.add(key, service);
        Ok(LaunchedBuffer {
            client: BufferClient::from_remote(remote, key.readonly),
            folder,
        })
    }

    fn inspect(&self) -> Vec<LaunchedClientInfo> {
        self.services.inspect(true)
    }
}
