//! The process's settings and launchers: the environment is read once (at import); the
//! configuration files are read when an activation first needs a launched service, from the
//! working directory that seamless_config uses.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use seamless_activation::{ActivateOptions, ExtraLaunched, Settings};
use seamless_config::{load, Current};

use crate::convert::error;

/// A selection from Python: `(cluster, project, subproject, stage, substage)`.
pub(crate) type PySelection = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

static CONFIGURED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Installs the settings of the environment (`SEAMLESS_*`), as the Rust programs do at start.
#[pyfunction]
fn install_settings() {
    Settings::from_env().install();
}

/// Marks this process as a Seamless worker (or not): the worker guard of the reference.
#[pyfunction]
fn set_is_worker(is_worker: bool) {
    seamless_remote_core::env::set_is_worker(is_worker);
}

/// Stops the keepalive and drops every client's idle connections; requests in flight finish on
/// the connections they hold (an upload is never cut), and the next request reconnects.
#[pyfunction]
fn close_all_clients() {
    seamless_remote_core::close_all();
}

/// Loads the configuration of `workdir` (once per directory) and sets the launchers of the
/// four services from it.
pub(crate) fn ensure_launchers(workdir: &str) -> PyResult<()> {
    let workdir = PathBuf::from(workdir);
    let mut configured = CONFIGURED.lock().unwrap_or_else(|p| p.into_inner());
    if configured.as_ref() == Some(&workdir) {
        return Ok(());
    }
    let settings = Settings::current();
    let config = load(&settings.load_options(&workdir)).map_err(error)?;
    let launcher = settings.launcher();
    let options = settings.client_options();
    seamless_buffer_remote::remote::set_launcher(
        seamless_buffer_remote::launched::ConfigBufferLauncher::new(
            config.clone(),
            launcher.clone(),
            options.clone(),
        ),
    );
    seamless_database_remote::remote::set_launcher(
        seamless_database_remote::launched::ConfigDatabaseLauncher::new(
            config.clone(),
            launcher.clone(),
            options.clone(),
        ),
    );
    let clients = seamless_jobserver_remote::launched::live_clients_process_wide();
    seamless_jobserver_remote::remote::set_launcher(
        seamless_jobserver_remote::launched::ConfigJobserverLauncher::new(
            config.clone(),
            launcher.clone(),
            options.clone(),
            clients.clone(),
        ),
    );
    seamless_daskserver_remote::remote::set_launcher(
        seamless_daskserver_remote::ConfigDaskserverLauncher::new(
            config, launcher, options, clients,
        ),
    );
    *configured = Some(workdir);
    Ok(())
}

fn current(sel: PySelection) -> PyResult<Current> {
    let (cluster, project, subproject, stage, substage) = sel;
    let need = |v: Option<String>, what: &str| {
        v.ok_or_else(|| {
            error(format!(
                "no {what} is selected (call seamless_config.init() or select a {what} first)"
            ))
        })
    };
    Ok(Current {
        cluster: need(cluster, "cluster")?,
        project: need(project, "project")?,
        subproject: subproject.filter(|s| !s.is_empty()),
        stage: stage.filter(|s| !s.is_empty()),
        substage: substage.filter(|s| !s.is_empty()),
    })
}

fn field(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<Option<String>>> {
    match d.get_item(key)? {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(Some(None)),
        Some(v) => Ok(Some(Some(v.extract::<String>()?))),
    }
}

/// The options of an `activate(...)` call; loads the configuration first when launched clients
/// are involved.
pub(crate) fn activate_options(
    readonly: bool,
    main: Option<PySelection>,
    extras: Vec<Bound<'_, PyDict>>,
    externs: Vec<String>,
    workdir: &str,
) -> PyResult<ActivateOptions> {
    if main.is_some() || !extras.is_empty() {
        ensure_launchers(workdir)?;
    }
    let mut extra_launched_clients = Vec::new();
    for d in &extras {
        extra_launched_clients.push(ExtraLaunched {
            readonly: d.get_item("readonly")?.map(|v| v.extract()).transpose()?,
            cluster: field(d, "cluster")?.flatten(),
            project: field(d, "project")?.flatten(),
            subproject: field(d, "subproject")?,
            stage: field(d, "stage")?,
            substage: field(d, "substage")?,
        });
    }
    Ok(ActivateOptions {
        readonly,
        main: main.map(current).transpose()?,
        extra_launched_clients,
        extern_clients: externs,
    })
}

/// Launched-client infos as Python dicts (the reference's fields).
pub(crate) fn launched_infos<'py>(
    py: Python<'py>,
    infos: Vec<seamless_activation::LaunchedClientInfo>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    infos
        .into_iter()
        .map(|i| {
            let d = PyDict::new(py);
            d.set_item("cluster", i.cluster)?;
            d.set_item("readonly", i.readonly)?;
            d.set_item("url", i.url)?;
            d.set_item("remote_url", i.remote_url)?;
            d.set_item("directory", i.directory)?;
            d.set_item("remote_directory", i.remote_directory)?;
            Ok(d)
        })
        .collect()
}

/// Extern-client infos as Python dicts.
pub(crate) fn extern_infos<'py>(
    py: Python<'py>,
    infos: Vec<seamless_activation::ExternClientInfo>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    infos
        .into_iter()
        .map(|i| {
            let d = PyDict::new(py);
            d.set_item("name", i.name)?;
            d.set_item("readonly", i.readonly)?;
            d.set_item("url", i.url)?;
            d.set_item("directory", i.directory)?;
            Ok(d)
        })
        .collect()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(install_settings, m)?)?;
    m.add_function(wrap_pyfunction!(set_is_worker, m)?)?;
    m.add_function(wrap_pyfunction!(close_all_clients, m)?)?;
    Ok(())
}
