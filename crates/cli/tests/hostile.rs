//! The built binaries against hostile peers, files and configuration (SECURITY.md): each case
//! ends with a clear error and the right exit code, in bounded memory (peak RSS sampled from
//! `/proc`, see `run_measured`), leaving nothing behind. Hostile servers are the harness's
//! [`HostileServer`]; real services are used wherever the case is about them.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use seamless_remote_core::Checksum;
use seamless_tests::hostile::{zstd_bomb, Answer, HostileServer};
use seamless_tests::process::{run_measured, Measured};
use seamless_tests::require;
use seamless_tests::services::{Hashserver, HashserverOptions};
use serde_json::json;

const RESOLVE: &str = env!("CARGO_BIN_EXE_seamless-resolve");
const FINGERTIP: &str = env!("CARGO_BIN_EXE_seamless-fingertip");

/// The memory a run may peak at against any peer (the program itself needs ~15 MiB).
const RSS_BOUND_KIB: i64 = 256 * 1024;

fn clients(urls: &[&str]) -> String {
    let buffer: Vec<_> = urls.iter().map(|u| json!({"remote_url": u})).collect();
    json!({"buffer": buffer, "database": []}).to_string()
}

fn cmd(bin: &str, args: &[&str], home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .current_dir(home)
        .env_remove("SEAMLESS_REMOTE_CLIENTS")
        .env_remove("SEAMLESS_CACHE")
        .env_remove("SEAMLESS_REMOTE_TOTAL_TIMEOUT")
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

fn resolve_with(url: &str, args: &[&str], home: &Path) -> Command {
    let mut c = cmd(RESOLVE, args, home);
    c.env("SEAMLESS_REMOTE_CLIENTS", clients(&[url]));
    c
}

fn run(c: Command) -> Measured {
    let what = format!("{:?}", c.get_args().collect::<Vec<_>>());
    let m = run_measured(c, Duration::from_secs(120));
    // For the record (SECURITY.md's table): `cargo test --test hostile -- --nocapture`.
    eprintln!(
        "measured {what}: exit {:?}, peak RSS {} KiB",
        m.code, m.peak_rss_kib
    );
    assert!(!m.killed, "the run had to be killed: {}", m.stderr);
    assert!(
        m.peak_rss_kib < RSS_BOUND_KIB,
        "peak RSS {} KiB; stderr: {}",
        m.peak_rss_kib,
        m.stderr
    );
    assert!(
        !m.stderr.contains('\x1b'),
        "raw ESC on stderr: {:?}",
        m.stderr
    );
    assert!(!m.stderr.contains("panicked"), "{}", m.stderr);
    m
}

fn expect(m: &Measured, code: i32, needle: &str) {
    assert_eq!(m.code, Some(code), "stderr: {}", m.stderr);
    assert!(
        m.stderr.contains(needle),
        "expected {needle:?} in: {}",
        m.stderr
    );
    assert!(
        m.stderr.trim().lines().count() <= 3,
        "more than a short error: {}",
        m.stderr
    );
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

const CS: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"; // "hello world"

#[tokio::test(flavor = "multi_thread")]
async fn endless_lying_and_bomb_bodies_are_cut_in_bounded_memory() {
    let home = tempfile::tempdir().unwrap();
    // An endless chunked body, announced as 11 bytes by /buffer-length: cut at byte 12.
    let endless = HostileServer::start(vec![
        ("GET /buffer-length", Answer::ok("[11]")),
        (
            CS,
            Answer::Endless {
                announced: None,
                pause: Duration::ZERO,
            },
        ),
    ])
    .await;
    let m = run(resolve_with(&endless.url(), &[CS], home.path()));
    expect(&m, 7, "more than the 11 bytes announced");

    // A body longer than its Content-Length: hyper reads the announced bytes only; they do not
    // hash to the checksum.
    let lying = HostileServer::start(vec![(
        CS,
        Answer::Raw(
            [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello worle"[..],
                &vec![b'x'; 1 << 20],
            ]
            .concat(),
        ),
    )])
    .await;
    let m = run(resolve_with(&lying.url(), &[CS], home.path()));
    expect(&m, 7, "integrity error");

    // A zstd bomb (8.6 GB from ~0.5 MB) whose /buffer-length says 11: cut at once.
    let bomb = Answer::Full(200, vec!["Content-Encoding: zstd".into()], zstd_bomb(128));
    let announced = HostileServer::start(vec![
        ("GET /buffer-length", Answer::ok("[11]")),
        (CS, bomb.clone()),
    ])
    .await;
    let m = run(resolve_with(&announced.url(), &[CS], home.path()));
    expect(&m, 7, "more than the 11 bytes announced");

    // The same bomb from a peer that announces no length: refused, nothing decoded.
    let unannounced = HostileServer::start(vec![(CS, bomb)]).await;
    let m = run(resolve_with(&unannounced.url(), &[CS], home.path()));
    expect(&m, 6, "unknown length");

    // A huge announced body sent slowly: SEAMLESS_REMOTE_TOTAL_TIMEOUT bounds the whole request,
    // body included; to stdout and to a file, memory stays bounded and no file is left.
    let slow = HostileServer::start(vec![(
        CS,
        Answer::Endless {
            announced: Some(1 << 40),
            pause: Duration::from_millis(2),
        },
    )])
    .await;
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    for args in [vec![CS], vec![CS, "--output", out.to_str().unwrap()]] {
        let mut c = resolve_with(&slow.url(), &args, home.path());
        c.env("SEAMLESS_REMOTE_TOTAL_TIMEOUT", "3");
        let m = run(c);
        expect(&m, 6, "total timeout");
    }
    assert_eq!(leftovers(out_dir.path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_peers_and_server_text_are_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    // A peer that does not speak HTTP: a store failure (6), not a configuration error.
    let garbage = HostileServer::start(vec![(
        "GET",
        Answer::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\x1b[2J".to_vec()),
    )])
    .await;
    let m = run(resolve_with(&garbage.url(), &[CS], home.path()));
    expect(&m, 6, "does not speak valid HTTP");

    // An error body with terminal escapes (title change, colours): shown escaped.
    let escapes = HostileServer::start(vec![(
        CS,
        Answer::Full(500, vec![], b"\x1b]0;pwned\x07\x1b[31mboom\x9b".to_vec()),
    )])
    .await;
    let m = run(resolve_with(&escapes.url(), &[CS], home.path()));
    expect(&m, 6, "\\x1b]0;pwned\\x07");

    // Oversized JSON answers: a 100 MB `/has` or `/buffer-length` answer to one checksum is cut
    // at its cap (memory stays bounded).
    let flood = format!("[{}]", "false,".repeat(16 << 20));
    let json_flood = HostileServer::start(vec![
        ("GET /buffer-length", Answer::ok(flood.clone())),
        ("GET /has", Answer::ok(flood)),
        (
            CS,
            Answer::Full(200, vec!["Content-Encoding: zstd".into()], vec![1, 2, 3]),
        ),
    ])
    .await;
    let m = run(resolve_with(&json_flood.url(), &[CS], home.path()));
    expect(&m, 6, "larger than the 1048 bytes allowed");
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_during_a_transfer_leave_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let slow = HostileServer::start(vec![(
        CS,
        Answer::Endless {
            announced: Some(1 << 40),
            pause: Duration::from_millis(2),
        },
    )])
    .await;
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("big.bin");
        let mut c = resolve_with(
            &slow.url(),
            &[CS, "--output", out.to_str().unwrap()],
            home.path(),
        );
        c.stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        // Wait until the temporary file has grown: the transfer is under way.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let partial = std::fs::read_dir(out_dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 1 << 20));
            if partial || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seamless_tests::launchenv::kill(i64::from(child.id()), signal);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert_eq!(
            leftovers(out_dir.path()),
            Vec::<String>::new(),
            "signal {signal}"
        );
    }
}

fn start() -> Option<Hashserver> {
    seamless_tests::init_tracing();
    require!(Hashserver::start(HashserverOptions::default()))
}

async fn put(url: &str, data: &[u8]) -> Checksum {
    let cs = Checksum::of(data);
    seamless_buffer_remote::BufferClient::new(url, false)
        .unwrap()
        .write(&cs, bytes::Bytes::copy_from_slice(data))
        .await
        .unwrap();
    cs
}

#[tokio::test(flavor = "multi_thread")]
async fn output_writes_what_was_asked_where_it_was_asked() {
    let Some(hs) = start() else { return };
    let home = tempfile::tempdir().unwrap();
    let data = b"output bytes\n\n".to_vec();
    let cs = put(&hs.url(), &data).await.to_hex();
    let dir = tempfile::tempdir().unwrap();
    let resolve = |args: &[&str]| run(resolve_with(&hs.url(), args, home.path()));

    // A new file: 0666 less the umask (022 here), not 0600.
    let new = dir.path().join("new");
    let m = resolve(&[&cs, "-o", new.to_str().unwrap()]);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert_eq!(std::fs::read(&new).unwrap(), data);
    let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666 & !current_umask(), "new file mode");

    // An existing file keeps its mode; a symlink is written through to its target.
    let existing = dir.path().join("existing");
    std::fs::write(&existing, b"old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&existing, &link).unwrap();
    let m = resolve(&[&cs, "-o", link.to_str().unwrap()]);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&existing).unwrap(), data);
    let mode = std::fs::metadata(&existing).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    // Devices are written into, never replaced; a full device is exit 8.
    let m = resolve(&[&cs, "-o", "/dev/null"]);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    let m = resolve(&[&cs, "-o", "/dev/full"]);
    expect(&m, 8, "Cannot write output file '/dev/full'");

    // A FIFO gets the exact bytes.
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let m = resolve(&[&cs, "-o", fifo.to_str().unwrap()]);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert_eq!(reader.join().unwrap(), data);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // A directory is refused before anything is asked of the store.
    let hostile = HostileServer::start(vec![]).await;
    let m = run(resolve_with(
        &hostile.url(),
        &[CS, "-o", dir.path().to_str().unwrap()],
        home.path(),
    ));
    expect(&m, 8, "it is a directory");
    assert!(hostile.requests().is_empty(), "{:?}", hostile.requests());

    // An existing file the user may not write is refused (8), not replaced: run as nobody.
    if let Some(setpriv) = which("setpriv") {
        let locked = dir.path().join("locked");
        std::fs::write(&locked, b"keep").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut c = Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", RESOLVE])
            .args([&cs, "-o", locked.to_str().unwrap()])
            .current_dir("/")
            .env("HOME", "/nonexistent")
            .env("SEAMLESS_REMOTE_CLIENTS", clients(&[&hs.url()]))
            .stdout(Stdio::null());
        let m = run(c);
        expect(&m, 8, "not writable");
        assert_eq!(std::fs::read(&locked).unwrap(), b"keep");
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_checksum_files_are_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hostile = HostileServer::start(vec![(CS, Answer::ok("hello world"))]).await;
    let resolve = |arg: &str| run(resolve_with(&hostile.url(), &[arg], home.path()));

    expect(&resolve("/dev/zero"), 3, "character device");
    expect(&resolve(dir.path().to_str().unwrap()), 3, "is a directory");
    let sparse = dir.path().join("sparse");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(6 << 30)
        .unwrap();
    expect(
        &resolve(sparse.to_str().unwrap()),
        3,
        "larger than 65536 bytes",
    );

    // A FIFO that never ends: read up to the cap, then a clear error.
    let fifo = dir.path().join("endless");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let block = [b'#'; 4096];
            // Until the reader closes its end (EPIPE), at most 1 GiB.
            for _ in 0..(1 << 18) {
                if f.write_all(&block).is_err() {
                    break;
                }
            }
        })
    };
    expect(
        &resolve(fifo.to_str().unwrap()),
        3,
        "larger than 65536 bytes",
    );
    writer.join().unwrap();

    // A pipe holding a checksum works: process substitution and /dev/stdin.
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!("exec {RESOLVE} <(echo {CS})"))
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("SEAMLESS_REMOTE_CLIENTS", clients(&[&hostile.url()]))
        .stdout(Stdio::null());
    let m = run(c);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let mut c = resolve_with(&hostile.url(), &["/dev/stdin"], home.path());
    c.stdin(Stdio::piped());
    let mut child = c.stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "# a comment\n{CS}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_buffer_folder_entries_are_skipped() {
    let home = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let hostile = HostileServer::start(vec![(CS, Answer::ok("hello world"))]).await;
    let prefix = folder.path().join(&CS[..2]);
    std::fs::create_dir_all(&prefix).unwrap();
    // A link to /dev/zero, a FIFO, a character device made with mknod, a zstd bomb without its
    // .BUFFERLENGTH: none is read; the buffer then comes from the server.
    std::os::unix::fs::symlink("/dev/zero", folder.path().join(CS)).unwrap();
    assert!(Command::new("mkfifo")
        .arg(prefix.join(CS))
        .status()
        .unwrap()
        .success());
    let mknod = Command::new("mknod")
        .arg(prefix.join(format!("{CS}.gz")))
        .args(["c", "1", "5"])
        .status()
        .unwrap();
    assert!(mknod.success());
    std::fs::write(folder.path().join(format!("{CS}.zst")), zstd_bomb(16)).unwrap();
    let env_clients = json!({
        "buffer": [
            {"remote_directory": folder.path()},
            {"remote_url": hostile.url()},
        ],
        "database": [],
    });
    let mut c = cmd(RESOLVE, &[CS], home.path());
    c.env("SEAMLESS_REMOTE_CLIENTS", env_clients.to_string())
        .env("RUST_LOG", "warn");
    let m = run(c);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert!(m.stderr.contains("skipped"), "{}", m.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_in_urls_are_sent_as_basic_auth_and_never_shown() {
    let home = tempfile::tempdir().unwrap();
    let hostile =
        HostileServer::start(vec![(CS, Answer::Full(503, vec![], b"try later".to_vec()))]).await;
    let with_secret = hostile.url().replace("http://", "http://alice:s3cret@");
    for flags in [vec![], vec!["--verbose"], vec!["--debug"]] {
        let mut args = vec![CS];
        args.extend(flags.iter().copied());
        let m = run(resolve_with(&with_secret, &args, home.path()));
        assert_eq!(m.code, Some(6), "{}", m.stderr);
        assert!(!m.stderr.contains("s3cret"), "{flags:?}: {}", m.stderr);
        assert!(m.stderr.contains("alice:***@"), "{flags:?}: {}", m.stderr);
    }
    let heads = hostile.requests();
    assert!(!heads.is_empty());
    for head in heads {
        // base64("alice:s3cret")
        assert!(
            head.contains("authorization: Basic YWxpY2U6czNjcmV0"),
            "{head}"
        );
    }
}

#[test]
fn bad_environment_values_are_clear_errors_never_panics() {
    let home = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}", seamless_tests::process::free_port());
    for (var, value) in [
        ("SEAMLESS_REMOTE_KEEPALIVE_INTERVAL", "1e20"),
        ("SEAMLESS_REMOTE_KEEPALIVE_INTERVAL", "1e15"),
        ("SEAMLESS_REMOTE_READ_TIMEOUT", "1e18"),
        ("SEAMLESS_REMOTE_TOTAL_TIMEOUT", "1e18"),
        ("SEAMLESS_REMOTE_CONNECT_TIMEOUT", "-5"),
        ("SEAMLESS_REMOTE_HEALTHCHECK_TIMEOUT", "NaN"),
    ] {
        let mut c = resolve_with(&closed, &[CS], home.path());
        c.env(var, value);
        let m = run(c);
        assert_eq!(m.code, Some(6), "{var}={value}: {}", m.stderr);
    }
    // A #fragment, a query, and an empty remote_directory are configuration errors (5).
    for entry in [
        json!({"remote_url": format!("{closed}/#x")}),
        json!({"remote_url": format!("{closed}/?a=1")}),
        json!({"remote_directory": ""}),
    ] {
        let mut c = cmd(RESOLVE, &[CS], home.path());
        c.env(
            "SEAMLESS_REMOTE_CLIENTS",
            json!({"buffer": [entry], "database": []}).to_string(),
        );
        let m = run(c);
        expect(&m, 5, "SEAMLESS_REMOTE_CLIENTS");
    }
    // Fingertip with a hostile database list is bounded too (no panic, clear error).
    let mut c = cmd(FINGERTIP, &[CS], home.path());
    c.env(
        "SEAMLESS_REMOTE_CLIENTS",
        json!({"buffer": [{"remote_url": closed}], "database": [{"remote_url": "ftp://x"}]})
            .to_string(),
    );
    let m = run(c);
    expect(&m, 5, "http://");
}
