//! Writing the buffer: to `--output FILE` (exact bytes, streamed, verified, atomic) or to stdout
//! (UTF-8 text as the Python tools print it; other bytes only when stdout is not a terminal).

use std::io::{IsTerminal, Write};
use std::path::Path;

use bytes::Bytes;
use seamless_buffer_remote::ActiveBuffers;
use seamless_remote_core::Checksum;

use crate::exit::{CliError, Code};
use crate::stores::buffer_error;

/// The text the Python tools print for a UTF-8 buffer: trailing `\n` stripped, one added.
pub fn text_form(text: &str) -> String {
    format!("{}\n", text.trim_end_matches('\n'))
}

/// Prints a buffer on stdout (see the module docs). A closed pipe is not an error.
pub fn print_stdout(buffer: &[u8]) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    let result = match std::str::from_utf8(buffer) {
        Ok(text) => out.write_all(text_form(text).as_bytes()),
        Err(_) if terminal => {
            return Err(CliError::new(
                Code::Output,
                format!("The buffer is binary ({} bytes, not UTF-8 text): not printed on a terminal.\nUse --output FILE, or redirect stdout to a file or a pipe to get the exact bytes.", buffer.len()),
            ))
        }
        Err(_) => out.write_all(buffer),
    };
    match result.and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::new(
            Code::Output,
            format!("Cannot write to stdout: {e}"),
        )),
    }
}

fn check_output_dir(path: &Path) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(CliError::new(
            Code::Output,
            format!(
                "Cannot write output file '{}': directory '{}' does not exist",
                path.display(),
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Fetches the buffer into `path` from `stores` (streamed; nothing left on failure).
/// `Ok(false)`: found nowhere.
pub async fn fetch_to_file(
    stores: &ActiveBuffers,
    checksum: &Checksum,
    path: &Path,
) -> Result<bool, CliError> {
    check_output_dir(path)?;
    match stores.get_buffer_to_file(checksum, path).await {
        Ok(found) => Ok(found.is_some()),
        Err(e @ seamless_buffer_remote::BufferError::Io { .. }) => Err(CliError::new(
            Code::Output,
            format!("Cannot write output file '{}': {e}", path.display()),
        )),
        Err(e) => Err(buffer_error(e)),
    }
}

/// Writes bytes already in memory to `path`, atomically.
pub fn write_file(path: &Path, buffer: &Bytes) -> Result<(), CliError> {
    check_output_dir(path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| {
        CliError::new(
            Code::Output,
            format!("Cannot write output file '{}': {e}", path.display()),
        )
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(buffer).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_normalised_as_the_reference() {
        assert_eq!(text_form("x\n\n\n"), "x\n");
        assert_eq!(text_form("no newline"), "no newline\n");
        assert_eq!(text_form(""), "\n");
        assert_eq!(text_form("\n\nleading kept"), "\n\nleading kept\n");
        assert_eq!(text_form("crlf\r\n\n"), "crlf\r\n");
    }
}
