//! The caller side of a Dask submission, what the reference's transformer does before it
//! submits: the result-cache lookup in the database, the remote-storage precondition, and
//! making sure the transformation and its inputs are in the buffer store. Then the
//! transformation runs on the Dask front and its result checksum comes back.

use bytes::Bytes;
use seamless_buffer_remote::ActiveBuffers;
use seamless_config::activation::ActivationError;
use seamless_database_remote::ActiveDatabases;
use seamless_jobserver_remote::transformation::DictError;
use seamless_jobserver_remote::{JobserverClient, RunRequest};
use seamless_remote_core::Checksum;
use serde_json::{Map, Value};

use crate::error::DaskError;

/// Dunders that are part of a transformation's identity (its checksum).
const LOAD_BEARING: &[&str] = &[
    "__language__",
    "__output__",
    "__as__",
    "__format__",
    "__schema__",
];

/// Dunders carried outside the identity (execution details, derived data).
const NOT_IDENTITY: &[&str] = &[
    "__meta__",
    "__env__",
    "__compilation__",
    "__record_probe__",
    "__code_checksum__",
    "__code_text__",
    "__compilers__",
    "__languages__",
    "__compiled__",
    "__header__",
    "__deps__",
];

/// A transformation to run on Dask.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The transformation dict: pins `[celltype, subcelltype, checksum]` and dunders.
    pub transformation_dict: Value,
    /// Execution dunders sent along (`{}` if none).
    pub tf_dunder: Value,
    /// Do not keep the result buffer.
    pub scratch: bool,
    /// Record mode (must equal the daskserver's).
    pub record: bool,
    /// Buffers the stores may not have yet (inputs, code), uploaded if missing.
    pub buffers: Vec<(Checksum, Bytes)>,
}

impl Submission {
    /// A submission of `transformation_dict` with the given buffers, not scratch, not record.
    pub fn new(transformation_dict: Value, buffers: Vec<(Checksum, Bytes)>) -> Self {
        Submission {
            transformation_dict,
            tf_dunder: Value::Object(Map::new()),
            scratch: false,
            record: false,
            buffers,
        }
    }
}

/// The input pins of a transformation dict, with their checksums (the one definition:
/// [`seamless_jobserver_remote::transformation::pins`]).
pub fn pins(dict: &Value) -> Result<Vec<(String, Checksum)>, DaskError> {
    Ok(seamless_jobserver_remote::transformation::pins(dict)?)
}

/// The buffer that defines a transformation's checksum (seamless-transformer's
/// `tf_get_buffer`): the pins and the identity dunders, as `plain` JSON (sorted keys, 2-space
/// indent, a trailing newline).
pub fn identity_buffer(dict: &Value) -> Result<Bytes, DaskError> {
    let map = dict.as_object().ok_or(DictError::NotAnObject)?;
    let mut identity = Map::new();
    for (key, value) in map {
        if LOAD_BEARING.contains(&key.as_str()) {
            identity.insert(key.clone(), value.clone());
        } else if NOT_IDENTITY.contains(&key.as_str()) || key.starts_with("META__") {
            continue;
        } else if key.starts_with("__") {
            return Err(DictError::UnknownDunder(key.clone()).into());
        } else {
            identity.insert(key.clone(), value.clone());
        }
    }
    pins(dict)?;
    let mut text = serde_json::to_string_pretty(&Value::Object(identity))?;
    text.push('\n');
    Ok(Bytes::from(text))
}

/// The transformation's checksum.
pub fn transformation_checksum(dict: &Value) -> Result<Checksum, DaskError> {
    Ok(Checksum::of(&identity_buffer(dict)?))
}

