//! seamless-fingertip CHECKSUM: as seamless-resolve, recomputing a missing buffer from a
//! transformation known to produce it.

fn main() -> std::process::ExitCode {
    seamless_cli::main_with(seamless_cli::stores::Tool::Fingertip)
}
