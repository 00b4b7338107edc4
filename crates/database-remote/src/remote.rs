//! The database activation API: the read and write databases of the current stage, and the
//! functions the rest of Seamless calls.
//!
//! Reads ask the read clients in order and return the first answer; a client that fails is
//! skipped (if none answers and one failed, that failure is returned). Writes go to every write
//! client concurrently and report honestly whether something was written (the reference's
//! `set_transformation_result` returns False even on success). Activation rules are the shared
//! ones ([`seamless_config::activation`]).

use std::future::Future;

use futures_util::future::join_all;
use seamless_activation::{launch_keys, ExternInfo, KeyScope};
pub use seamless_activation::{
    ActivateOptions, ExternClientInfo, ExtraLaunched, LaunchKey, LaunchedClientInfo,
};
use seamless_remote_core::Checksum;
use serde_json::{Map, Value};

use crate::client::{DatabaseClient, RecordWrite};
use crate::error::DatabaseError;

impl ExternInfo for DatabaseClient {
    fn extern_info(&self, name: &str) -> ExternClientInfo {
        ExternClientInfo {
            name: name.to_string(),
            readonly: self.readonly(),
            url: self.url(),
            directory: None,
        }
    }
}

/// The active databases: a cheap, clonable value.
#[derive(Debug, Clone, Default)]
pub struct ActiveDatabases {
    read: Vec<DatabaseClient>,
    write: Vec<DatabaseClient>,
}

seamless_activation::activation_api! {
    remote: DatabaseRemote,
    service: "database",
    launched: DatabaseClient,
    extern_client: DatabaseClient,
    error: DatabaseError,
    active: ActiveDatabases,
    launcher: DatabaseLauncher,
}

impl DatabaseRemote {
    /// Defines (or redefines) an extern `database` client.
    pub fn define_extern_client(
        &mut self,
        name: &str,
        url: &str,
        readonly: bool,
    ) -> Result<(), DatabaseError> {
        self.define_extern(name, DatabaseClient::new(url, readonly)?);
        Ok(())
    }

    /// Defines an extern client from an existing client.
    pub fn define_extern(&mut self, name: &str, client: DatabaseClient) {
        self.clients.define_extern(name, client);
    }

    /// The active set that `options` select (the shared rules).
    fn activate_into(
        &mut self,
        options: &ActivateOptions,
    ) -> Result<ActiveDatabases, DatabaseError> {
        let mut active = ActiveDatabases::default();
        for key in launch_keys(options, KeyScope::Stage)? {
            let c = self.clients.launched(&key)?;
            if !key.readonly {
                active.write.push(c.clone());
            }
            active.read.push(c);
        }
        for name in &options.extern_clients {
            let c = self.clients.extern_client(name)?;
            if !c.readonly() {
                active.write.push(c.clone());
            }
            active.read.push(c.clone());
        }
        Ok(active)
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

/// Defines an extern client in the process-wide state.
pub fn define_extern_client(name: &str, url: &str, readonly: bool) -> Result<(), DatabaseError> {
    global().write().define_extern_client(name, url, readonly)
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
