//! Seamless checksums: the SHA-256 digest of a buffer's exact bytes.
//!
//! A [`Checksum`] is 32 bytes. It is parsed from exactly 64 hexadecimal digits (either case) and
//! always printed as 64 lowercase digits, which is how every Seamless service writes it. Anything
//! else is a [`ChecksumError`] that says what was wrong, so a checksum that came from outside the
//! process can safely become a URL path segment or a file name.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 checksum of a buffer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum([u8; 32]);

/// Why a string is not a checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// The string does not have 64 characters.
    #[error("invalid checksum '{shown}': expected 64 hexadecimal digits, got {len} characters")]
    WrongLength {
        /// The input, shortened for display.
        shown: String,
        /// Its length in characters.
        len: usize,
    },
    /// A character is not a hexadecimal digit.
    #[error(
        "invalid checksum '{shown}': character {ch:?} at position {position} is not a hexadecimal digit"
    )]
    NotHex {
        /// The input, shortened for display.
        shown: String,
        /// The offending character.
        ch: char,
        /// Its position (0-based, in characters).
        position: usize,
    },
}

/// Shows at most 80 characters of untrusted input in an error message.
fn shown(input: &str) -> String {
    const MAX: usize = 80;
    if input.chars().count() <= MAX {
        input.to_string()
    } else {
        let head: String = input.chars().take(MAX).collect();
        format!("{head}...")
    }
}

impl Checksum {
    /// Computes the checksum of a buffer (SHA-256; uses the CPU's SHA instructions where present).
    pub fn of(buffer: &[u8]) -> Self {
        Checksum(Sha256::digest(buffer).into())
    }

    /// Computes the checksum of everything `reader` yields, 1 MiB at a time (blocking I/O; a
    /// file of any size in bounded memory).
    pub fn of_reader(mut reader: impl std::io::Read) -> std::io::Result<Self> {
        let mut hasher = ChecksumHasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(hasher.finalize()),
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Wraps a raw 32-byte digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Checksum(bytes)
    }

    /// Parses exactly 64 hexadecimal digits, in either case.
    pub fn from_hex(text: &str) -> Result<Self, ChecksumError> {
        let len = text.chars().count();
        if let Some((position, ch)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            // A wrong character is the more useful message, unless the length is also wrong
            // because of trailing garbage (e.g. a newline): then report the character as well.
            return Err(ChecksumError::NotHex {
                shown: shown(text),
                ch,
                position,
            });
        }
        if len != 64 {
            return Err(ChecksumError::WrongLength {
                shown: shown(text),
                len,
            });
        }
        let mut out = [0u8; 32];
        // Every character is an ASCII hex digit and there are 64 of them: decoding cannot fail,
        // but map the impossible error anyway rather than unwrap.
        hex::decode_to_slice(text, &mut out).map_err(|_| ChecksumError::WrongLength {
            shown: shown(text),
            len,
        })?;
        Ok(Checksum(out))
    }

    /// The raw 32-byte digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Checksum {
    type Err = ChecksumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Checksum::from_hex(s)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // Cannot fail: the output buffer is exactly twice the input length.
        if hex::encode_to_slice(self.0, &mut buf).is_err() {
            return Err(fmt::Error);
        }
        // hex output is ASCII.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

impl serde::Serialize for Checksum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Checksum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Checksum::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// Incremental SHA-256 for buffers that arrive as a stream.
#[derive(Clone, Default)]
pub struct ChecksumHasher {
    hasher: Sha256,
    len: u64,
}

impl ChecksumHasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the buffer.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes have been fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes have been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksum of everything fed.
    pub fn finalize(self) -> Checksum {
        Checksum(self.hasher.finalize().into())
    }
}

impl fmt::Debug for ChecksumHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChecksumHasher")
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_reader_matches_of() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(Checksum::of_reader(&data[..]).unwrap(), Checksum::of(&data));
        assert_eq!(Checksum::of_reader(&b""[..]).unwrap(), Checksum::of(b""));
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HELLO: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    #[test]
    fn computes_sha256() {
        assert_eq!(Checksum::of(b"").to_hex(), EMPTY);
        assert_eq!(Checksum::of(b"hello world").to_string(), HELLO);
    }

    #[test]
    fn parses_either_case_prints_lowercase() {
        let upper = HELLO.to_uppercase();
        let cs: Checksum = upper.parse().unwrap();
        assert_eq!(cs.to_string(), HELLO);
        assert_eq!(cs, Checksum::of(b"hello world"));
        assert_eq!(format!("{cs:?}"), format!("Checksum({HELLO})"));
    }

    #[test]
    fn rejects_wrong_length_with_a_clear_message() {
        let err = Checksum::from_hex("abcd").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid checksum 'abcd': expected 64 hexadecimal digits, got 4 characters"
        );
        assert!(matches!(
            Checksum::from_hex(&HELLO[..63]),
            Err(ChecksumError::WrongLength { len: 63, .. })
        ));
        assert!(matches!(
            Checksum::from_hex(""),
            Err(ChecksumError::WrongLength { len: 0, .. })
        ));
    }

    #[test]
    fn rejects_non_hex_and_path_like_input() {
        let bad = format!("zz{}", &HELLO[2..]);
        let err = Checksum::from_hex(&bad).unwrap_err();
        assert!(matches!(
            err,
            ChecksumError::NotHex {
                ch: 'z',
                position: 0,
                ..
            }
        ));
        assert!(err.to_string().contains("not a hexadecimal digit"));
        for evil in ["../../etc/passwd", "/abs", "ab/cd", " ".repeat(64).as_str()] {
            assert!(Checksum::from_hex(evil).is_err(), "{evil:?}");
        }
        // A trailing newline is reported as the bad character.
        let err = Checksum::from_hex(&format!("{HELLO}\n")).unwrap_err();
        assert!(matches!(
            err,
            ChecksumError::NotHex {
                ch: '\n',
                position: 64,
                ..
            }
        ));
        // Non-ASCII input never panics on slicing.
        assert!(Checksum::from_hex(&"é".repeat(64)).is_err());
    }

    #[test]
    fn long_input_is_shortened_in_messages() {
        let long = "x".repeat(1000);
        let msg = Checksum::from_hex(&long).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn incremental_hasher_matches_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = ChecksumHasher::new();
        assert!(h.is_empty());
        for chunk in data.chunks(977) {
            h.update(chunk);
        }
        assert_eq!(h.len(), data.len() as u64);
        assert_eq!(h.finalize(), Checksum::of(&data));
    }

    #[test]
    fn serde_round_trip() {
        let cs = Checksum::of(b"hello world");
        let json = serde_json::to_string(&cs).unwrap();
        assert_eq!(json, format!("\"{HELLO}\""));
        let back: Checksum = serde_json::from_str(&json.to_uppercase()).unwrap();
        assert_eq!(back, cs);
        assert!(serde_json::from_str::<Checksum>("\"abc\"").is_err());
    }
}
