//! [`LaunchSpec`]: what the launcher needs to start (or find) one service, and nothing about
//! which service it is.

use serde_json::Value;

use seamless_config::{Handshake, LaunchDescription};

/// A narrow launch spec: the state-file key, the argument vector, where it runs and how to check
/// that it answers. Built from a configuration's [`LaunchDescription`] (`From`), or directly.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// The state-file basename (`^[A-Za-z0-9._-]+$`).
    pub key: String,
    /// What it is, for progress events and messages (`hashserver`, ...).
    pub name: String,
    /// The program and its arguments, passed to `exec` as they are.
    pub argv: Vec<String>,
    /// The working directory (`~` is the service host's home).
    pub workdir: String,
    /// Bind address, the host a client connects to when the server file names none.
    pub network_interface: Option<String>,
    /// The conda environment to run it in (none: as it is).
    pub conda: Option<String>,
    /// How to check that the service answers.
    pub handshake: Handshake,
    /// HTTP host of a remote service (absent: this machine, no SSH).
    pub hostname: Option<String>,
    /// SSH host, when it differs from `hostname`.
    pub ssh_hostname: Option<String>,
    /// Forward a local port through SSH.
    pub tunnel: Option<bool>,
    /// Written into the server file as `parameters`; a running service with other parameters is
    /// relaunched.
    pub parameters: Option<Value>,
}

impl From<&LaunchDescription> for LaunchSpec {
    fn from(d: &LaunchDescription) -> Self {
        LaunchSpec {
            key: d.key.clone(),
            name: d.service.name().to_string(),
            argv: d.argv.clone(),
            workdir: d.workdir.clone(),
            network_interface: d.network_interface.clone(),
            conda: d.conda.clone().flatten().filter(|c| !c.is_empty()),
            handshake: d.handshake.clone(),
            hostname: d.hostname.clone(),
            ssh_hostname: d.ssh_hostname.clone(),
            tunnel: d.tunnel,
            parameters: d.file_parameters.clone(),
        }
    }
}

impl From<LaunchDescription> for LaunchSpec {
    fn from(d: LaunchDescription) -> Self {
        LaunchSpec::from(&d)
    }
}
