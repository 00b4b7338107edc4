//! The launcher (`seamless-launcher`): start a service on demand, or reuse one that already
//! runs, with the remote-http-launcher 0.4.5 protocol, natively (no Python helper programs).
//!
//! [`Launcher::run`] takes a narrow [`LaunchSpec`] (key, argument vector, workdir, host, tunnel,
//! handshake, parameters; usually made from a configuration's
//! [`LaunchDescription`](seamless_config::LaunchDescription)) and returns the [`Connection`] (the
//! client file's contents: `hostname`, `port`, other `*_port`s, `parameters`). It knows nothing
//! of any particular service:
//!
//! 1. **Client file** (`client/<key>.json`): one handshake; if it answers, reuse it
//!    (`reused-local`); a `stale` or dead one is deleted.
//! 2. Take the **per-key lock** (`server/<key>.lock`; our addition: N processes launching the
//!    same key end with one service), then look at the client file again.
//! 3. **Server file** (`server/<key>.json`): `running` → check the port and handshake (15 tries,
//!    1 s apart) and reuse it (`reused-remote`), else stop its pid and relaunch; `starting` with a
//!    live pid → wait for it; anything else → delete and launch.
//! 4. **Launch**: spawn the command in its own session (`setsid`), cwd = workdir (created),
//!    output to `server/<key>.log`; write the `starting` server file atomically; wait for the
//!    service to rewrite it `running` (or `failed`: an error quoting the end of the log); check
//!    the port and the handshake (6 tries); write the client file (0600, atomic).
//!
//! SSH mode (a description with `hostname`): the same steps run on the remote host through
//! `ssh <ssh_hostname>` and the remote-http-launcher helpers on its PATH (`rhl-inspect`,
//! `rhl-launch-service`, ...), as the reference does; with `tunnel: true` a detached
//! `ssh -N -L` forwards a local port. The ssh command is `ssh`, or what
//! [`Launcher::with_ssh_command`] sets (the programs pass `SEAMLESS_LAUNCHER_SSH`, e.g.
//! `ssh -F /path/config`). This crate reads no environment variable.
//!
//! ```no_run
//! use seamless_config::{load, LoadOptions};
//! use seamless_launcher::{Launcher, StateDirs};
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let home = std::path::PathBuf::from("/home/me");
//! let options = LoadOptions {
//!     workdir: std::env::current_dir()?,
//!     home: Some(home.clone()),
//!     ..LoadOptions::default()
//! };
//! let config = load(&options)?;
//! let desc = config.hashserver_launch(false, &config.current()?, None)?;
//! let launcher = Launcher::new(StateDirs::new(home));
//! let connection = launcher.run(&desc.into())?; // reuses a running hashserver, or launches one
//! println!("hashserver at {}", connection.url());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs, unreachable_pub)]

mod connection;
mod error;
mod launcher;
mod local;
mod probe;
mod progress;
mod service;
mod side;
mod spec;
mod ssh;
mod state;
mod sys;
mod tunnel;

pub use connection::{Connection, Outcome};
pub use error::LaunchError;
pub use launcher::{LaunchTimeouts, Launcher};
pub use progress::{LaunchEvent, ProgressCallback};
pub use service::{DescriptionSource, LaunchedService};
pub use spec::LaunchSpec;
pub use state::StateDirs;
