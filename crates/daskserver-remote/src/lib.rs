//! Seamless on Dask: launch (or reuse) a stage's `seamless-dask-wrapper` and a small **Dask
//! front** next to it, and run transformations there with the seamless-jobserver protocol.
//!
//! Speaking Dask's own protocol from Rust would mean writing pickles of private Dask and
//! seamless-dask classes that change with every `distributed` release. Instead the front, a
//! Python program shipped in this crate (`python/seamless_dask_front.py`), holds the
//! `distributed.Client` + `SeamlessDaskClient` exactly as the Python reference does and serves
//! `/run-transformation`, `/transformation-status`, `/cancel-transformation`; the Rust side
//! talks to it with [`seamless_jobserver_remote::JobserverClient`], unchanged.
//!
//! * [`launched::DaskserverLaunchedHandle`]: the daskserver and the front of one selection,
//!   launched through our launcher (relaunched on the next request if either died).
//! * [`front`]: the front's program and launch description.
//! * [`submit`]: the caller side (result cache, input upload) of a submission by dict.
//! * [`remote`]: `activate` / `deactivate` and the functions over the active backend.
//!
//! ```no_run
//! use seamless_daskserver_remote::{remote, Submission};
//! # async fn demo(
//! #     options: &seamless_config::activation::ActivateOptions,
//! #     dict: serde_json::Value,
//! #     buffers: &seamless_buffer_remote::ActiveBuffers,
//! #     databases: &seamless_database_remote::ActiveDatabases,
//! # ) -> Result<(), seamless_daskserver_remote::DaskError> {
//! if let Some(info) = remote::activate(options).await? {
//!     println!("{}", info.dashboard_line());
//! }
//! let result = remote::submit(&Submission::new(dict, vec![]), buffers, databases).await?;
//! println!("result: {result}");
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod front;
pub mod launched;
pub mod remote;
pub mod submit;

pub use error::DaskError;
pub use front::DaskInfo;
pub use launched::{ConfigDaskserverLauncher, DaskserverLaunchedHandle};
pub use remote::DaskserverRemote;
pub use submit::Submission;
