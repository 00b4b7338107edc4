//! Text from outside, made safe to show: control characters escaped (no raw ESC or OSC sequence
//! reaches a terminal) and URL passwords hidden.

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls, DEL, and the Unicode
/// bidirectional overrides and isolates (which reorder what a reader sees).
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `text` with every control character (newlines included) escaped, e.g. ESC as `\x1b`: one
/// line, safe to print.
pub fn escape(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// As [`escape`], but line breaks are kept (for a quoted log).
pub fn escape_lines(text: &str) -> String {
    text.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// Splits the `user:password@` part off a URL: (the URL without it, the user info if any).
pub fn split_userinfo(url: &str) -> (String, Option<(String, Option<String>)>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), None);
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_string(), None);
    };
    let info = &authority[..at];
    let stripped = format!(
        "{}{}{}",
        &url[..scheme_end + 3],
        &authority[at + 1..],
        &rest[authority_end..]
    );
    let (user, password) = match info.split_once(':') {
        Some((u, p)) => (u.to_string(), Some(p.to_string())),
        None => (info.to_string(), None),
    };
    (stripped, Some((user, password)))
}

/// A URL as it may be printed: a password becomes `***` (`http://user:***@host/...`).
pub fn redact_url(url: &str) -> String {
    match split_userinfo(url) {
        (_, None) => url.to_string(),
        (stripped, Some((user, password))) => {
            let scheme_end = stripped.find("://").map(|i| i + 3).unwrap_or(0);
            let shown = match password {
                Some(_) => format!("{user}:***@"),
                None => format!("{user}@"),
            };
            format!(
                "{}{}{}",
                &stripped[..scheme_end],
                shown,
                &stripped[scheme_end..]
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain text"), "plain text");
        assert_eq!(escape("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(escape("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(escape("\u{9b}31m"), "\\x9b31m");
        assert_eq!(escape("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(escape_lines("a\nb\x1b"), "a\nb\\x1b");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("http://alice:s3cret@host:1/x"),
            "http://alice:***@host:1/x"
        );
        assert_eq!(redact_url("http://bob@host/"), "http://bob@host/");
        assert_eq!(redact_url("http://host:5/a@b"), "http://host:5/a@b");
        assert_eq!(
            split_userinfo("https://u:p:q@h/p"),
            (
                "https://h/p".to_string(),
                Some(("u".to_string(), Some("p:q".to_string())))
            )
        );
    }
}
