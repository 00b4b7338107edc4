//! The Rust side of `cargo xtask bench`: one scenario per run, timings as one JSON line on stdout.
//!
//! ```text
//! bench-client small URL N SIZE SEED     write then read N buffers of SIZE bytes (concurrently)
//! bench-client has URL N                 presence of N checksums (a few present)
//! bench-client big-up URL FILE           upload FILE (streamed)
//! bench-client big-down URL CS OUT       download CS to OUT (streamed, verified)
//! bench-client local-small N             N small GETs from a minimal in-process server
//! bench-client local-large MIB REPEATS   verified GETs of a MIB buffer from that server
//! bench-client db URL SEED               5000 keys stored (untimed), then 10 000 lookups
//!                                        (half hits) and 2000 writes, 30 in flight
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::future::join_all;
use seamless_buffer_remote::{ActiveBuffers, BufferClient};
use seamless_remote_core::{Checksum, ClientOptions, ClientRegistry};

fn client(url: &str) -> Result<BufferClient> {
    let mut options = ClientOptions {
        registry: Some(ClientRegistry::new(Duration::from_secs(3600))),
        ..ClientOptions::default()
    };
    // For experiments: BENCH_CONNECTIONS overrides the connection cap.
    if let Some(n) = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.max_connections = n;
    }
    Ok(BufferClient::with_options(url, false, options)?)
}

