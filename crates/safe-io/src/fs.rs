//! Files from outside, read and written safely: only regular files (or pipes where a pipe makes
//! sense) are read, never more than a size cap; files we create are never a planted symlink,
//! device or FIFO, and are private.
//!
//! The caps of the files read here are documented in `SECURITY.md`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The largest state file (launcher server and client files, conda setup) read: 1 MiB.
pub const STATE_FILE_CAP: u64 = 1 << 20;

/// The largest configuration file (`seamless.yaml`, `seamless.profile.yaml`, cluster files)
/// read: 1 MiB.
pub const CONFIG_FILE_CAP: u64 = 1 << 20;

/// What a bounded read accepts besides regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Regular files only.
    RegularOnly,
    /// Regular files and pipes (FIFOs, process substitution, `/dev/stdin` on a pipe).
    RegularOrPipe,
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is {what}", path.display()),
    )
}

fn kind_name(ft: &std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory, not a file"
    } else if ft.is_char_device() {
        "a character device, not a regular file"
    } else if ft.is_block_device() {
        "a block device, not a regular file"
    } else if ft.is_fifo() {
        "a FIFO, not a regular file"
    } else if ft.is_socket() {
        "a socket, not a regular file"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading (symlinks followed) and checks what it is: a regular file (or a
/// pipe, if accepted); anything else is an `InvalidInput` error naming what it is. A file that
/// must be regular is opened without blocking (a FIFO planted in its place cannot hang us); an
/// accepted pipe is opened as a pipe is, waiting for its writer.
pub fn open_checked(path: &Path, accept: Accept) -> io::Result<File> {
    let pipe_ok = accept == Accept::RegularOrPipe
        && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    let flags = if pipe_ok {
        libc::O_CLOEXEC
    } else {
        libc::O_NONBLOCK | libc::O_CLOEXEC
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let ft = file.metadata()?.file_type();
    if ft.is_file() || (pipe_ok && ft.is_fifo()) {
        Ok(file)
    } else {
        Err(invalid(path, kind_name(&ft)))
    }
}

/// Reads at most `cap` bytes of `path` (see [`open_checked`]); a longer file is an error
/// (`FileTooLarge`) found without reading it, a longer pipe after `cap + 1` bytes.
pub fn read_capped(path: &Path, cap: u64, accept: Accept) -> io::Result<Vec<u8>> {
    let file = open_checked(path, accept)?;
    let too_large = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{} is larger than {cap} bytes", path.display()),
        )
    };
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > cap {
        return Err(too_large());
    }
    let mut out = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(out)
}

/// As [`read_capped`], as UTF-8 text.
pub fn read_text_capped(path: &Path, cap: u64, accept: Accept) -> io::Result<String> {
    String::from_utf8(read_capped(path, cap, accept)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

/// Opens (creating if needed, mode 0600) a file of ours for writing, never through a symlink
/// (`O_NOFOLLOW`), and only if it is a regular file; with `truncate`, empties it after the
/// check (so a planted FIFO or device is never truncated or written).
pub fn create_private(path: &Path, truncate: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                invalid(path, "a symbolic link (refused)")
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid(path, kind_name(&meta.file_type())));
    }
    if truncate {
        file.set_len(0)?;
    }
    Ok(file)
}

/// Creates `dir` and its missing parents; the directories created are private (0700). An
/// existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Sets `file`'s mode to 0600.
pub fn make_private(file: &File) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        assert_eq!(read_capped(&f, 5, Accept::RegularOnly).unwrap(), b"hello");
        let e = read_capped(&f, 4, Accept::RegularOnly).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        let e = read_capped(dir.path(), 4, Accept::RegularOnly).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let e = read_capped(Path::new("/dev/zero"), 4, Accept::RegularOrPipe).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        // A sparse file larger than the cap is refused without being read.
        let sparse = dir.path().join("sparse");
        File::create(&sparse).unwrap().set_len(6 << 30).unwrap();
        let e = read_capped(&sparse, 1 << 20, Accept::RegularOnly).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn private_files_refuse_links_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_private(&link, true).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        let new = dir.path().join("new");
        create_private(&new, true).unwrap();
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        let mode = std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