/// Runs `submission` through `front`:
/// 1. the result cache: a result known to the databases is returned without running;
/// 2. remote execution needs a writable buffer store and a writable database (the workers
///    store the result there);
/// 3. the transformation buffer and the given buffers that the stores lack are uploaded, and
///    every input must then be present ([`DaskError::MissingInputs`] otherwise);
/// 4. the front runs it; a failure comes back with its Python traceback.
pub async fn submit(
    front: &JobserverClient,
    submission: &Submission,
    buffers: &ActiveBuffers,
    databases: &ActiveDatabases,
) -> Result<Checksum, DaskError> {
    let tf_buffer = identity_buffer(&submission.transformation_dict)?;
    let tf = Checksum::of(&tf_buffer);
    if databases.has_read_server() {
        if let Some(result) = databases.get_transformation_result(&tf).await? {
            tracing::debug!(%tf, %result, "result cache hit");
            return Ok(result);
        }
    }
    if !buffers.has_write_server() {
        return Err(ActivationError::NothingActive(
            "Remote execution requires an active hashserver",
        )
        .into());
    }
    if !databases.has_write_server() {
        return Err(ActivationError::NothingActive(
            "Remote execution requires an active database server",
        )
        .into());
    }
    let pins = pins(&submission.transformation_dict)?;
    // The transformation buffer is small: stored unconditionally (an existing one costs the
    // hashserver nothing), while the presence check below runs.
    let store_tf = buffers.write_buffer(&tf, tf_buffer);
    let mut wanted: Vec<(Checksum, Option<Bytes>)> = Vec::new();
    for (c, b) in &submission.buffers {
        if *c != tf && !wanted.iter().any(|(w, _)| w == c) {
            wanted.push((*c, Some(b.clone())));
        }
    }
    for (_, c) in &pins {
        if !wanted.iter().any(|(w, _)| w == c) {
            wanted.push((*c, None));
        }
    }
    let checksums: Vec<Checksum> = wanted.iter().map(|(c, _)| *c).collect();
    let (stored, present) = tokio::join!(store_tf, buffers.has_buffers(&checksums));
    stored?;
    let mut missing = Vec::new();
    for ((checksum, bytes), here) in wanted.into_iter().zip(present) {
        if here {
            continue;
        }
        // Not on a server a worker can read: upload what we have, given or held locally (a
        // buffer folder).
        let bytes = match bytes {
            Some(b) => Some(b),
            None => buffers.get_buffer(&checksum).await?,
        };
        match bytes {
            Some(b) => {
                buffers.write_buffer(&checksum, b).await?;
            }
            None => missing.extend(
                pins.iter()
                    .filter(|(_, c)| *c == checksum)
                    .map(|(p, c)| (p.clone(), *c)),
            ),
        }
    }
    if !missing.is_empty() {
        return Err(DaskError::MissingInputs { tf, missing });
    }
    let request = RunRequest {
        transformation_dict: submission.transformation_dict.clone(),
        tf_checksum: tf,
        tf_dunder: submission.tf_dunder.clone(),
        scratch: submission.scratch,
        strict_dunder: false,
        record: submission.record,
        require_value: false,
    };
    front
        .run_transformation(&request)
        .await?
        .result_checksum()
        .ok_or(DaskError::NoResult { tf })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_drops_execution_dunders_and_checks_pins() {
        let cs = "084c799cd551dd1d8d5c5f9a5d593b2e931f5e36122ee5c793c1d08a19839cc0";
        let dict = json!({
            "__language__": "python",
            "__output__": ["result", "mixed", null],
            "__meta__": {"local": true},
            "a": ["mixed", null, cs],
        });
        let buf = identity_buffer(&dict).unwrap();
        let text = std::str::from_utf8(&buf).unwrap();
        assert!(!text.contains("__meta__"));
        assert!(text.ends_with("}\n") && text.contains("\n  \"a\": [\n    \"mixed\","));
        assert_eq!(
            pins(&dict).unwrap(),
            vec![("a".into(), cs.parse().unwrap())]
        );

        let bad = json!({"__bogus__": 1});
        assert!(identity_buffer(&bad)
            .unwrap_err()
            .to_string()
            .contains("__bogus__"));
        let bad = json!({"a": ["mixed", null, "nothex"]});
        assert!(identity_buffer(&bad)
            .unwrap_err()
            .to_string()
            .contains("pin 'a'"));
    }
}
