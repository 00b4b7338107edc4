//! Writing the buffer: to `--output FILE` (exact bytes, streamed, verified, atomic) or to stdout
//! (UTF-8 text as the Python tools print it; other bytes only when stdout is not a terminal).
//!
//! What `--output` names is looked at before anything is downloaded ([`prepare`]):
//! * a new file gets the mode of any new file (0666 less the umask); an existing regular file
//!   keeps its mode, and one the user may not write is refused; a symlink is written through to
//!   its target. The bytes go to a temporary file renamed into place once verified.
//! * a directory is refused.
//! * anything else (a device such as `/dev/null`, a FIFO, `/dev/stdout`) is written into, never
//!   replaced; the buffer is verified first (held in memory, or in an unnamed temporary file
//!   above [`SPOOL_IN_MEMORY`]), as for stdout.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use seamless_buffer_remote::{ActiveBuffers, BufferError, Spooled};
use seamless_remote_core::Checksum;

use crate::exit::{CliError, Code};
use crate::stores::buffer_error;

/// Buffers printed on stdout (or written into a device) are held in memory up to this size, and
/// beyond it in an unnamed temporary file, until they are verified.
pub const SPOOL_IN_MEMORY: u64 = 64 << 20;

/// Where `--output` writes, decided before the download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// A regular file (new, or existing), replaced atomically; `mode` is what it gets.
    File {
        /// The file (symlinks resolved).
        dest: PathBuf,
        /// Its mode after the write.
        mode: u32,
    },
    /// Not a regular file (device, FIFO, `/dev/stdout`): written into after verification.
    Special {
        /// The path as given.
        path: PathBuf,
    },
}

impl OutputTarget {
    fn path(&self) -> &Path {
        match self {
            OutputTarget::File { dest, .. } => dest,
            OutputTarget::Special { path } => path,
        }
    }
}

fn cannot(path: &Path, why: impl std::fmt::Display) -> CliError {
    CliError::new(
        Code::Output,
        format!("Cannot write output file '{}': {why}", path.display()),
    )
}

/// The mode of a new ordinary file: 0666 less the process umask.
pub fn new_file_mode() -> u32 {
    let umask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022);
    0o666 & !umask
}

/// Looks at the output path before the download (see the module docs).
pub fn prepare(path: &Path) -> Result<OutputTarget, CliError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(cannot(path, "it is a directory")),
        Ok(meta) if meta.is_file() => {
            let dest = std::fs::canonicalize(path).map_err(|e| cannot(path, e))?;
            // The user must be allowed to write it (opening for writing changes nothing).
            if let Err(e) = std::fs::OpenOptions::new().write(true).open(&dest) {
                return Err(cannot(path, format!("it exists and is not writable ({e})")));
            }
            Ok(OutputTarget::File {
                dest,
                mode: meta.permissions().mode() & 0o7777,
            })
        }
        Ok(_) => Ok(OutputTarget::Special {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink: write through to where it points.
            let dest = match std::fs::read_link(path) {
                Ok(target) => path.parent().map(|p| p.join(&target)).unwrap_or(target),
                Err(_) => path.to_path_buf(),
            };
            check_output_dir(&dest)?;
            Ok(OutputTarget::File {
                dest,
                mode: new_file_mode(),
            })
        }
        Err(e) => Err(cannot(path, e)),
    }
}

fn check_output_dir(path: &Path) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(cannot(
            path,
            format!("directory '{}' does not exist", dir.display()),
        ));
    }
    Ok(())
}

fn output_error(target: &OutputTarget, e: BufferError) -> CliError {
    match e {
        BufferError::Output { source, .. } => cannot(target.path(), source),
        e => buffer_error(e),
    }
}

/// Fetches the buffer into `target` from `stores` (nothing left on failure). `Ok(false)`:
/// found nowhere.
pub async fn fetch_to(
    stores: &ActiveBuffers,
    checksum: &Checksum,
    target: &OutputTarget,
) -> Result<bool, CliError> {
    match target {
        OutputTarget::File { dest, mode } => {
            let found = stores
                .get_buffer_to_file(checksum, dest)
                .await
                .map_err(|e| output_error(target, e))?;
            if found.is_some() {
                set_mode(dest, *mode)?;
            }
            Ok(found.is_some())
        }
        OutputTarget::Special { path } => {
            match stores
                .get_buffer_spooled(checksum, SPOOL_IN_MEMORY)
                .await
                .map_err(|e| output_error(target, e))?
            {
                Some(spooled) => {
                    write_special(path, spooled)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        }
    }
}

/// Fetches the buffer and prints it on stdout, verified first. `Ok(false)`: found nowhere.
pub async fn fetch_to_stdout(
    stores: &ActiveBuffers,
    checksum: &Checksum,
) -> Result<bool, CliError> {
    match stores
        .get_buffer_spooled(checksum, SPOOL_IN_MEMORY)
        .await
        .map_err(buffer_error)?
    {
        Some(Spooled::Memory(b)) => print_stdout(&b).map(|_| true),
        Some(Spooled::File { file, len }) => print_spooled(file, len).map(|_| true),
        None => Ok(false),
    }
}

fn set_mode(dest: &Path, mode: u32) -> Result<(), CliError> {
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
        .map_err(|e| cannot(dest, e))
}

fn write_special(path: &Path, spooled: Spooled) -> Result<(), CliError> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| cannot(path, e))?;
    let result = match spooled {
        Spooled::Memory(b) => out.write_all(&b),
        Spooled::File { mut file, .. } => std::io::copy(&mut file, &mut out).map(|_| ()),
    };
    result
        .and_then(|_| out.flush())
        .map_err(|e| cannot(path, e))
}

