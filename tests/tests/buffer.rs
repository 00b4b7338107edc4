//! buffer-remote against a real hashserver: the client, folders, activation, interop with the
//! Python reference, faults through the proxy, and bad input.

use std::path::Path;

use bytes::Bytes;
use seamless_buffer_remote::remote::{ActivateOptions, BufferRemote, ExternSpec};
use seamless_buffer_remote::{
    ActiveBuffers, BufferClient, BufferError, BufferFolder, BufferLength, WriteOutcome,
};
use seamless_remote_core::{Checksum, ClientOptions};
use seamless_tests::proxy::{Fault, FaultProxy};
use seamless_tests::require;
use seamless_tests::services::{Hashserver, HashserverOptions};

fn opts() -> ClientOptions {
    seamless_tests::client_options()
}

fn start(options: HashserverOptions) -> Option<Hashserver> {
    seamless_tests::init_tracing();
    require!(Hashserver::start(options))
}

fn client(url: &str) -> BufferClient {
    BufferClient::with_options(url, false, opts()).unwrap()
}

fn data(n: usize, seed: u32) -> Bytes {
    Bytes::from(
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
}

#[tokio::test]
async fn write_get_has_lengths_promise() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let c = client(&hs.url());
    let buf = data(5000, 1);
    let cs = Checksum::of(&buf);
    assert_eq!(c.get(&cs).await.unwrap(), None);
    assert_eq!(
        c.write(&cs, buf.clone()).await.unwrap(),
        WriteOutcome::Stored
    );
    assert_eq!(
        c.write(&cs, buf.clone()).await.unwrap(),
        WriteOutcome::AlreadyPresent
    );
    assert_eq!(c.get(&cs).await.unwrap().unwrap(), buf);

    let empty = Checksum::of(b"");
    c.write(&empty, Bytes::new()).await.unwrap();
    let absent = Checksum::of(b"absent");
    let promised = Checksum::of(b"promised only");
    c.promise(&promised).await.unwrap();
    assert_eq!(
        c.has(&[cs, absent, promised, empty]).await.unwrap(),
        vec![true, false, true, true]
    );
    assert_eq!(
        c.buffer_lengths(&[cs, absent, promised, empty])
            .await
            .unwrap(),
        vec![
            BufferLength::Known(5000),
            BufferLength::Absent,
            BufferLength::Unknown,
            BufferLength::Known(0)
        ]
    );
}

#[tokio::test]
async fn readonly_clients_and_servers_refuse_writes_clearly() {
    let Some(hs) = start(HashserverOptions {
        writable: false,
        ..HashserverOptions::default()
    }) else {
        return;
    };
    let cs = Checksum::of(b"x");
    let ro = BufferClient::with_options(&hs.url(), true, opts()).unwrap();
    let err = ro.write(&cs, Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, BufferError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(ro.promise(&cs).await.is_err());

    // A read-write client of a read-only server: the server's 405/404 become the same error.
    let rw = client(&hs.url());
    let err = rw.write(&cs, Bytes::from_static(b"x")).await.unwrap_err();
    assert!(err.to_string().contains("without --writable"), "{err}");
    let err = rw.promise(&cs).await.unwrap_err();
    assert!(err.to_string().contains("without --writable"), "{err}");
}

#[tokio::test]
async fn large_batches_are_split_and_sent_concurrently() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let proxy = FaultProxy::start(hs.addr()).await;
    let c = client(&proxy.url());
    let stored: Vec<Checksum> = {
        let mut v = Vec::new();
        for i in 0..3u32 {
            let b = data(100, i);
            let cs = Checksum::of(&b);
            c.write(&cs, b).await.unwrap();
            v.push(cs);
        }
        v
    };
    let mut asked: Vec<Checksum> = (0..2500u32)
        .map(|i| Checksum::of(format!("absent {i}").as_bytes()))
        .collect();
    asked[10] = stored[0];
    asked[1500] = stored[1];
    asked[2499] = stored[2];
    let answer = c.has(&asked).await.unwrap();
    assert_eq!(answer.len(), 2500);
    let present: Vec<usize> = answer
        .iter()
        .enumerate()
        .filter(|(_, p)| **p)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(present, vec![10, 1500, 2499]);
    assert_eq!(proxy.count("GET /has "), 3, "{:?}", proxy.requests());
    for head in proxy.heads().iter().filter(|h| h.starts_with("GET /has")) {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
    }
    let lengths = c.buffer_lengths(&asked).await.unwrap();
    assert_eq!(lengths[1500], BufferLength::Known(100));
    assert_eq!(lengths[11], BufferLength::Absent);
    assert_eq!(proxy.count("GET /buffer-length"), 3);
}

