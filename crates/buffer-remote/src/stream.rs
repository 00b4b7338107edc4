//! The receive pipeline shared by the HTTP and folder clients: decode (zstd, gzip), hash, and
//! hand the bytes to a sink, chunk by chunk, with memory bounded whatever the buffer size.
//!
//! Large buffers are hashed on a separate thread ([`Verifier`]), so that receiving (or reading)
//! and hashing overlap.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use seamless_remote_core::{Checksum, ChecksumHasher};
use tokio::io::{AsyncSeekExt, AsyncWrite, AsyncWriteExt};

/// How a stored or transmitted buffer is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Raw bytes.
    Identity,
    /// zstd frame(s).
    Zstd,
    /// gzip.
    Gzip,
}

impl Encoding {
    /// From a `Content-Encoding` header value (absent = identity). Unknown encodings are errors.
    pub fn from_header(value: Option<&str>) -> Result<Self, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Encoding::Identity),
            Some(v) if v.is_empty() || v == "identity" => Ok(Encoding::Identity),
            Some(v) if v == "zstd" => Ok(Encoding::Zstd),
            Some(v) if v == "gzip" || v == "x-gzip" => Ok(Encoding::Gzip),
            Some(v) => Err(format!("unsupported Content-Encoding {v:?}")),
        }
    }
}

/// The most decoded bytes produced in one step: a small compressed input that expands to
/// gigabytes (a "bomb") is decoded step by step, never all at once.
const DECODE_STEP: usize = 256 * 1024;

/// Compressed bytes given to the gzip decoder at once: deflate expands at most ~1032:1, so one
/// step yields at most ~1 MiB.
const GZIP_INPUT_STEP: usize = 1024;

/// A streaming decoder: compressed chunks in, decoded bytes out in bounded steps.
pub(crate) enum Decoder {
    Identity(Option<Bytes>),
    Zstd {
        raw: Box<zstd::stream::raw::Decoder<'static>>,
        input: Bytes,
        /// Whether the last frame is complete (zstd's hint was 0).
        frame_done: bool,
        /// Whether any input was seen (an empty stream is not a valid frame).
        started: bool,
    },
    Gzip {
        inner: Box<flate2::write::GzDecoder<Vec<u8>>>,
        input: Bytes,
    },
}

impl Decoder {
    pub(crate) fn new(encoding: Encoding) -> std::io::Result<Self> {
        Ok(match encoding {
            Encoding::Identity => Decoder::Identity(None),
            Encoding::Zstd => Decoder::Zstd {
                raw: Box::new(zstd::stream::raw::Decoder::new()?),
                input: Bytes::new(),
                frame_done: false,
                started: false,
            },
            Encoding::Gzip => Decoder::Gzip {
                inner: Box::new(flate2::write::GzDecoder::new(Vec::new())),
                input: Bytes::new(),
            },
        })
    }

    /// Feeds compressed bytes; take the decoded bytes with [`Decoder::step`] until it gives
    /// `None`, before feeding more.
    pub(crate) fn feed(&mut self, chunk: Bytes) {
        match self {
            Decoder::Identity(slot) => *slot = Some(chunk),
            Decoder::Zstd { input, started, .. } => {
                *started |= !chunk.is_empty();
                *input = chunk;
            }
            Decoder::Gzip { input, .. } => *input = chunk,
        }
    }

