//! The database activation API: the read and write databases of the current stage, and the
//! functions the rest of Seamless calls.
//!
//! Reads ask the read clients in order and return the first answer; a client that fails is
//! skipped (if none answers and one failed, that failure is returned). Writes go to every write
//! client concurrently and report honestly whether something was written (the reference's
//! `set_transformation_result` returns False even on success). Activation rules are the shared
//! ones ([`seamless_config::activation`]).

use seamless_config::activation::{ActivationError, PerKey};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, RwLock};

use futures_util::future::join_all;
use seamless_config::activation::{launch_keys, KeyScope};
pub use seamless_config::activation::{ActivateOptions, ExtraLaunched, LaunchKey};
use seamless_remote_core::Checksum;
use serde_json::{Map, Value};

use crate::client::{DatabaseClient, RecordWrite};
use crate::error::DatabaseError;

/// Produces launched database clients (the seam the launcher fills).
pub trait DatabaseLauncher: Send + Sync {
    /// The launched client for `key` (nothing is started before its first request).
    fn launched_client(&self, key: &LaunchKey) -> Result<DatabaseClient, DatabaseError>;

    /// The launched clients made so far, with the reference's inspection fields.
    fn inspect(&self) -> Vec<seamless_launcher::LaunchedClientInfo> {
        Vec::new()
    }
}

/// What [`DatabaseRemote::inspect_extern_clients`] reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExternClientInfo {
    /// The name.
    pub name: String,
    /// Read-only.
    pub readonly: bool,
    /// URL.
    pub url: Option<String>,
}

/// The active databases: a cheap, clonable value.
#[derive(Debug, Clone, Default)]
pub struct ActiveDatabases {
    read: Vec<DatabaseClient>,
    write: Vec<DatabaseClient>,
}

/// The defined clients and the active set.
#[derive(Default)]
pub struct DatabaseRemote {
    extern_clients: BTreeMap<String, DatabaseClient>,
    launched: PerKey<DatabaseClient>,
    launcher: Option<Arc<dyn DatabaseLauncher>>,
    active: ActiveDatabases,
}

impl std::fmt::Debug for DatabaseRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseRemote")
            .field(
                "extern_clients",
                &self.extern_clients.keys().collect::<Vec<_>>(),
            )
            .field("active", &self.active)
            .finish()
    }
}

impl DatabaseRemote {
    /// Nothing defined, nothing active.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what produces launched clients.
    pub fn set_launcher(&mut self, launcher: Arc<dyn DatabaseLauncher>) {
        self.launcher = Some(launcher);
    }

    /// Defines (or redefines) an extern `database` client.
    pub fn define_extern_client(
        &mut self,
        name: &str,
        url: &str,
        readonly: bool,
    ) -> Result<(), DatabaseError> {
        self.extern_clients
            .insert(name.to_string(), DatabaseClient::new(url, readonly)?);
        Ok(())
    }

    /// Defines an extern client from an existing client.
    pub fn define_extern(&mut self, name: &str, client: DatabaseClient) {
        self.extern_clients.insert(name.to_string(), client);
    }

    /// Defines the launched client of a key.
    pub fn define_launched_client(&mut self, key: LaunchKey, client: DatabaseClient) {
        self.launched.insert(key, client);
    }

    fn launched_for(&mut self, key: &LaunchKey) -> Result<DatabaseClient, DatabaseError> {
        let launcher = self.launcher.clone();
        self.launched.get_or_make(
            key,
            "database",
            launcher.map(|l| move |k: &LaunchKey| l.launched_client(k)),
        )
    }

    /// Computes and installs the active set.
    pub fn activate(&mut self, options: &ActivateOptions) -> Result<(), DatabaseError> {
        let mut active = ActiveDatabases::default();
        for key in launch_keys(options, KeyScope::Stage)? {
            let c = self.launched_for(&key)?;
            if !key.readonly {
                active.write.push(c.clone());
            }
            active.read.push(c);
        }
        for name in &options.extern_clients {
            let c = self.extern_clients.get(name).ok_or_else(|| {
                DatabaseError::from(ActivationError::UnknownExternClient {
                    service: "database",
                    name: name.clone(),
                })
            })?;
            if !c.readonly() {
                active.write.push(c.clone());
            }
            active.read.push(c.clone());
        }
        self.active = active;
        Ok(())
    }