/// The text the Python tools print for a UTF-8 buffer: trailing `\n` stripped, one added.
pub fn text_form(text: &str) -> String {
    format!("{}\n", text.trim_end_matches('\n'))
}

fn binary_on_terminal(len: u64) -> CliError {
    CliError::new(
        Code::Output,
        format!("The buffer is binary ({len} bytes, not UTF-8 text): not printed on a terminal.\nUse --output FILE, or redirect stdout to a file or a pipe to get the exact bytes."),
    )
}

fn stdout_result(result: std::io::Result<()>) -> Result<(), CliError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::new(
            Code::Output,
            format!("Cannot write to stdout: {e}"),
        )),
    }
}

/// Prints a buffer on stdout (see the module docs). A closed pipe is not an error.
pub fn print_stdout(buffer: &[u8]) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    let result = match std::str::from_utf8(buffer) {
        Ok(text) => out.write_all(text_form(text).as_bytes()),
        Err(_) if terminal => return Err(binary_on_terminal(buffer.len() as u64)),
        Err(_) => out.write_all(buffer),
    };
    stdout_result(result.and_then(|_| out.flush()))
}

/// Whether a file holds UTF-8 text, read in chunks (a character may span two chunks).
fn file_is_utf8(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::Seek;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry = 0usize;
    loop {
        let n = file.read(&mut buf[carry..])?;
        let end = carry + n;
        match std::str::from_utf8(&buf[..end]) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_none() && n > 0 => {
                // An incomplete character at the end: keep it for the next chunk.
                let valid = e.valid_up_to();
                buf.copy_within(valid..end, 0);
                carry = end - valid;
            }
            Err(_) => {
                file.rewind()?;
                return Ok(false);
            }
        }
        if n == 0 {
            file.rewind()?;
            return Ok(carry == 0);
        }
    }
}

/// Prints a verified buffer held in a temporary file, as [`print_stdout`] does for one in memory
/// (text: trailing newlines normalised to one).
fn print_spooled(mut file: std::fs::File, len: u64) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let text = file_is_utf8(&mut file)
        .map_err(|e| CliError::new(Code::Other, format!("Cannot read the spooled buffer: {e}")))?;
    if !text && terminal {
        return Err(binary_on_terminal(len));
    }
    let mut out = stdout.lock();
    let result = if text {
        copy_text(&mut file, &mut out)
    } else {
        std::io::copy(&mut file, &mut out).map(|_| ())
    };
    stdout_result(result.and_then(|_| out.flush()))
}

/// Copies text with its trailing newlines replaced by exactly one.
fn copy_text(input: &mut impl Read, out: &mut impl Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut held_newlines: u64 = 0;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let body_end = chunk.iter().rposition(|b| *b != b'\n').map(|i| i + 1);
        match body_end {
            None => held_newlines += n as u64,
            Some(end) => {
                for _ in 0..held_newlines {
                    out.write_all(b"\n")?;
                }
                out.write_all(&chunk[..end])?;
                held_newlines = (n - end) as u64;
            }
        }
    }
    out.write_all(b"\n")
}

/// Writes bytes already in memory to `target` (a regular file atomically, with its mode).
pub fn write_to(target: &OutputTarget, buffer: &Bytes) -> Result<(), CliError> {
    let (dest, mode) = match target {
        OutputTarget::Special { path } => {
            return write_special(path, Spooled::Memory(buffer.clone()))
        }
        OutputTarget::File { dest, mode } => (dest, *mode),
    };
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| cannot(dest, e);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(buffer).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.persist(dest).map_err(|e| fail(e.error))?;
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

    #[test]
    fn streamed_text_is_normalised_as_in_memory() {
        for text in [
            "x\n\n\n",
            "no newline",
            "",
            "\n\nleading kept",
            "a\n\nb\n\n",
        ] {
            let mut out = Vec::new();
            copy_text(&mut text.as_bytes(), &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), text_form(text), "{text:?}");
        }
    }

    #[test]
    fn utf8_is_checked_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        let mut text = "a".repeat((1 << 20) - 1);
        text.push('é');
        text.push_str("tail");
        std::fs::write(&p, &text).unwrap();
        assert!(file_is_utf8(&mut std::fs::File::open(&p).unwrap()).unwrap());
        std::fs::write(&p, b"ok\xff").unwrap();
        assert!(!file_is_utf8(&mut std::fs::File::open(&p).unwrap()).unwrap());
    }

    #[test]
    fn outputs_are_looked_at_before_the_download() {
        let dir = tempfile::tempdir().unwrap();
        let e = prepare(dir.path()).unwrap_err();
        assert_eq!(e.code, Code::Output);
        assert!(e.message.contains("is a directory"), "{}", e.message);
        assert_eq!(
            prepare(Path::new("/dev/null")).unwrap(),
            OutputTarget::Special {
                path: "/dev/null".into()
            }
        );
        let new = dir.path().join("new");
        match prepare(&new).unwrap() {
            OutputTarget::File { dest, mode } => {
                assert_eq!(dest, new);
                assert_eq!(mode, new_file_mode());
            }
            other => panic!("{other:?}"),
        }
        let existing = dir.path().join("existing");
        std::fs::write(&existing, b"x").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&existing, &link).unwrap();
        match prepare(&link).unwrap() {
            OutputTarget::File { dest, mode } => {
                assert_eq!(dest, std::fs::canonicalize(&existing).unwrap());
                assert_eq!(mode, 0o640);
            }
            other => panic!("{other:?}"),
        }
    }
}
