//! The Dask activation API (the reference's `daskserver_remote.activate/deactivate`): the Dask
//! handle of the current stage becomes the process's execution backend, and
//! `run_transformation`, `transformation_status`, `cancel_transformation` and [`submit`] go to
//! its front.
//!
//! `activate` launches or reuses the daskserver and the front at once and returns its
//! [`DaskInfo`] (the program shows `Dask dashboard: <url>`); `deactivate` stops our front (the daskserver stays for other
//! clients until its idle timeout) and leaves no backend active.

use std::sync::Arc;

use seamless_activation::{launch_keys, Clients, Global, KeyScope, LaunchClients};
pub use seamless_activation::{ActivateOptions, LaunchKey};
use seamless_buffer_remote::ActiveBuffers;
use seamless_database_remote::ActiveDatabases;
use seamless_jobserver_remote::{JobResult, JobStatus, RunRequest};
use seamless_remote_core::Checksum;

use crate::error::DaskError;
use crate::front::DaskInfo;
use crate::launched::DaskserverLaunchedHandle;
use crate::submit::Submission;

/// What produces launched Dask handles (the seam the launcher fills; nothing is launched
/// before [`DaskserverLaunchedHandle::ensure`]).
pub type DaskserverLauncher = dyn LaunchClients<Arc<DaskserverLaunchedHandle>, DaskError>;

/// The handles made so far and the active one (Dask has no extern clients).
pub struct DaskserverRemote {
    handles: Clients<Arc<DaskserverLaunchedHandle>, (), DaskError>,
    active: Option<Arc<DaskserverLaunchedHandle>>,
}

impl Default for DaskserverRemote {
    fn default() -> Self {
        DaskserverRemote {
            handles: Clients::new("daskserver"),
            active: None,
        }
    }
}

impl std::fmt::Debug for DaskserverRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaskserverRemote")
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl DaskserverRemote {
    /// Nothing defined, nothing active.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what produces launched handles.
    pub fn set_launcher(&mut self, launcher: Arc<DaskserverLauncher>) {
        self.handles.set_launcher(launcher);
    }

    /// The handle that `options` selects (made now if needed; not launched). Dask has one
    /// backend per stage: only the main selection counts, and read-only plays no role.
    pub fn handle_for(
        &mut self,
        options: &ActivateOptions,
    ) -> Result<Option<Arc<DaskserverLaunchedHandle>>, DaskError> {
        let main_only = ActivateOptions {
            main: options.main.clone(),
            ..ActivateOptions::default()
        };
        let Some(key) = launch_keys(&main_only, KeyScope::Substage)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let key = LaunchKey {
            readonly: false,
            ..key
        };
        self.handles.launched(&key).map(Some)
    }

    /// Makes `handle` the active backend.
    pub fn set_active(&mut self, handle: Option<Arc<DaskserverLaunchedHandle>>) {
        self.active = handle;
    }

    /// The active handle.
    pub fn active(&self) -> Option<Arc<DaskserverLaunchedHandle>> {
        self.active.clone()
    }
}

// The process-wide layer (what the Python callers use): the same functions as in the other
// service crates where Dask has them, each a thin layer over `DaskserverRemote` above.

static GLOBAL: Global<DaskserverRemote> = Global::new();

fn global_write() -> std::sync::RwLockWriteGuard<'static, DaskserverRemote> {
    GLOBAL.write()
}

/// The process-wide Dask state.
pub fn global() -> &'static Global<DaskserverRemote> {
    &GLOBAL
}

/// Sets the process-wide launcher.
pub fn set_launcher(launcher: Arc<DaskserverLauncher>) {
    global_write().set_launcher(launcher);
}

/// The active handle of the process.
pub fn active() -> Option<Arc<DaskserverLaunchedHandle>> {
    GLOBAL.read().active()
}

fn active_or_err() -> Result<Arc<DaskserverLaunchedHandle>, DaskError> {
    active().ok_or(DaskError::NotActive)
}

/// Activates the Dask backend of `options.main` (no main: nothing, as the reference's
/// `no_main=True`): launches or reuses the daskserver and the front and makes the handle the
/// process's backend. Returns what the daskserver is ([`DaskInfo::dashboard_line`] is the
/// reference's `Dask dashboard: <url>`, for the program to show; it is also a `tracing` event).
pub async fn activate(options: &ActivateOptions) -> Result<Option<DaskInfo>, DaskError> {
    let handle = global_write().handle_for(options)?;
    let Some(handle) = handle else {
        return Ok(None);
    };
    let info = handle.ensure().await?;
    tracing::info!(target: "seamless_dask", "{}", info.dashboard_line());
    global_write().set_active(Some(handle));
    Ok(Some(info))
}

/// Deactivates: stops our front (blocking, a few seconds at most) and leaves no backend.
pub fn deactivate() {
    let old = global_write().active.take();
    if let Some(h) = old {
        h.stop_front();
    }
}

/// Runs a transformation on the active backend (the front's `/run-transformation`).
pub async fn run_transformation(request: &RunRequest) -> Result<JobResult, DaskError> {
    Ok(active_or_err()?
        .client()
        .run_transformation(request)
        .await?)
}

/// A transformation's status on the active backend.
pub async fn transformation_status(tf: &Checksum) -> Result<JobStatus, DaskError> {
    Ok(active_or_err()?.client().transformation_status(tf).await?)
}

/// Cancels a transformation on the active backend; whether it was running.
pub async fn cancel_transformation(tf: &Checksum) -> Result<bool, DaskError> {
    Ok(active_or_err()?.client().cancel_transformation(tf).await?)
}

/// [`crate::submit::submit`] on the active backend.
pub async fn submit(
    submission: &Submission,
    buffers: &ActiveBuffers,
    databases: &ActiveDatabases,
) -> Result<Checksum, DaskError> {
    crate::submit::submit(active_or_err()?.client(), submission, buffers, databases).await
}
