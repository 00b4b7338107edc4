//! The buffer activation API: which stores the current stage reads from and writes to, and the
//! functions the rest of Seamless calls.
//!
//! [`BufferRemote`] holds the defined clients (extern and launched) and the active set
//! ([`ActiveBuffers`]): read folders, read servers, write servers. The active set is a cheap,
//! clonable value: hold it and pass it around, or use the process-wide default through the
//! module-level functions ([`get_buffer`], [`write_buffer`], ...), which mirror the reference's
//! `seamless_remote.buffer_remote`.
//!
//! Activation rules (as the reference's `activate`): the main launched client (unless `no_main`)
//! is a read server, a read folder when it runs on this machine, and a write server unless
//! `readonly`; extra launched clients likewise (read-only unless they say otherwise; one that
//! repeats a key is a redundancy error, a read-only one shadowed by the read-write client of the
//! same key is skipped); extern clients are read folders (directory), read servers (URL) and
//! write servers (URL, not read-only).
//!
//! Unlike the reference: a source that fails is skipped and the next one tried (reads), writes
//! and promises go to every write server concurrently, and trivial checksums never need a store.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::future::join_all;
use seamless_activation::{launch_keys, ExternInfo, KeyScope};
pub use seamless_activation::{
    ActivateOptions, ExternClientInfo, ExtraLaunched, LaunchKey, LaunchedClientInfo,
};
pub use seamless_config::Current as Selection;
use seamless_remote_core::Checksum;

use crate::client::BufferClient;
use crate::error::BufferError;
use crate::folder::BufferFolder;
use crate::stream::{Spooled, VerifiedSource};
use crate::trivial::trivial_buffer;
use crate::BufferLength;

/// A launched hashserver: its client, and its buffer directory when it runs on this machine.
#[derive(Debug, Clone)]
pub struct LaunchedBuffer {
    /// The HTTP client (its URL comes from the launcher).
    pub client: BufferClient,
    /// The server's directory, read directly when the server is local.
    pub folder: Option<BufferFolder>,
}

/// An extern client definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternSpec {
    /// A hashserver at a URL.
    Hashserver {
        /// Its URL.
        url: String,
        /// Whether writes and promises are refused.
        readonly: bool,
    },
    /// A buffer directory (always read-only).
    Bufferfolder {
        /// The directory.
        directory: PathBuf,
    },
}

#[derive(Debug, Clone)]
enum ExternClient {
    Server(BufferClient),
    Folder(BufferFolder),
}

impl ExternInfo for ExternClient {
    fn extern_info(&self, name: &str) -> ExternClientInfo {
        match self {
            ExternClient::Server(s) => ExternClientInfo {
                name: name.to_string(),
                readonly: s.readonly(),
                url: s.url(),
                directory: None,
            },
            ExternClient::Folder(f) => ExternClientInfo {
                name: name.to_string(),
                readonly: true,
                url: None,
                directory: Some(f.directory().display().to_string()),
            },
        }
    }
}

/// The active stores: a cheap, clonable value.
#[derive(Debug, Clone, Default)]
pub struct ActiveBuffers {
    read_folders: Vec<BufferFolder>,
    read_servers: Vec<BufferClient>,
    write_servers: Vec<BufferClient>,
}

seamless_activation::activation_api! {
    remote: BufferRemote,
    service: "hashserver",
    launched: LaunchedBuffer,
    extern_client: ExternClient,
    error: BufferError,
    active: ActiveBuffers,
    launcher: BufferLauncher,
}

impl BufferRemote {
    /// Defines (or redefines) an extern client.
    pub fn define_extern_client(
        &mut self,
        name: &str,
        spec: ExternSpec,
    ) -> Result<(), BufferError> {
        let client = match spec {
            ExternSpec::Hashserver { url, readonly } => {
                ExternClient::Server(BufferClient::new(&url, readonly)?)
            }
            ExternSpec::Bufferfolder { directory } => {
                ExternClient::Folder(BufferFolder::new(directory))
            }
        };
        self.clients.define_extern(name, client);
        Ok(())
    }