    /// Deactivates every database.
    pub fn deactivate(&mut self) {
        self.active = ActiveDatabases::default();
    }

    /// The active set.
    pub fn active(&self) -> ActiveDatabases {
        self.active.clone()
    }

    /// The launched clients, with the reference's fields.
    pub fn inspect_launched_clients(&self) -> Vec<seamless_launcher::LaunchedClientInfo> {
        self.launcher
            .as_ref()
            .map(|l| l.inspect())
            .unwrap_or_default()
    }

    /// The extern clients, with the reference's fields.
    pub fn inspect_extern_clients(&self) -> Vec<ExternClientInfo> {
        self.extern_clients
            .iter()
            .map(|(name, c)| ExternClientInfo {
                name: name.clone(),
                readonly: c.readonly(),
                url: c.url(),
            })
            .collect()
    }
}

impl ActiveDatabases {
    /// An active set from explicit clients.
    pub fn new(read: Vec<DatabaseClient>, write: Vec<DatabaseClient>) -> Self {
        ActiveDatabases { read, write }
    }

    /// The read clients, in order.
    pub fn read_servers(&self) -> &[DatabaseClient] {
        &self.read
    }

    /// The write clients.
    pub fn write_servers(&self) -> &[DatabaseClient] {
        &self.write
    }

    /// Whether a write database is active.
    pub fn has_write_server(&self) -> bool {
        !self.write.is_empty()
    }

    /// Whether a read database is active.
    pub fn has_read_server(&self) -> bool {
        !self.read.is_empty()
    }

    /// The first answer among the read clients; failing clients are skipped.
    async fn first_answer<T, F, Fut>(&self, what: &str, f: F) -> Result<Option<T>, DatabaseError>
    where
        F: Fn(DatabaseClient) -> Fut,
        Fut: Future<Output = Result<Option<T>, DatabaseError>>,
    {
        let mut first_failure = None;
        for c in &self.read {
            match f(c.clone()).await {
                Ok(Some(v)) => {
                    debug(format_args!("{what}: answered by {:?}", c.url()));
                    return Ok(Some(v));
                }
                Ok(None) => debug(format_args!("{what}: unknown to {:?}", c.url())),
                Err(e) => {
                    tracing::warn!(error = %e, "database skipped");
                    first_failure.get_or_insert(e);
                }
            }
        }
        first_failure.map_or(Ok(None), Err)
    }

    /// Runs `f` on every write client concurrently; the first failure (if any) is returned
    /// after all finished.
    async fn all_writers<T, F, Fut>(&self, f: F) -> Result<Vec<T>, DatabaseError>
    where
        F: Fn(DatabaseClient) -> Fut,
        Fut: Future<Output = Result<T, DatabaseError>>,
    {
        join_all(self.write.iter().map(|c| f(c.clone())))
            .await
            .into_iter()
            .collect()
    }

    /// The result of a transformation.
    pub async fn get_transformation_result(
        &self,
        tf: &Checksum,
    ) -> Result<Option<Checksum>, DatabaseError> {
        self.first_answer("transformation", |c| async move {
            c.get_transformation_result(tf).await
        })
        .await
    }

    /// The transformations known to produce `result` (duplicates removed).
    pub async fn get_rev_transformations(
        &self,
        result: &Checksum,
    ) -> Result<Option<Vec<Checksum>>, DatabaseError> {
        self.first_answer("rev_transformations", |c| async move {
            c.get_rev_transformations(result).await
        })
        .await
    }

    /// The execution record of a transformation.
    pub async fn get_execution_record(
        &self,
        tf: &Checksum,
    ) -> Result<Option<Map<String, Value>>, DatabaseError> {
        self.first_answer(
            "metadata",
            |c| async move { c.get_execution_record(tf).await },
        )
        .await
    }

    /// A bucket probe.
    pub async fn get_bucket_probe(
        &self,
        kind: &str,
        label: &str,
    ) -> Result<Option<Map<String, Value>>, DatabaseError> {
        self.first_answer("bucket_probe", |c| async move {
            c.get_bucket_probe(kind, label).await
        })
        .await
    }

