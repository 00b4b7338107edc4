//! Which stores a run uses: the extern clients of `SEAMLESS_REMOTE_CLIENTS`, or the launched
//! services of the configuration in the current directory (or `SEAMLESS_CACHE`).

use std::sync::Arc;

use seamless_activation::Settings;
use seamless_buffer_remote::launched::ConfigBufferLauncher;
use seamless_buffer_remote::remote::{ActivateOptions, BufferRemote};
use seamless_buffer_remote::{ActiveBuffers, BufferClient, BufferError, BufferFolder};
use seamless_config::env::ClientSource;
use seamless_config::{load, Delegation, LoadOptions, Remote, RemoteClients};
use seamless_daskserver_remote::DaskserverLaunchedHandle;
use seamless_database_remote::launched::ConfigDatabaseLauncher;
use seamless_database_remote::{ActiveDatabases, DatabaseClient, DatabaseRemote};
use seamless_jobserver_remote::launched::{live_clients, ConfigJobserverLauncher};
use seamless_jobserver_remote::{ActiveJobservers, JobserverRemote};
use seamless_remote_core::{ClientOptions, TransportErrorKind};

use crate::args::{split_pair, Args};
use crate::exit::{CliError, Code};

/// Which program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `seamless-resolve`: buffers only.
    Resolve,
    /// `seamless-fingertip`: buffers, databases, and the stage's execution backend.
    Fingertip,
}

impl Tool {
    fn verb(self) -> &'static str {
        match self {
            Tool::Resolve => "resolve",
            Tool::Fingertip => "fingertip",
        }
    }
}

/// The stores of a run.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    /// Buffer stores.
    pub buffers: ActiveBuffers,
    /// Databases (fingertip only).
    pub databases: ActiveDatabases,
    /// The stage's jobservers (fingertip with `execution: remote`, `remote: jobserver`), or
    /// the Dask front of the stage's daskserver (`remote: daskserver`).
    pub jobservers: ActiveJobservers,
    /// Where the stores come from, for messages.
    pub source: String,
}

/// Maps a buffer error to what the user reads and the exit code.
pub fn buffer_error(e: BufferError) -> CliError {
    let code = match &e {
        e if e.is_integrity() => Code::Integrity,
        BufferError::Output { .. } => Code::Output,
        BufferError::Setup(_) => Code::NoStore,
        BufferError::Transport(t) => transport_code(t),
        BufferError::Io { .. } | BufferError::Malformed { .. } | BufferError::Partial { .. } => {
            Code::Unreachable
        }
        _ => Code::Other,
    };
    let message = match (code, &e) {
        (Code::Unreachable, BufferError::Transport(_)) => {
            format!("cannot reach a buffer store: {e}")
        }
        (Code::Unreachable, _) => format!("a buffer store failed: {e}"),
        (_, BufferError::Transport(t)) => transport_message(t),
        _ => e.to_string(),
    };
    CliError::new(code, message)
}

/// The exit code of a transport failure: the configuration's fault (a bad URL, a service that
/// cannot be launched, a worker process) is 5; a peer's (unreachable, not HTTP, too large an
/// answer) is 6.
pub fn transport_code(t: &seamless_remote_core::TransportError) -> Code {
    match t.kind() {
        TransportErrorKind::InvalidUrl
        | TransportErrorKind::Launch
        | TransportErrorKind::WorkerForbidden => Code::NoStore,
        _ => Code::Unreachable,
    }
}

/// A launch failure as the user reads it: the launcher's own message, once.
pub fn launch_message(t: &seamless_remote_core::TransportError) -> String {
    match std::error::Error::source(t) {
        Some(source) => format!("cannot launch a service: {source}"),
        None => t.to_string(),
    }
}

/// A transport failure as the user reads it (a launch failure: the launcher's message).
pub fn transport_message(t: &seamless_remote_core::TransportError) -> String {
    match t.kind() {
        TransportErrorKind::Launch => launch_message(t),
        _ => t.to_string(),
    }
}

/// Client options of a one-shot program: no healthcheck before the first request (the request
/// itself reports an unreachable store; a long-lived process keeps the healthcheck).
pub(crate) fn options() -> ClientOptions {
    ClientOptions {
        healthcheck: false,
        ..ClientOptions::default()
    }
}

/// Sets up the stores of `tool` from the environment and the arguments.
pub fn setup(tool: Tool, args: &Args) -> Result<Stores, CliError> {
    let project = args
        .project
        .as_deref()
        .map(|p| split_pair(p, "--project"))
        .transpose()?;
    let stage = args
        .stage
        .as_deref()
        .map(|s| split_pair(s, "--stage"))
        .transpose()?;
    let settings = Settings::current();
    let source = settings
        .client_source()
        .map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
    match source {
        ClientSource::RemoteClients(rc) => {
            if project.is_some() || stage.is_some() {
                eprintln!("note: --project/--stage have no effect: SEAMLESS_REMOTE_CLIENTS defines the stores");
            }
            from_remote_clients(tool, &rc, &settings)
        }
        ClientSource::ConfigFiles => {
            let cwd =
                std::env::current_dir().map_err(|e| CliError::new(Code::Other, e.to_string()))?;
            let mut opts = settings.load_options(cwd);
            if let Some((p, sub)) = project {
                opts.project = Some(p);
                opts.subproject = sub;
            }
            if let Some((s, sub)) = stage {
                opts.stage = Some(s);
                opts.substage = sub;
            }
            from_config(tool, &opts)
        }
    }
}

