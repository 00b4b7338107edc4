//! How to reach a launched service: the client file's contents, and how it was obtained.

use serde_json::{Map, Value};

use crate::state::port_of;

/// How to reach a launched service: the client file's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// The host to connect to.
    pub hostname: String,
    /// The main port.
    pub port: u16,
    /// The whole client file (with `*_port`s and `parameters`).
    pub raw: Map<String, Value>,
    /// How it was obtained.
    pub outcome: Outcome,
}

impl Connection {
    /// `http://hostname:port`.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.hostname, self.port)
    }

    /// Another port of the client file (e.g. `dashboard_port`).
    pub fn port_named(&self, name: &str) -> Option<u16> {
        port_of(&self.raw, name)
    }
}

/// How a [`Connection`] was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// From the client file.
    ReusedLocal,
    /// From the server file of a running service.
    ReusedRemote,
    /// A new service was started.
    Launched,
}
