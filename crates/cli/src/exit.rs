//! Exit codes and the one-or-two-line error a user reads.

use std::fmt;

/// A failure of a CLI run: what to print and which exit code to return.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: Code,
    /// The message (one or two lines).
    pub message: String,
}

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Anything else (a bug, an unexpected answer).
    Other = 1,
    /// Bad command-line usage (clap also exits with 2).
    Usage = 2,
    /// The checksum argument is not a checksum (nor a file holding one).
    InvalidChecksum = 3,
    /// The buffer was found nowhere (and, for fingertip, could not be recomputed).
    NotFound = 4,
    /// No buffer store is configured, or the configuration is invalid.
    NoStore = 5,
    /// A store could not be reached.
    Unreachable = 6,
    /// A store returned bytes that do not match the checksum.
    Integrity = 7,
    /// The output could not be written.
    Output = 8,
}

impl CliError {
    /// A new error.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit-code table, for `--help` and the README.
pub const EXIT_CODES: &str = "Exit codes:
  0  success
  1  other error
  2  usage error
  3  invalid checksum (argument or checksum file)
  4  not found anywhere (fingertip: and not recomputable)
  5  no buffer store configured, invalid configuration, or a service cannot be launched
  6  a buffer store could not be reached, or failed (malformed or oversized answer)
  7  integrity failure (a store returned bytes that do not match the checksum)
  8  cannot write the output
  129, 130, 143  interrupted by SIGHUP, SIGINT, SIGTERM (nothing is left behind)";
