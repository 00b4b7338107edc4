//! [`FromConfig`]: what every service crate's `Config*Launcher` holds and does.

use std::sync::Arc;

use seamless_config::activation::LaunchKey;
use seamless_config::Config;
use seamless_launcher::{LaunchedService, Launcher};
use seamless_remote_core::{ClientOptions, RemoteClient, TransportError};

use crate::{LaunchedClientInfo, LaunchedSet};

/// Launched clients of one service from a configuration: the configuration (which gives the
/// launch descriptions), the launcher, the client options, and the services made so far. The
/// hashserver and database crates implement their launcher seam on it directly
/// (`ConfigBufferLauncher`, `ConfigDatabaseLauncher` are this type).
pub struct FromConfig {
    config: Config,
    launcher: Launcher,
    options: ClientOptions,
    services: LaunchedSet,
}

impl std::fmt::Debug for FromConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromConfig")
            .field("launcher", &self.launcher)
            .finish_non_exhaustive()
    }
}

impl FromConfig {
    /// Services of `config`, started by `launcher`, reached with `options`.
    pub fn new(config: Config, launcher: Launcher, options: ClientOptions) -> Arc<Self> {
        Arc::new(FromConfig {
            config,
            launcher,
            options,
            services: LaunchedSet::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The launcher.
    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    /// The client options.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// A client of `service` for `key`: the launcher runs on its first request (and after a
    /// restart); the service is recorded for inspection.
    pub fn client(
        &self,
        key: &LaunchKey,
        service: Arc<LaunchedService>,
    ) -> Result<RemoteClient, TransportError> {
        let remote = RemoteClient::with_initializer(service.clone(), self.options.clone())?;
        self.services.add(key, service);
        Ok(remote)
    }

    /// The services made so far (`with_directories` for hashservers).
    pub fn launched_info(&self, with_directories: bool) -> Vec<LaunchedClientInfo> {
        self.services.inspect(with_directories)
    }
}
