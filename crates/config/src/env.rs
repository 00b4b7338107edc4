//! Configuration from the environment: `SEAMLESS_REMOTE_CLIENTS` and `SEAMLESS_CACHE`.
//!
//! `SEAMLESS_REMOTE_CLIENTS` is JSON, the output of the reference's `collect_remote_clients`:
//! `{"buffer": [{"readonly", "url", "remote_url", "directory", "remote_directory"}],
//! "database": [{"readonly", "url", "remote_url"}]}`. A process that reads it is "in remote": it
//! uses `remote_url` and `remote_directory` (`~` expanded); `readonly` defaults to true.
//! Unlike the reference (which swallows every error and ends with no clients), a malformed value,
//! an unknown key, or an entry without `remote_url`/`remote_directory` is a clear error.
//!
//! `SEAMLESS_CACHE=/dir` replaces all configuration (see [`super::files`]) and disables
//! `SEAMLESS_REMOTE_CLIENTS`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One client entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteClientEntry {
    /// Read-only (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// URL as seen from the launching machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL as seen from inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_url: Option<String>,
    /// Buffer directory as seen from the launching machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// Buffer directory as seen from inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_directory: Option<String>,
}

/// The extern buffer and database clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteClients {
    /// Database clients.
    #[serde(default)]
    pub database: Vec<RemoteClientEntry>,
    /// Buffer clients.
    #[serde(default)]
    pub buffer: Vec<RemoteClientEntry>,
    /// Record mode (present in a jobserver's status-file parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
}

/// A buffer store to use "in remote" (resolved from an entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferStore {
    /// Client name, as the reference names it (`extern-buffer-0`, `extern-buffer-0-folder`...).
    pub name: String,
    /// A hashserver URL.
    pub url: Option<String>,
    /// A buffer directory (read-only).
    pub directory: Option<PathBuf>,
    /// Read-only.
    pub readonly: bool,
}

/// A database to use "in remote".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStore {
    /// Client name (`extern-db-0`...).
    pub name: String,
    /// The URL.
    pub url: String,
    /// Read-only.
    pub readonly: bool,
}

/// `~` and `~/...` expanded with `home` (left as they are without one).
pub fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if path == "~" => home.map_or_else(|| PathBuf::from(path), Path::to_path_buf),
        _ => PathBuf::from(path),
    }
}

impl RemoteClients {
    /// Parses the JSON value of `SEAMLESS_REMOTE_CLIENTS`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| {
            ConfigError::RemoteClients(format!(
                "{e}; expected {{\"buffer\": [{{\"remote_url\": ..., \"remote_directory\": ..., \"readonly\": ...}}], \"database\": [{{\"remote_url\": ..., \"readonly\": ...}}]}}"
            ))
        })
    }

    /// The buffer stores, "in remote" (from `remote_url` / `remote_directory`, `~` being `home`).
    pub fn buffer_stores(&self, home: Option<&Path>) -> Result<Vec<BufferStore>, ConfigError> {
        let mut out = Vec::new();
        for (i, e) in self.buffer.iter().enumerate() {
            let url = e.remote_url.clone();
            if let Some(u) = &url {
                check_url(&format!("buffer[{i}].remote_url"), u)?;
            }
            if e.remote_directory
                .as_deref()
                .is_some_and(|d| d.trim().is_empty())
            {
                return Err(ConfigError::RemoteClients(format!(
                    "buffer[{i}].remote_directory is empty (it would be the current directory); leave it out or name a directory"
                )));
            }
            let dir = e.remote_directory.as_deref().map(|d| expand_tilde(d, home));
            if url.is_none() && dir.is_none() {
                return Err(ConfigError::RemoteClients(
                    if e.url.is_some() || e.directory.is_some() {
                        format!("buffer[{i}] has 'url'/'directory' but no 'remote_url'/'remote_directory'; a process that reads SEAMLESS_REMOTE_CLIENTS uses the remote_* keys")
                    } else {
                        format!("buffer[{i}] needs 'remote_url' or 'remote_directory'")
                    },
                ));
            }
            if let Some(d) = dir {
                out.push(BufferStore {
                    name: if url.is_some() {
                        format!("extern-buffer-{i}-folder")
                    } else {
                        format!("extern-buffer-{i}")
                    },
                    url: None,
                    directory: Some(d),
                    readonly: true,
                });
            }
            if let Some(u) = url {
                out.push(BufferStore {
                    name: if e.remote_directory.is_some() {
                        format!("extern-buffer-{i}-server")
                    } else {
                        format!("extern-buffer-{i}")
                    },
                    url: Some(u),
                    directory: None,
                    readonly: e.readonly.unwrap_or(true),
                });
            }
        }
        Ok(out)
    }

    /// The databases, "in remote" (from `remote_url`).
    pub fn database_stores(&self) -> Result<Vec<DatabaseStore>, ConfigError> {
        self.database
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let url = e.remote_url.clone().ok_or_else(|| {
                    ConfigError::RemoteClients(if e.url.is_some() {
                        format!("database[{i}] has 'url' but no 'remote_url'; a process that reads SEAMLESS_REMOTE_CLIENTS uses 'remote_url'")
                    } else {
                        format!("database[{i}] needs 'remote_url'")
                    })
                })?;
                check_url(&format!("database[{i}].remote_url"), &url)?;
                Ok(DatabaseStore {
                    name: format!("extern-db-{i}"),
                    url,
                    readonly: e.readonly.unwrap_or(true),
                })
            })
            .collect()
    }
}