fn from_remote_clients(
    tool: Tool,
    rc: &RemoteClients,
    settings: &Settings,
) -> Result<Stores, CliError> {
    let bad = |e: seamless_config::ConfigError| CliError::new(Code::NoStore, e.to_string());
    let mut folders = Vec::new();
    let mut servers = Vec::new();
    let mut writers = Vec::new();
    for s in rc.buffer_stores(settings.home.as_deref()).map_err(bad)? {
        if let Some(d) = s.directory {
            folders.push(BufferFolder::new(d));
        }
        if let Some(u) = s.url {
            let c = BufferClient::with_options(&u, s.readonly, options()).map_err(buffer_error)?;
            if !s.readonly {
                writers.push(c.clone());
            }
            servers.push(c);
        }
    }
    let mut stores = Stores {
        buffers: ActiveBuffers::new(folders, servers, writers),
        source: "SEAMLESS_REMOTE_CLIENTS".into(),
        ..Stores::default()
    };
    if tool == Tool::Fingertip {
        let (mut read, mut write) = (Vec::new(), Vec::new());
        for d in rc.database_stores().map_err(bad)? {
            let c = DatabaseClient::with_options(
                &d.url,
                d.readonly,
                options(),
                settings.database_max_inflight,
            )
            .map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
            if !d.readonly {
                write.push(c.clone());
            }
            read.push(c);
        }
        stores.databases = ActiveDatabases::new(read, write);
    }
    Ok(stores)
}

fn from_config(tool: Tool, opts: &LoadOptions) -> Result<Stores, CliError> {
    let cfg = load(opts).map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
    let verb = tool.verb();
    if cfg.cluster.is_none() {
        return Err(CliError::new(
            Code::NoStore,
            format!("Cannot {verb} without a cluster defined\n(set SEAMLESS_REMOTE_CLIENTS, or run in a project directory whose seamless.yaml / seamless.profile.yaml selects a cluster)"),
        ));
    }
    let current = cfg
        .current()
        .map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
    let delegation = match tool {
        Tool::Resolve => cfg.resolve_plan().map(|(d, _)| d),
        Tool::Fingertip => cfg.delegation(),
    }
    .map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
    if matches!(delegation, Delegation::InProcess | Delegation::PureDask) {
        return Err(CliError::new(
            Code::NoStore,
            format!("Cannot {verb}: the configuration selects no persistent buffer store (persistent: false)"),
        ));
    }
    let launcher = crate::progress::launcher();
    let activate = ActivateOptions {
        readonly: false,
        main: Some(current.clone()),
        ..ActivateOptions::default()
    };
    let mut buffers = BufferRemote::new();
    buffers.set_launcher(ConfigBufferLauncher::new(
        cfg.clone(),
        launcher.clone(),
        options(),
    ));
    buffers.activate(&activate).map_err(buffer_error)?;
    let mut stores = Stores {
        buffers: buffers.active(),
        source: format!(
            "the '{}' cluster of the project configuration",
            current.cluster
        ),
        ..Stores::default()
    };
    if tool == Tool::Resolve {
        return Ok(stores);
    }
    let mut databases = DatabaseRemote::new();
    databases.set_launcher(ConfigDatabaseLauncher::new(
        cfg.clone(),
        launcher.clone(),
        options(),
    ));
    databases
        .activate(&activate)
        .map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
    stores.databases = databases.active();
    if delegation == Delegation::Remote(Remote::Daskserver) {
        // The Dask front speaks the jobserver protocol: it is launched (with the daskserver)
        // only if a recomputation is needed.
        let clients = live_clients(Arc::new(buffers), Arc::new(databases));
        let handle = DaskserverLaunchedHandle::new(&cfg, &current, launcher, options(), clients)
            .map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
        stores.jobservers = ActiveJobservers::new(vec![handle.client().clone()]);
    } else if delegation == Delegation::Remote(Remote::Jobserver) {
        let clients = live_clients(Arc::new(buffers), Arc::new(databases));
        let mut jobs = JobserverRemote::new();
        jobs.set_launcher(ConfigJobserverLauncher::new(
            cfg,
            launcher,
            options(),
            clients,
        ));
        jobs.activate(&seamless_jobserver_remote::remote::ActivateOptions {
            main: Some(current),
            ..Default::default()
        })
        .map_err(|e| CliError::new(Code::NoStore, e.to_string()))?;
        stores.jobservers = jobs.active();
    }
    Ok(stores)
}
