//! [`JobserverClient`]: one seamless-jobserver (or anything speaking its protocol, such as the
//! Dask front).
//!
//! `run_transformation` is a long GET that stays open for the whole job: it runs with **no
//! idle-read and no total timeout** (the connect timeout still applies), so a job longer than
//! `SEAMLESS_REMOTE_READ_TIMEOUT` is not cut and re-submitted. A job that fails on the server
//! (HTTP 500 with its traceback) is [`JobserverError::Failed`] and is never re-run by the retry
//! loop; a cancellation is [`JobserverError::Canceled`]. Dropping a `run_transformation` future
//! before it finishes sends `POST /cancel-transformation/<tf>`, as the reference does on
//! `CancelledError`.

use seamless_remote_core::{
    Checksum, ClientOptions, RemoteClient, RequestSpec, RetryPolicy, Timeouts,
};
use serde_json::{json, Value};

use crate::error::JobserverError;

const CANCELED: &str = "Transformation was canceled";

/// The largest `/run-transformation` answer read (a result checksum, or a Python traceback).
pub const RUN_ANSWER_LIMIT: u64 = 16 << 20;
/// The largest status or cancel answer read (a small JSON object).
pub const JSON_ANSWER_LIMIT: u64 = 1 << 20;
/// The body of `GET /run-transformation`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRequest {
    /// The transformation (execution) dict.
    pub transformation_dict: Value,
    /// Its checksum (the checksum of the identity dict's buffer).
    pub tf_checksum: Checksum,
    /// The execution dunders (`__meta__`, `__env__`, ...); `{}` if none.
    pub tf_dunder: Value,
    /// Do not upload the result buffer.
    pub scratch: bool,
    /// Strict dunder handling.
    pub strict_dunder: bool,
    /// Record mode; must equal the jobserver's.
    pub record: bool,
    /// The result's buffer must be available, not only its checksum (a cached result whose
    /// buffer is gone is recomputed). Understood by the Dask front; sent only when true
    /// (seamless-jobserver ignores it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_value: bool,
}

impl RunRequest {
    /// A request with no dunders, not scratch, not strict, not record.
    pub fn new(transformation_dict: Value, tf_checksum: Checksum) -> Self {
        RunRequest {
            transformation_dict,
            tf_checksum,
            tf_dunder: json!({}),
            scratch: false,
            strict_dunder: false,
            record: false,
            require_value: false,
        }
    }
}

/// What a jobserver answered for a successful run.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    /// The result checksum with the optional contexts (current servers).
    Result {
        /// The result.
        result_checksum: Checksum,
        /// Record-mode probe context.
        probe_context: Option<Value>,
        /// Record-mode compilation context.
        compilation_context: Option<Value>,
        /// Record-mode validation.
        job_validation: Option<Value>,
        /// Runtime measurements.
        record_runtime: Option<Value>,
    },
    /// The job was written for another system to run (remote-job-writing mode).
    RemoteJobWritten {
        /// The marker string (`__SEAMLESS_REMOTE_JOB_WRITTEN__:<dir>`).
        marker: String,
        /// Runtime measurements.
        record_runtime: Option<Value>,
    },
    /// A bare checksum (older servers).
    Checksum(Checksum),
}

impl JobResult {
    /// The result checksum, if the job produced one here.
    pub fn result_checksum(&self) -> Option<Checksum> {
        match self {
            JobResult::Result {
                result_checksum, ..
            } => Some(*result_checksum),
            JobResult::Checksum(c) => Some(*c),
            JobResult::RemoteJobWritten { .. } => None,
        }
    }
}

/// A transformation's status on a jobserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Running now.
    Running,
    /// Canceled (stays so until the checksum runs again).
    Canceled,
    /// Not running (also after a failure, on the jobserver).
    NotRunning,
    /// Failed (Dask backends).
    Failed,
    /// Done (Dask backends).
    Done,
    /// Anything else the server said.
    Other(String),
}

impl JobStatus {
    /// The status as the server says it (`running`, `canceled`, `not-running`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Canceled => "canceled",
            JobStatus::NotRunning => "not-running",
            JobStatus::Failed => "failed",
            JobStatus::Done => "done",
            JobStatus::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "running" => JobStatus::Running,
            "canceled" => JobStatus::Canceled,
            "not-running" => JobStatus::NotRunning,
            "failed" => JobStatus::Failed,
            "done" => JobStatus::Done,
            other => JobStatus::Other(other.to_string()),
        }
    }
}

/// A client of one jobserver.
#[derive(Debug, Clone)]
pub struct JobserverClient {
    remote: RemoteClient,
}

/// Sends a best-effort cancel when a `run_transformation` future is dropped before it finished.
struct CancelOnDrop {
    client: JobserverClient,
    tf: Checksum,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let tf = self.tf;
            tracing::info!(%tf, "run_transformation dropped: canceling the job");
            rt.spawn(async move {
                let _ = client.cancel_transformation(&tf).await;
            });
        }
    }
}

impl JobserverClient {
    /// A client of the jobserver at `url`.
    pub fn new(url: &str) -> Result<Self, JobserverError> {
        Self::with_options(url, ClientOptions::default())
    }

    /// A client with options.
    pub fn with_options(url: &str, options: ClientOptions) -> Result<Self, JobserverError> {
        Ok(JobserverClient {
            remote: RemoteClient::with_options(url, options)?,
        })
    }

