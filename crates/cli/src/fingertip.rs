//! Fingertip: when a buffer is found nowhere, recompute it from a transformation known to
//! produce it.
//!
//! For each transformation that the databases know produces the checksum
//! (`rev_transformations`, duplicates removed): get its transformation dict (itself fingertipped
//! if missing), make sure its inputs are available (fingertipped if missing; depth-limited and
//! cycle-safe), have it recomputed, and accept the result only if its checksum is the requested
//! one. Recomputation goes to the stage's jobserver when one is configured; otherwise to a
//! temporary `seamless-jobserver` from PATH, pointed at the configured stores through its status
//! file (with a temporary writable hashserver when no store is writable), stopped afterwards.
//! The result is written to the buffer store and recorded in the writable databases, so that a
//! later resolve finds it.

use std::collections::HashSet;
use std::path::PathBuf;

use bytes::Bytes;
use seamless_buffer_remote::trivial::trivial_buffer;
use seamless_buffer_remote::BufferClient;
use seamless_config::Service;
use seamless_jobserver_remote::{JobserverClient, JobserverError, RunRequest};
use seamless_launcher::{LaunchSpec, LaunchedService, Launcher};
use seamless_remote_core::{Checksum, RemoteClient};
use serde_json::{json, Value};

use crate::exit::{CliError, Code};
use crate::stores::{buffer_error, Stores};

/// How deep inputs and transformation dicts are fingertipped.
pub const MAX_DEPTH: usize = 8;

/// The most candidate transformations tried in one fingertip run, all depths together (a
/// database that answers thousands of candidates does not make us send thousands of requests).
pub const MAX_CANDIDATES: usize = 100;

/// Finds or recomputes `checksum`.
pub async fn fingertip(stores: &Stores, checksum: &Checksum) -> Result<Option<Bytes>, CliError> {
    let mut backend = Backend::default();
    let mut visiting = HashSet::new();
    // The local jobserver, if one was used, keeps running for the next fingertip (until its
    // inactivity timeout).
    find(stores, checksum, 0, &mut visiting, &mut backend).await
}

