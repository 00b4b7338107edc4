//! [`DatabaseClient`]: one seamless-database over HTTP.
//!
//! Every request is a JSON object on `/` (GET for reads, with the JSON body; PUT for writes).
//! Answers are typed: 404 is "unknown" (`None`), the `transformation` GET is bare hex, the other
//! GETs are JSON (whatever the `Content-Type` says), a malformed answer is
//! [`DatabaseError::Malformed`]. At most `SEAMLESS_DATABASE_MAX_INFLIGHT` requests (default 30,
//! 0 = unlimited) are in flight per client, over all tasks and threads.

use std::sync::Arc;

use seamless_remote_core::{Checksum, ClientOptions, RemoteClient, RequestSpec};
use serde_json::{json, Map, Value};

use crate::error::DatabaseError;

/// The largest database answer read (one checksum, a list of them, or a record); a longer one
/// is an error naming the server.
pub const ANSWER_LIMIT: u64 = 16 << 20;
/// The message of the one benign 409.
const ALREADY_EXISTS: &str = "Execution record already exists with different metadata";

/// The in-flight limit of the process's settings (`SEAMLESS_DATABASE_MAX_INFLIGHT`, default
/// 30; 0 = unlimited).
pub fn default_max_inflight() -> usize {
    seamless_activation::Settings::current().database_max_inflight
}

/// What happened to an execution record write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordWrite {
    /// Stored (or already stored, identical).
    Written,
    /// A different record for the same result is already stored; nothing was written.
    AlreadyExistsDifferent,
}

/// A client of one seamless-database.
#[derive(Debug, Clone)]
pub struct DatabaseClient {
    remote: RemoteClient,
    readonly: bool,
    inflight: Option<Arc<tokio::sync::Semaphore>>,
}

impl DatabaseClient {
    /// A client of the database at `url`, with default options and the in-flight limit from
    /// the environment.
    pub fn new(url: &str, readonly: bool) -> Result<Self, DatabaseError> {
        Self::with_options(
            url,
            readonly,
            ClientOptions::default(),
            default_max_inflight(),
        )
    }

    /// A client with options and an explicit in-flight limit (0 = unlimited).
    pub fn with_options(
        url: &str,
        readonly: bool,
        options: ClientOptions,
        max_inflight: usize,
    ) -> Result<Self, DatabaseError> {
        Ok(Self::from_remote(
            RemoteClient::with_options(url, options)?,
            readonly,
            max_inflight,
        ))
    }