    /// The next decoded bytes (at most about [`DECODE_STEP`]) from what was fed, or `None`
    /// once it is all decoded.
    pub(crate) fn step(&mut self) -> std::io::Result<Option<Bytes>> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        match self {
            Decoder::Identity(slot) => Ok(slot.take()),
            Decoder::Zstd {
                raw,
                input,
                frame_done,
                ..
            } => {
                let mut out = vec![0u8; DECODE_STEP];
                let mut inb = InBuffer::around(&input[..]);
                let mut outb = OutBuffer::around(&mut out[..]);
                let hint = raw.run(&mut inb, &mut outb)?;
                let (consumed, produced) = (inb.pos(), outb.pos());
                *input = input.slice(consumed..);
                if hint == 0 {
                    *frame_done = true;
                } else if consumed > 0 || produced > 0 {
                    *frame_done = false;
                }
                if produced == 0 {
                    return Ok(None);
                }
                out.truncate(produced);
                Ok(Some(Bytes::from(out)))
            }
            Decoder::Gzip { inner, input } => {
                while !input.is_empty() && inner.get_ref().len() < DECODE_STEP {
                    let n = input.len().min(GZIP_INPUT_STEP);
                    let taken = inner.write(&input[..n])?;
                    if taken == 0 {
                        // The gzip stream has ended: trailing bytes are an error.
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "data after the end of the gzip stream",
                        ));
                    }
                    *input = input.slice(taken..);
                }
                let out = std::mem::take(inner.get_mut());
                Ok((!out.is_empty()).then(|| Bytes::from(out)))
            }
        }
    }

    /// Ends the stream; returns the last decoded bytes. A truncated stream is an error.
    pub(crate) fn finish(self) -> std::io::Result<Bytes> {
        let truncated = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the {what} stream is truncated"),
            )
        };
        match self {
            Decoder::Identity(_) => Ok(Bytes::new()),
            Decoder::Zstd {
                frame_done,
                started,
                ..
            } => {
                if frame_done && started {
                    Ok(Bytes::new())
                } else {
                    Err(truncated("zstd"))
                }
            }
            Decoder::Gzip { mut inner, .. } => {
                inner.try_finish()?;
                Ok(Bytes::from(std::mem::take(inner.get_mut())))
            }
        }
    }
}

/// Buffers at least this large (or of unknown size) are hashed on a separate thread.
const THREAD_HASH_THRESHOLD: u64 = 4 << 20;

/// Hashes a stream of chunks, inline for small buffers and on a separate thread for large ones.
pub(crate) enum Verifier {
    Inline(ChecksumHasher),
    Threaded {
        tx: tokio::sync::mpsc::Sender<Bytes>,
        done: tokio::sync::oneshot::Receiver<Checksum>,
    },
}

impl Verifier {
    pub(crate) fn new(size_hint: Option<u64>) -> Self {
        if size_hint.is_some_and(|n| n < THREAD_HASH_THRESHOLD) {
            return Verifier::Inline(ChecksumHasher::new());
        }
        // 32 chunks in flight bound the memory held for hashing (chunks are shared, not copied).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut hasher = ChecksumHasher::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
            }
            let _ = done_tx.send(hasher.finalize());
        });
        Verifier::Threaded { tx, done }
    }

    pub(crate) async fn update(&mut self, chunk: &Bytes) {
        match self {
            Verifier::Inline(h) => h.update(chunk),
            Verifier::Threaded { tx, .. } => {
                // The thread only stops when the sender is dropped, so this cannot fail.
                let _ = tx.send(chunk.clone()).await;
            }
        }
    }

    pub(crate) async fn finish(self) -> Option<Checksum> {
        match self {
            Verifier::Inline(h) => Some(h.finalize()),
            Verifier::Threaded { tx, done } => {
                drop(tx);
                done.await.ok()
            }
        }
    }
}

/// Where [`pump`] takes its chunks from.
pub(crate) trait ChunkSource {
    type Error;
    /// The next chunk, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Self::Error>;
}

impl ChunkSource for seamless_remote_core::Response {
    type Error = seamless_remote_core::TransportError;
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Self::Error> {
        self.chunk().await
    }
}

/// Reads a file in 256 KiB chunks.
pub(crate) struct FileSource(pub(crate) tokio::fs::File);

impl ChunkSource for FileSource {
    type Error = std::io::Error;
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        use tokio::io::AsyncReadExt;
        let mut buf = BytesMut::with_capacity(256 * 1024);
        while buf.len() < buf.capacity() {
            if self.0.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        Ok(if buf.is_empty() {
            None
        } else {
            Some(buf.freeze())
        })
    }
}

/// Why [`pump`] failed.
pub(crate) enum PumpError<E> {
    /// The source failed.
    Source(E),
    /// The bytes could not be decoded.
    Decode(std::io::Error),
    /// The sink could not take the bytes.
    Sink(std::io::Error),
    /// More decoded bytes than the expected length (the limit): cut at once.
    TooLong(u64),
}

