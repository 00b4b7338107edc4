//! Data from outside, handled safely: the pieces every Seamless crate uses where it reads files,
//! shows text or takes a URL it does not control (see `SECURITY.md`).
//!
//! * [`fs`]: files read with a size cap, only if regular (or a pipe where that makes sense),
//!   never blocking on a planted FIFO; our own files created private without following links.
//! * [`text`]: text made safe for a terminal (control characters escaped) and URL passwords
//!   hidden.
//! * [`url`]: base URLs checked before use.
//!
//! ```
//! use seamless_safe_io::{text, url};
//! assert_eq!(text::escape("a\x1b[31m"), "a\\x1b[31m");
//! assert_eq!(text::redact_url("http://u:secret@h/"), "http://u:***@h/");
//! assert!(url::check_base_url("http://h/#frag").is_err());
//! ```

#![deny(missing_docs, unreachable_pub)]

pub mod fs;
pub mod text;
pub mod url;
