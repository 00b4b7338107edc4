//! [`BufferFolder`]: buffers read straight from a local buffer directory (an extern
//! `bufferfolder`, or the directory of a hashserver launched on this machine).
//!
//! Both layouts are read: flat `DIR/<cs>` and prefixed `DIR/<ab>/<cs>`, and the compressed forms a
//! hashserver may store (`<cs>.zst`, `<cs>.gz`). While a buffer is missing (or wrong) and a lock
//! file exists (`DIR/.LOCK`, `DIR/<ab>/.LOCK`, `<file>.LOCK`), the read waits for the lock, up to
//! the lock timeout (10 s, as the reference). Every buffer read is verified. Only a validated
//! [`Checksum`] ever becomes a path.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use seamless_remote_core::Checksum;
use seamless_safe_io::fs::{open_checked, read_text_capped, Accept};

use crate::error::BufferError;
use crate::stream::{pump, Encoding, FileSource, Progress, PumpError, Sink, VerifiedSource};
use crate::BufferLength;

/// How often lock files are polled.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// A local buffer directory, read-only.
#[derive(Debug, Clone)]
pub struct BufferFolder {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl BufferFolder {
    /// A folder client of `dir`, with the reference's 10 s lock timeout.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BufferFolder {
            dir: dir.into(),
            lock_timeout: Duration::from_secs(10),
        }
    }

    /// Sets how long a read waits for lock files to disappear.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The directory.
    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// The files that may hold `checksum`, in the order they are tried.
    fn candidates(&self, checksum: &Checksum) -> Vec<(PathBuf, Encoding)> {
        let hex = checksum.to_hex();
        let mut out = Vec::with_capacity(6);
        for base in [self.dir.clone(), self.dir.join(&hex[..2])] {
            out.push((base.join(&hex), Encoding::Identity));
            out.push((base.join(format!("{hex}.zst")), Encoding::Zstd));
            out.push((base.join(format!("{hex}.gz")), Encoding::Gzip));
        }
        out
    }

    fn lock_files(&self, checksum: &Checksum) -> [PathBuf; 4] {
        let hex = checksum.to_hex();
        let sub = self.dir.join(&hex[..2]);
        [
            self.dir.join(".LOCK"),
            sub.join(".LOCK"),
            self.dir.join(format!("{hex}.LOCK")),
            sub.join(format!("{hex}.LOCK")),
        ]
    }

    async fn locked(&self, checksum: &Checksum) -> bool {
        for lock in self.lock_files(checksum) {
            if tokio::fs::try_exists(&lock).await.unwrap_or(false) {
                return true;
            }
        }
        false
    }

    /// Reads and verifies a buffer; `None` if it is not here.
    pub async fn get(&self, checksum: &Checksum) -> Result<Option<Bytes>, BufferError> {
        self.get_bytes(checksum).await
    }

    /// Streams a buffer into `writer`, verified on the way; returns its length, or `None`.
    /// The writer receives the bytes before the checksum can be verified: on an error it holds
    /// data that must be discarded (`get_to_file` does that for files). A transfer that breaks
    /// after bytes were written is not retried ([`BufferError::Partial`]).
    pub async fn get_to_writer<W>(
        &self,
        checksum: &Checksum,
        writer: &mut W,
    ) -> Result<Option<u64>, BufferError>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        self.get_writer(checksum, writer).await
    }

    /// Streams a buffer into the file `path`, verified: written to a temporary file in the same
    /// directory and renamed into place only after its checksum matched, so that a failure never
    /// leaves a partial or wrong file. Returns the length, or `None` (then no file is created).
    pub async fn get_to_file(
        &self,
        checksum: &Checksum,
        path: &Path,
    ) -> Result<Option<u64>, BufferError> {
        self.get_file(checksum, path, None).await
    }

    /// As `get_to_file`, reporting the bytes written to `progress`.
    pub async fn get_to_file_with(
        &self,
        checksum: &Checksum,
        path: &Path,
        progress: Option<Progress>,
    ) -> Result<Option<u64>, BufferError> {
        self.get_file(checksum, path, progress).await
    }

    /// Tries every candidate file; waits for locks while nothing good is found.
    async fn read_verified<S: Sink>(
        &self,
        checksum: &Checksum,
        sink: &mut S,
    ) -> Result<bool, BufferError> {
        let start = Instant::now();
        let mut wrong: Option<(Checksum, PathBuf)> = None;
        loop {
            for (path, encoding) in self.candidates(checksum) {
                let file = match open_checked(&path, Accept::RegularOnly) {
                    Ok(f) => tokio::fs::File::from_std(f),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                        // A device, FIFO or directory planted in a shared folder: never read.
                        tracing::warn!(path = %path.display(), "skipped: {e}");
                        continue;
                    }
                    Err(e) => return Err(BufferError::io("reading", &path, e)),
                };
                sink.reset()
                    .await
                    .map_err(|e| BufferError::output("(output)", e))?;
                let size = file.metadata().await.ok().map(|m| m.len());
                let limit = match encoding {
                    Encoding::Identity => size,
                    _ => match self.sidecar_length(checksum, &path).await {
                        Some(n) => Some(n),
                        None => {
                            // Its decoded size is announced nowhere: never decoded blindly.
                            tracing::warn!(path = %path.display(), "skipped: a compressed buffer without its .BUFFERLENGTH");
                            continue;
                        }
                    },
                };
                let got = pump(encoding, size, limit, &mut FileSource(file), sink)
                    .await
                    .map_err(|e| match e {
                        PumpError::Source(e) => BufferError::io("reading", &path, e),
                        PumpError::Sink(e) => BufferError::output("(output)", e),
                        PumpError::Decode(e) => BufferError::Malformed {
                            url: path.display().to_string(),
                            detail: format!("cannot decode {encoding:?}: {e}"),
                        },
                        PumpError::TooLong(limit) => BufferError::Oversized {
                            checksum: *checksum,
                            source_name: path.display().to_string(),
                            limit,
                        },
                    })?;
                if got == *checksum {
                    return Ok(true);
                }
                tracing::warn!(path = %path.display(), expected = %checksum, %got, "buffer file with the wrong checksum");
                wrong = Some((got, path));
            }
            if start.elapsed() < self.lock_timeout && self.locked(checksum).await {
                tokio::time::sleep(LOCK_POLL).await;
                continue;
            }
            break;
        }
        match wrong {
            Some((got, path)) => Err(BufferError::Integrity {
                checksum: *checksum,
                got,
                source_name: path.display().to_string(),
            }),
            None => Ok(false),
        }
    }

    /// Whether each buffer has a file here (not verified: as the hashserver's `/has`).
    pub async fn has(&self, checksums: &[Checksum]) -> Vec<bool> {
        let mut out = Vec::with_capacity(checksums.len());
        for cs in checksums {
            out.push(!matches!(self.length(cs).await, BufferLength::Absent));
        }
        out
    }

    /// The length of each buffer stored here (from the file size, or for a compressed form from
    /// its `.BUFFERLENGTH` sidecar, else unknown).
    pub async fn buffer_lengths(&self, checksums: &[Checksum]) -> Vec<BufferLength> {
        let mut out = Vec::with_capacity(checksums.len());
        for cs in checksums {
            out.push(self.length(cs).await);
        }
        out
    }

    async fn length(&self, checksum: &Checksum) -> BufferLength {
        for (path, encoding) in self.candidates(checksum) {
            let Ok(meta) = tokio::fs::metadata(&path).await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if encoding == Encoding::Identity {
                return BufferLength::Known(meta.len());
            }
            return self
                .sidecar_length(checksum, &path)
                .await
                .map_or(BufferLength::Unknown, BufferLength::Known);
        }
        BufferLength::Absent
    }

    /// The decoded length from the `.BUFFERLENGTH` sidecar next to `path`, if there is one.
    async fn sidecar_length(&self, checksum: &Checksum, path: &Path) -> Option<u64> {
        let sidecar = path.with_file_name(format!("{}.BUFFERLENGTH", checksum.to_hex()));
        tokio::task::spawn_blocking(move || read_text_capped(&sidecar, 64, Accept::RegularOnly))
            .await
            .ok()?
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    }
}

