//! The launched database: the [`DatabaseLauncher`] that builds launched clients from the
//! configuration (`Config::database_launch`) and the launcher. Nothing starts before the
//! client's first request; a database that dies is relaunched on the next request.

use std::sync::Arc;

use seamless_config::Config;
use seamless_launcher::{LaunchedClientInfo, LaunchedService, LaunchedSet, Launcher};
use seamless_remote_core::{ClientOptions, RemoteClient};

use crate::client::{max_inflight_from_env, DatabaseClient};
use crate::error::DatabaseError;
use crate::remote::{DatabaseLauncher, LaunchKey};

/// Launched databases from a configuration.
pub struct ConfigDatabaseLauncher {
    config: Config,
    launcher: Launcher,
    options: ClientOptions,
    services: LaunchedSet,
}

impl std::fmt::Debug for ConfigDatabaseLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDatabaseLauncher")
            .finish_non_exhaustive()
    }
}

impl ConfigDatabaseLauncher {
    /// Launched databases of `config`, started by `launcher`, reached with `options`.
    pub fn new(config: Config, launcher: Launcher, options: ClientOptions) -> Arc<Self> {
        Arc::new(ConfigDatabaseLauncher {
            config,
            launcher,
            options,
            services: LaunchedSet::default(),
        })
    }
}

impl DatabaseLauncher for ConfigDatabaseLauncher {
    fn launched_client(&self, key: &LaunchKey) -> Result<DatabaseClient, DatabaseError> {
        let desc = self
            .config
            .database_launch(key.readonly, &key.selection, None)?;
        let service = LaunchedService::new(desc, self.launcher.clone());
        let remote = RemoteClient::with_initializer(service.clone(), self.options.clone())?;
        self.services.add(key, service);
        Ok(DatabaseClient::from_remote(
            remote,
            key.readonly,
            max_inflight_from_env(),
        ))
    }

    fn inspect(&self) -> Vec<LaunchedClientInfo> {
        self.services.inspect(false)
    }
}
