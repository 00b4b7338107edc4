//! Base URLs of services, checked before use: `http://` or `https://`, a host, no query or
//! `#fragment` (which would silently change what is requested). Credentials (`user:pass@`) are
//! allowed here; see [`crate::text::split_userinfo`] and [`crate::text::redact_url`].

/// Why a base URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL has a `#fragment`.
    #[error("a base URL cannot have a #fragment")]
    Fragment,
    /// The text is not a URL.
    #[error("not a valid URL")]
    Invalid,
    /// Not `http://` or `https://`.
    #[error("the URL must start with http:// or https://")]
    Scheme,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// A query string.
    #[error("a base URL cannot have a query string")]
    Query,
}

/// Checks a base URL; returns it trimmed, without a trailing `/` (credentials kept).
pub fn check_base_url(url: &str) -> Result<String, UrlError> {
    let trimmed = url.trim();
    if trimmed.contains('#') {
        return Err(UrlError::Fragment);
    }
    let (stripped, _) = crate::text::split_userinfo(trimmed);
    let uri: http::Uri = stripped.parse().map_err(|_| UrlError::Invalid)?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(UrlError::Scheme),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost);
    }
    if uri.query().is_some() {
        return Err(UrlError::Query);
    }
    Ok(trimmed.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(check_base_url(" http://h:1/ "), Ok("http://h:1".into()));
        assert_eq!(
            check_base_url("https://u:p@h/x"),
            Ok("https://u:p@h/x".into())
        );
        assert_eq!(check_base_url("http://h/#x"), Err(UrlError::Fragment));
        assert_eq!(check_base_url("http://h/?a"), Err(UrlError::Query));
        assert_eq!(check_base_url("ftp://h"), Err(UrlError::Scheme));
        assert_eq!(check_base_url("http://"), Err(UrlError::Invalid));
    }
}
