//! A fault-injection TCP proxy, placed in front of a real service.
//!
//! It forwards bytes unchanged, but reads the request heads going through (the clients do not
//! pipeline, so each response starts after its request head). Each queued [`FaultRule`] applies
//! once, to the next request whose request line contains the rule's pattern:
//!
//! * [`Fault::ResetAfter`]: forward that many bytes of the response, then reset the connection;
//! * [`Fault::Stall`]: forward nothing of the response (the client times out);
//! * [`Fault::Corrupt`]: flip one byte of the response body at an offset;
//! * [`Fault::Status503`]: answer `503 Service Unavailable` without asking the service;
//! * [`Fault::Respond`]: answer with the given raw status and body without asking the service.
//!
//! [`FaultProxy::set_refuse`] makes it drop every new connection at once. Every request line seen
//! is recorded ([`FaultProxy::requests`]), with its raw head ([`FaultProxy::heads`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do to one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward this many bytes of the response, then reset the connection.
    ResetAfter(usize),
    /// Never forward the response.
    Stall,
    /// Flip (XOR 0xFF) the byte at this offset of the response body.
    Corrupt(usize),
    /// Answer 503 without forwarding the request.
    Status503,
    /// Answer with this status line code and body without forwarding the request.
    Respond(u16, String),
}

/// A fault for the next request whose request line contains `pattern`.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Substring of the request line (e.g. `"GET /has"`, or a checksum).
    pub pattern: String,
    /// The fault.
    pub fault: Fault,
}

#[derive(Default)]
struct State {
    rules: Mutex<VecDeque<FaultRule>>,
    heads: Mutex<Vec<String>>,
    refuse: AtomicBool,
    connections: AtomicUsize,
    active: AtomicUsize,
    max_active: AtomicUsize,
}

impl State {
    fn take_fault(&self, request_line: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let pos = rules
            .iter()
            .position(|r| request_line.contains(&r.pattern))?;
        rules.remove(pos).map(|r| r.fault)
    }
}