#[tokio::test]
async fn compressed_buffers_are_decoded_then_verified() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let c = client(&hs.url());
    let buf = Bytes::from("zstd me please ".repeat(5000));
    let cs = Checksum::of(&buf);
    c.write_compressed(&cs, &buf, 3).await.unwrap();
    let hex = cs.to_hex();
    let stored = hs.buffer_dir().join(&hex[..2]).join(format!("{hex}.zst"));
    assert!(stored.is_file(), "stored compressed");
    assert!(!hs.buffer_dir().join(&hex[..2]).join(&hex).exists());
    assert_eq!(c.get(&cs).await.unwrap().unwrap(), buf);
    assert_eq!(
        c.buffer_lengths(&[cs]).await.unwrap(),
        vec![BufferLength::Known(buf.len() as u64)]
    );
    // The local folder reads the compressed form too.
    assert_eq!(
        BufferFolder::new(hs.buffer_dir())
            .get(&cs)
            .await
            .unwrap()
            .unwrap(),
        buf
    );
}

fn python_read(url: &str, cs: &Checksum) -> Result<Vec<u8>, String> {
    let out = seamless_tests::venv::python_script("buffer_interop.py")?
        .args(["read", url, &cs.to_hex()])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "python read failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

#[tokio::test]
async fn interop_with_the_python_reference() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let c = client(&hs.url());
    // Rust writes, Python reads (plain and zstd-stored).
    let plain = data(70_000, 7);
    let cs = Checksum::of(&plain);
    c.write(&cs, plain.clone()).await.unwrap();
    let Some(got) = require!(python_read(&hs.url(), &cs)) else {
        return;
    };
    assert_eq!(got, plain);
    let text = Bytes::from("compressible ".repeat(10_000));
    let zcs = Checksum::of(&text);
    c.write_compressed(&zcs, &text, 3).await.unwrap();
    assert_eq!(python_read(&hs.url(), &zcs).unwrap(), text);

    // Python writes, Rust reads.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("from-python.bin");
    let pdata = data(123_456, 9);
    std::fs::write(&file, &pdata).unwrap();
    let out = seamless_tests::venv::python_script("buffer_interop.py")
        .unwrap()
        .args(["write", &hs.url(), file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pcs: Checksum = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(pcs, Checksum::of(&pdata));
    assert_eq!(c.get(&pcs).await.unwrap().unwrap(), pdata);
}

#[tokio::test]
async fn failover_to_the_next_read_server_when_the_first_is_down() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let good = client(&hs.url());
    let buf = data(1000, 3);
    let cs = Checksum::of(&buf);
    good.write(&cs, buf.clone()).await.unwrap();
    let dead_url = format!("http://127.0.0.1:{}", seamless_tests::process::free_port());
    let mut o = opts();
    o.retry.max_attempts = 2;
    let dead = BufferClient::with_options(&dead_url, false, o).unwrap();
    let active = ActiveBuffers::new(vec![], vec![dead.clone(), good.clone()], vec![]);
    assert_eq!(active.get_buffer(&cs).await.unwrap().unwrap(), buf);
    assert_eq!(active.has_buffers(&[cs]).await, vec![true]);
    assert_eq!(
        active.get_buffer_lengths(&[cs]).await,
        vec![BufferLength::Known(1000)]
    );

    // Found nowhere, and a source failed: that failure is the answer (the buffer may be there).
    let absent = Checksum::of(b"nowhere");
    let err = active.get_buffer(&absent).await.unwrap_err();
    assert!(err.to_string().contains(&dead_url), "{err}");
    // Found nowhere, every source answered: None.
    let only_good = ActiveBuffers::new(vec![], vec![good], vec![]);
    assert_eq!(only_good.get_buffer(&absent).await.unwrap(), None);
}

#[tokio::test]
async fn a_corrupted_byte_is_detected_and_never_returned() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let proxy = FaultProxy::start(hs.addr()).await;
    let c = client(&proxy.url());
    let buf = data(50_000, 4);
    let cs = Checksum::of(&buf);
    c.write(&cs, buf.clone()).await.unwrap();

    // Once: the re-fetch gets the right bytes.
    proxy.push(&format!("GET /{cs}"), Fault::Corrupt(1234));
    assert_eq!(c.get(&cs).await.unwrap().unwrap(), buf);
    assert_eq!(proxy.count(&format!("GET /{cs}")), 2);

    // Twice: an integrity error naming both checksums, and nothing returned.
    proxy.push(&format!("GET /{cs}"), Fault::Corrupt(10));
    proxy.push(&format!("GET /{cs}"), Fault::Corrupt(10));
    let err = c.get(&cs).await.unwrap_err();
    assert!(err.is_integrity(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&cs.to_hex()) && msg.contains("discarded"),
        "{msg}"
    );

    // To a file: no file (and no temporary file) is left behind.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    proxy.push(&format!("GET /{cs}"), Fault::Corrupt(10));
    proxy.push(&format!("GET /{cs}"), Fault::Corrupt(10));
    assert!(c.get_to_file(&cs, &out).await.unwrap_err().is_integrity());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // Through the activation API, a corrupt server is skipped for a good one.
    proxy.push(&format!("GET /{cs}"), Fault::Corrupt(10));
    proxy.push(&format!("GET /{cs}"), Fault::Corrupt(10));
    let active = ActiveBuffers::new(vec![], vec![c.clone(), client(&hs.url())], vec![]);
    assert_eq!(active.get_buffer(&cs).await.unwrap().unwrap(), buf);
}

