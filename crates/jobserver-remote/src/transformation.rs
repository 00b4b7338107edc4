//! A transformation dict, as the jobserver protocol carries it: its input pins (one
//! definition, used by fingertip and by Dask submission).

use seamless_remote_core::{Checksum, ChecksumError};
use serde_json::Value;

/// Why a value is not a valid transformation dict.
#[derive(Debug, thiserror::Error)]
pub enum DictError {
    /// Not a JSON object.
    #[error("the transformation dict is not an object")]
    NotAnObject,
    /// A pin that is not `[celltype, subcelltype, checksum]`.
    #[error("pin '{name}' must be [celltype, subcelltype, checksum], not {value}")]
    BadPin {
        /// The pin.
        name: String,
        /// What it is (JSON).
        value: String,
    },
    /// A pin whose checksum is not one.
    #[error("pin '{name}': {source}")]
    BadChecksum {
        /// The pin.
        name: String,
        /// Why.
        source: ChecksumError,
    },
    /// A dunder key that seamless-transformer does not know.
    #[error("unknown transformation dunder key: {0}")]
    UnknownDunder(String),
}

/// Whether `key` of a transformation dict is not a pin (a dunder or a `META__` entry).
pub fn is_meta_key(key: &str) -> bool {
    key.starts_with("__") || key.starts_with("META__")
}

/// The input pins of a transformation dict (every key but the dunders and `META__` entries),
/// with their checksums; a malformed pin is an error.
pub fn pins(dict: &Value) -> Result<Vec<(String, Checksum)>, DictError> {
    let map = dict.as_object().ok_or(DictError::NotAnObject)?;
    let mut out = Vec::new();
    for (name, value) in map {
        if is_meta_key(name) {
            continue;
        }
        let checksum = value
            .as_array()
            .filter(|a| a.len() == 3)
            .and_then(|a| a[2].as_str())
            .ok_or_else(|| DictError::BadPin {
                name: name.clone(),
                value: value.to_string(),
            })?;
        let checksum = checksum
            .parse::<Checksum>()
            .map_err(|source| DictError::BadChecksum {
                name: name.clone(),
                source,
            })?;
        out.push((name.clone(), checksum));
    }
    Ok(out)
}
