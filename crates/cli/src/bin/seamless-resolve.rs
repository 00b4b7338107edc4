//! seamless-resolve CHECKSUM: print (or `--output`) the buffer with that checksum.

fn main() -> std::process::ExitCode {
    seamless_cli::main_with(seamless_cli::stores::Tool::Resolve)
}