    /// The active set that `options` select (see the module docs for the rules).
    fn activate_into(&mut self, options: &ActivateOptions) -> Result<ActiveBuffers, BufferError> {
        let mut active = ActiveBuffers::default();
        for key in launch_keys(options, KeyScope::Stage)? {
            let l = self.clients.launched(&key)?;
            if let Some(folder) = l.folder.clone() {
                active.read_folders.push(folder);
            }
            if !key.readonly {
                active.write_servers.push(l.client.clone());
            }
            active.read_servers.push(l.client);
        }
        for name in &options.extern_clients {
            match self.clients.extern_client(name)? {
                ExternClient::Folder(f) => active.read_folders.push(f.clone()),
                ExternClient::Server(c) => {
                    active.read_servers.push(c.clone());
                    if !c.readonly() {
                        active.write_servers.push(c.clone());
                    }
                }
            }
        }
        Ok(active)
    }
}

impl ActiveBuffers {
    /// An active set from explicit stores (for programs that manage their own clients).
    pub fn new(
        read_folders: Vec<BufferFolder>,
        read_servers: Vec<BufferClient>,
        write_servers: Vec<BufferClient>,
    ) -> Self {
        ActiveBuffers {
            read_folders,
            read_servers,
            write_servers,
        }
    }

    /// Whether a write server is active.
    pub fn has_write_server(&self) -> bool {
        !self.write_servers.is_empty()
    }

    /// Whether a read server is active.
    pub fn has_read_server(&self) -> bool {
        !self.read_servers.is_empty()
    }

    /// Whether any store (folder or server) is active for reading.
    pub fn has_any_read_source(&self) -> bool {
        !self.read_servers.is_empty() || !self.read_folders.is_empty()
    }

    /// The read folders, in order.
    pub fn read_folders(&self) -> &[BufferFolder] {
        &self.read_folders
    }

    /// The read servers, in order.
    pub fn read_servers(&self) -> &[BufferClient] {
        &self.read_servers
    }

    /// The write servers.
    pub fn write_servers(&self) -> &[BufferClient] {
        &self.write_servers
    }

    /// Finds a buffer: trivial checksums first, then the read folders, then the read servers, in
    /// order. A source that fails (dead server, corrupt copy) is skipped with a warning; if no
    /// source has the buffer and one failed, that failure is returned (the buffer may be there).
    pub async fn get_buffer(&self, checksum: &Checksum) -> Result<Option<Bytes>, BufferError> {
        if let Some(b) = trivial_buffer(checksum) {
            return Ok(Some(b));
        }
        self.first_found(
            |folder| folder.get_bytes(checksum),
            |server| server.get_bytes(checksum),
        )
        .await
    }

    /// As [`ActiveBuffers::get_buffer`], held in memory up to `max_in_memory` bytes and in an
    /// unnamed temporary file beyond: for a buffer that must be verified before it is passed on
    /// (to stdout, a device), whatever its size.
    pub async fn get_buffer_spooled(
        &self,
        checksum: &Checksum,
        max_in_memory: u64,
    ) -> Result<Option<Spooled>, BufferError> {
        if let Some(b) = trivial_buffer(checksum) {
            return Ok(Some(Spooled::Memory(b)));
        }
        self.first_found(
            |folder| folder.get_spooled(checksum, max_in_memory),
            |server| server.get_spooled(checksum, max_in_memory),
        )
        .await
    }