/// The proxy; stops accepting when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                st.connections.fetch_add(1, Ordering::SeqCst);
                if st.refuse.load(Ordering::SeqCst) {
                    #[allow(deprecated)] // a zero linger (reset on close) does not block
                    let _ = client.set_linger(Some(std::time::Duration::ZERO));
                    drop(client);
                    continue;
                }
                let st = st.clone();
                tokio::spawn(async move {
                    let active = st.active.fetch_add(1, Ordering::SeqCst) + 1;
                    st.max_active.fetch_max(active, Ordering::SeqCst);
                    let _ = handle(client, upstream, st.clone()).await;
                    st.active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a fault for the next request whose request line contains `pattern`.
    pub fn push(&self, pattern: &str, fault: Fault) {
        self.state.rules.lock().unwrap().push_back(FaultRule {
            pattern: pattern.to_string(),
            fault,
        });
    }

    /// Faults still queued.
    pub fn pending(&self) -> usize {
        self.state.rules.lock().unwrap().len()
    }

    /// Drops every new connection at once (true) or forwards again (false).
    pub fn set_refuse(&self, refuse: bool) {
        self.state.refuse.store(refuse, Ordering::SeqCst);
    }

    /// The request lines seen, in order (`"GET /healthcheck HTTP/1.1"`).
    pub fn requests(&self) -> Vec<String> {
        self.heads()
            .iter()
            .map(|h| h.lines().next().unwrap_or("").to_string())
            .collect()
    }

    /// The raw request heads seen, in order.
    pub fn heads(&self) -> Vec<String> {
        self.state.heads.lock().unwrap().clone()
    }

    /// How many request lines start with `prefix` (e.g. `"GET /healthcheck"`).
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The largest number of connections open at once.
    pub fn max_concurrent_connections(&self) -> usize {
        self.state.max_active.load(Ordering::SeqCst)
    }
}

/// What the request parser found in the client's bytes.
enum Piece {
    /// A complete request head (through the blank line).
    Head(Vec<u8>),
    /// Body bytes (or bytes of a head still incomplete are held back, never returned here).
    Bytes(Vec<u8>),
}

#[derive(Default)]
enum BodyState {
    #[default]
    Head,
    Length(usize),
    /// Chunked body: the last bytes seen, to find the terminating `0\r\n\r\n`.
    Chunked(Vec<u8>),
}

/// Splits the client's byte stream into request heads and body bytes (Content-Length or
/// chunked bodies; requests are not pipelined by the clients under test).
#[derive(Default)]
struct RequestParser {
    state: BodyState,
    pending: Vec<u8>,
}

impl RequestParser {
    fn feed(&mut self, data: &[u8]) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut data = data.to_vec();
        while !data.is_empty() {
            match &mut self.state {
                BodyState::Head => {
                    self.pending.extend_from_slice(&data);
                    data.clear();
                    let Some(end) = find(&self.pending, b"\r\n\r\n") else {
                        break;
                    };
                    let head: Vec<u8> = self.pending.drain(..end + 4).collect();
                    data = std::mem::take(&mut self.pending);
                    let text = String::from_utf8_lossy(&head);
                    self.state = if is_chunked(&text) {
                        BodyState::Chunked(Vec::new())
                    } else {
                        match content_length(&text) {
                            Some(n) if n > 0 => BodyState::Length(n),
                            _ => BodyState::Head,
                        }
                    };
                    pieces.push(Piece::Head(head));
                }
                BodyState::Length(remaining) => {
                    let k = (*remaining).min(data.len());
                    pieces.push(Piece::Bytes(data[..k].to_vec()));
                    *remaining -= k;
                    data.drain(..k);
                    if *remaining == 0 {
                        self.state = BodyState::Head;
                    }
                }
                BodyState::Chunked(tail) => {
                    tail.extend_from_slice(&data);
                    pieces.push(Piece::Bytes(std::mem::take(&mut data)));
                    if tail.starts_with(b"0\r\n\r\n") || find(tail, b"\r\n0\r\n\r\n").is_some() {
                        self.state = BodyState::Head;
                    } else if tail.len() > 16 {
                        let cut = tail.len() - 16;
                        tail.drain(..cut);
                    }
                }
            }
        }
        pieces
    }
}

/// The fault armed for the response in flight on one connection.
#[derive(Default)]
struct Armed {
    fault: Option<Fault>,
    forwarded: usize,
    head_done: bool,
    head_tail: Vec<u8>,
    body_seen: usize,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim().eq_ignore_ascii_case("content-length") {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

fn is_chunked(head: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    })
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    st: Arc<State>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (reply, do_reset) = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = {
            let (r, w) = server.into_split();
            (r, w)
        };
        let armed = Arc::new(Mutex::new(Armed::default()));
        let reset = Arc::new(tokio::sync::Notify::new());

