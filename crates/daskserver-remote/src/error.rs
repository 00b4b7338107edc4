//! The daskserver crate's error type.

use seamless_buffer_remote::BufferError;
use seamless_database_remote::DatabaseError;
use seamless_jobserver_remote::JobserverError;
use seamless_remote_core::Checksum;

/// Why a Dask operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DaskError {
    /// The configuration or the activation is invalid, or what a call needs is not active.
    #[error(transparent)]
    Setup(#[from] seamless_activation::SetupError),

    /// A request could not be encoded as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] serde_json::Error),

    /// The daskserver or the Dask front could not be launched or found.
    #[error("{what}: {reason}")]
    Launch {
        /// Which service (`daskserver <key>` or `Dask front <key>`).
        what: String,
        /// The launcher's message (with the end of the service log).
        reason: String,
    },

    /// No Dask backend is active (call `activate` first).
    #[error("no Dask backend is active (activate a stage with 'execution: remote' and 'remote: daskserver')")]
    NotActive,

    /// Running, querying or canceling through the Dask front failed; a failed transformation
    /// is [`JobserverError::Failed`] with its Python traceback.
    #[error(transparent)]
    Job(#[from] JobserverError),

    /// A buffer store operation of the submission failed.
    #[error(transparent)]
    Buffer(#[from] BufferError),

    /// A database operation of the submission failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),

    /// The transformation dict is not one (not an object, a pin without a checksum...).
    #[error("invalid transformation: {0}")]
    Invalid(#[from] seamless_jobserver_remote::transformation::DictError),

    /// Inputs that are in no buffer store and were not given with the submission.
    #[error("transformation {tf}: inputs missing from the buffer store (give their buffers with the submission): {}", missing.iter().map(|(p, c)| format!("{p} = {c}")).collect::<Vec<_>>().join(", "))]
    MissingInputs {
        /// The transformation.
        tf: Checksum,
        /// The pins and their checksums.
        missing: Vec<(String, Checksum)>,
    },

    /// The front answered without a result checksum (a remote job was written instead).
    #[error("transformation {tf}: the Dask front returned no result checksum")]
    NoResult {
        /// The transformation.
        tf: Checksum,
    },
}

seamless_activation::setup_error_from!(DaskError);
