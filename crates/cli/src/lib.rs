//! The two programs users run, composed from the service crates:
//!
//! * `seamless-resolve CHECKSUM`: the buffer, from the configured stores;
//! * `seamless-fingertip CHECKSUM`: the same, recomputing a missing buffer from a transformation
//!   known to produce it.
//!
//! Both read their stores from `SEAMLESS_REMOTE_CLIENTS` or the project configuration, exactly as
//! the Python tools do, and fail with one or two lines and a documented exit code
//! ([`exit::EXIT_CODES`]), never a backtrace.
//!
//! ```
//! use seamless_cli::checksum_arg;
//! let cs = checksum_arg::parse("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
//!     .expect("a literal checksum");
//! assert_eq!(cs.to_hex().len(), 64);
//! assert!(checksum_arg::parse("not a checksum").is_err());
//! ```

pub mod args;
pub mod checksum_arg;
pub mod exit;
pub mod fingertip;
pub mod output;
pub mod progress;
pub mod stores;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use seamless_buffer_remote::trivial::trivial_buffer;

use args::Args;
use exit::{CliError, Code};
pub use stores::Tool;

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
    ExitCode::from(run_with_args(tool, std::env::args_os()))
}

/// Runs a program with these arguments (the first is the program's name, ignored) and returns
/// its exit code (for the Python wheel's console scripts, which run in-process).
pub fn run_with_args(
    tool: Tool,
    argv: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> u8 {
    let program = match tool {
        Tool::Resolve => "seamless-resolve",
        Tool::Fingertip => "seamless-fingertip",
    };
    // The program's own name in --help and --version (not the package's).
    let matches = match Args::command()
        .name(program)
        .bin_name(program)
        .about(args::about(program))
        .try_get_matches_from(argv)
    {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    let args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    init_tracing(&args);
    // Every environment variable is read here, once.
    seamless_activation::Settings::from_env().install();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program}: cannot start: {e}");
            return Code::Other as u8;
        }
    };
    let result = runtime.block_on(until_signal(run(tool, &args)));
    seamless_remote_core::close_all();
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("{program}: {e}");
            e.code as u8
        }
        Err(signal) => {
            // The run was dropped: its temporary files are gone. Do not wait for a launcher
            // thread that may still be polling a service.
            runtime.shutdown_background();
            eprintln!(
                "{program}: interrupted by {}; nothing was written",
                signal.name
            );
            signal.exit_code
        }
    }
}

/// A signal that ended a run.
struct Interrupted {
    name: &'static str,
    exit_code: u8,
}

/// Runs `fut` until it ends or SIGINT, SIGTERM or SIGHUP arrives; on a signal `fut` is dropped
/// (so a partial `--output` temporary file is removed) and the conventional exit code (128 + the
/// signal number) is returned.
async fn until_signal<T>(fut: impl std::future::Future<Output = T>) -> Result<T, Interrupted> {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return Ok(fut.await);
    };
    tokio::select! {
        r = fut => Ok(r),
        _ = int.recv() => Err(Interrupted { name: "SIGINT", exit_code: 130 }),
        _ = term.recv() => Err(Interrupted { name: "SIGTERM", exit_code: 143 }),
        _ = hup.recv() => Err(Interrupted { name: "SIGHUP", exit_code: 129 }),
    }
}

async fn run(tool: Tool, args: &Args) -> Result<(), CliError> {
    let checksum = checksum_arg::parse(&args.checksum)?;
    // The output is looked at before anything is launched or downloaded.
    let target = args.output.as_deref().map(output::prepare).transpose()?;
    // Trivial checksums need no store at all.
    if let Some(b) = trivial_buffer(&checksum) {
        return deliver(target.as_ref(), &b);
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
    let found = match &target {
        Some(target) => output::fetch_to(&stores.buffers, &checksum, target).await?,
        None => output::fetch_to_stdout(&stores.buffers, &checksum).await?,
    };
    if found {
        return Ok(());
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
        Some(b) => deliver(target.as_ref(), &b),
        None => Err(CliError::new(
            Code::NotFound,
            format!("{checksum} was found in none of the buffer stores ({}), and no known transformation recomputes it", stores.source),
        )),
    }
}

fn deliver(target: Option<&output::OutputTarget>, buffer: &bytes::Bytes) -> Result<(), CliError> {
    match target {
        Some(target) => output::write_to(target, buffer),
        None => output::print_stdout(buffer),
    }
}
