//! Probes of a service from this machine: a TCP connect, a one-shot HTTP GET (a handshake), and
//! the end of its log.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// One blocking `GET http://host:port/path`; true on a 2xx answer.
pub(crate) fn http_ok(host: &str, port: u16, path: &str, timeout: Duration) -> bool {
    let Ok(mut addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    let Some(addr) = addrs.next() else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let path = path.trim_start_matches('/');
    let request =
        format!("GET /{path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < 12 {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let text = String::from_utf8_lossy(&head[..got]);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .is_some_and(|s| (200..300).contains(&s))
}

/// Whether `host:port` accepts a TCP connection (2 s).
pub(crate) fn port_open(host: &str, port: u16) -> bool {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// The last `lines` lines of a log (at most its last 64 KiB are read), control characters
/// escaped.
pub(crate) fn log_tail(path: &std::path::Path, lines: usize) -> String {
    use std::io::{Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let Ok(mut file) =
        seamless_safe_io::fs::open_checked(path, seamless_safe_io::fs::Accept::RegularOnly)
    else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut raw = Vec::new();
    let _ = file.take(TAIL).read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let all: Vec<&str> = text.lines().collect();
    seamless_safe_io::text::escape_lines(&all[all.len().saturating_sub(lines)..].join("\n"))
}