    /// A client over an existing [`RemoteClient`] (e.g. a launched one).
    pub fn from_remote(remote: RemoteClient) -> Self {
        JobserverClient { remote }
    }

    /// The underlying remote client.
    pub fn remote(&self) -> &RemoteClient {
        &self.remote
    }

    /// The URL, once known.
    pub fn url(&self) -> Option<String> {
        self.remote.url()
    }

    fn name(&self) -> String {
        self.url().unwrap_or_else(|| "(launched jobserver)".into())
    }

    /// Runs a transformation and waits for it (no read timeout). Transport failures are retried
    /// once after a restart (the reference's rule: a re-submission); a failed or canceled job is
    /// never retried.
    pub async fn run_transformation(
        &self,
        request: &RunRequest,
    ) -> Result<JobResult, JobserverError> {
        let timeouts = Timeouts {
            read: None,
            total: None,
            ..self.remote.options().timeouts
        };
        let spec = RequestSpec::get("/run-transformation")
            .json(request)?
            .timeouts(timeouts);
        let tf = request.tf_checksum;
        let mut guard = CancelOnDrop {
            client: self.clone(),
            tf,
            armed: true,
        };
        let policy = RetryPolicy {
            max_attempts: 2,
            ..self.remote.options().retry
        };
        let result = self
            .remote
            .execute_with(policy, || async {
                let response = self.remote.send(&spec).await?;
                let status = response.status().as_u16();
                let text = response.text_limited(RUN_ANSWER_LIMIT).await?;
                self.interpret_run(&tf, status, text)
            })
            .await;
        guard.armed = false;
        result
    }

    fn interpret_run(
        &self,
        tf: &Checksum,
        status: u16,
        text: String,
    ) -> Result<JobResult, JobserverError> {
        let url = format!("{}/run-transformation", self.name());
        match status {
            200 => {}
            409 if text.contains(CANCELED) => return Err(JobserverError::Canceled { tf: *tf }),
            500 => {
                return Err(JobserverError::Failed {
                    tf: *tf,
                    url,
                    traceback: text,
                })
            }
            _ => {
                return Err(JobserverError::Rejected {
                    url,
                    status,
                    message: text.trim().to_string(),
                })
            }
        }
        if text.trim() == CANCELED {
            return Err(JobserverError::Canceled { tf: *tf });
        }
        let malformed = |detail: String| JobserverError::Malformed {
            url: url.clone(),
            detail,
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(mut m)) => {
                if let Some(Value::String(marker)) = m.remove("remote_job_written") {
                    return Ok(JobResult::RemoteJobWritten {
                        marker,
                        record_runtime: m.remove("record_runtime"),
                    });
                }
                let result_checksum = m
                    .get("result_checksum")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        malformed(format!(
                            "no result_checksum in {}",
                            Value::Object(m.clone())
                        ))
                    })?
                    .parse::<Checksum>()
                    .map_err(|e| malformed(e.to_string()))?;
                Ok(JobResult::Result {
                    result_checksum,
                    probe_context: m.remove("probe_context"),
                    compilation_context: m.remove("compilation_context"),
                    job_validation: m.remove("job_validation"),
                    record_runtime: m.remove("record_runtime"),
                })
            }
            _ => {
                let t = text.trim();
                if t.starts_with("__SEAMLESS_REMOTE_JOB_WRITTEN__:") {
                    return Ok(JobResult::RemoteJobWritten {
                        marker: t.to_string(),
                        record_runtime: None,
                    });
                }
                t.parse::<Checksum>().map(JobResult::Checksum).map_err(|e| {
                    malformed(format!(
                        "neither JSON nor a checksum ({e}): {}",
                        t.chars().take(200).collect::<String>()
                    ))
                })
            }
        }
    }

    /// `POST /cancel-transformation/<tf>`: whether a running job was marked canceled.
    pub async fn cancel_transformation(&self, tf: &Checksum) -> Result<bool, JobserverError> {
        let v = self
            .json_call(RequestSpec::post(format!("/cancel-transformation/{tf}")))
            .await?;
        Ok(v.get("canceled").and_then(Value::as_bool).unwrap_or(false))
    }

    /// `GET /transformation-status/<tf>`.
    pub async fn transformation_status(&self, tf: &Checksum) -> Result<JobStatus, JobserverError> {
        let spec = RequestSpec::get(format!("/transformation-status/{tf}"));
        let v = self.json_call(spec).await?;
        v.get("status")
            .and_then(Value::as_str)
            .map(JobStatus::parse)
            .ok_or_else(|| JobserverError::Malformed {
                url: format!("{}/transformation-status/{tf}", self.name()),
                detail: format!("no status in {v}"),
            })
    }

    async fn json_call(&self, spec: RequestSpec) -> Result<Value, JobserverError> {
        let (status, body) = self.remote.request_bytes(&spec, JSON_ANSWER_LIMIT).await?;
        let url = format!("{}{}", self.name(), spec.path);
        if !status.is_success() {
            return Err(JobserverError::Rejected {
                url,
                status: status.as_u16(),
                message: seamless_safe_io::text::escape(String::from_utf8_lossy(&body).trim()),
            });
        }
        serde_json::from_slice(&body).map_err(|e| JobserverError::Malformed {
            url,
            detail: e.to_string(),
        })
    }
}
