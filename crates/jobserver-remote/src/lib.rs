//! The Seamless jobserver client: run transformations remotely.
//!
//! * [`JobserverClient`]: `run_transformation` (a long GET with no read timeout; a failed job
//!   comes back with its traceback and is never re-run; dropping the future cancels the job),
//!   `cancel_transformation`, `transformation_status`.
//! * [`remote`]: the activation API over the jobservers of the current stage.
//! * [`transformation`]: the pins of a transformation dict.
//!
//! ```no_run
//! use seamless_jobserver_remote::{Checksum, JobserverClient, RunRequest};
//! # async fn demo(dict: serde_json::Value, tf: Checksum) -> Result<(), seamless_jobserver_remote::JobserverError> {
//! let jobs = JobserverClient::new("http://127.0.0.1:5533")?;
//! let result = jobs.run_transformation(&RunRequest::new(dict, tf)).await?;
//! println!("result: {:?}", result.result_checksum());
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod error;
pub mod launched;
pub mod remote;
pub mod transformation;

pub use client::{JobResult, JobStatus, JobserverClient, RunRequest};
pub use error::JobserverError;
pub use remote::{ActiveJobservers, JobserverRemote};
pub use seamless_remote_core::Checksum;