#[tokio::test]
async fn a_download_cut_mid_body_is_retried() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let proxy = FaultProxy::start(hs.addr()).await;
    let c = client(&proxy.url());
    let buf = data(3_000_000, 5);
    let cs = Checksum::of(&buf);
    c.write(&cs, buf.clone()).await.unwrap();
    proxy.push(&format!("GET /{cs}"), Fault::ResetAfter(1_000_000));
    assert_eq!(c.get(&cs).await.unwrap().unwrap(), buf);
    proxy.push(&format!("GET /{cs}"), Fault::ResetAfter(500_000));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.bin");
    assert_eq!(c.get_to_file(&cs, &out).await.unwrap(), Some(3_000_000));
    assert_eq!(Checksum::of(&std::fs::read(&out).unwrap()), cs);
    assert_eq!(proxy.count(&format!("GET /{cs}")), 4);

    // Into a caller's writer that already holds bytes: no silent retry, a clear error.
    proxy.push(&format!("GET /{cs}"), Fault::ResetAfter(500_000));
    let mut sink: Vec<u8> = Vec::new();
    let err = c.get_to_writer(&cs, &mut sink).await.unwrap_err();
    assert!(matches!(err, BufferError::Partial { .. }), "{err}");
    assert!(err.to_string().contains("incomplete"), "{err}");
}

#[tokio::test]
async fn malformed_has_answers_are_clear_errors() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let proxy = FaultProxy::start(hs.addr()).await;
    let c = client(&proxy.url());
    let two = [Checksum::of(b"a"), Checksum::of(b"b")];
    proxy.push("GET /has", Fault::Respond(200, "this is not json".into()));
    let err = c.has(&two).await.unwrap_err();
    assert!(matches!(err, BufferError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("/has"), "{err}");
    proxy.push("GET /has", Fault::Respond(200, "[true]".into()));
    let err = c.has(&two).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("asked about 2 checksums, got 1 answers"),
        "{err}"
    );
    proxy.push(
        "GET /buffer-length",
        Fault::Respond(200, "[1, \"x\"]".into()),
    );
    let err = c.buffer_lengths(&two).await.unwrap_err();
    assert!(err.to_string().contains("invalid length"), "{err}");
    // A malformed answer is definite: not retried.
    assert_eq!(proxy.count("GET /buffer-length"), 1);
}

#[test]
fn path_like_checksums_never_reach_a_folder() {
    for evil in [
        "../../etc/passwd",
        "/etc/passwd",
        "ab/../../x",
        &"a".repeat(63),
    ] {
        assert!(evil.parse::<Checksum>().is_err(), "{evil}");
    }
}

fn write_generated_file(path: &Path, size: u64) -> Checksum {
    use std::io::Write;
    let mut hasher = seamless_remote_core::ChecksumHasher::new();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut seed = 0x9E3779B97F4A7C15u64;
    while written < size {
        for chunk in block.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        let n = ((size - written) as usize).min(block.len());
        f.write_all(&block[..n]).unwrap();
        hasher.update(&block[..n]);
        written += n as u64;
    }
    f.flush().unwrap();
    hasher.finalize()
}