    /// The first answer of the read folders, then the read servers, in order. A source that
    /// fails is skipped with a warning; if none has it and one failed, that failure is returned.
    async fn first_found<'a, T, FF, FS, SF, SS>(
        &'a self,
        from_folder: FF,
        from_server: SF,
    ) -> Result<Option<T>, BufferError>
    where
        FF: Fn(&'a BufferFolder) -> FS,
        FS: std::future::Future<Output = Result<Option<T>, BufferError>>,
        SF: Fn(&'a BufferClient) -> SS,
        SS: std::future::Future<Output = Result<Option<T>, BufferError>>,
    {
        let mut first_failure = None;
        for folder in &self.read_folders {
            match from_folder(folder).await {
                Ok(Some(b)) => return Ok(Some(b)),
                Ok(None) => {}
                Err(e) => note_failure(&mut first_failure, e),
            }
        }
        for server in &self.read_servers {
            match from_server(server).await {
                Ok(Some(b)) => return Ok(Some(b)),
                Ok(None) => {}
                Err(e) => note_failure(&mut first_failure, e),
            }
        }
        first_failure.map_or(Ok(None), Err)
    }

    /// As [`ActiveBuffers::get_buffer`], streamed into the file `path` (verified, renamed into
    /// place; nothing left behind on failure). Returns the length, or `None` if found nowhere.
    pub async fn get_buffer_to_file(
        &self,
        checksum: &Checksum,
        path: &Path,
    ) -> Result<Option<u64>, BufferError> {
        self.get_buffer_to_file_with(checksum, path, None).await
    }

    /// As [`ActiveBuffers::get_buffer_to_file`], reporting the bytes written to `progress`.
    pub async fn get_buffer_to_file_with(
        &self,
        checksum: &Checksum,
        path: &Path,
        progress: Option<crate::Progress>,
    ) -> Result<Option<u64>, BufferError> {
        if let Some(b) = trivial_buffer(checksum) {
            let len = b.len() as u64;
            write_file_atomically(path, &b).await?;
            return Ok(Some(len));
        }
        self.first_found(
            |folder| folder.get_to_file_with(checksum, path, progress.clone()),
            |server| server.get_to_file_with(checksum, path, progress.clone()),
        )
        .await
    }

    /// The length of each buffer: folders first, then servers, each asked only about what is
    /// still unknown. Failing sources are skipped with a warning.
    pub async fn get_buffer_lengths(&self, checksums: &[Checksum]) -> Vec<BufferLength> {
        let mut result: Vec<BufferLength> = checksums
            .iter()
            .map(|cs| match trivial_buffer(cs) {
                Some(b) => BufferLength::Known(b.len() as u64),
                None => BufferLength::Absent,
            })
            .collect();
        self.fill_pending(
            checksums,
            &mut result,
            |l| l.bytes().is_some(),
            |slot, l| {
                if l.bytes().is_some()
                    || (l == BufferLength::Unknown && *slot == BufferLength::Absent)
                {
                    *slot = l;
                }
            },
            |f, asked| async move { f.buffer_lengths(&asked).await },
            |s, asked| async move { s.buffer_lengths(&asked).await },
        )
        .await;
        result
    }

    /// Whether each buffer is available to a remote worker: present (or promised) on a write or
    /// read server, as upstream seamless-remote asks. The write servers are asked first, then
    /// the read servers, each only about what is still missing, in chunks of
    /// [`HAS_CHUNK`]; asking stops once every checksum is found. A buffer held only in a local
    /// folder is not available (a remote worker cannot read it). Failing servers are skipped
    /// with a warning.
    pub async fn has_buffers(&self, checksums: &[Checksum]) -> Vec<bool> {
        let mut result = vec![false; checksums.len()];
        let mut asked_servers: Vec<Option<String>> = Vec::new();
        for server in self.write_servers.iter().chain(&self.read_servers) {
            let url = server.url();
            if url.is_some() && asked_servers.contains(&url) {
                continue;
            }
            asked_servers.push(url);
            let pending: Vec<usize> = (0..result.len()).filter(|&i| !result[i]).collect();
            if pending.is_empty() {
                break;
            }
            for chunk in pending.chunks(HAS_CHUNK) {
                let asked: Vec<Checksum> = chunk.iter().map(|&i| checksums[i]).collect();
                match server.has(&asked).await {
                    Ok(answers) => {
                        for (&i, present) in chunk.iter().zip(answers) {
                            result[i] |= present;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "buffer server skipped");
                        break;
                    }
                }
            }
        }
        result
    }

    /// Asks the read folders, then the read servers, each only about the checksums whose
    /// `result` is not `done` yet, merging every answer in; failing servers are skipped.
    async fn fill_pending<'a, T, FQ, FF, SQ, SF>(
        &'a self,
        checksums: &[Checksum],
        result: &mut [T],
        done: impl Fn(&T) -> bool,
        merge: impl Fn(&mut T, T),
        folder_query: FQ,
        server_query: SQ,
    ) where
        FQ: Fn(&'a BufferFolder, Vec<Checksum>) -> FF,
        FF: std::future::Future<Output = Vec<T>>,
        SQ: Fn(&'a BufferClient, Vec<Checksum>) -> SF,
        SF: std::future::Future<Output = Result<Vec<T>, BufferError>>,
    {
        let pending = |result: &[T]| -> Vec<usize> {
            (0..result.len()).filter(|&i| !done(&result[i])).collect()
        };
        let merge_in = |result: &mut [T], todo: &[usize], answers: Vec<T>| {
            for (&i, answer) in todo.iter().zip(answers) {
                merge(&mut result[i], answer);
            }
        };
        for folder in &self.read_folders {
            let todo = pending(result);
            if todo.is_empty() {
                return;
            }
            let asked = todo.iter().map(|&i| checksums[i]).collect();
            merge_in(result, &todo, folder_query(folder, asked).await);
        }
        for server in &self.read_servers {
            let todo = pending(result);
            if todo.is_empty() {
                return;
            }
            let asked = todo.iter().map(|&i| checksums[i]).collect();
            match server_query(server, asked).await {
                Ok(answers) => merge_in(result, &todo, answers),
                Err(e) => tracing::warn!(error = %e, "buffer server skipped"),
            }
        }
    }

    /// Promises the buffer to every write server, concurrently. Every server is tried; the
    /// first failure (if any) is returned.
    pub async fn promise(&self, checksum: &Checksum) -> Result<(), BufferError> {
        let results = join_all(self.write_servers.iter().map(|s| s.promise(checksum))).await;
        results
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }

    /// Writes the buffer to every write server, concurrently. Returns whether it was written
    /// (false when there is no write server). Every server is tried; if one fails, the first
    /// failure is returned (the others still got the buffer).
    pub async fn write_buffer(
        &self,
        checksum: &Checksum,
        buffer: Bytes,
    ) -> Result<bool, BufferError> {
        if self.write_servers.is_empty() {
            return Ok(false);
        }
        let results = join_all(
            self.write_servers
                .iter()
                .map(|s| s.write(checksum, buffer.clone())),
        )
        .await;
        results
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(|_| true)
    }
}

fn note_failure(first: &mut Option<BufferError>, e: BufferError) {
    tracing::warn!(error = %e, "buffer source skipped");
    first.get_or_insert(e);
}

async fn write_file_atomically(path: &Path, data: &Bytes) -> Result<(), BufferError> {
    let mut sink =
        crate::stream::FileSink::create(path).map_err(|e| BufferError::output(path, e))?;
    crate::stream::Sink::write(&mut sink, data)
        .await
        .map_err(|e| BufferError::output(path, e))?;
    sink.commit()
        .await
        .map_err(|e| BufferError::output(path, e))
}

/// How many checksums [`ActiveBuffers::has_buffers`] asks a server about at once (upstream's
/// chunk size; the client splits each chunk into concurrent requests of
/// [`BATCH_SIZE`](crate::BATCH_SIZE)).
pub const HAS_CHUNK: usize = 10_000;

/// Defines an extern client in the process-wide state.
pub fn define_extern_client(name: &str, spec: ExternSpec) -> Result<(), BufferError> {
    global().write().define_extern_client(name, spec)
}

/// Whether the process-wide state has a write server.
pub fn has_write_server() -> bool {
    active().has_write_server()
}

/// Whether the process-wide state has a read server.
pub fn has_read_server() -> bool {
    active().has_read_server()
}

/// [`ActiveBuffers::get_buffer`] on the process-wide state.
pub async fn get_buffer(checksum: &Checksum) -> Result<Option<Bytes>, BufferError> {
    active().get_buffer(checksum).await
}

/// [`ActiveBuffers::get_buffer_lengths`] on the process-wide state.
pub async fn get_buffer_lengths(checksums: &[Checksum]) -> Vec<BufferLength> {
    active().get_buffer_lengths(checksums).await
}

/// [`ActiveBuffers::has_buffers`] on the process-wide state.
pub async fn has_buffers(checksums: &[Checksum]) -> Vec<bool> {
    active().has_buffers(checksums).await
}

/// [`ActiveBuffers::promise`] on the process-wide state.
pub async fn promise(checksum: &Checksum) -> Result<(), BufferError> {
    active().promise(checksum).await
}

/// [`ActiveBuffers::write_buffer`] on the process-wide state.
pub async fn write_buffer(checksum: &Checksum, buffer: Bytes) -> Result<bool, BufferError> {
    active().write_buffer(checksum, buffer).await
}
