//! The two programs users run, composed from the service crates:
//!
//! * `seamless-resolve CHECKSUM`: the buffer, from the configured stores;
//! * `seamless-fingertip CHECKSUM`: the same, recomputing a missing buffer from a transformation
//!   known to produce it.
//!
//! Both read their stores from `SEAMLESS_REMOTE_CLIENTS` or the project configuration, exactly as
//! the Python tools do, and fail with one or two lines and a documented exit code
//! ([`exit::EXIT_CODES`]), never a backtrace.

pub mod args;
pub mod checksum_arg;
pub mod exit;
pub mod fingertip;
pub mod output;
pub mod stores;

use std::process::ExitCode;

use clap::Parser;
use seamless_buffer_remote::trivial::trivial_buffer;

use args::Args;
use exit::{CliError, Code};
use stores::{buffer_error, Tool};

fn init_tracing(args: &Args) {
    let level = if args.debug {
        "debug"
    } else if args.verbose {
        "info"
    } else {
        "error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,rustls=warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(args.debug)
        .try_init();
}

/// Runs a program and returns its exit code.
pub fn main_with(tool: Tool) -> ExitCode {
    let program = match tool {
        Tool::Resolve => "seamless-resolve",
        Tool::Fingertip => "seamless-fingertip",
    };
    let args = Args::parse();
    init_tracing(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program}: cannot start: {e}");
            return ExitCode::from(Code::Other as u8);
        }
    };
    let result = runtime.block_on(run(tool, &args));
    seamless_remote_core::close_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::from(e.code as u8)
        }
    }
}

async fn run(tool: Tool, args: &Args) -> Result<(), CliError> {
    let checksum = checksum_arg::parse(&args.checksum)?;
    // Trivial checksums need no store at all.
    if let Some(b) = trivial_buffer(&checksum) {
        return deliver(args, &b);
    }
    let stores = stores::setup(tool, args)?;
    if !stores.buffers.has_any_read_source() {
        return Err(CliError::new(
            Code::NoStore,
            format!(
                "no buffer store is configured ({} defines none)",
                stores.source
            ),
        ));
    }
    match &args.output {
        Some(path) => {
            if output::fetch_to_file(&stores.buffers, &checksum, path).await? {
                return Ok(());
            }
        }
        None => {
            if let Some(b) = stores
                .buffers
                .get_buffer(&checksum)
                .await
                .map_err(buffer_error)?
            {
                return output::print_stdout(&b);
            }
        }
    }
    let not_found = || {
        CliError::new(
            Code::NotFound,
            format!(
                "{checksum} was found in none of the buffer stores ({})",
                stores.source
            ),
        )
    };
    if tool == Tool::Resolve {
        return Err(not_found());
    }
    match fingertip::fingertip(&stores, &checksum).await? {
        Some(b) => deliver(args, &b),
        None => Err(CliError::new(
            Code::NotFound,
            format!("{checksum} was found in none of the buffer stores ({}), and no known transformation recomputes it", stores.source),
        )),
    }
}

fn deliver(args: &Args, buffer: &bytes::Bytes) -> Result<(), CliError> {
    match &args.output {
        Some(path) => output::write_file(path, buffer),
        None => output::print_stdout(buffer),
    }
}
