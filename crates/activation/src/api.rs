//! [`activation_api!`](crate::activation_api): the part of a service crate's activation API that
//! is the same in every crate, written once.
//!
//! It defines, in the calling module, the `*Remote` type (the defined clients and the active
//! set: the explicit handle) with its common methods, the launcher seam's type, and the
//! process-wide layer over one static instance: `global`, `active`, `set_launcher`,
//! `define_launched_client`, `activate`, `deactivate`, `inspect_extern_clients` and
//! `inspect_launched_clients`. The crate writes what differs: its `activate` rules
//! (`fn activate_into(&mut self, options) -> Result<Active, Error>`), its extern-client
//! definitions and its `Active*` type with the calls.

/// What `inspect_extern_clients` reports for one extern client (the reference's fields).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExternClientInfo {
    /// The name.
    pub name: String,
    /// Read-only.
    pub readonly: bool,
    /// URL, for a server.
    pub url: Option<String>,
    /// Directory, for a buffer folder.
    pub directory: Option<String>,
}

/// An extern client's inspection fields.
pub trait ExternInfo {
    /// The fields of this client, defined as `name`.
    fn extern_info(&self, name: &str) -> ExternClientInfo;
}

/// Defines a service crate's `*Remote` handle and its process-wide layer (see the module docs).
///
/// `remote`: the type to define; `service`: its name in errors; `launched`/`extern_client`: the
/// client types; `error`, `active` (a `Default + Clone` type); `launcher`: the name of the
/// launcher seam's type to define. The crate implements
/// `fn activate_into(&mut self, &ActivateOptions) -> Result<active, error>` on `remote`.
#[macro_export]
macro_rules! activation_api {
    (
        remote: $remote:ident,
        service: $service:literal,
        launched: $launched:ty,
        extern_client: $extern:ty,
        error: $error:ty,
        active: $active:ty,
        launcher: $launcher:ident $(,)?
    ) => {
        /// What produces launched clients (the seam the launcher fills).
        pub type $launcher = dyn $crate::LaunchClients<$launched, $error>;

        /// The defined clients (extern, and launched per key) and the active set: the explicit
        /// handle. The module-level functions are the same calls on one process-wide instance.
        #[derive(Debug)]
        pub struct $remote {
            clients: $crate::Clients<$launched, $extern, $error>,
            active: $active,
        }

        impl Default for $remote {
            fn default() -> Self {
                $remote {
                    clients: $crate::Clients::new($service),
                    active: <$active>::default(),
                }
            }
        }

        impl $remote {
            /// Nothing defined, nothing active.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets what produces launched clients.
            pub fn set_launcher(&mut self, launcher: ::std::sync::Arc<$launcher>) {
                self.clients.set_launcher(launcher);
            }

            /// Defines the launched client of a key (normally made on demand by the launcher).
            pub fn define_launched_client(&mut self, key: $crate::LaunchKey, client: $launched) {
                self.clients.define_launched(key, client);
            }

            /// Computes and installs the active set (nothing changes if it fails).
            pub fn activate(&mut self, options: &$crate::ActivateOptions) -> Result<(), $error> {
                self.active = self.activate_into(options)?;
                Ok(())
            }

            /// Deactivates every client.
            pub fn deactivate(&mut self) {
                self.active = <$active>::default();
            }

            /// The active set.
            pub fn active(&self) -> $active {
                self.active.clone()
            }

            /// The launched clients, with the reference's fields.
            pub fn inspect_launched_clients(&self) -> Vec<$crate::LaunchedClientInfo> {
                self.clients.inspect_launched()
            }

            /// The extern clients, with the reference's fields.
            pub fn inspect_extern_clients(&self) -> Vec<$crate::ExternClientInfo> {
                self.clients
                    .externs()
                    .map(|(name, c)| $crate::ExternInfo::extern_info(c, name))
                    .collect()
            }
        }

        static GLOBAL: $crate::Global<$remote> = $crate::Global::new();

        /// The process-wide activation state.
        pub fn global() -> &'static $crate::Global<$remote> {
            &GLOBAL
        }

        /// The process-wide active set.
        pub fn active() -> $active {
            GLOBAL.read().active()
        }

        /// Sets the launcher of the process-wide state.
        pub fn set_launcher(launcher: ::std::sync::Arc<$launcher>) {
            GLOBAL.write().set_launcher(launcher)
        }

        /// Defines a launched client in the process-wide state.
        pub fn define_launched_client(key: $crate::LaunchKey, client: $launched) {
            GLOBAL.write().define_launched_client(key, client)
        }

        /// Activates the process-wide state.
        pub fn activate(options: &$crate::ActivateOptions) -> Result<(), $error> {
            GLOBAL.write().activate(options)
        }

        /// Deactivates the process-wide state.
        pub fn deactivate() {
            GLOBAL.write().deactivate()
        }

        /// The process-wide extern clients.
        pub fn inspect_extern_clients() -> Vec<$crate::ExternClientInfo> {
            GLOBAL.read().inspect_extern_clients()
        }

        /// The process-wide launched clients.
        pub fn inspect_launched_clients() -> Vec<$crate::LaunchedClientInfo> {
            GLOBAL.read().inspect_launched_clients()
        }
    };
}

/// Why a service's clients cannot be set up or used: the configuration, or the activation
/// (every service crate's error has it as its `Setup` variant, typed end to end).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configuration is invalid (a file, a name, a selection).
    #[error(transparent)]
    Config(#[from] seamless_config::ConfigError),
    /// The activation is invalid, or what a call needs is not active.
    #[error(transparent)]
    Activation(#[from] crate::ActivationError),
}

/// Implements `From<ConfigError>` and `From<ActivationError>` for a service error with a
/// `Setup(SetupError)` variant, so that `?` works on both.
#[macro_export]
macro_rules! setup_error_from {
    ($error:ident) => {
        impl From<$crate::ConfigError> for $error {
            fn from(e: $crate::ConfigError) -> Self {
                $error::Setup(e.into())
            }
        }
        impl From<$crate::ActivationError> for $error {
            fn from(e: $crate::ActivationError) -> Self {
                $error::Setup(e.into())
            }
        }
    };
}