        // Client -> server: parse request heads, arm faults, forward.
        let up = {
            let armed = armed.clone();
            let st = st.clone();
            let reset = reset.clone();
            async move {
                let mut parser = RequestParser::default();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = cr.read(&mut buf).await?;
                    if n == 0 {
                        let _ = sw.shutdown().await;
                        return Ok::<Option<Vec<u8>>, std::io::Error>(None);
                    }
                    let mut out: Vec<u8> = Vec::with_capacity(n);
                    for piece in parser.feed(&buf[..n]) {
                        match piece {
                            Piece::Bytes(b) => out.extend_from_slice(&b),
                            Piece::Head(head) => {
                                let text = String::from_utf8_lossy(&head).into_owned();
                                let line = text.lines().next().unwrap_or("").to_string();
                                st.heads.lock().unwrap().push(text);
                                let fault = st.take_fault(&line);
                                let reply = match &fault {
                                    Some(Fault::Status503) => Some(canned(
                                        503,
                                        "Service Unavailable",
                                        "proxy: injected 503",
                                    )),
                                    Some(Fault::Respond(code, body)) => {
                                        Some(canned(*code, "Injected", body))
                                    }
                                    _ => None,
                                };
                                if reply.is_some() {
                                    sw.write_all(&out).await?;
                                    reset.notify_one();
                                    return Ok(reply);
                                }
                                // Everything before this head belongs to the previous request.
                                sw.write_all(&out).await?;
                                out.clear();
                                *armed.lock().unwrap() = Armed {
                                    fault,
                                    ..Armed::default()
                                };
                                out.extend_from_slice(&head);
                            }
                        }
                    }
                    if !out.is_empty() {
                        sw.write_all(&out).await?;
                    }
                }
            }
        };

        // Server -> client: apply the armed fault to the response bytes.
        let down = {
            let armed = armed.clone();
            async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = sr.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<bool, std::io::Error>(false);
                    }
                    let mut chunk = buf[..n].to_vec();
                    let (action, keep) = {
                        let mut a = armed.lock().unwrap();
                        apply(&mut a, &mut chunk)
                    };
                    if !chunk[..keep].is_empty() {
                        cw.write_all(&chunk[..keep]).await?;
                    }
                    match action {
                        Action::Continue => {}
                        Action::Reset => return Ok(true),
                        Action::Stall => {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            }
        };

        tokio::pin!(up);
        tokio::pin!(down);
        let mut reply = None;
        let mut do_reset = false;
        tokio::select! {
            r = &mut up => { if let Ok(Some(bytes)) = r { reply = Some(bytes); } }
            r = &mut down => { do_reset = matches!(r, Ok(true)); }
            _ = reset.notified() => {}
        }
        (reply, do_reset)
    };
    if let Some(bytes) = reply {
        let _ = client.write_all(&bytes).await;
        let _ = client.shutdown().await;
        return Ok(());
    }
    if do_reset {
        #[allow(deprecated)] // a zero linger (reset on close) does not block
        let _ = client.set_linger(Some(std::time::Duration::ZERO));
    }
    Ok(())
}

enum Action {
    Continue,
    Reset,
    Stall,
}

/// Applies the armed fault to `chunk`; returns what to do next and how many bytes to forward.
fn apply(a: &mut Armed, chunk: &mut [u8]) -> (Action, usize) {
    // Track where the response body starts (after the first CRLFCRLF).
    let body_start = if a.head_done {
        Some(0)
    } else {
        let mut joined = a.head_tail.clone();
        joined.extend_from_slice(chunk);
        match find(&joined, b"\r\n\r\n") {
            Some(pos) => {
                a.head_done = true;
                let end_in_joined = pos + 4;
                Some(end_in_joined.saturating_sub(a.head_tail.len()))
            }
            None => {
                let keep = joined.len().saturating_sub(3);
                a.head_tail = joined[keep..].to_vec();
                None
            }
        }
    };
    let result = match a.fault.clone() {
        None => (Action::Continue, chunk.len()),
        Some(Fault::Stall) => (Action::Stall, 0),
        Some(Fault::ResetAfter(limit)) => {
            let room = limit.saturating_sub(a.forwarded);
            if chunk.len() >= room {
                (Action::Reset, room)
            } else {
                (Action::Continue, chunk.len())
            }
        }
        Some(Fault::Corrupt(offset)) => {
            if let Some(start) = body_start {
                let body_len = chunk.len() - start;
                if offset >= a.body_seen && offset < a.body_seen + body_len {
                    chunk[start + offset - a.body_seen] ^= 0xFF;
                    a.fault = None;
                }
                a.body_seen += body_len;
            }
            (Action::Continue, chunk.len())
        }
        Some(Fault::Status503) | Some(Fault::Respond(..)) => (Action::Continue, chunk.len()),
    };
    a.forwarded += result.1;
    result
}

fn canned(code: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
