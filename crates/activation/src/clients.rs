//! [`Clients`]: the extern and launched clients of one service.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use seamless_config::activation::{ActivationError, LaunchKey};

use crate::LaunchedClientInfo;

/// Produces the launched clients of one service (the seam the launcher fills; the service
/// crates' `Config*Launcher`s implement it).
pub trait LaunchClients<C, E>: Send + Sync {
    /// The launched client of `key` (nothing is started before its first request).
    fn launched_client(&self, key: &LaunchKey) -> Result<C, E>;

    /// The launched clients made so far, with the reference's inspection fields.
    fn inspect(&self) -> Vec<LaunchedClientInfo> {
        Vec::new()
    }
}

/// The defined clients of one service: extern clients (`X`) by name, and launched clients (`C`)
/// per launch key, each made once on the first activation that needs it.
pub struct Clients<C, X, E> {
    service: &'static str,
    extern_clients: BTreeMap<String, X>,
    launched: HashMap<LaunchKey, C>,
    launcher: Option<Arc<dyn LaunchClients<C, E>>>,
}

impl<C, X, E> std::fmt::Debug for Clients<C, X, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("service", &self.service)
            .field("extern", &self.extern_clients.keys().collect::<Vec<_>>())
            .field("launched", &self.launched.len())
            .field("launcher", &self.launcher.is_some())
            .finish()
    }
}

impl<C: Clone, X, E: From<ActivationError>> Clients<C, X, E> {
    /// None defined, for `service` (named in errors).
    pub fn new(service: &'static str) -> Self {
        Clients {
            service,
            extern_clients: BTreeMap::new(),
            launched: HashMap::new(),
            launcher: None,
        }
    }

    /// Sets what produces launched clients.
    pub fn set_launcher(&mut self, launcher: Arc<dyn LaunchClients<C, E>>) {
        self.launcher = Some(launcher);
    }

    /// Defines (or redefines) an extern client.
    pub fn define_extern(&mut self, name: &str, client: X) {
        self.extern_clients.insert(name.to_string(), client);
    }

    /// Records the launched client of a key made elsewhere (the reference's
    /// `define_launched_client`).
    pub fn define_launched(&mut self, key: LaunchKey, client: C) {
        self.launched.insert(key, client);
    }

    /// The launched client of `key`, made now by the launcher if there is none yet; without a
    /// launcher that is [`ActivationError::NoLauncher`].
    pub fn launched(&mut self, key: &LaunchKey) -> Result<C, E> {
        if let Some(c) = self.launched.get(key) {
            return Ok(c.clone());
        }
        let launcher = self
            .launcher
            .as_ref()
            .ok_or_else(|| ActivationError::NoLauncher {
                service: self.service,
                cluster: key.selection.cluster.clone(),
                project: key.selection.project.clone(),
            })?;
        let c = launcher.launched_client(key)?;
        self.launched.insert(key.clone(), c.clone());
        Ok(c)
    }

    /// The extern client `name`, or [`ActivationError::UnknownExternClient`].
    pub fn extern_client(&self, name: &str) -> Result<&X, E> {
        self.extern_clients.get(name).ok_or_else(|| {
            ActivationError::UnknownExternClient {
                service: self.service,
                name: name.to_string(),
            }
            .into()
        })
    }

    /// The extern clients, by name.
    pub fn externs(&self) -> impl Iterator<Item = (&str, &X)> {
        self.extern_clients.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many launched clients were made.
    pub fn launched_count(&self) -> usize {
        self.launched.len()
    }

    /// The launched clients, with the reference's fields (empty without a launcher).
    pub fn inspect_launched(&self) -> Vec<LaunchedClientInfo> {
        self.launcher
            .as_ref()
            .map(|l| l.inspect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seamless_config::Current;

    struct Counting(std::sync::atomic::AtomicUsize);

    impl LaunchClients<usize, ActivationError> for Counting {
        fn launched_client(&self, _: &LaunchKey) -> Result<usize, ActivationError> {
            Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        }
    }

    fn key(stage: &str) -> LaunchKey {
        LaunchKey {
            readonly: false,
            selection: Current {
                cluster: "c".into(),
                project: "p".into(),
                subproject: None,
                stage: Some(stage.into()),
                substage: None,
            },
        }
    }

    #[test]
    fn launched_once_per_key_and_named_errors() {
        let mut c: Clients<usize, String, ActivationError> = Clients::new("demo");
        assert!(matches!(
            c.launched(&key("a")),
            Err(ActivationError::NoLauncher {
                service: "demo",
                ..
            })
        ));
        c.set_launcher(Arc::new(Counting(0.into())));
        assert_eq!(c.launched(&key("a")).ok(), Some(0));
        assert_eq!(c.launched(&key("b")).ok(), Some(1));
        assert_eq!(c.launched(&key("a")).ok(), Some(0), "made once");
        assert_eq!(c.launched_count(), 2);
        c.define_extern("x", "url".into());
        assert_eq!(c.extern_client("x").ok().map(String::as_str), Some("url"));
        assert!(c
            .extern_client("y")
            .is_err_and(|e| e.to_string().contains("unknown extern demo client 'y'")));
    }
}
