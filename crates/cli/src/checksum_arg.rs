//! The CHECKSUM argument: a literal checksum, or the path of a checksum file (as the reference's
//! `parse_checksum_argument`).
//!
//! A literal wins over a file of the same name. ASCII whitespace inside a literal is ignored
//! (the reference accepts `"7d 17 77 ..."`). A file may hold comment lines (`#`) and blank lines
//! around exactly one checksum; `.CHECKSUM` is not appended.

use std::path::Path;

use seamless_remote_core::Checksum;
use seamless_safe_io::fs::{read_text_capped, Accept};

/// The largest checksum file read (a checksum, comments and blank lines): 64 KiB.
pub const CHECKSUM_FILE_CAP: u64 = 64 * 1024;

use crate::exit::{CliError, Code};

fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

/// Parses the argument.
pub fn parse(arg: &str) -> Result<Checksum, CliError> {
    let literal = compact(arg).parse::<Checksum>();
    if let Ok(cs) = literal {
        return Ok(cs);
    }
    let path = Path::new(arg);
    let shown = seamless_safe_io::text::escape(arg);
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(CliError::new(
                Code::InvalidChecksum,
                format!("'{shown}' is a directory, not a checksum or a checksum file"),
            ));
        }
        // A regular file or a pipe (`<(echo $cs)`, `/dev/stdin`), at most CHECKSUM_FILE_CAP.
        let text =
            read_text_capped(path, CHECKSUM_FILE_CAP, Accept::RegularOrPipe).map_err(|e| {
                CliError::new(
                    Code::InvalidChecksum,
                    format!("Cannot read checksum file '{shown}': {e}"),
                )
            })?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        return match lines.as_slice() {
            [one] => compact(one).parse::<Checksum>().map_err(|e| {
                CliError::new(
                    Code::InvalidChecksum,
                    format!(
                        "Invalid checksum file '{shown}': {}",
                        seamless_safe_io::text::escape(&e.to_string())
                    ),
                )
            }),
            [] => Err(CliError::new(
                Code::InvalidChecksum,
                format!("Invalid checksum file '{shown}': it holds no checksum"),
            )),
            _ => Err(CliError::new(
                Code::InvalidChecksum,
                format!("Invalid checksum file '{shown}': it holds {} lines, expected exactly one checksum", lines.len()),
            )),
        };
    }
    Err(match literal {
        Err(e) => CliError::new(
            Code::InvalidChecksum,
            format!(
                "{} (and no file of that name exists)",
                seamless_safe_io::text::escape(&e.to_string())
            ),
        ),
        Ok(_) => CliError::new(Code::InvalidChecksum, "invalid checksum"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    #[test]
    fn literals() {
        assert_eq!(parse(HEX).unwrap().to_hex(), HEX);
        assert_eq!(parse(&HEX.to_uppercase()).unwrap().to_hex(), HEX);
        let spaced: String = HEX
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(parse(&spaced).unwrap().to_hex(), HEX);
        let err = parse("nothex").unwrap_err();
        assert_eq!(err.code, Code::InvalidChecksum);
        assert!(err.message.contains("'nothex'"), "{}", err.message);
        assert!(parse(&HEX[..63]).is_err());
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.CHECKSUM");
        std::fs::write(
            &good,
            format!("# a comment\n\n  {}  \n\n", HEX.to_uppercase()),
        )
        .unwrap();
        assert_eq!(parse(good.to_str().unwrap()).unwrap().to_hex(), HEX);
        let two = dir.path().join("two");
        std::fs::write(&two, format!("{HEX}\n{HEX}\n")).unwrap();
        assert!(parse(two.to_str().unwrap())
            .unwrap_err()
            .message
            .contains("2 lines"));
        let inline = dir.path().join("inline");
        std::fs::write(&inline, format!("{HEX} # comment\n")).unwrap();
        assert!(parse(inline.to_str().unwrap())
            .unwrap_err()
            .message
            .contains("Invalid checksum file"));
        // `.CHECKSUM` is not appended.
        let stem = dir.path().join("good");
        assert!(parse(stem.to_str().unwrap()).is_err());
        // A directory, a device, an oversized (sparse) file: clear errors, nothing read.
        let e = parse(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.message.contains("is a directory"), "{}", e.message);
        let e = parse("/dev/zero").unwrap_err();
        assert!(e.message.contains("character device"), "{}", e.message);
        let sparse = dir.path().join("sparse");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(6 << 30)
            .unwrap();
        let e = parse(sparse.to_str().unwrap()).unwrap_err();
        assert!(e.message.contains("larger than"), "{}", e.message);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Any argument gives a checksum or a clear error, never a panic.
        #[test]
        fn any_argument_is_a_checksum_or_a_clear_error(arg in "\\PC{0,80}") {
            match parse(&arg) {
                Ok(cs) => proptest::prop_assert_eq!(cs.to_hex().len(), 64),
                Err(e) => {
                    proptest::prop_assert_eq!(e.code, Code::InvalidChecksum);
                    proptest::prop_assert!(!e.message.chars().any(|c| c.is_control()));
                }
            }
        }
    }
}