#[tokio::test]
async fn one_gib_streamed_round_trip() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let c = client(&hs.url());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let cs = tokio::task::spawn_blocking({
        let src = src.clone();
        move || write_generated_file(&src, 1 << 30)
    })
    .await
    .unwrap();
    assert_eq!(c.write_file(&cs, &src).await.unwrap(), WriteOutcome::Stored);
    std::fs::remove_file(&src).unwrap();
    let out = dir.path().join("big.out");
    assert_eq!(c.get_to_file(&cs, &out).await.unwrap(), Some(1 << 30));
    let check = tokio::task::spawn_blocking(move || {
        Checksum::of_reader(std::fs::File::open(&out).unwrap()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(check, cs);
}

#[tokio::test]
async fn activation_rules_and_extern_clients() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let mut remote = BufferRemote::new();
    remote
        .define_extern_client(
            "hs",
            ExternSpec::Hashserver {
                url: hs.url(),
                readonly: false,
            },
        )
        .unwrap();
    remote
        .define_extern_client(
            "folder",
            ExternSpec::Bufferfolder {
                directory: hs.buffer_dir(),
            },
        )
        .unwrap();
    let err = remote
        .activate(&ActivateOptions {
            extern_clients: vec!["nope".into()],
            ..ActivateOptions::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown extern hashserver client 'nope'"),
        "{err}"
    );
    // Launched clients need a launcher: a clear error, not a panic.
    let err = remote
        .activate(&ActivateOptions {
            main: Some(seamless_buffer_remote::remote::Selection {
                cluster: "local".into(),
                project: "p".into(),
                subproject: None,
                stage: None,
                substage: None,
            }),
            ..ActivateOptions::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("no launcher"), "{err}");

    remote
        .activate(&ActivateOptions {
            extern_clients: vec!["folder".into(), "hs".into()],
            ..ActivateOptions::default()
        })
        .unwrap();
    let active = remote.active();
    assert!(active.has_read_server() && active.has_write_server());
    assert_eq!(active.read_folders().len(), 1);
    let info = remote.inspect_extern_clients();
    assert_eq!(info.len(), 2);
    assert_eq!(info[0].name, "folder");
    assert!(info[0].readonly && info[0].directory.is_some());
    assert_eq!(info[1].url.as_deref(), Some(hs.url().as_str()));

    let buf = Bytes::from_static(b"written through activation\n");
    let cs = Checksum::of(&buf);
    active.promise(&cs).await.unwrap();
    assert!(active.write_buffer(&cs, buf.clone()).await.unwrap());
    assert_eq!(active.get_buffer(&cs).await.unwrap().unwrap(), buf);
    // Trivial checksums need no store at all.
    let none = ActiveBuffers::default();
    assert_eq!(
        none.get_buffer(&Checksum::of(b"{}\n"))
            .await
            .unwrap()
            .unwrap(),
        &b"{}\n"[..]
    );
    // has_buffers asks servers only (upstream's rule): with none, nothing is available to a
    // remote worker, not even a trivial buffer.
    assert_eq!(none.has_buffers(&[Checksum::of(b"")]).await, vec![false]);
    assert!(!none.write_buffer(&cs, buf).await.unwrap());
}

#[tokio::test]
async fn writes_go_to_every_write_server_concurrently() {
    let Some(a) = start(HashserverOptions::default()) else {
        return;
    };
    let Some(b) = start(HashserverOptions::default()) else {
        return;
    };
    let active = ActiveBuffers::new(vec![], vec![], vec![client(&a.url()), client(&b.url())]);
    let buf = data(10_000, 11);
    let cs = Checksum::of(&buf);
    assert!(active.write_buffer(&cs, buf.clone()).await.unwrap());
    assert_eq!(client(&a.url()).get(&cs).await.unwrap().unwrap(), buf);
    assert_eq!(client(&b.url()).get(&cs).await.unwrap().unwrap(), buf);
    // One write server down: the other still gets the buffer, and the failure is reported.
    let dead = format!("http://127.0.0.1:{}", seamless_tests::process::free_port());
    let mut o = opts();
    o.retry.max_attempts = 1;
    let active = ActiveBuffers::new(
        vec![],
        vec![],
        vec![
            BufferClient::with_options(&dead, false, o).unwrap(),
            client(&a.url()),
        ],
    );
    let buf2 = data(777, 12);
    let cs2 = Checksum::of(&buf2);
    let err = active.write_buffer(&cs2, buf2.clone()).await.unwrap_err();
    assert!(err.to_string().contains(&dead), "{err}");
    assert_eq!(client(&a.url()).get(&cs2).await.unwrap().unwrap(), buf2);
}

#[tokio::test]
async fn a_download_to_a_file_reports_its_progress() {
    let Some(hs) = start(HashserverOptions::default()) else {
        return;
    };
    let c = client(&hs.url());
    let d = data(3 << 20, 7);
    let cs = Checksum::of(&d);
    c.write(&cs, d.clone()).await.unwrap();
    let active = ActiveBuffers::new(vec![], vec![c], vec![]);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let progress: seamless_buffer_remote::Progress = {
        let seen = seen.clone();
        std::sync::Arc::new(move |n| seen.lock().unwrap().push(n))
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let len = active
        .get_buffer_to_file_with(&cs, &path, Some(progress))
        .await
        .unwrap();
    assert_eq!(len, Some(d.len() as u64));
    assert_eq!(std::fs::read(&path).unwrap(), d);
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "progress was reported");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "monotonic: {seen:?}");
    assert_eq!(seen.last().copied(), Some(d.len() as u64));
}