    /// Irreproducible records.
    pub async fn get_irreproducible_records(
        &self,
        tf: &Checksum,
        result: Option<&Checksum>,
    ) -> Result<Option<Vec<Value>>, DatabaseError> {
        self.first_answer("irreproducible", |c| async move {
            c.get_irreproducible_records(tf, result).await
        })
        .await
    }

    /// Stores `tf → result` in every write database; `Ok(false)` if there is none.
    pub async fn set_transformation_result(
        &self,
        tf: &Checksum,
        result: &Checksum,
    ) -> Result<bool, DatabaseError> {
        let done = self
            .all_writers(|c| async move { c.set_transformation_result(tf, result).await })
            .await?;
        Ok(!done.is_empty())
    }

    /// Stores an execution record in every write database; `Ok(true)` if at least one wrote it
    /// (a database that already holds a different record does not count).
    pub async fn set_execution_record(
        &self,
        tf: &Checksum,
        result: &Checksum,
        record: &Map<String, Value>,
    ) -> Result<bool, DatabaseError> {
        let done = self
            .all_writers(|c| async move { c.set_execution_record(tf, result, record).await })
            .await?;
        Ok(done.contains(&RecordWrite::Written))
    }

    /// Stores a bucket probe in every write database.
    pub async fn set_bucket_probe(
        &self,
        kind: &str,
        label: &str,
        bucket_checksum: &Checksum,
        freshness_tokens: &Map<String, Value>,
        captured_at: &str,
    ) -> Result<bool, DatabaseError> {
        let done = self
            .all_writers(|c| async move {
                c.set_bucket_probe(kind, label, bucket_checksum, freshness_tokens, captured_at)
                    .await
            })
            .await?;
        Ok(!done.is_empty())
    }

    /// Contests a result in every write database.
    pub async fn undo_transformation_result(
        &self,
        tf: &Checksum,
        result: &Checksum,
    ) -> Result<bool, DatabaseError> {
        let done = self
            .all_writers(|c| async move { c.undo_transformation_result(tf, result).await })
            .await?;
        Ok(!done.is_empty())
    }
}

fn debug(args: std::fmt::Arguments<'_>) {
    if seamless_remote_core::env::remote_db_debug() {
        tracing::info!(target: "seamless_remote::remote_db", "{args}");
    }
}

static GLOBAL: LazyLock<RwLock<DatabaseRemote>> =
    LazyLock::new(|| RwLock::new(DatabaseRemote::new()));

/// The process-wide database activation state.
pub fn global() -> &'static RwLock<DatabaseRemote> {
    &GLOBAL
}

/// The process-wide active set.
pub fn active() -> ActiveDatabases {
    GLOBAL.read().unwrap_or_else(|p| p.into_inner()).active()
}

fn with_global<T>(f: impl FnOnce(&mut DatabaseRemote) -> T) -> T {
    let mut g = GLOBAL.write().unwrap_or_else(|p| p.into_inner());
    f(&mut g)
}

/// Defines an extern client in the process-wide state.
pub fn define_extern_client(name: &str, url: &str, readonly: bool) -> Result<(), DatabaseError> {
    with_global(|g| g.define_extern_client(name, url, readonly))
}

/// Activates the process-wide state.
pub fn activate(options: &ActivateOptions) -> Result<(), DatabaseError> {
    with_global(|g| g.activate(options))
}

/// Deactivates the process-wide state.
pub fn deactivate() {
    with_global(DatabaseRemote::deactivate)
}

/// Whether the process-wide state has a write database.
pub fn has_write_server() -> bool {
    active().has_write_server()
}

/// Whether the process-wide state has a read database.
pub fn has_read_server() -> bool {
    active().has_read_server()
}

/// [`ActiveDatabases::get_transformation_result`] on the process-wide state.
pub async fn get_transformation_result(tf: &Checksum) -> Result<Option<Checksum>, DatabaseError> {
    active().get_transformation_result(tf).await
}

/// [`ActiveDatabases::get_rev_transformations`] on the process-wide state.
pub async fn get_rev_transformations(
    result: &Checksum,
) -> Result<Option<Vec<Checksum>>, DatabaseError> {
    active().get_rev_transformations(result).await
}

/// [`ActiveDatabases::set_transformation_result`] on the process-wide state.
pub async fn set_transformation_result(
    tf: &Checksum,
    result: &Checksum,
) -> Result<bool, DatabaseError> {
    active().set_transformation_result(tf, result).await
}
