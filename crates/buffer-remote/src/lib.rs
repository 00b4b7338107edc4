//! The Seamless buffer client: fetch and store buffers by checksum.
//!
//! * [`BufferClient`]: a hashserver over HTTP: batched presence and lengths, verified
//!   downloads (in memory, streamed to a writer, or to a file with nothing partial left behind),
//!   streamed uploads, promises. zstd/gzip-stored buffers are decoded, then verified.
//! * [`BufferFolder`]: a local buffer directory (flat or prefixed layout, lock files), verified.
//! * [`launched`]: launched hashservers from the configuration (started on first use, relaunched
//!   when they die).
//! * [`remote`]: the activation API: the read servers, read folders and write servers of the
//!   current stage, and the functions the rest of Seamless calls (`get_buffer`, `write_buffer`,
//!   `promise`, `get_buffer_lengths`, `has_buffers`, ...), failing over between sources and
//!   writing to every write server concurrently.
//!
//! A buffer whose SHA-256 differs from its checksum is never returned.
//!
//! ```no_run
//! use seamless_buffer_remote::{BufferClient, Checksum};
//! # async fn demo() -> Result<(), seamless_buffer_remote::BufferError> {
//! let client = BufferClient::new("http://127.0.0.1:5100", false)?;
//! let data = bytes::Bytes::from_static(b"hello world");
//! let cs = Checksum::of(&data);
//! client.write(&cs, data).await?;
//! assert_eq!(client.get(&cs).await?.as_deref(), Some(&b"hello world"[..]));
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod error;
pub mod folder;
pub mod launched;
pub mod remote;
mod stream;
pub mod trivial;

pub use client::{BufferClient, WriteOutcome, BATCH_SIZE};
pub use error::BufferError;
pub use folder::BufferFolder;
pub use remote::{ActiveBuffers, BufferRemote};
pub use seamless_remote_core::{Checksum, ChecksumError};
pub use stream::{Encoding, Progress, Spooled};

/// The checksum of the empty buffer.
pub const EMPTY_CHECKSUM: Checksum = Checksum::from_bytes([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// What a store knows of a buffer's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferLength {
    /// Not there.
    Absent,
    /// There, with this many bytes.
    Known(u64),
    /// There (or promised), length unknown (a hashserver's `true`).
    Unknown,
}

impl BufferLength {
    /// The length in bytes, if known.
    pub fn bytes(self) -> Option<u64> {
        match self {
            BufferLength::Known(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the buffer is there (or promised).
    pub fn is_present(self) -> bool {
        !matches!(self, BufferLength::Absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_checksum_constant_is_right() {
        assert_eq!(EMPTY_CHECKSUM, Checksum::of(b""));
    }
}
