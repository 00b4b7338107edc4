//! [`LaunchedService`]: the [`Initializer`] of a launched client.
//!
//! On a client's first request, and again after every restart (its service died, a request
//! failed to connect), the launcher runs: it reuses the running service (one handshake) or
//! launches a new one. So a service that dies while the process runs is relaunched on the next
//! request, through the retry loop's restart (the reference caches the first address forever).
//! The spec is rebuilt at each initialization, so a jobserver is relaunched when the
//! hashserver/database URLs in its parameters change.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use seamless_remote_core::BoxError;
use seamless_remote_core::Initializer;

use crate::spec::LaunchSpec;
use crate::{Connection, Launcher};

/// Builds the launch spec at each initialization.
pub type DescriptionSource = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<LaunchSpec, BoxError>> + Send>> + Send + Sync,
>;

/// A service started (or found) by the launcher on first use.
pub struct LaunchedService {
    source: DescriptionSource,
    launcher: Launcher,
    last: Mutex<Option<(LaunchSpec, Connection)>>,
}

impl std::fmt::Debug for LaunchedService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchedService")
            .field("last", &self.last())
            .finish()
    }
}

impl LaunchedService {
    /// A service with a fixed spec.
    pub fn new(desc: impl Into<LaunchSpec>, launcher: Launcher) -> Arc<Self> {
        let desc: LaunchSpec = desc.into();
        let source: DescriptionSource = Arc::new(move || {
            let d = desc.clone();
            Box::pin(async move { Ok(d) })
        });
        Self::dynamic(source, launcher)
    }

    /// A service whose spec is computed at each initialization.
    pub fn dynamic(source: DescriptionSource, launcher: Launcher) -> Arc<Self> {
        Arc::new(LaunchedService {
            source,
            launcher,
            last: Mutex::new(None),
        })
    }

    /// The launcher that starts it.
    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    /// The last spec launched and its connection, if any.
    pub fn last(&self) -> Option<(LaunchSpec, Connection)> {
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