/// Deterministic pseudo-random buffers (xorshift), different per seed.
fn buffer(size: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut v = Vec::with_capacity(size + 8);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size);
    Bytes::from(v)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T> {
    args.get(i)
        .with_context(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid {what}"))
}

fn main() -> Result<()> {
    // BENCH_RUNTIME=current-thread: one event-loop thread, like the Python client's asyncio.
    let runtime = match std::env::var("BENCH_RUNTIME").as_deref() {
        Ok("current-thread") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let out = match cmd {
        "small" => {
            let url: String = arg(&args, 1, "URL")?;
            let n: usize = arg(&args, 2, "N")?;
            let size: usize = arg(&args, 3, "SIZE")?;
            let seed: u64 = arg(&args, 4, "SEED")?;
            small(&url, n, size, seed).await?
        }
        "has" => has(&arg::<String>(&args, 1, "URL")?, arg(&args, 2, "N")?).await?,
        "big-up" => {
            let url: String = arg(&args, 1, "URL")?;
            let file: String = arg(&args, 2, "FILE")?;
            let c = client(&url)?;
            let t = Instant::now();
            let cs = hash_file(Path::new(&file))?;
            let hashed = t.elapsed();
            c.write_file(&cs, Path::new(&file)).await?;
            serde_json::json!({"wall_s": t.elapsed().as_secs_f64(), "hash_s": hashed.as_secs_f64(), "checksum": cs.to_hex()})
        }
        "big-down" => {
            let url: String = arg(&args, 1, "URL")?;
            let cs: Checksum = arg::<String>(&args, 2, "CS")?.parse()?;
            let out: String = arg(&args, 3, "OUT")?;
            let c = client(&url)?;
            let t = Instant::now();
            let n = c
                .get_to_file(&cs, Path::new(&out))
                .await?
                .context("not found")?;
            serde_json::json!({"wall_s": t.elapsed().as_secs_f64(), "bytes": n})
        }
        "local-small" => local_small(arg(&args, 1, "N")?).await?,
        "db" => db(&arg::<String>(&args, 1, "URL")?, arg(&args, 2, "SEED")?).await?,
        "local-large" => local_large(arg(&args, 1, "MIB")?, arg(&args, 2, "REPEATS")?).await?,
        _ => bail!("usage: see the doc comment of xtask/src/bin/bench-client.rs"),
    };
    println!("{out}");
    Ok(())
}

fn hash_file(path: &Path) -> Result<Checksum> {
    Ok(Checksum::of_reader(std::fs::File::open(path)?)?)
}

async fn small(url: &str, n: usize, size: usize, seed: u64) -> Result<serde_json::Value> {
    let c = client(url)?;
    let active = ActiveBuffers::new(vec![], vec![c.clone()], vec![c]);
    let buffers: Vec<(Checksum, Bytes)> = (0..n)
        .map(|i| {
            let b = buffer(size, seed * 1_000_000 + i as u64);
            (Checksum::of(&b), b)
        })
        .collect();
    let t = Instant::now();
    for r in join_all(
        buffers
            .iter()
            .map(|(cs, b)| active.write_buffer(cs, b.clone())),
    )
    .await
    {
        r?;
    }
    let write = t.elapsed();
    let t2 = Instant::now();
    for (r, (_, b)) in join_all(buffers.iter().map(|(cs, _)| active.get_buffer(cs)))
        .await
        .into_iter()
        .zip(&buffers)
    {
        if r?.as_ref() != Some(b) {
            bail!("wrong buffer read back");
        }
    }
    let read = t2.elapsed();
    Ok(
        serde_json::json!({"wall_s": t.elapsed().as_secs_f64(), "write_s": write.as_secs_f64(), "read_s": read.as_secs_f64()}),
    )
}

async fn has(url: &str, n: usize) -> Result<serde_json::Value> {
    let c = client(url)?;
    let active = ActiveBuffers::new(vec![], vec![c], vec![]);
    let checksums: Vec<Checksum> = (0..n)
        .map(|i| Checksum::of(format!("bench has {i}").as_bytes()))
        .collect();
    let t = Instant::now();
    let answer = active.has_buffers(&checksums).await;
    if answer.len() != n {
        bail!("wrong answer length");
    }
    Ok(
        serde_json::json!({"wall_s": t.elapsed().as_secs_f64(), "present": answer.iter().filter(|p| **p).count()}),
    )
}

/// A minimal HTTP/1.1 server that answers every GET with one fixed buffer: the client's own
/// ceiling, without a hashserver in the way.
async fn minimal_server(body: Bytes) -> Result<SocketAddr> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let body = if req.uri().path() == "/healthcheck" {
                        Bytes::from_static(b"OK")
                    } else {
                        body.clone()
                    };
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn local_small(n: usize) -> Result<serde_json::Value> {
    let body = Bytes::from_static(b"hello world");
    let cs = Checksum::of(&body);
    let addr = minimal_server(body).await?;
    let c = client(&format!("http://{addr}"))?;
    c.get(&cs).await?;
    let t = Instant::now();
    let mut done = 0;
    // 16 concurrent request loops.
    let per = n / 16;
    let results = join_all((0..16).map(|_| {
        let c = c.clone();
        async move {
            for _ in 0..per {
                c.get(&cs).await?;
            }
            Ok::<usize, anyhow::Error>(per)
        }
    }))
    .await;
    for r in results {
        done += r?;
    }
    let wall = t.elapsed().as_secs_f64();
    Ok(serde_json::json!({"wall_s": wall, "requests": done, "req_per_s": done as f64 / wall}))
}

async fn local_large(mib: usize, repeats: usize) -> Result<serde_json::Value> {
    let body = buffer(mib << 20, 42);
    let cs = Checksum::of(&body);
    let addr = minimal_server(body).await?;
    let c = client(&format!("http://{addr}"))?;
    c.get(&cs).await?.context("warm-up")?;
    let mut sink = tokio::io::sink();
    let t = Instant::now();
    for _ in 0..repeats {
        c.get_to_writer(&cs, &mut sink)
            .await?
            .context("not found")?;
    }
    let wall = t.elapsed().as_secs_f64();
    let bytes = (mib << 20) * repeats;
    Ok(serde_json::json!({"wall_s": wall, "bytes": bytes, "gb_per_s": bytes as f64 / wall / 1e9}))
}

async fn db(url: &str, seed: u64) -> Result<serde_json::Value> {
    use seamless_database_remote::{ActiveDatabases, DatabaseClient};
    let options = ClientOptions {
        registry: Some(ClientRegistry::new(Duration::from_secs(3600))),
        ..ClientOptions::default()
    };
    let c = DatabaseClient::with_options(url, false, options, 30)?;
    let active = ActiveDatabases::new(vec![c.clone()], vec![c]);
    let key = |kind: &str, i: u64| Checksum::of(format!("{kind} {seed} {i}").as_bytes());
    // Untimed: the 5000 keys that the lookups will hit.
    for r in join_all(
        (0..5000).map(|i| active.set_transformation_result_owned(key("hit", i), key("res", i))),
    )
    .await
    {
        r?;
    }
    let t = Instant::now();
    let lookups = join_all((0..10_000u64).map(|i| {
        let k = if i % 2 == 0 {
            key("hit", i / 2)
        } else {
            key("miss", i)
        };
        active.get_transformation_result_owned(k)
    }))
    .await;
    let mut hits = 0;
    for r in lookups {
        hits += usize::from(r?.is_some());
    }
    let get_s = t.elapsed().as_secs_f64();
    let t2 = Instant::now();
    for r in join_all(
        (0..2000).map(|i| active.set_transformation_result_owned(key("new", i), key("res", i))),
    )
    .await
    {
        r?;
    }
    let set_s = t2.elapsed().as_secs_f64();
    if hits != 5000 {
        bail!("expected 5000 hits, got {hits}");
    }
    Ok(serde_json::json!({"wall_s": t.elapsed().as_secs_f64(), "get_s": get_s, "set_s": set_s}))
}

/// Owned-argument helpers, so that many lookups can be joined at once.
trait OwnedDb {
    async fn get_transformation_result_owned(
        &self,
        tf: Checksum,
    ) -> Result<Option<Checksum>, seamless_database_remote::DatabaseError>;
    async fn set_transformation_result_owned(
        &self,
        tf: Checksum,
        r: Checksum,
    ) -> Result<bool, seamless_database_remote::DatabaseError>;
}

impl OwnedDb for seamless_database_remote::ActiveDatabases {
    async fn get_transformation_result_owned(
        &self,
        tf: Checksum,
    ) -> Result<Option<Checksum>, seamless_database_remote::DatabaseError> {
        self.get_transformation_result(&tf).await
    }
    async fn set_transformation_result_owned(
        &self,
        tf: Checksum,
        r: Checksum,
    ) -> Result<bool, seamless_database_remote::DatabaseError> {
        self.set_transformation_result(&tf, &r).await
    }
}
