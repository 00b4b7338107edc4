//! The launched database: the launcher seam ([`crate::remote::DatabaseLauncher`]) that builds launched clients from the
//! configuration (`Config::database_launch`) and the launcher. Nothing starts before the
//! client's first request; a database that dies is relaunched on the next request.

use seamless_activation::{FromConfig, LaunchClients, LaunchedClientInfo};
use seamless_launcher::LaunchedService;

use crate::client::{default_max_inflight, DatabaseClient};
use crate::error::DatabaseError;
use crate::remote::LaunchKey;

/// Launched databases from a configuration: `ConfigDatabaseLauncher::new(config, launcher,
/// options)` (the shared [`FromConfig`], which implements the database seam here).
pub type ConfigDatabaseLauncher = FromConfig;

impl LaunchClients<DatabaseClient, DatabaseError> for FromConfig {
    fn launched_client(&self, key: &LaunchKey) -> Result<DatabaseClient, DatabaseError> {
        let desc = self
            .config()
            .database_launch(key.readonly, &key.selection, None)?;
        let service = LaunchedService::new(desc, self.launcher().clone());
        Ok(DatabaseClient::from_remote(
            self.client(key, service)?,
            key.readonly,
            default_max_inflight(),
        ))
    }

    fn inspect(&self) -> Vec<LaunchedClientInfo> {
        self.launched_info(false)
    }
}