    /// A client over an existing [`RemoteClient`] (e.g. a launched one).
    pub fn from_remote(remote: RemoteClient, readonly: bool, max_inflight: usize) -> Self {
        DatabaseClient {
            remote,
            readonly,
            inflight: (max_inflight > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(max_inflight))),
        }
    }

    /// The URL, once known.
    pub fn url(&self) -> Option<String> {
        self.remote.url()
    }

    /// Whether writes are refused.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// The underlying remote client.
    pub fn remote(&self) -> &RemoteClient {
        &self.remote
    }

    fn name(&self) -> String {
        self.url().unwrap_or_else(|| "(launched database)".into())
    }

    /// One request under the retry loop and the in-flight limit; returns the status and the body.
    async fn call(&self, method_put: bool, body: &Value) -> Result<(u16, String), DatabaseError> {
        let spec = if method_put {
            RequestSpec::put("/")
        } else {
            RequestSpec::get("/")
        }
        .json(body)?;
        let request = body["type"].as_str().unwrap_or("?").to_string();
        if seamless_remote_core::env::remote_db_debug() {
            tracing::info!(target: "seamless_remote::remote_db", url = %self.name(), %request, put = method_put, "database request");
        }
        self.remote
            .execute(|| async {
                let _slot = match &self.inflight {
                    Some(s) => s.clone().acquire_owned().await.ok(),
                    None => None,
                };
                let response = self.remote.send(&spec).await?;
                let status = response.status().as_u16();
                let text = response.text_limited(ANSWER_LIMIT).await?;
                Ok::<_, DatabaseError>((status, text))
            })
            .await
    }

    fn rejected(&self, request: &str, status: u16, message: String) -> DatabaseError {
        if status == 405 {
            return DatabaseError::ReadOnly {
                action: "write",
                target: format!(
                    "{} (the server answered 405: {})",
                    self.name(),
                    seamless_safe_io::text::escape(message.trim())
                ),
            };
        }
        DatabaseError::Rejected {
            url: self.name(),
            request: request.to_string(),
            status,
            message: seamless_safe_io::text::escape(message.trim()),
        }
    }

    /// A GET: `Some(text)` on 200, `None` on 404.
    async fn query(&self, body: Value) -> Result<Option<String>, DatabaseError> {
        let request = body["type"].as_str().unwrap_or("?").to_string();
        let (status, text) = self.call(false, &body).await?;
        match status {
            200 => Ok(Some(text)),
            404 => Ok(None),
            _ => Err(self.rejected(&request, status, text)),
        }
    }

    fn malformed(&self, request: &str, detail: String) -> DatabaseError {
        DatabaseError::Malformed {
            url: self.name(),
            request: request.into(),
            detail,
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: &str,
        text: &str,
    ) -> Result<T, DatabaseError> {
        serde_json::from_str(text).map_err(|e| {
            self.malformed(
                request,
                format!(
                    "{e}: {}",
                    seamless_safe_io::text::escape(&text.chars().take(200).collect::<String>())
                ),
            )
        })
    }

    /// A PUT; `Ok(Err(message))` for a 409.
    async fn store(
        &self,
        action: &'static str,
        body: Value,
    ) -> Result<Result<(), String>, DatabaseError> {
        if self.readonly {
            return Err(DatabaseError::ReadOnly {
                action,
                target: self.name(),
            });
        }
        let request = body["type"].as_str().unwrap_or("?").to_string();
        let (status, text) = self.call(true, &body).await?;
        match status {
            200 => Ok(Ok(())),
            409 => Ok(Err(text.trim().trim_start_matches("ERROR: ").to_string())),
            _ => Err(self.rejected(&request, status, text)),
        }
    }

    fn conflict(&self, request: &str, checksum: &Checksum, message: String) -> DatabaseError {
        DatabaseError::Conflict {
            url: self.name(),
            request: request.into(),
            checksum: checksum.to_hex(),
            message,
        }
    }

    /// The result of a transformation, if known.
    pub async fn get_transformation_result(
        &self,
        tf: &Checksum,
    ) -> Result<Option<Checksum>, DatabaseError> {
        let Some(text) = self
            .query(json!({"type": "transformation", "checksum": tf}))
            .await?
        else {
            return Ok(None);
        };
        let hex = text.trim();
        hex.parse::<Checksum>().map(Some).map_err(|e| {
            self.malformed(
                "transformation",
                format!("expected a bare 64-hex checksum: {e}"),
            )
        })
    }

    /// The transformations known to produce `result` (duplicates removed, order kept).
    pub async fn get_rev_transformations(
        &self,
        result: &Checksum,
    ) -> Result<Option<Vec<Checksum>>, DatabaseError> {
        let Some(text) = self
            .query(json!({"type": "rev_transformations", "checksum": result}))
            .await?
        else {
            return Ok(None);
        };
        let list: Vec<Checksum> = self.json("rev_transformations", &text)?;
        let mut seen = std::collections::HashSet::new();
        Ok(Some(list.into_iter().filter(|c| seen.insert(*c)).collect()))
    }

    /// The execution record of a transformation, if known.
    pub async fn get_execution_record(
        &self,
        tf: &Checksum,
    ) -> Result<Option<Map<String, Value>>, DatabaseError> {
        let Some(text) = self
            .query(json!({"type": "metadata", "checksum": tf}))
            .await?
        else {
            return Ok(None);
        };
        self.json("metadata", &text).map(Some)
    }

    /// The bucket probe of `(bucket_kind, label)`, if known.
    pub async fn get_bucket_probe(
        &self,
        bucket_kind: &str,
        label: &str,
    ) -> Result<Option<Map<String, Value>>, DatabaseError> {
        let Some(text) = self
            .query(json!({"type": "bucket_probe", "bucket_kind": bucket_kind, "label": label}))
            .await?
        else {
            return Ok(None);
        };
        self.json("bucket_probe", &text).map(Some)
    }

    /// The irreproducible records of a transformation (optionally for one result), if any.
    pub async fn get_irreproducible_records(
        &self,
        tf: &Checksum,
        result: Option<&Checksum>,
    ) -> Result<Option<Vec<Value>>, DatabaseError> {
        let mut body = json!({"type": "irreproducible", "checksum": tf});
        if let Some(r) = result {
            body["result"] = json!(r);
        }
        let Some(text) = self.query(body).await? else {
            return Ok(None);
        };
        self.json("irreproducible", &text).map(Some)
    }

    /// Stores `tf → result` (a later write overwrites: the server never conflicts here).
    pub async fn set_transformation_result(
        &self,
        tf: &Checksum,
        result: &Checksum,
    ) -> Result<(), DatabaseError> {
        self.store(
            "set a transformation result",
            json!({"type": "transformation", "checksum": tf, "value": result}),
        )
        .await?
        .map_err(|m| self.conflict("transformation", tf, m))
    }

    /// Stores an execution record. A different record already stored for the same result is
    /// [`RecordWrite::AlreadyExistsDifferent`] (not an error); other conflicts are errors.
    pub async fn set_execution_record(
        &self,
        tf: &Checksum,
        result: &Checksum,
        record: &Map<String, Value>,
    ) -> Result<RecordWrite, DatabaseError> {
        match self
            .store(
                "set an execution record",
                json!({"type": "metadata", "checksum": tf, "result": result, "value": record}),
            )
            .await?
        {
            Ok(()) => Ok(RecordWrite::Written),
            Err(m) if m.contains(ALREADY_EXISTS) => Ok(RecordWrite::AlreadyExistsDifferent),
            Err(m) => Err(self.conflict("metadata", tf, m)),
        }
    }

    /// Stores or refreshes a bucket probe.
    pub async fn set_bucket_probe(
        &self,
        bucket_kind: &str,
        label: &str,
        bucket_checksum: &Checksum,
        freshness_tokens: &Map<String, Value>,
        captured_at: &str,
    ) -> Result<(), DatabaseError> {
        self.store(
            "set a bucket probe",
            json!({"type": "bucket_probe", "bucket_kind": bucket_kind, "label": label,
                   "bucket_checksum": bucket_checksum, "freshness_tokens": freshness_tokens,
                   "captured_at": captured_at}),
        )
        .await?
        .map_err(|m| DatabaseError::Conflict {
            url: self.name(),
            request: "bucket_probe".into(),
            checksum: bucket_checksum.to_hex(),
            message: m,
        })
    }

    /// Contests a result: records it as irreproducible, which removes `tf → result`.
    pub async fn undo_transformation_result(
        &self,
        tf: &Checksum,
        result: &Checksum,
    ) -> Result<(), DatabaseError> {
        self.store(
            "undo a transformation result",
            json!({"type": "irreproducible", "checksum": tf, "result": result}),
        )
        .await?
        .map_err(|m| self.conflict("irreproducible", tf, m))
    }
}