/// A store URL must be `http(s)://host[:port][/path]`: no `#fragment` or query (which would
/// silently change what is requested), no control characters.
fn check_url(what: &str, url: &str) -> Result<(), ConfigError> {
    seamless_safe_io::url::check_base_url(url)
        .map(|_| ())
        .map_err(|why| {
            ConfigError::RemoteClients(format!(
                "{what} '{}': {why}",
                seamless_safe_io::text::escape(&seamless_safe_io::text::redact_url(url))
            ))
        })
}

/// Where the clients of a CLI come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSource {
    /// `SEAMLESS_REMOTE_CLIENTS`.
    RemoteClients(RemoteClients),
    /// The project files (or `SEAMLESS_CACHE`, which they handle).
    ConfigFiles,
}

/// Decides, as the reference's `set_remote_clients_from_env`: a cache directory
/// (`SEAMLESS_CACHE`) → config files (cache mode); remote clients (`SEAMLESS_REMOTE_CLIENTS`) →
/// those clients (an error if malformed); else the config files.
pub fn client_source(
    cache: Option<&Path>,
    remote_clients: Option<&str>,
) -> Result<ClientSource, ConfigError> {
    match (cache, remote_clients) {
        (Some(_), _) | (None, None) => Ok(ClientSource::ConfigFiles),
        (None, Some(v)) => Ok(ClientSource::RemoteClients(RemoteClients::parse(v)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_example() {
        let rc = RemoteClients::parse(
            r#"{"database": [{"readonly": false, "url": "http://127.0.0.1:5247", "remote_url": "http://127.0.0.1:5247"}],
                "buffer": [{"readonly": false, "directory": "/b", "url": "http://127.0.0.1:5229",
                            "remote_url": "http://127.0.0.1:5229", "remote_directory": "/b"}]}"#,
        )
        .unwrap();
        let b = rc.buffer_stores(Some(Path::new("/home/u"))).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].name, "extern-buffer-0-folder");
        assert_eq!(b[0].directory.as_deref(), Some(std::path::Path::new("/b")));
        assert_eq!(b[1].name, "extern-buffer-0-server");
        assert!(!b[1].readonly);
        let d = rc.database_stores().unwrap();
        assert_eq!(d[0].name, "extern-db-0");
    }

    #[test]
    fn malformed_values_are_clear_errors() {
        for (text, expected) in [
            ("not json", "expected"),
            (
                r#"{"buffer": [{"remote_url": "http://h", "colour": 1}]}"#,
                "unknown field `colour`",
            ),
            (r#"{"buffers": []}"#, "unknown field `buffers`"),
            (r#"{"buffer": [{"readonly": "yes"}]}"#, "invalid type"),
        ] {
            let err = RemoteClients::parse(text).unwrap_err().to_string();
            assert!(
                err.contains("SEAMLESS_REMOTE_CLIENTS") && err.contains(expected),
                "{text}: {err}"
            );
        }
        let rc = RemoteClients::parse(r#"{"buffer": [{"url": "http://h"}]}"#).unwrap();
        let err = rc
            .buffer_stores(Some(Path::new("/home/u")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no 'remote_url'"), "{err}");
        let rc = RemoteClients::parse(r#"{"database": [{"url": "http://h"}]}"#).unwrap();
        assert!(rc
            .database_stores()
            .unwrap_err()
            .to_string()
            .contains("remote_url"));
        let rc = RemoteClients::parse(r#"{"buffer": [{}]}"#).unwrap();
        assert!(rc.buffer_stores(Some(Path::new("/home/u"))).is_err());
    }

    #[test]
    fn readonly_defaults_to_true() {
        let rc = RemoteClients::parse(r#"{"buffer": [{"remote_url": "http://h"}]}"#).unwrap();
        let b = rc.buffer_stores(Some(Path::new("/home/u"))).unwrap();
        assert!(b[0].readonly);
        assert_eq!(b[0].name, "extern-buffer-0");
    }
}
