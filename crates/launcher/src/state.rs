//! The launcher's state files, in remote-http-launcher 0.4.5's formats, so that Rust and Python
//! processes share services:
//!
//! * `~/.remote-http-launcher/server/<key>.json`: the server file. The launcher writes it as
//!   `starting` (with the pid); the service rewrites it as `running` (with `port`) or `failed`.
//! * `~/.remote-http-launcher/server/<key>.log`: the service's output.
//! * `~/.remote-http-launcher/client/<key>.json`: the client file, the connection cache (0600).
//! * `~/.remote-http-launcher/server/<key>.lock`: our addition, an exclusive lock per key.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The launcher's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDirs {
    /// The home directory that `~` stands for.
    pub home: PathBuf,
    /// `<home>/.remote-http-launcher`.
    pub root: PathBuf,
}

impl StateDirs {
    /// The state of `home`.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        let home = home.into();
        StateDirs {
            root: home.join(".remote-http-launcher"),
            home,
        }
    }

    /// `server/<key>.json`.
    pub fn server_file(&self, key: &str) -> PathBuf {
        self.root.join("server").join(format!("{key}.json"))
    }

    /// `server/<key>.log`.
    pub fn log_file(&self, key: &str) -> PathBuf {
        self.root.join("server").join(format!("{key}.log"))
    }

    /// `server/<key>.lock`.
    pub fn lock_file(&self, key: &str) -> PathBuf {
        self.root.join("server").join(format!("{key}.lock"))
    }

    /// `client/<key>.json`.
    pub fn client_file(&self, key: &str) -> PathBuf {
        self.root.join("client").join(format!("{key}.json"))
    }

    /// Expands a leading `~` or `~/` with this home.
    pub fn expand(&self, s: &str) -> String {
        if s == "~" {
            self.home.display().to_string()
        } else if let Some(rest) = s.strip_prefix("~/") {
            self.home.join(rest).display().to_string()
        } else {
            s.to_string()
        }
    }
}

/// Reads a JSON object; `None` if the file is missing, not a regular file, larger than
/// [`STATE_FILE_CAP`](seamless_safe_io::fs::STATE_FILE_CAP), or not an object.
pub(crate) fn read_object(path: &Path) -> Option<Map<String, Value>> {
    let raw = seamless_safe_io::fs::read_capped(
        path,
        seamless_safe_io::fs::STATE_FILE_CAP,
        seamless_safe_io::fs::Accept::RegularOnly,
    )
    .ok()?;
    parse_object(&raw)
}

/// A state file's contents as a JSON object, if they are one.
pub(crate) fn parse_object(raw: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(raw) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Writes `value` atomically and privately: a new temporary file (0600, created exclusively, so
/// never through a planted link) in the same directory (created 0700), renamed over `path` (a
/// link at `path` is replaced, its target untouched).
pub(crate) fn write_atomic(path: &Path, value: &Value) -> std::io::Result<()> {
    write_bytes_atomic(path, value.to_string().as_bytes())
}

/// As [`write_atomic`], for bytes.
pub(crate) fn write_bytes_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    seamless_safe_io::fs::create_private_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    seamless_safe_io::fs::make_private(tmp.as_file())?;
    tmp.write_all(contents)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Removes a file; a missing file is fine.
pub(crate) fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// A port value (an int in 1..=65535).
pub(crate) fn port_of(m: &Map<String, Value>, name: &str) -> Option<u16> {
    m.get(name)
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

/// The `*_port` / `*-port` entries of a server file (e.g. `dashboard_port`).
pub(crate) fn extra_ports(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, v)| (k.ends_with("_port") || k.ends_with("-port")) && !v.is_boolean())
        .filter(|(k, _)| port_of(m, k).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The `pid` of a state file: a positive process id in the range of `pid_t`; anything else
/// (negative, zero, `pid + 2^32`, not a number) is no pid, never wrapped.
pub(crate) fn pid_of(state: &Map<String, Value>) -> Option<i32> {
    state
        .get("pid")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn pids_out_of_range_are_no_pid() {
        let state = |v: Value| json!({ "pid": v }).as_object().cloned().unwrap_or_default();
        assert_eq!(pid_of(&state(json!(1234))), Some(1234));
        assert_eq!(pid_of(&state(json!(1234_i64 + (1 << 32)))), None);
        assert_eq!(pid_of(&state(json!(-1))), None);
        assert_eq!(pid_of(&state(json!(0))), None);
        assert_eq!(pid_of(&state(json!("1234"))), None);
        assert_eq!(pid_of(&state(json!(1.5e300))), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "\\PC{0,16}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("pid".to_string()),
                        Just("port".to_string()),
                        Just("status".to_string()),
                        Just("dashboard_port".to_string()),
                        "[a-z_-]{1,10}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Any state file (arbitrary bytes or JSON) parses to a map or nothing, and its pid and
        /// ports are in range or absent, never a panic or a wrapped value.
        #[test]
        fn state_files_never_panic(raw in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200).boxed(),
            json_value().prop_map(|v| v.to_string().into_bytes()).boxed(),
        ]) {
            if let Some(m) = parse_object(&raw) {
                if let Some(p) = pid_of(&m) {
                    prop_assert!(p > 0);
                }
                if let Some(p) = port_of(&m, "port") {
                    prop_assert!(p > 0);
                }
                for (k, _) in extra_ports(&m) {
                    prop_assert!(port_of(&m, &k).is_some());
                }
            }
        }
    }
}