impl VerifiedSource for BufferFolder {
    async fn fill<S: Sink>(&self, checksum: &Checksum, sink: &mut S) -> Result<bool, BufferError> {
        self.read_verified(checksum, sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, data: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    #[tokio::test]
    async fn reads_flat_prefixed_and_compressed_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let folder = BufferFolder::new(dir.path());
        let flat = b"flat".to_vec();
        let prefixed = b"prefixed".to_vec();
        let zstd_data = vec![9u8; 5000];
        let (f, p, z) = (
            Checksum::of(&flat),
            Checksum::of(&prefixed),
            Checksum::of(&zstd_data),
        );
        write(&dir.path().join(f.to_hex()), &flat);
        let ph = p.to_hex();
        write(&dir.path().join(&ph[..2]).join(&ph), &prefixed);
        let zh = z.to_hex();
        write(
            &dir.path().join(&zh[..2]).join(format!("{zh}.zst")),
            &zstd::encode_all(&zstd_data[..], 3).unwrap(),
        );
        write(
            &dir.path().join(&zh[..2]).join(format!("{zh}.BUFFERLENGTH")),
            b"5000",
        );
        assert_eq!(folder.get(&f).await.unwrap().unwrap(), flat);
        assert_eq!(folder.get(&p).await.unwrap().unwrap(), prefixed);
        assert_eq!(folder.get(&z).await.unwrap().unwrap(), zstd_data);
        let absent = Checksum::of(b"absent");
        assert_eq!(folder.get(&absent).await.unwrap(), None);
        assert_eq!(
            folder.buffer_lengths(&[f, p, z, absent]).await,
            vec![
                BufferLength::Known(4),
                BufferLength::Known(8),
                BufferLength::Known(5000),
                BufferLength::Absent
            ]
        );
        assert_eq!(folder.has(&[f, absent]).await, vec![true, false]);
    }

    #[tokio::test]
    async fn a_wrong_file_is_an_integrity_error_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        let cs = Checksum::of(b"right");
        write(&dir.path().join(cs.to_hex()), b"wrong");
        let err = BufferFolder::new(dir.path()).get(&cs).await.unwrap_err();
        assert!(err.is_integrity(), "{err}");
        assert!(err.to_string().contains(&cs.to_hex()), "{err}");
    }

