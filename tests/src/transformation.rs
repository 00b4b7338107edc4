//! Builds real Seamless transformations for tests: the buffers (serialized as seamless-core
//! does), the transformation dict and its checksum.
//!
//! `mixed`/`plain` values are JSON with sorted keys, 2-space indent and a trailing newline
//! (`19` → `b"19\n"`); Python code is the text with exactly one trailing newline. The tf
//! checksum is the SHA-256 of the dict serialized the same way.

use bytes::Bytes;
use seamless_remote_core::Checksum;
use serde_json::{json, Value};

/// A transformation ready to run: its dict, checksum, and every buffer it needs.
#[derive(Debug, Clone)]
pub struct Transformation {
    /// The transformation dict.
    pub dict: Value,
    /// Its checksum.
    pub tf_checksum: Checksum,
    /// Inputs, code and the dict's own buffer, by checksum.
    pub buffers: Vec<(Checksum, Bytes)>,
}

/// The buffer of a JSON-serializable (`mixed`) value.
pub fn mixed_buffer(value: &Value) -> Bytes {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    Bytes::from(s)
}

/// A Python transformer `code` (defining one function) applied to named JSON inputs.
pub fn python(code: &str, inputs: &[(&str, Value)]) -> Transformation {
    let code_buf = Bytes::from(format!("{}\n", code.trim_end_matches('\n')));
    let code_cs = Checksum::of(&code_buf);
    let mut dict = serde_json::Map::new();
    dict.insert("__language__".into(), json!("python"));
    dict.insert("__output__".into(), json!(["result", "mixed", null]));
    dict.insert("code".into(), json!(["python", "transformer", code_cs]));
    let mut buffers = vec![(code_cs, code_buf)];
    for (name, value) in inputs {
        let buf = mixed_buffer(value);
        let cs = Checksum::of(&buf);
        dict.insert((*name).into(), json!(["mixed", null, cs]));
        buffers.push((cs, buf));
    }
    let dict = Value::Object(dict);
    let tf_buf = mixed_buffer(&dict);
    let tf_checksum = Checksum::of(&tf_buf);
    buffers.push((tf_checksum, tf_buf));
    Transformation {
        dict,
        tf_checksum,
        buffers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_match_the_reference_checksums() {
        // From protocols.md §3.4: the add code and the result 42.
        let t = python(
            "def add(a, b):\n    return a + b\n",
            &[("a", json!(19)), ("b", json!(23))],
        );
        assert_eq!(
            t.buffers[0].0.to_hex(),
            "ba1a531f581d2e6094e978ed6f7aca7a8d92eeb62c6e7ad73ee692f7f18bc772"
        );
        assert_eq!(
            Checksum::of(&mixed_buffer(&json!(42))).to_hex(),
            "084c799cd551dd1d8d5c5f9a5d593b2e931f5e36122ee5c793c1d08a19839cc0"
        );
        assert_eq!(&mixed_buffer(&json!(19))[..], b"19\n");
    }
}