/// Moves a buffer from a chunk source through the decoder and the verifier into `sink`; returns
/// the checksum of the decoded bytes. Only one chunk (and one bounded decoding step) is held at
/// a time, plus the verifier's bounded queue. More than `limit` decoded bytes (the length the
/// source announced) stop the transfer at once.
pub(crate) async fn pump<C, S>(
    encoding: Encoding,
    size_hint: Option<u64>,
    limit: Option<u64>,
    source: &mut C,
    sink: &mut S,
) -> Result<Checksum, PumpError<C::Error>>
where
    C: ChunkSource,
    S: Sink + ?Sized,
{
    let mut decoder = Decoder::new(encoding).map_err(PumpError::Decode)?;
    let mut verifier = Verifier::new(size_hint.filter(|_| encoding == Encoding::Identity));
    let mut total: u64 = 0;
    let mut take = async |decoded: Bytes,
                          verifier: &mut Verifier,
                          total: &mut u64|
           -> Result<(), PumpError<C::Error>> {
        *total = total.saturating_add(decoded.len() as u64);
        if let Some(max) = limit.filter(|max| *total > *max) {
            return Err(PumpError::TooLong(max));
        }
        verifier.update(&decoded).await;
        sink.write(&decoded).await.map_err(PumpError::Sink)
    };
    while let Some(chunk) = source.next_chunk().await.map_err(PumpError::Source)? {
        decoder.feed(chunk);
        while let Some(decoded) = decoder.step().map_err(PumpError::Decode)? {
            take(decoded, &mut verifier, &mut total).await?;
        }
    }
    let last = decoder.finish().map_err(PumpError::Decode)?;
    if !last.is_empty() {
        take(last, &mut verifier, &mut total).await?;
    }
    verifier
        .finish()
        .await
        .ok_or_else(|| PumpError::Decode(std::io::Error::other("the hashing thread stopped")))
}

/// Where received bytes go. `reset` starts over for a retry.
pub(crate) trait Sink {
    /// Starts over (a retry). Fails if what was written cannot be taken back.
    async fn reset(&mut self) -> std::io::Result<()>;
    /// Appends decoded bytes.
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()>;
    /// Bytes written since the last reset.
    fn written(&self) -> u64;
}

/// Collects the buffer in memory.
#[derive(Default)]
pub(crate) struct MemorySink(pub(crate) BytesMut);

impl Sink for MemorySink {
    async fn reset(&mut self) -> std::io::Result<()> {
        self.0.clear();
        Ok(())
    }
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }
    fn written(&self) -> u64 {
        self.0.len() as u64
    }
}

/// Streams into a caller's writer; cannot start over once a byte is written.
pub(crate) struct WriterSink<'a, W> {
    pub(crate) writer: &'a mut W,
    pub(crate) written: u64,
}

impl<W: AsyncWrite + Unpin> Sink for WriterSink<'_, W> {
    async fn reset(&mut self) -> std::io::Result<()> {
        if self.written == 0 {
            Ok(())
        } else {
            Err(std::io::Error::other(
                "the output already holds part of the buffer",
            ))
        }
    }
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()> {
        self.writer.write_all(data).await?;
        self.written += data.len() as u64;
        Ok(())
    }
    fn written(&self) -> u64 {
        self.written
    }
}

/// A verified buffer: in memory, or (above the caller's bound) in an unnamed temporary file
/// that disappears when it is dropped, whatever happens to the process.
#[derive(Debug)]
pub enum Spooled {
    /// The bytes.
    Memory(Bytes),
    /// A temporary file holding the bytes, rewound to its start.
    File {
        /// The file.
        file: std::fs::File,
        /// Its length.
        len: u64,
    },
}