fn find<'a>(
    stores: &'a Stores,
    checksum: &'a Checksum,
    depth: usize,
    visiting: &'a mut HashSet<Checksum>,
    backend: &'a mut Backend,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Bytes>, CliError>> + 'a>> {
    Box::pin(async move {
        if let Some(b) = trivial_buffer(checksum) {
            return Ok(Some(b));
        }
        if let Some(b) = stores
            .buffers
            .get_buffer(checksum)
            .await
            .map_err(buffer_error)?
        {
            return Ok(Some(b));
        }
        if depth > MAX_DEPTH || !visiting.insert(*checksum) {
            return Ok(None);
        }
        let candidates = stores
            .databases
            .get_rev_transformations(checksum)
            .await
            .map_err(|e| match &e {
                seamless_database_remote::DatabaseError::Transport(t) => CliError::new(
                    crate::stores::transport_code(t),
                    format!(
                        "cannot ask the database which transformation produces {checksum}: {}",
                        crate::stores::transport_message(t)
                    ),
                ),
                _ => CliError::new(
                    Code::Unreachable,
                    format!(
                        "cannot ask the database which transformation produces {checksum}: {e}"
                    ),
                ),
            })?
            .unwrap_or_default();
        tracing::info!(%checksum, candidates = candidates.len(), "fingertip");
        for tf in candidates {
            if backend.tried >= MAX_CANDIDATES {
                tracing::warn!(
                    %checksum,
                    "gave up after {MAX_CANDIDATES} candidate transformations"
                );
                break;
            }
            backend.tried += 1;
            match recompute_from(stores, checksum, &tf, depth, visiting, backend).await {
                Ok(Some(b)) => return Ok(Some(b)),
                Ok(None) => {}
                Err(e) if e.code == Code::NotFound => {
                    tracing::warn!(%tf, error = %e, "candidate skipped")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    })
}

async fn recompute_from(
    stores: &Stores,
    wanted: &Checksum,
    tf: &Checksum,
    depth: usize,
    visiting: &mut HashSet<Checksum>,
    backend: &mut Backend,
) -> Result<Option<Bytes>, CliError> {
    let Some(dict_buf) = find(stores, tf, depth + 1, visiting, backend).await? else {
        tracing::warn!(%tf, "the transformation dict is available nowhere");
        return Ok(None);
    };
    let Ok(Value::Object(dict)) = serde_json::from_slice::<Value>(&dict_buf) else {
        tracing::warn!(%tf, "not a transformation dict");
        return Ok(None);
    };
    let Ok(pins) = seamless_jobserver_remote::transformation::pins(&Value::Object(dict.clone()))
    else {
        tracing::warn!(%tf, "a malformed transformation dict");
        return Ok(None);
    };
    for (_, pin) in pins {
        if stores.buffers.has_buffers(&[pin]).await == [true] {
            continue;
        }
        let Some(bytes) = find(stores, &pin, depth + 1, visiting, backend).await? else {
            tracing::warn!(%tf, input = %pin, "an input is available nowhere");
            return Ok(None);
        };
        // A recomputed input must reach the jobserver's store.
        backend.upload(stores, &pin, bytes).await?;
    }
    let dict = Value::Object(dict);
    let result = backend.run(stores, dict.clone(), *tf, false).await?;
    if result != *wanted {
        tracing::warn!(%tf, %result, %wanted, "recomputation gave another checksum");
        return Ok(None);
    }
    let mut bytes = backend.fetch(stores, &result).await?;
    if bytes.is_none() {
        // A long-running jobserver may answer from its own cache without uploading the buffer
        // again: recompute on the local jobserver, restarted first if it is the one that did.
        if stores.jobservers.is_empty() {
            backend.restart_local();
        }
        tracing::warn!(%tf, "the jobserver answered from its cache; recomputing on a fresh local jobserver");
        if backend.run(stores, dict, *tf, true).await? == result {
            // The upload may trail the answer by a moment: look a few times (bounded).
            for _ in 0..20 {
                bytes = backend.fetch(stores, &result).await?;
                if bytes.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    }
    if let Some(b) = &bytes {
        if !stores.buffers.write_servers().is_empty() {
            stores
                .buffers
                .write_buffer(&result, b.clone())
                .await
                .map_err(buffer_error)?;
        }
        if let Err(e) = stores
            .databases
            .set_transformation_result(tf, &result)
            .await
        {
            tracing::warn!(error = %e, "could not record the result in the database");
        }
    }
    Ok(bytes)
}

/// Where recomputations run: the stage's jobservers, or the local fingertip jobserver.
#[derive(Default)]
struct Backend {
    local: Option<LocalJobserver>,
    /// Candidate transformations tried so far (capped by [`MAX_CANDIDATES`]).
    tried: usize,
}

/// The local jobserver that fingertip recomputes on when the stage has no execution backend (or
/// when the stage's jobserver answers from its cache): launched by our launcher as any other
/// service, key `jobserver-fingertip-rw-<digest of its stores>`, with an inactivity timeout
/// (`SEAMLESS_FINGERTIP_TIMEOUT`); later fingertips of any process reuse it, and the usual tools
/// stop it. When no store is writable, a local hashserver (`hashserver-fingertip-rw-local`, its
/// buffers in `~/.seamless/fingertip/buffers`) receives the results.
struct LocalJobserver {
    client: JobserverClient,
    writable: BufferClient,
    launcher: Launcher,
    desc: LaunchSpec,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = seamless_activation::Settings::current().path.clone()?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn no_backend(why: &str) -> CliError {
    CliError::new(
        Code::NotFound,
        format!("the buffer is not stored, and could be recomputed, but {why}.\nTo enable recomputation: install seamless-jobserver (it must be on PATH), or select a stage with 'execution: remote' and 'remote: jobserver' or 'remote: daskserver'."),
    )
}

fn fingertip_timeout() -> u64 {
    seamless_activation::Settings::current().fingertip_timeout
}

/// The launch spec of a local fingertip service (loopback, no conda, no SSH).
fn local_description(
    service: Service,
    key: String,
    mut argv: Vec<String>,
    workdir: String,
    parameters: Option<Value>,
) -> LaunchSpec {
    let status_file = format!("~/.remote-http-launcher/server/{key}.json");
    // Below the ephemeral port range, so that outgoing connections do not take them.
    let (start, end) = (30000u16, 32767u16);
    argv.extend([
        "--port-range".into(),
        start.to_string(),
        end.to_string(),
        "--status-file".into(),
        status_file,
        "--host".into(),
        "127.0.0.1".into(),
        "--timeout".into(),
        fingertip_timeout().to_string(),
    ]);
    LaunchSpec {
        key,
        name: service.name().to_string(),
        argv,
        workdir,
        network_interface: Some("127.0.0.1".into()),
        conda: None,
        handshake: seamless_config::Handshake::Healthcheck,
        hostname: None,
        ssh_hostname: None,
        tunnel: None,
        parameters,
    }
}

fn launched_client(launcher: &Launcher, desc: &LaunchSpec) -> Result<RemoteClient, CliError> {
    let service = LaunchedService::new(desc.clone(), launcher.clone());
    RemoteClient::with_initializer(service, crate::stores::options())
        .map_err(|e| CliError::new(crate::stores::transport_code(&e), e.to_string()))
}

impl LocalJobserver {
    /// The local jobserver for `stores`, with its writable store: a configured write server, or
    /// the local fingertip hashserver (launched now, so that its URL can be in the jobserver's
    /// parameters). The jobserver itself is launched on its first request.
    async fn start(stores: &Stores) -> Result<LocalJobserver, CliError> {
        if find_program("seamless-jobserver").is_none() {
            return Err(no_backend(
                "no execution backend is configured and seamless-jobserver is not on PATH",
            ));
        }
        let launcher = crate::progress::launcher();
        let mut buffer_params: Vec<Value> = stores
            .buffers
            .read_folders()
            .iter()
            .map(|f| json!({"readonly": true, "remote_directory": f.directory()}))
            .collect();
        buffer_params.extend(
            stores
                .buffers
                .read_servers()
                .iter()
                .filter_map(|s| s.url())
                .map(|u| json!({"readonly": true, "remote_url": u})),
        );
        let (writable, writable_url) = match stores.buffers.write_servers().first() {
            Some(w) => (w.clone(), w.url()),
            None => {
                if find_program("hashserver").is_none() {
                    return Err(no_backend(
                        "no store is writable and hashserver is not on PATH",
                    ));
                }
                let dir = "~/.seamless/fingertip/buffers".to_string();
                let desc = local_description(
                    Service::Hashserver,
                    "hashserver-fingertip-rw-local".into(),
                    vec!["hashserver".into(), dir.clone(), "--writable".into()],
                    dir,
                    None,
                );
                let client = BufferClient::from_remote(launched_client(&launcher, &desc)?, false);
                let url = client.remote().ensure_initialized().await.map_err(|e| {
                    CliError::new(
                        crate::stores::transport_code(&e),
                        crate::stores::transport_message(&e),
                    )
                })?;
                (client, Some(url))
            }
        };
        buffer_params.push(json!({"readonly": false, "remote_url": writable_url}));
        let parameters = json!({"buffer": buffer_params, "database": []});
        let digest = Checksum::of(parameters.to_string().as_bytes()).to_hex();
        let desc = local_description(
            Service::Jobserver,
            format!("jobserver-fingertip-rw-{}", &digest[..12]),
            vec!["seamless-jobserver".into(), "--workers".into(), "1".into()],
            "/tmp".into(),
            Some(parameters),
        );
        Ok(LocalJobserver {
            client: JobserverClient::from_remote(launched_client(&launcher, &desc)?),
            writable,
            launcher,
            desc,
        })
    }

    /// Stops the local jobserver (it may answer from its own cache); the next request launches
    /// a fresh one.
    fn restart(&self) {
        self.launcher.stop_service(&self.desc);
        self.client.remote().restart();
    }
}

impl Backend {
    async fn local(&mut self, stores: &Stores) -> Result<&LocalJobserver, CliError> {
        if self.local.is_none() {
            self.local = Some(LocalJobserver::start(stores).await?);
        }
        self.local
            .as_ref()
            .ok_or_else(|| CliError::new(Code::Other, "no local jobserver"))
    }

    async fn upload(
        &mut self,
        stores: &Stores,
        checksum: &Checksum,
        bytes: Bytes,
    ) -> Result<(), CliError> {
        if !stores.jobservers.is_empty() || !stores.buffers.write_servers().is_empty() {
            stores
                .buffers
                .write_buffer(checksum, bytes)
                .await
                .map_err(buffer_error)?;
            return Ok(());
        }
        let local = self.local(stores).await?;
        local
            .writable
            .write(checksum, bytes)
            .await
            .map_err(buffer_error)?;
        Ok(())
    }

    /// Runs on the stage's jobservers, or (none, or `fresh`) on the local one.
    async fn run(
        &mut self,
        stores: &Stores,
        dict: Value,
        tf: Checksum,
        fresh: bool,
    ) -> Result<Checksum, CliError> {
        let request = RunRequest {
            // Recompute even when the result is cached but its buffer is gone.
            require_value: true,
            ..RunRequest::new(dict, tf)
        };
        let result = if fresh || stores.jobservers.is_empty() {
            self.local(stores)
                .await?
                .client
                .run_transformation(&request)
                .await
        } else {
            stores.jobservers.run_transformation(&request).await
        };
        match result {
            Ok(r) => r.result_checksum().ok_or_else(|| {
                CliError::new(
                    Code::NotFound,
                    format!("transformation {tf} was written as a remote job, not run"),
                )
            }),
            Err(e @ JobserverError::Failed { .. }) => Err(CliError::new(
                Code::NotFound,
                format!("recomputation failed: {e}"),
            )),
            Err(JobserverError::Transport(t)) => Err(CliError::new(
                crate::stores::transport_code(&t),
                format!(
                    "cannot recompute transformation {tf}: {}",
                    crate::stores::transport_message(&t)
                ),
            )),
            Err(e) => Err(CliError::new(
                Code::Unreachable,
                format!("cannot recompute transformation {tf}: {e}"),
            )),
        }
    }

    async fn fetch(
        &mut self,
        stores: &Stores,
        checksum: &Checksum,
    ) -> Result<Option<Bytes>, CliError> {
        if let Some(t) = &self.local {
            if let Some(b) = t.writable.get(checksum).await.map_err(buffer_error)? {
                return Ok(Some(b));
            }
        }
        stores
            .buffers
            .get_buffer(checksum)
            .await
            .map_err(buffer_error)
    }

    fn restart_local(&mut self) {
        if let Some(local) = &self.local {
            local.restart();
        }
    }
}
