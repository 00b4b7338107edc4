//! Request timeouts, read from the environment exactly as the Python reference reads them.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SEAMLESS_REMOTE_CONNECT_TIMEOUT` | 10 s | TCP (and TLS) connect |
//! | `SEAMLESS_REMOTE_READ_TIMEOUT` | 1200 s | idle time without a byte moving, not a whole-transfer clock |
//! | `SEAMLESS_REMOTE_TOTAL_TIMEOUT` | none | one whole request, body included |
//! | `SEAMLESS_REMOTE_HEALTHCHECK_TIMEOUT` | 10 s | one whole healthcheck |
//!
//! A value is parsed as a float number of seconds after trimming. `none`, `off`, `false` (any
//! case), an empty value, or a number `<= 0` disable that timeout. A value that is not a number
//! falls back to the default (the reference does the same).

use std::time::Duration;

/// Environment variable for the connect timeout.
pub const CONNECT_TIMEOUT_ENV: &str = "SEAMLESS_REMOTE_CONNECT_TIMEOUT";
/// Environment variable for the idle-read timeout.
pub const READ_TIMEOUT_ENV: &str = "SEAMLESS_REMOTE_READ_TIMEOUT";
/// Environment variable for the whole-request timeout.
pub const TOTAL_TIMEOUT_ENV: &str = "SEAMLESS_REMOTE_TOTAL_TIMEOUT";
/// Environment variable for the healthcheck timeout.
pub const HEALTHCHECK_TIMEOUT_ENV: &str = "SEAMLESS_REMOTE_HEALTHCHECK_TIMEOUT";

/// The four timeouts of a client. `None` means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connect timeout.
    pub connect: Option<Duration>,
    /// Idle-read timeout: the longest wait for the next byte of a response (or for the server to
    /// take the next bytes of a request body).
    pub read: Option<Duration>,
    /// Whole-request timeout.
    pub total: Option<Duration>,
    /// Whole-healthcheck timeout.
    pub healthcheck: Option<Duration>,
}

impl Default for Timeouts {
    /// The reference's defaults: connect 10 s, read 1200 s, total none, healthcheck 10 s.
    fn default() -> Self {
        Timeouts {
            connect: Some(Duration::from_secs(10)),
            read: Some(Duration::from_secs(1200)),
            total: None,
            healthcheck: Some(Duration::from_secs(10)),
        }
    }
}

/// The result of parsing one timeout value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutSetting {
    /// A limit.
    Limit(Duration),
    /// Explicitly disabled.
    Disabled,
    /// Not a number: the caller uses its default.
    Invalid,
}

/// Parses one timeout value as the reference does (see the module docs).
pub(crate) fn parse_timeout(value: &str) -> TimeoutSetting {
    let value = value.trim().to_ascii_lowercase();
    if value.is_empty() || matches!(value.as_str(), "none" | "off" | "false") {
        return TimeoutSetting::Disabled;
    }
    match value.parse::<f64>() {
        Ok(secs) if secs.is_nan() => TimeoutSetting::Invalid,
        Ok(secs) if secs <= 0.0 || secs.is_infinite() => TimeoutSetting::Disabled,
        Ok(secs) => match Duration::try_from_secs_f64(secs) {
            Ok(d) => TimeoutSetting::Limit(d),
            Err(_) => TimeoutSetting::Disabled,
        },
        Err(_) => TimeoutSetting::Invalid,
    }
}

fn setting(raw: Option<String>, default: Option<Duration>) -> Option<Duration> {
    match raw {
        None => default,
        Some(raw) => match parse_timeout(&raw) {
            TimeoutSetting::Limit(d) => Some(d),
            TimeoutSetting::Disabled => None,
            TimeoutSetting::Invalid => {
                tracing::warn!(value = %raw, "unparsable timeout value, using the default");
                default
            }
        },
    }
}

impl Timeouts {
    /// Reads the four variables through `lookup` (for tests and embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Timeouts::default();
        Timeouts {
            connect: setting(lookup(CONNECT_TIMEOUT_ENV), d.connect),
            read: setting(lookup(READ_TIMEOUT_ENV), d.read),
            total: setting(lookup(TOTAL_TIMEOUT_ENV), d.total),
            healthcheck: setting(lookup(HEALTHCHECK_TIMEOUT_ENV), d.healthcheck),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Timeouts {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Timeouts::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_reference() {
        let t = from(&[]);
        assert_eq!(t.connect, Some(Duration::from_secs(10)));
        assert_eq!(t.read, Some(Duration::from_secs(1200)));
        assert_eq!(t.total, None);
        assert_eq!(t.healthcheck, Some(Duration::from_secs(10)));
        assert_eq!(t, Timeouts::default());
    }

    #[test]
    fn parsing_rules() {
        assert_eq!(
            parse_timeout(" 2.5 "),
            TimeoutSetting::Limit(Duration::from_millis(2500))
        );
        assert_eq!(
            parse_timeout("1e1"),
            TimeoutSetting::Limit(Duration::from_secs(10))
        );
        for off in ["none", "OFF", "False", "", "   ", "0", "-3", "inf"] {
            assert_eq!(parse_timeout(off), TimeoutSetting::Disabled, "{off:?}");
        }
        for bad in ["abc", "10s", "1,5", "nan"] {
            assert_eq!(parse_timeout(bad), TimeoutSetting::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn env_values_apply_and_invalid_ones_fall_back() {
        let t = from(&[
            (CONNECT_TIMEOUT_ENV, "abc"),
            (READ_TIMEOUT_ENV, "0.25"),
            (TOTAL_TIMEOUT_ENV, "30"),
            (HEALTHCHECK_TIMEOUT_ENV, "off"),
        ]);
        assert_eq!(t.connect, Some(Duration::from_secs(10)));
        assert_eq!(t.read, Some(Duration::from_millis(250)));
        assert_eq!(t.total, Some(Duration::from_secs(30)));
        assert_eq!(t.healthcheck, None);

        let t = from(&[(READ_TIMEOUT_ENV, "none"), (TOTAL_TIMEOUT_ENV, "garbage")]);
        assert_eq!(t.read, None);
        assert_eq!(t.total, None);
    }
}