impl Spooled {
    /// The length of the buffer.
    pub fn len(&self) -> u64 {
        match self {
            Spooled::Memory(b) => b.len() as u64,
            Spooled::File { len, .. } => *len,
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Collects a buffer in memory up to `max_in_memory` bytes, then in an unnamed temporary file.
pub(crate) struct SpoolSink {
    max_in_memory: u64,
    memory: BytesMut,
    file: Option<std::fs::File>,
    written: u64,
}

impl SpoolSink {
    pub(crate) fn new(max_in_memory: u64) -> Self {
        SpoolSink {
            max_in_memory,
            memory: BytesMut::new(),
            file: None,
            written: 0,
        }
    }

    pub(crate) fn finish(self) -> std::io::Result<Spooled> {
        use std::io::Seek;
        Ok(match self.file {
            None => Spooled::Memory(self.memory.freeze()),
            Some(mut file) => {
                file.flush()?;
                file.rewind()?;
                Spooled::File {
                    file,
                    len: self.written,
                }
            }
        })
    }
}

impl Sink for SpoolSink {
    async fn reset(&mut self) -> std::io::Result<()> {
        self.memory.clear();
        self.file = None;
        self.written = 0;
        Ok(())
    }
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()> {
        if self.file.is_none()
            && (self.memory.len() as u64).saturating_add(data.len() as u64) > self.max_in_memory
        {
            let mut file = tempfile::tempfile()?;
            file.write_all(&self.memory)?;
            self.memory = BytesMut::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => {
                let (file, data) = (file.try_clone()?, data.clone());
                tokio::task::spawn_blocking(move || (&file).write_all(&data))
                    .await
                    .map_err(std::io::Error::other)??;
            }
            None => self.memory.extend_from_slice(data),
        }
        self.written += data.len() as u64;
        Ok(())
    }
    fn written(&self) -> u64 {
        self.written
    }
}

/// A place buffers are read from, verified, into any sink; gives the three ways to receive a
/// buffer (memory, a caller's writer, a file) once for every kind of source.
pub(crate) trait VerifiedSource {
    /// Fills `sink` with the verified buffer; `false` if the source does not have it.
    async fn fill<S: Sink>(
        &self,
        checksum: &Checksum,
        sink: &mut S,
    ) -> Result<bool, crate::BufferError>;

    async fn get_bytes(&self, checksum: &Checksum) -> Result<Option<Bytes>, crate::BufferError> {
        let mut sink = MemorySink::default();
        Ok(self
            .fill(checksum, &mut sink)
            .await?
            .then(|| sink.0.freeze()))
    }

    async fn get_spooled(
        &self,
        checksum: &Checksum,
        max_in_memory: u64,
    ) -> Result<Option<Spooled>, crate::BufferError> {
        let mut sink = SpoolSink::new(max_in_memory);
        if !self.fill(checksum, &mut sink).await? {
            return Ok(None);
        }
        sink.finish()
            .map(Some)
            .map_err(|e| crate::BufferError::output("(temporary file)", e))
    }

    async fn get_writer<W: AsyncWrite + Unpin>(
        &self,
        checksum: &Checksum,
        writer: &mut W,
    ) -> Result<Option<u64>, crate::BufferError> {
        let mut sink = WriterSink { writer, written: 0 };
        let found = self.fill(checksum, &mut sink).await?;
        Ok(found.then_some(sink.written))
    }

    async fn get_file(
        &self,
        checksum: &Checksum,
        path: &Path,
        progress: Option<Progress>,
    ) -> Result<Option<u64>, crate::BufferError> {
        let mut sink = FileSink::open(path, progress)?;
        let found = self.fill(checksum, &mut sink).await?;
        sink.finish(found).await
    }
}

/// Reports the bytes written so far to a file output (for a progress bar).
pub type Progress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// Streams into a temporary file next to the destination; renamed into place only after the
/// checksum verified, so that a failure never leaves a partial or wrong file.
pub(crate) struct FileSink {
    pub(crate) temp: tempfile::NamedTempFile,
    file: tokio::io::BufWriter<tokio::fs::File>,
    written: u64,
    pub(crate) dest: PathBuf,
    progress: Option<Progress>,
}

impl FileSink {
    /// A sink for `dest`, reporting to `progress`.
    pub(crate) fn open(
        dest: &Path,
        progress: Option<Progress>,
    ) -> Result<Self, crate::BufferError> {
        let mut sink = Self::create(dest).map_err(|e| crate::BufferError::output(dest, e))?;
        sink.progress = progress;
        Ok(sink)
    }

    /// Commits the file if the buffer was `found` (else removes the temporary file); returns
    /// the length written.
    pub(crate) async fn finish(self, found: bool) -> Result<Option<u64>, crate::BufferError> {
        if !found {
            return Ok(None);
        }
        let len = self.written;
        let dest = self.dest.clone();
        self.commit()
            .await
            .map_err(|e| crate::BufferError::output(dest, e))?;
        Ok(Some(len))
    }

    pub(crate) fn create(dest: &Path) -> std::io::Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        let file = tokio::fs::File::from_std(temp.reopen()?);
        Ok(FileSink {
            temp,
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            written: 0,
            dest: dest.to_path_buf(),
            progress: None,
        })
    }

    /// Flushes, syncs and renames the temporary file into place.
    pub(crate) async fn commit(mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        self.temp
            .persist(&self.dest)
            .map_err(|e| e.error)
            .map(|_| ())
    }
}

impl Sink for FileSink {
    async fn reset(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        let f = self.file.get_mut();
        f.set_len(0).await?;
        f.seek(std::io::SeekFrom::Start(0)).await?;
        self.written = 0;
        Ok(())
    }
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()> {
        self.file.write_all(data).await?;
        self.written += data.len() as u64;
        if let Some(p) = &self.progress {
            p(self.written);
        }
        Ok(())
    }
    fn written(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_from_headers() {
        assert_eq!(Encoding::from_header(None), Ok(Encoding::Identity));
        assert_eq!(Encoding::from_header(Some("ZSTD")), Ok(Encoding::Zstd));
        assert_eq!(Encoding::from_header(Some("gzip")), Ok(Encoding::Gzip));
        assert!(Encoding::from_header(Some("br")).is_err());
    }

    #[test]
    fn zstd_and_gzip_decode_in_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
        let z = zstd::encode_all(&data[..], 3).unwrap();
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        g.write_all(&data).unwrap();
        let g = g.finish().unwrap();
        for (enc, comp) in [(Encoding::Zstd, z), (Encoding::Gzip, g)] {
            assert_eq!(decode_all(enc, &comp, 1000).unwrap(), data, "{enc:?}");
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        g.write_all(&[1u8; 10000]).unwrap();
        let g = g.finish().unwrap();
        assert!(decode_all(Encoding::Gzip, &g[..g.len() / 2], 1000).is_err());
        let z = zstd::encode_all(&[1u8; 10000][..], 3).unwrap();
        assert!(decode_all(Encoding::Zstd, &z[..z.len() - 3], 1000).is_err());
        assert!(decode_all(Encoding::Zstd, b"", 1000).is_err());
    }

    /// Decodes `comp` fed in chunks of `chunk`; checks that no step exceeds the bound.
    fn decode_all(enc: Encoding, comp: &[u8], chunk: usize) -> std::io::Result<Vec<u8>> {
        let mut d = Decoder::new(enc)?;
        let mut out = Vec::new();
        for c in comp.chunks(chunk) {
            d.feed(Bytes::copy_from_slice(c));
            while let Some(step) = d.step()? {
                assert!(step.len() <= 2 * DECODE_STEP, "a step of {}", step.len());
                out.extend_from_slice(&step);
            }
        }
        out.extend_from_slice(&d.finish()?);
        Ok(out)
    }

    #[test]
    fn a_zstd_bomb_decodes_in_bounded_steps() {
        // 64 MiB of zeros compress to a few KiB; every step stays bounded.
        let zeros = vec![0u8; 64 << 20];
        let bomb = zstd::encode_all(&zeros[..], 19).unwrap();
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        let mut d = Decoder::new(Encoding::Zstd).unwrap();
        d.feed(Bytes::from(bomb));
        let mut steps = 0u64;
        let mut total = 0u64;
        while let Some(step) = d.step().unwrap() {
            assert!(step.len() <= DECODE_STEP);
            total += step.len() as u64;
            steps += 1;
        }
        assert_eq!(total, 64 << 20);
        assert!(steps >= 256);
    }

    #[tokio::test]
    async fn threaded_and_inline_verifiers_agree() {
        let data = Bytes::from(vec![5u8; 10 << 20]);
        for hint in [Some(10u64), None] {
            let mut v = Verifier::new(hint);
            for c in data.chunks(65536) {
                v.update(&Bytes::copy_from_slice(c)).await;
            }
            assert_eq!(v.finish().await.unwrap(), Checksum::of(&data));
        }
    }
}
