//! A hostile HTTP peer: a small server on a free loopback port whose answers are chosen by the
//! test (endless or oversized bodies, lying lengths, compression bombs, control bytes, JSON
//! floods, no HTTP at all). It stands for a broken or malicious store, never for a real service.
//!
//! Every answer is bounded: an endless body stops when the client goes away, or after
//! [`MAX_SEND`] bytes or [`MAX_TIME`], whichever comes first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most bytes one endless answer sends.
pub const MAX_SEND: u64 = 64 << 30;
/// The longest one endless answer lasts.
pub const MAX_TIME: Duration = Duration::from_secs(120);

/// How the peer answers a request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A complete answer: status, extra header lines (`Name: value`), body.
    Full(u16, Vec<String>, Vec<u8>),
    /// 200 with zero bytes forever, chunked (`announced: None`) or under a `Content-Length`.
    Endless {
        /// The `Content-Length` announced, if any.
        announced: Option<u64>,
        /// Pause between 64 KiB blocks.
        pause: Duration,
    },
    /// These bytes as they are (bytes that are not HTTP, or a head with a lying length), then
    /// close.
    Raw(Vec<u8>),
}

impl Answer {
    /// A 200 answer with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Answer {
        Answer::Full(200, Vec::new(), body.into())
    }
}

type Rule = (String, Answer);

#[derive(Default)]
struct State {
    rules: Mutex<Vec<Rule>>,
    requests: Mutex<Vec<String>>,
    sent: AtomicUsize,
}

/// The hostile peer; stops when dropped.
pub struct HostileServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileServer {
    /// Starts the peer; `rules` pair a request-line substring with its answer (the first match
    /// wins; anything else gets 404).
    pub async fn start(rules: Vec<(&str, Answer)>) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            rules: Mutex::new(rules.into_iter().map(|(p, a)| (p.to_string(), a)).collect()),
            ..State::default()
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, st).await;
                });
            }
        });
        HostileServer { addr, state, task }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request heads received so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many body bytes the peer has sent in all.
    pub fn sent(&self) -> usize {
        self.state.sent.load(Ordering::SeqCst)
    }
}

async fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

async fn skip_body(conn: &mut TcpStream, head: &str) -> std::io::Result<()> {
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<u64>().ok())?
        })
        .unwrap_or(0);
    let mut rest = len.min(16 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    while rest > 0 {
        let n = conn.read(&mut buf[..rest.min(64 * 1024) as usize]).await?;
        if n == 0 {
            break;
        }
        rest -= n as u64;
    }
    Ok(())
}

async fn serve(mut conn: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    while let Some(head) = read_head(&mut conn).await? {
        skip_body(&mut conn, &head).await?;
        let line = head.lines().next().unwrap_or_default().to_string();
        state.requests.lock().unwrap().push(head.clone());
        let answer = state
            .rules
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| line.contains(p.as_str()))
            .map(|(_, a)| a.clone())
            .unwrap_or(Answer::Full(404, Vec::new(), b"Not found".to_vec()));
        match answer {
            Answer::Full(status, headers, body) => {
                let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for h in headers {
                    out.push_str(&h);
                    out.push_str("\r\n");
                }
                out.push_str("\r\n");
                conn.write_all(out.as_bytes()).await?;
                conn.write_all(&body).await?;
                state.sent.fetch_add(body.len(), Ordering::SeqCst);
            }
            Answer::Raw(bytes) => {
                conn.write_all(&bytes).await?;
                return Ok(());
            }
            Answer::Endless { announced, pause } => {
                let head = match announced {
                    Some(n) => format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"),
                    None => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(),
                };
                conn.write_all(head.as_bytes()).await?;
                let block = vec![0u8; 64 * 1024];
                let chunk_head = format!("{:x}\r\n", block.len());
                let start = Instant::now();
                let mut total = 0u64;
                while total < MAX_SEND && start.elapsed() < MAX_TIME {
                    if announced.is_none() {
                        conn.write_all(chunk_head.as_bytes()).await?;
                    }
                    conn.write_all(&block).await?;
                    if announced.is_none() {
                        conn.write_all(b"\r\n").await?;
                    }
                    total += block.len() as u64;
                    state.sent.fetch_add(block.len(), Ordering::SeqCst);
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A zstd stream that decodes to `frames` × 64 MiB of zeros, in a few KiB per frame (a
/// decompression bomb: 128 frames are ~8.6 GB from well under 1 MB).
pub fn zstd_bomb(frames: usize) -> Vec<u8> {
    let frame = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    frame.repeat(frames)
}
