//! The command line shared by both binaries.

use std::path::PathBuf;

use clap::Parser;

const SOURCES: &str = "Where buffers come from:
  SEAMLESS_REMOTE_CLIENTS (JSON) set: exactly those stores; --project/--stage then have no
      effect (a note says so).
  otherwise: seamless.yaml / seamless.profile.yaml in the current directory (and parents with
      inherit_from_parent) and ~/.seamless/clusters.yaml; the stage's services are reused or
      launched. --project and --stage win over the files.
  SEAMLESS_CACHE=/dir: a local hashserver (and database) in /dir, whatever else is set.";

/// Options of `seamless-resolve` and `seamless-fingertip`.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{SOURCES}\n\n{}\n\nOutput: --output FILE gets the exact bytes (streamed, verified, written to a temporary file\nand renamed into place). On stdout, UTF-8 text is printed as the Python tools do (trailing\nnewlines normalised to one); other bytes are written as they are when stdout is a file or a\npipe, and refused on a terminal (use --output).", crate::exit::EXIT_CODES))]
pub struct Args {
    /// The checksum (64 hex digits, any case), or a file that holds one (comment lines starting
    /// with # and blank lines allowed). A literal checksum wins over a file of the same name.
    pub checksum: String,
    /// Write the buffer to FILE (exact bytes) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Select the project (and subproject): PROJECT or PROJECT:SUBPROJECT.
    #[arg(long, value_name = "P[:SUB]")]
    pub project: Option<String>,
    /// Select the stage (and substage): STAGE or STAGE:SUBSTAGE.
    #[arg(long, value_name = "S[:SUB]")]
    pub stage: Option<String>,
    /// Show what is asked of which store.
    #[arg(short, long)]
    pub verbose: bool,
    /// Show debug output (every request).
    #[arg(long)]
    pub debug: bool,
}

/// Splits `HEAD[:TAIL]`; an empty head is an error.
pub fn split_pair(
    value: &str,
    flag: &str,
) -> Result<(String, Option<String>), crate::exit::CliError> {
    let (head, tail) = match value.split_once(':') {
        Some((h, t)) => (h, Some(t.to_string()).filter(|t| !t.is_empty())),
        None => (value, None),
    };
    if head.is_empty() {
        return Err(crate::exit::CliError::new(
            crate::exit::Code::Usage,
            format!("Invalid {flag} value '{value}': expected NAME or NAME:SUB"),
        ));
    }
    Ok((head.to_string(), tail))
}

/// What each program does, for `--help` and its man page.
pub fn about(program: &str) -> &'static str {
    match program {
        "seamless-fingertip" => {
            "Print (or write) a buffer by its checksum, recomputing it from a known transformation when no store has it"
        }
        _ => "Print (or write) a buffer by its checksum, from the configured buffer stores",
    }
}
