//! What the activation APIs of the four service crates share (`seamless-activation`): one
//! implementation of the parts that are the same for the hashserver, the database, the
//! jobserver and the daskserver.
//!
//! * [`Clients`]: a service's defined clients: extern clients by name, launched clients per
//!   launch key (each made once, by the [`LaunchClients`] seam the launcher fills).
//! * [`FromConfig`]: the body of every `Config*Launcher`: a configuration, the launcher, the
//!   client options, and the [`LaunchedSet`] that `inspect_launched_clients` reports.
//! * [`LaunchedClientInfo`]: the reference's inspection fields of a launched client.
//! * [`Global`]: the process-wide state behind the Python-style module functions.
//! * [`Settings`]: every environment variable, read in one place, installed by the programs.
//! * [`activation_api!`]: a service crate's `*Remote` handle and its process-wide layer, the
//!   same set of functions in every crate.
//!
//! The launch-key rules themselves are pure and live in
//! [`seamless_config::activation`]; the `Active*` types (what a call uses) stay in each service
//! crate, since their roles differ.

#![deny(missing_docs, unreachable_pub)]

mod api;
mod clients;
mod from_config;
mod global;
mod inspect;
pub mod settings;

pub use api::{ExternClientInfo, ExternInfo, SetupError};
pub use clients::{Clients, LaunchClients};
pub use from_config::FromConfig;
pub use global::Global;
pub use inspect::{LaunchedClientInfo, LaunchedSet};
pub use seamless_config::activation::{
    launch_keys, ActivateOptions, ActivationError, ExtraLaunched, KeyScope, LaunchKey,
};
pub use seamless_config::ConfigError;
pub use settings::Settings;