    #[tokio::test]
    async fn waits_for_a_lock_then_reads() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"arrives later".to_vec();
        let cs = Checksum::of(&data);
        let lock = dir.path().join(format!("{}.LOCK", cs.to_hex()));
        std::fs::write(&lock, b"").unwrap();
        let folder = BufferFolder::new(dir.path()).with_lock_timeout(Duration::from_secs(20));
        let target = dir.path().join(cs.to_hex());
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            std::fs::write(&target, b"arrives later").unwrap();
            std::fs::remove_file(&lock).unwrap();
        });
        assert_eq!(folder.get(&cs).await.unwrap().unwrap(), data);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn gives_up_when_the_lock_stays() {
        let dir = tempfile::tempdir().unwrap();
        let cs = Checksum::of(b"never");
        std::fs::write(dir.path().join(".LOCK"), b"").unwrap();
        let folder = BufferFolder::new(dir.path()).with_lock_timeout(Duration::from_millis(600));
        assert_eq!(folder.get(&cs).await.unwrap(), None);
    }

    #[tokio::test]
    async fn get_to_file_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let cs = Checksum::of(b"right");
        write(&dir.path().join(cs.to_hex()), b"wrong");
        let out = dir.path().join("out").join("result.bin");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        assert!(BufferFolder::new(dir.path())
            .get_to_file(&cs, &out)
            .await
            .is_err());
        assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 0);
    }
}
