//! The launch-key rules shared by the activation APIs of every service (the reference's
//! `activate(readonly, extra_launched_clients, extern_clients, no_main)`).
//!
//! The main launched client (unless `no_main`) comes first. Extra launched clients take their
//! missing fields from the main selection and are read-only unless they say otherwise. One that
//! repeats a key already active is a redundancy error, and a read-only one shadowed by the
//! read-write client of the same selection is skipped. Storage services (buffer, database) key by
//! stage; execution services (jobserver, daskserver) also by substage.

use crate::Current;

/// A launched client's key: read-only or not, and its selection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaunchKey {
    /// Read-only (`ro` mode).
    pub readonly: bool,
    /// Cluster, project, subproject, stage (and substage for execution services).
    pub selection: Current,
}

/// An extra launched client; missing fields default to the main selection.
#[derive(Debug, Clone, Default)]
pub struct ExtraLaunched {
    /// Read-only (default true).
    pub readonly: Option<bool>,
    /// Cluster.
    pub cluster: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Subproject (`Some(None)` = explicitly none).
    pub subproject: Option<Option<String>>,
    /// Stage (`Some(None)` = explicitly none).
    pub stage: Option<Option<String>>,
    /// Substage (execution services only).
    pub substage: Option<Option<String>>,
}

/// Options of `activate`.
#[derive(Debug, Clone, Default)]
pub struct ActivateOptions {
    /// Activate read-only (the main client gets no write role).
    pub readonly: bool,
    /// The main selection; `None` is the reference's `no_main=True`.
    pub main: Option<Current>,
    /// Extra launched clients.
    pub extra_launched_clients: Vec<ExtraLaunched>,
    /// Names of extern clients to activate, in order.
    pub extern_clients: Vec<String>,
}

/// Which parts of a selection key a service's launched clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Per stage; the substage is ignored (buffer, database).
    Stage,
    /// Per substage (jobserver, daskserver).
    Substage,
}

/// Why an activation (or a call on what is active) cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    /// An extra launched client lacks a field and there is no main selection to take it from.
    #[error("extra launched client {extra} has no {field}, and there is no main selection to take it from")]
    MissingField {
        /// The extra client, as given.
        extra: String,
        /// `cluster` or `project`.
        field: &'static str,
    },
    /// An extra launched client repeats an active key.
    #[error("redundant extra launched client: {extra} is already active")]
    Redundant {
        /// The extra client, as given.
        extra: String,
    },
    /// A launched client is needed but no launcher is configured.
    #[error("no launched {service} is defined for cluster '{cluster}', project '{project}' and no launcher is configured")]
    NoLauncher {
        /// The service.
        service: &'static str,
        /// The cluster.
        cluster: String,
        /// The project.
        project: String,
    },
    /// An extern client that was never defined.
    #[error("unknown extern {service} client '{name}' (define it first)")]
    UnknownExternClient {
        /// The service.
        service: &'static str,
        /// The name.
        name: String,
    },
    /// A call needs an active client of `service` and there is none.
    #[error("{0}")]
    NothingActive(&'static str),
}

/// The launch keys an activation needs, in order (main first), or why the options are invalid.
pub fn launch_keys(
    options: &ActivateOptions,
    scope: KeyScope,
) -> Result<Vec<LaunchKey>, ActivationError> {
    let scoped = |mut c: Current| {
        if scope == KeyScope::Stage {
            c.substage = None;
        }
        c
    };
    let mut keys: Vec<LaunchKey> = Vec::new();
    let main = options.main.clone().map(scoped);
    if let Some(m) = &main {
        keys.push(LaunchKey {
            readonly: options.readonly,
            selection: m.clone(),
        });
    }
    for extra in &options.extra_launched_clients {
        let missing = |field: &'static str| ActivationError::MissingField {
            extra: format!("{extra:?}"),
            field,
        };
        let inherit = |own: &Option<Option<String>>, from: Option<&Option<String>>| match own {
            Some(v) => v.clone(),
            None => from.cloned().flatten(),
        };
        let selection = scoped(Current {
            cluster: extra
                .cluster
                .clone()
                .or_else(|| main.as_ref().map(|m| m.cluster.clone()))
                .ok_or_else(|| missing("cluster"))?,
            project: extra
                .project
                .clone()
                .or_else(|| main.as_ref().map(|m| m.project.clone()))
                .ok_or_else(|| missing("project"))?,
            subproject: inherit(&extra.subproject, main.as_ref().map(|m| &m.subproject)),
            stage: inherit(&extra.stage, main.as_ref().map(|m| &m.stage)),
            substage: inherit(&extra.substage, main.as_ref().map(|m| &m.substage)),
        });
        let key = LaunchKey {
            readonly: extra.readonly.unwrap_or(true),
            selection,
        };
        if keys.contains(&key) {
            return Err(ActivationError::Redundant {
                extra: format!("{extra:?}"),
            });
        }
        let rw = LaunchKey {
            readonly: false,
            selection: key.selection.clone(),
        };
        if keys.contains(&rw) {
            continue;
        }
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(stage: Option<&str>) -> Current {
        Current {
            cluster: "c".into(),
            project: "p".into(),
            subproject: None,
            stage: stage.map(String::from),
            substage: Some("sub".into()),
        }
    }

    #[test]
    fn main_then_extras_with_inheritance_and_shadowing() {
        let opts = ActivateOptions {
            readonly: false,
            main: Some(sel(None)),
            extra_launched_clients: vec![
                ExtraLaunched {
                    stage: Some(Some("prod".into())),
                    ..ExtraLaunched::default()
                },
                // Read-only twin of the read-write main: skipped.
                ExtraLaunched::default(),
            ],
            extern_clients: vec![],
        };
        let keys = launch_keys(&opts, KeyScope::Stage).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(!keys[0].readonly);
        assert!(keys[1].readonly);
        assert_eq!(keys[1].selection.stage.as_deref(), Some("prod"));
        assert_eq!(
            keys[1].selection.substage, None,
            "storage keys ignore the substage"
        );
        let keys = launch_keys(&opts, KeyScope::Substage).unwrap();
        assert_eq!(keys[1].selection.substage.as_deref(), Some("sub"));
    }

    #[test]
    fn redundancy_and_missing_main_are_errors() {
        let opts = ActivateOptions {
            readonly: true,
            main: Some(sel(None)),
            extra_launched_clients: vec![ExtraLaunched::default()],
            ..ActivateOptions::default()
        };
        assert!(launch_keys(&opts, KeyScope::Stage)
            .unwrap_err()
            .to_string()
            .contains("redundant"));
        let opts = ActivateOptions {
            extra_launched_clients: vec![ExtraLaunched::default()],
            ..ActivateOptions::default()
        };
        assert!(launch_keys(&opts, KeyScope::Stage)
            .unwrap_err()
            .to_string()
            .contains("no cluster"));
    }
}
