//! The Seamless buffer client: base client, launched wrapper and activation API.
//!
//! Not yet implemented: this crate is a placeholder in the workspace (see the project issues).

pub use seamless_remote_core as core;
