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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use seamless_buffer_remote::trivial::trivial_buffer;
use seamless_buffer_remote::BufferClient;
use seamless_jobserver_remote::{JobserverClient, JobserverError, RunRequest};
use seamless_remote_core::Checksum;
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
    let result = find(stores, checksum, 0, &mut visiting, &mut backend).await;
    backend.stop();
    result
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

/// The checksums of a transformation dict's pins (`[celltype, subcelltype, checksum]`).
fn pins(dict: &serde_json::Map<String, Value>) -> Vec<Checksum> {
    dict.iter()
        .filter(|(k, _)| !(k.starts_with("__") && k.ends_with("__")))
        .filter_map(|(_, v)| v.as_array())
        .filter(|a| a.len() == 3)
        .filter_map(|a| a[2].as_str()?.parse::<Checksum>().ok())
        .collect()
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
    for pin in pins(&dict) {
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
    if bytes.is_none() && !stores.jobservers.is_empty() {
        // A long-running jobserver may answer from its own cache without uploading the buffer
        // again: recompute on a fresh temporary jobserver.
        tracing::warn!(%tf, "the stage's jobserver answered from its cache; recomputing on a temporary jobserver");
        if backend.run(stores, dict, *tf, true).await? == result {
            bytes = backend.fetch(stores, &result).await?;
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

/// Where recomputations run: the stage's jobservers, or a temporary local jobserver.
#[derive(Default)]
struct Backend {
    temp: Option<TempJobserver>,
    /// Candidate transformations tried so far (capped by [`MAX_CANDIDATES`]).
    tried: usize,
}

struct TempJobserver {
    client: JobserverClient,
    writable: BufferClient,
    processes: Vec<Child>,
    _dir: tempfile::TempDir,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, CliError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::new(Code::Other, format!("no free port: {e}")))
}

fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req =
        format!("GET /healthcheck HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 2")
}

fn no_backend(why: &str) -> CliError {
    CliError::new(
        Code::NotFound,
        format!("the buffer is not stored, and could be recomputed, but {why}.\nTo enable recomputation: install seamless-jobserver (it must be on PATH), or select a stage with 'execution: remote' and 'remote: jobserver' or 'remote: daskserver'."),
    )
}

impl TempJobserver {
    fn start(stores: &Stores) -> Result<TempJobserver, CliError> {
        let jobserver = find_program("seamless-jobserver").ok_or_else(|| {
            no_backend("no execution backend is configured and seamless-jobserver is not on PATH")
        })?;
        let dir = tempfile::Builder::new()
            .prefix("seamless-fingertip-")
            .tempdir()
            .map_err(|e| CliError::new(Code::Other, e.to_string()))?;
        let mut processes = Vec::new();
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
        let writable = match stores.buffers.write_servers().first() {
            Some(w) => w.clone(),
            None => {
                // No writable store: a temporary hashserver receives the result.
                let hashserver = find_program("hashserver").ok_or_else(|| {
                    no_backend("no store is writable and hashserver is not on PATH")
                })?;
                let port = free_port()?;
                let buffers = dir.path().join("buffers");
                std::fs::create_dir_all(&buffers)
                    .map_err(|e| CliError::new(Code::Other, e.to_string()))?;
                let child = Command::new(hashserver)
                    .arg(&buffers)
                    .args([
                        "--writable",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| {
                        CliError::new(
                            Code::Other,
                            format!("cannot start a temporary hashserver: {e}"),
                        )
                    })?;
                processes.push(child);
                wait_healthy(port, &mut processes, "hashserver")?;
                BufferClient::new(&format!("http://127.0.0.1:{port}"), false)
                    .map_err(buffer_error)?
            }
        };
        buffer_params.push(json!({"readonly": false, "remote_url": writable.url()}));
        let status = dir.path().join("status.json");
        std::fs::write(
            &status,
            json!({"parameters": {"buffer": buffer_params, "database": []}}).to_string(),
        )
        .map_err(|e| CliError::new(Code::Other, e.to_string()))?;
        let port = free_port()?;
        eprintln!("Starting a temporary seamless-jobserver to recompute...");
        let child = Command::new(jobserver)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .arg("--status-file")
            .arg(&status)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                CliError::new(Code::Other, format!("cannot start seamless-jobserver: {e}"))
            })?;
        processes.push(child);
        let mut temp = TempJobserver {
            client: JobserverClient::new(&format!("http://127.0.0.1:{port}"))
                .map_err(|e| CliError::new(Code::Other, e.to_string()))?,
            writable,
            processes,
            _dir: dir,
        };
        if let Err(e) = wait_healthy(port, &mut temp.processes, "seamless-jobserver") {
            temp.stop();
            return Err(e);
        }
        Ok(temp)
    }

    fn stop(&mut self) {
        for p in &mut self.processes {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(p.id().to_string())
                .output();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in &mut self.processes {
            while Instant::now() < deadline && matches!(p.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
        self.processes.clear();
    }
}

fn wait_healthy(port: u16, processes: &mut [Child], name: &str) -> Result<(), CliError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if healthy(port) {
            return Ok(());
        }
        if processes
            .iter_mut()
            .any(|p| !matches!(p.try_wait(), Ok(None)))
        {
            return Err(CliError::new(
                Code::Other,
                format!("the temporary {name} exited during start-up"),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(CliError::new(
        Code::Other,
        format!("the temporary {name} did not start within 60 s"),
    ))
}

impl Backend {
    fn temp(&mut self, stores: &Stores) -> Result<&TempJobserver, CliError> {
        if self.temp.is_none() {
            self.temp = Some(TempJobserver::start(stores)?);
        }
        self.temp
            .as_ref()
            .ok_or_else(|| CliError::new(Code::Other, "no jobserver"))
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
        let temp = self.temp(stores)?;
        temp.writable
            .write(checksum, bytes)
            .await
            .map_err(buffer_error)?;
        Ok(())
    }

    /// Runs on the stage's jobservers, or (none, or `fresh`) on a temporary one.
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
            self.temp(stores)?.client.run_transformation(&request).await
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
        if let Some(t) = &self.temp {
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

    fn stop(&mut self) {
        if let Some(mut t) = self.temp.take() {
            t.stop();
        }
    }
}
