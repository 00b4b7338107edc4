//! The launched hashserver: the launcher seam ([`crate::remote::BufferLauncher`]) that builds launched clients from the
//! configuration (`Config::hashserver_launch`) and the launcher.
//!
//! A hashserver launched on this machine also serves as a read folder (its workdir), as in the
//! reference. Nothing starts before the client's first request; a hashserver that dies is
//! relaunched on the next request (see `LaunchedService`).

use seamless_activation::{FromConfig, LaunchClients, LaunchedClientInfo};
use seamless_launcher::LaunchedService;

use crate::error::BufferError;
use crate::folder::BufferFolder;
use crate::remote::{LaunchKey, LaunchedBuffer};
use crate::BufferClient;

/// Launched hashservers from a configuration: `ConfigBufferLauncher::new(config, launcher,
/// options)` (the shared [`FromConfig`], which implements the hashserver seam here).
pub type ConfigBufferLauncher = FromConfig;

impl LaunchClients<LaunchedBuffer, BufferError> for FromConfig {
    fn launched_client(&self, key: &LaunchKey) -> Result<LaunchedBuffer, BufferError> {
        let desc = self
            .config()
            .hashserver_launch(key.readonly, &key.selection, None)?;
        let folder = desc
            .hostname
            .is_none()
            .then(|| BufferFolder::new(self.launcher().dirs().expand(&desc.workdir)));
        let service = LaunchedService::new(desc, self.launcher().clone());
        Ok(LaunchedBuffer {
            client: BufferClient::from_remote(self.client(key, service)?, key.readonly),
            folder,
        })
    }

    fn inspect(&self) -> Vec<LaunchedClientInfo> {
        self.launched_info(true)
    }
}
