//! The built `seamless-resolve` and `seamless-fingertip` against real services, row by row of
//! the reference transcripts (core-cli.md §7.1-§7.3), with our improvements where the reference
//! fails, and byte-for-byte equality of stdout with the Python `seamless-resolve`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use bytes::Bytes;
use seamless_buffer_remote::BufferClient;
use seamless_database_remote::DatabaseClient;
use seamless_jobserver_remote::{JobserverClient, RunRequest};
use seamless_remote_core::Checksum;
use seamless_tests::proxy::{Fault, FaultProxy};
use seamless_tests::require;
use seamless_tests::services::{Database, Hashserver, HashserverOptions, Jobserver};
use seamless_tests::transformation::python;
use serde_json::json;

const RESOLVE: &str = env!("CARGO_BIN_EXE_seamless-resolve");
const FINGERTIP: &str = env!("CARGO_BIN_EXE_seamless-fingertip");

fn clients(buffer: serde_json::Value, database: serde_json::Value) -> String {
    json!({"buffer": buffer, "database": database}).to_string()
}

/// Runs a binary in `cwd` with a clean environment for Seamless variables.
fn run(bin: &str, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut c = Command::new(bin);
    c.args(args)
        .current_dir(cwd)
        .env_remove("SEAMLESS_REMOTE_CLIENTS")
        .env_remove("SEAMLESS_CACHE")
        .env("HOME", cwd);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn put(url: &str, data: &[u8]) -> Checksum {
    let cs = Checksum::of(data);
    BufferClient::new(url, false)
        .unwrap()
        .write(&cs, Bytes::copy_from_slice(data))
        .await
        .unwrap();
    cs
}

fn start() -> Option<Hashserver> {
    seamless_tests::init_tracing();
    require!(Hashserver::start(HashserverOptions::default()))
}

#[tokio::test]
async fn resolve_successes_match_the_python_tool_byte_for_byte() {
    let Some(hs) = start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let env_clients = clients(json!([{"remote_url": hs.url()}]), json!([]));
    let env = [("SEAMLESS_REMOTE_CLIENTS", env_clients.as_str())];
    let python_resolve = seamless_tests::venv::bin("seamless-resolve").ok();
    let cases: Vec<(&[u8], &[u8])> = vec![
        (
            b"Hello, Seamless!\nsecond line\n",
            b"Hello, Seamless!\nsecond line\n",
        ),
        (b"ends with newlines\n\n\n", b"ends with newlines\n"),
        (
            b"h\xc3\xa9llo \xe2\x9c\x93\r\nline2  \r\n\n",
            b"h\xc3\xa9llo \xe2\x9c\x93\r\nline2  \r\n",
        ),
        (b"\n\nleading newlines kept", b"\n\nleading newlines kept\n"),
        (
            b"{\n  \"a\": [\n    1,\n    2.5\n  ],\n  \"b\": \"x\"\n}\n",
            b"{\n  \"a\": [\n    1,\n    2.5\n  ],\n  \"b\": \"x\"\n}\n",
        ),
        (b"\"a string\"\n", b"\"a string\"\n"),
        (b"42\n", b"42\n"),
        (b"raw utf8 bytes no newline", b"raw utf8 bytes no newline\n"),
    ];
    for (buffer, expected) in cases {
        let cs = put(&hs.url(), buffer).await;
        let ours = run(RESOLVE, &[&cs.to_hex()], &env, dir.path());
        assert_eq!(code(&ours), 0, "{}", stderr(&ours));
        assert_eq!(ours.stdout, expected, "{cs}");
        assert!(ours.stderr.is_empty(), "{}", stderr(&ours));
        if let Some(py) = &python_resolve {
            let theirs = run(py.to_str().unwrap(), &[&cs.to_hex()], &env, dir.path());
            assert_eq!(code(&theirs), 0, "python: {}", stderr(&theirs));
            assert_eq!(
                ours.stdout, theirs.stdout,
                "byte-for-byte with the Python tool for {cs}"
            );
        }
    }
    // Uppercase and spaced arguments.
    let cs = put(&hs.url(), b"42\n").await;
    let upper = cs.to_hex().to_uppercase();
    assert_eq!(run(RESOLVE, &[&upper], &env, dir.path()).stdout, b"42\n");
    let spaced: Vec<String> = cs
        .to_hex()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(
        run(RESOLVE, &[&spaced.join(" ")], &env, dir.path()).stdout,
        b"42\n"
    );
    // Checksum files with comments and blank lines.
    let file = dir.path().join("result.CHECKSUM");
    std::fs::write(&file, format!("# the result\n\n{upper}\n")).unwrap();
    assert_eq!(
        run(RESOLVE, &[file.to_str().unwrap()], &env, dir.path()).stdout,
        b"42\n"
    );
    // The empty buffer and trivial checksums, with no server at all.
    let none = [(
        "SEAMLESS_REMOTE_CLIENTS",
        r#"{"buffer": [{"remote_url": "http://127.0.0.1:9"}]}"#,
    )];
    assert_eq!(
        run(RESOLVE, &[&Checksum::of(b"").to_hex()], &none, dir.path()).stdout,
        b"\n"
    );
    assert_eq!(
        run(RESOLVE, &[&Checksum::of(b"{}\n").to_hex()], &[], dir.path()).stdout,
        b"{}\n"
    );
    assert_eq!(
        run(
            FINGERTIP,
            &[&Checksum::of(b"{}\n").to_hex()],
            &[],
            dir.path()
        )
        .stdout,
        b"{}\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_folders_failover_and_no_partial_files() {
    let Some(hs) = start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let npy: Vec<u8> = b"\x93NUMPY\x01\x00v\x00"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(4000))
        .collect();
    let cs = put(&hs.url(), &npy).await;
    let env_clients = clients(json!([{"remote_url": hs.url()}]), json!([]));
    let env = [("SEAMLESS_REMOTE_CLIENTS", env_clients.as_str())];
    // Binary to a pipe: the exact bytes (the reference crashes with UnicodeDecodeError).
    let out = run(RESOLVE, &[&cs.to_hex()], &env, dir.path());
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout, npy);
    // --output: exact bytes.
    let target = dir.path().join("out.npy");
    let out = run(
        RESOLVE,
        &[&cs.to_hex(), "--output", target.to_str().unwrap()],
        &env,
        dir.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&target).unwrap(), npy);
    // A read folder only: no HTTP.
    let folder = clients(json!([{"remote_directory": hs.buffer_dir()}]), json!([]));
    let out = run(
        RESOLVE,
        &[&cs.to_hex()],
        &[("SEAMLESS_REMOTE_CLIENTS", &folder)],
        dir.path(),
    );
    assert_eq!(out.stdout, npy);
    // A dead server first, then a good one: failover (the reference fails).
    let failover = clients(
        json!([{"remote_url": "http://127.0.0.1:9"}, {"remote_url": hs.url()}]),
        json!([]),
    );
    let out = run(
        RESOLVE,
        &[&cs.to_hex()],
        &[("SEAMLESS_REMOTE_CLIENTS", &failover)],
        dir.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, npy);
    // Corrupt bytes: integrity error, exit 7, and no output file (nor a temporary one).
    let proxy = FaultProxy::start(hs.addr()).await;
    for _ in 0..20 {
        proxy.push(&format!("GET /{cs}"), Fault::Corrupt(100));
    }
    let via_proxy = clients(json!([{"remote_url": proxy.url()}]), json!([]));
    let outdir = dir.path().join("outdir");
    std::fs::create_dir(&outdir).unwrap();
    let target = outdir.join("x.npy");
    let out = run(
        RESOLVE,
        &[&cs.to_hex(), "--output", target.to_str().unwrap()],
        &[("SEAMLESS_REMOTE_CLIENTS", &via_proxy)],
        dir.path(),
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(&outdir).unwrap().count(),
        0,
        "no partial file"
    );
    let out = run(
        RESOLVE,
        &[&cs.to_hex()],
        &[("SEAMLESS_REMOTE_CLIENTS", &via_proxy)],
        dir.path(),
    );
    assert_eq!(code(&out), 7);
    assert!(out.stdout.is_empty(), "a wrong buffer is never printed");
}

#[tokio::test]
async fn resolve_failures_are_one_or_two_lines_with_distinct_codes() {
    let Some(hs) = start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let env_clients = clients(json!([{"remote_url": hs.url()}]), json!([]));
    let env = [("SEAMLESS_REMOTE_CLIENTS", env_clients.as_str())];
    let missing = Checksum::of(b"not stored anywhere").to_hex();
    // (arguments, extra environment, exit code, text in the message)
    type Case<'a> = (Vec<String>, Vec<(&'a str, String)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (vec![missing.clone()], vec![], 4, "found in none"),
        (vec!["nothex".into()], vec![], 3, "invalid checksum"),
        (
            vec![missing[..63].to_string()],
            vec![],
            3,
            "64 hexadecimal digits",
        ),
        (
            vec![missing.clone(), "--project".into(), ":sub".into()],
            vec![],
            2,
            "Invalid --project value ':sub'",
        ),
        (
            vec![
                missing.clone(),
                "--output".into(),
                "/nonexistent-dir/x.txt".into(),
            ],
            vec![],
            8,
            "Cannot write output file '/nonexistent-dir/x.txt'",
        ),
        (
            vec![missing.clone()],
            vec![("SEAMLESS_REMOTE_CLIENTS", "{not json".into())],
            5,
            "SEAMLESS_REMOTE_CLIENTS",
        ),
        (
            vec![missing.clone()],
            vec![(
                "SEAMLESS_REMOTE_CLIENTS",
                format!(r#"{{"buffer": [{{"url": "{}"}}]}}"#, hs.url()),
            )],
            5,
            "remote_url",
        ),
        (
            vec![missing.clone()],
            vec![("SEAMLESS_REMOTE_CLIENTS", "{}".into())],
            5,
            "no buffer store",
        ),
        (
            vec![missing.clone()],
            vec![(
                "SEAMLESS_REMOTE_CLIENTS",
                r#"{"buffer": [{"remote_url": "http://127.0.0.1:9"}]}"#.into(),
            )],
            6,
            "cannot reach",
        ),
    ];
    for (args, extra, want, text) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut e: Vec<(&str, &str)> = env.to_vec();
        e.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let out = run(RESOLVE, &args, &e, dir.path());
        let err = stderr(&out);
        assert_eq!(code(&out), want, "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err}");
        assert!(err.lines().count() <= 3, "short: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
    // No configuration at all.
    let out = run(RESOLVE, &[&missing], &[], dir.path());
    assert_eq!(code(&out), 5);
    assert!(stderr(&out).starts_with("seamless-resolve: Cannot resolve without a cluster defined"));
    let out = run(FINGERTIP, &[&missing], &[], dir.path());
    assert!(stderr(&out).contains("Cannot fingertip without a cluster defined"));
    // --stage with SEAMLESS_REMOTE_CLIENTS: not silent, and the stores still work.
    let cs = put(&hs.url(), b"staged\n").await;
    let out = run(
        RESOLVE,
        &[&cs.to_hex(), "--stage", "prod"],
        &env,
        dir.path(),
    );
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout, b"staged\n");
    assert!(stderr(&out).contains("--project/--stage have no effect"));
    // --help documents the exit codes.
    let out = run(RESOLVE, &["--help"], &[], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("integrity failure"));
    // --version names the program, not the package.
    for (bin, name) in [
        (RESOLVE, "seamless-resolve "),
        (FINGERTIP, "seamless-fingertip "),
    ] {
        let out = run(bin, &["--version"], &[], dir.path());
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(name),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test]
async fn resolve_from_a_project_configuration_launches_the_hashserver() {
    if seamless_tests::venv::bin("hashserver").is_err() {
        assert!(!seamless_tests::venv::services_required());
        return;
    }
    let env = seamless_tests::launchenv::Env::new();
    let path = env.path_env();
    let home = env.home().display().to_string();
    let vars = [("PATH", path.as_str()), ("HOME", home.as_str())];
    // A first resolve launches the project's hashserver (the buffer is missing).
    let missing = Checksum::of(b"absent").to_hex();
    let out = run(RESOLVE, &[&missing], &vars, &env.project());
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Launch hashserver"),
        "{}",
        stderr(&out)
    );
    let server: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.state("client", "hashserver-local-rw-demo")).unwrap(),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{}", server["port"]);
    let cs = put(&url, b"from the project's hashserver\n").await;
    let out = run(RESOLVE, &[&cs.to_hex()], &vars, &env.project());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"from the project's hashserver\n");
    assert!(!stderr(&out).contains("Launch"), "reused: {}", stderr(&out));
    // --project wins over the file (a project without a hashserver yet: launched for it).
    let out = run(
        RESOLVE,
        &[&cs.to_hex(), "--project", "other"],
        &vars,
        &env.project(),
    );
    assert_eq!(code(&out), 4, "another project's store: {}", stderr(&out));
    assert!(env.state("server", "hashserver-local-rw-other").exists());
}

struct Stack {
    hs: Hashserver,
    db: Database,
    _js: Jobserver,
    result: Checksum,
    tf: Checksum,
}

/// Another result (`b` makes it differ) computed on the stack's jobserver, recorded in its
/// database, then deleted from its hashserver.
async fn another_deleted_result(s: &Stack, b: i64) -> Checksum {
    let t = python(
        "def add_and_describe(a, b, label):\n    return {\"sum\": a + b, \"label\": label * 2}\n",
        &[("a", json!(17)), ("b", json!(b)), ("label", json!("xy"))],
    );
    let c = BufferClient::new(&s.hs.url(), false).unwrap();
    for (cs, buf) in &t.buffers {
        c.write(cs, buf.clone()).await.unwrap();
    }
    let r = JobserverClient::new(&s._js.url())
        .unwrap()
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await
        .unwrap()
        .result_checksum()
        .unwrap();
    DatabaseClient::new(&s.db.url(), false)
        .unwrap()
        .set_transformation_result(&t.tf_checksum, &r)
        .await
        .unwrap();
    let hex = r.to_hex();
    let file = s.hs.buffer_dir().join(&hex[..2]).join(&hex);
    for _ in 0..200 {
        if file.is_file() && c.get(&r).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    std::fs::remove_file(&file).unwrap();
    r
}

/// A result computed by a real jobserver, recorded in the database, then deleted from the
/// hashserver.
async fn deleted_result() -> Option<Stack> {
    seamless_tests::init_tracing();
    let hs = require!(Hashserver::start(HashserverOptions::default()))?;
    let db = require!(Database::start())?;
    let js = require!(Jobserver::start(&hs.url(), Some(&db.url())))?;
    let t = python(
        "def add_and_describe(a, b, label):\n    return {\"sum\": a + b, \"label\": label * 2}\n",
        &[("a", json!(17)), ("b", json!(25)), ("label", json!("xy"))],
    );
    let c = BufferClient::new(&hs.url(), false).unwrap();
    for (cs, b) in &t.buffers {
        c.write(cs, b.clone()).await.unwrap();
    }
    let r = JobserverClient::new(&js.url())
        .unwrap()
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await
        .unwrap()
        .result_checksum()
        .unwrap();
    let d = DatabaseClient::new(&db.url(), false).unwrap();
    d.set_transformation_result(&t.tf_checksum, &r)
        .await
        .unwrap();
    d.set_transformation_result(&t.tf_checksum, &r)
        .await
        .unwrap();
    // The jobserver uploads the result; wait until it is stored, then delete it.
    let hex = r.to_hex();
    let file = hs.buffer_dir().join(&hex[..2]).join(&hex);
    for _ in 0..200 {
        if file.is_file() && c.get(&r).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    std::fs::remove_file(&file).unwrap();
    Some(Stack {
        hs,
        db,
        _js: js,
        result: r,
        tf: t.tf_checksum,
    })
}

fn venv_path() -> String {
    format!(
        "{}:{}",
        seamless_tests::venv::venv_dir().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[tokio::test]
async fn fingertip_recomputes_a_deleted_result() {
    let Some(s) = deleted_result().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env_clients = clients(
        json!([{"remote_url": s.hs.url(), "readonly": false}]),
        json!([{"remote_url": s.db.url(), "readonly": false}]),
    );
    let path = venv_path();
    let env = [
        ("SEAMLESS_REMOTE_CLIENTS", env_clients.as_str()),
        ("PATH", path.as_str()),
    ];
    let r = s.result.to_hex();
    let expected = b"{\n  \"label\": \"xyxy\",\n  \"sum\": 42\n}\n";
    let out = run(RESOLVE, &[&r], &env, dir.path());
    assert_eq!(code(&out), 4, "the result is deleted");
    // The local jobserver is launched by our launcher (HOME = dir): stopped at the end.
    let _launched = seamless_tests::launchenv::LaunchedIn(dir.path().to_path_buf());
    let out = run(FINGERTIP, &[&r, "--verbose"], &env, dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, expected);
    let local_pid = |dir: &Path| {
        seamless_tests::launchenv::launched_pid(dir, "jobserver-fingertip-rw-")
            .expect("a launched local jobserver")
    };
    let first = local_pid(dir.path());
    // Written back: resolve finds it now (the reference's fingertip does not write it back).
    let out = run(RESOLVE, &[&r], &env, dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, expected);
    // --output, after deleting it again.
    std::fs::remove_file(s.hs.buffer_dir().join(&r[..2]).join(&r)).unwrap();
    let target = dir.path().join("result.json");
    let out = run(
        FINGERTIP,
        &[&r, "--output", target.to_str().unwrap()],
        &env,
        dir.path(),
    );
    if code(&out) != 0 {
        // Quote the launched services' logs: what the local jobserver did.
        let logs: Vec<String> = std::fs::read_dir(dir.path().join(".remote-http-launcher/server"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        panic!("{}\nLOGS:\n{}", stderr(&out), logs.join("\n----\n"));
    }
    assert_eq!(Checksum::of(&std::fs::read(&target).unwrap()), s.result);
    // The same transformation again: the local jobserver's worker remembers the result and does
    // not upload it again, so fingertip restarts it and recomputes (exit 0, a new pid).
    let after_restart = local_pid(dir.path());
    // Another deleted result: the next fingertip reuses the running local jobserver.
    let r2 = another_deleted_result(&s, 2).await.to_hex();
    let out = run(FINGERTIP, &[&r2], &env, dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        local_pid(dir.path()),
        after_restart,
        "the local jobserver was not reused: {}",
        stderr(&out)
    );
    let _ = first;
    // Killed: the next fingertip relaunches it.
    seamless_tests::launchenv::kill(after_restart, "KILL");
    let r3 = another_deleted_result(&s, 3).await.to_hex();
    let out = run(FINGERTIP, &[&r3], &env, dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let second = local_pid(dir.path());
    assert_ne!(second, after_restart, "relaunched");
    // Its inactivity timeout stops it: nothing is left running.
    seamless_tests::launchenv::stop(second);
    let r4 = another_deleted_result(&s, 4).await.to_hex();
    let short = [
        ("SEAMLESS_REMOTE_CLIENTS", env_clients.as_str()),
        ("PATH", path.as_str()),
        ("SEAMLESS_FINGERTIP_TIMEOUT", "2"),
    ];
    let out = run(FINGERTIP, &[&r4], &short, dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let third = local_pid(dir.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while seamless_tests::launchenv::alive(third) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        !seamless_tests::launchenv::alive(third),
        "the local jobserver outlived its inactivity timeout"
    );

    // Unknown checksum: exit 4.
    let out = run(
        FINGERTIP,
        &[&Checksum::of(b"nobody makes this").to_hex()],
        &env,
        dir.path(),
    );
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    // Without seamless-jobserver on PATH and no backend: how to enable recomputation.
    std::fs::remove_file(s.hs.buffer_dir().join(&r[..2]).join(&r)).unwrap();
    let env = [
        ("SEAMLESS_REMOTE_CLIENTS", env_clients.as_str()),
        ("PATH", "/usr/bin:/bin"),
    ];
    let out = run(FINGERTIP, &[&r, "--verbose"], &env, dir.path());
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("install seamless-jobserver"),
        "{}",
        stderr(&out)
    );
    // The database down: a clear error, not a silent miss.
    let env_down = clients(
        json!([{"remote_url": s.hs.url()}]),
        json!([{"remote_url": "http://127.0.0.1:9"}]),
    );
    let out = run(
        FINGERTIP,
        &[&r],
        &[("SEAMLESS_REMOTE_CLIENTS", &env_down)],
        dir.path(),
    );
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let _ = s.tf;
}

#[tokio::test]
async fn fingertip_with_read_only_stores_uses_a_local_hashserver() {
    let Some(s) = deleted_result().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let _launched = seamless_tests::launchenv::LaunchedIn(dir.path().to_path_buf());
    // Read-only buffer store and database: the result cannot be written back, but is printed.
    let env_clients = clients(
        json!([{"remote_url": s.hs.url()}]),
        json!([{"remote_url": s.db.url()}]),
    );
    let path = venv_path();
    let env = [
        ("SEAMLESS_REMOTE_CLIENTS", env_clients.as_str()),
        ("PATH", path.as_str()),
    ];
    let r = s.result.to_hex();
    let out = run(FINGERTIP, &[&r], &env, dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"{\n  \"label\": \"xyxy\",\n  \"sum\": 42\n}\n");
    let out = run(RESOLVE, &[&r], &env, dir.path());
    assert_eq!(code(&out), 4, "not written back to a read-only store");
    // The result went to the local fingertip hashserver, launched by our launcher.
    assert!(
        seamless_tests::launchenv::launched_pid(dir.path(), "hashserver-fingertip-rw-local")
            .is_some()
    );
}

#[tokio::test]
async fn binary_is_not_dumped_to_a_terminal() {
    let Some(hs) = start() else { return };
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIP (no `script` to make a pseudo-terminal)");
        return;
    }
    let cs = put(&hs.url(), b"\x00\x01\x02\xffbinary").await;
    let env_clients = clients(json!([{"remote_url": hs.url()}]), json!([]));
    let out = Command::new("script")
        .args(["-qec", &format!("{RESOLVE} {cs}"), "/dev/null"])
        .env("SEAMLESS_REMOTE_CLIENTS", &env_clients)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(8), "{text}");
    assert!(
        text.contains("not printed on a terminal") && text.contains("--output"),
        "{text}"
    );
    assert!(
        !text.contains('\u{FFFD}'),
        "no binary garbage on the terminal: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingertip_from_a_project_stage_uses_its_jobserver() {
    use seamless_buffer_remote::launched::ConfigBufferLauncher;
    use seamless_buffer_remote::remote::{ActivateOptions, BufferRemote};
    use seamless_config::{load, LoadOptions};
    use seamless_database_remote::launched::ConfigDatabaseLauncher;
    use seamless_database_remote::DatabaseRemote;
    use seamless_launcher::{Launcher, StateDirs};
    if seamless_tests::venv::bin("hashserver").is_err() {
        assert!(!seamless_tests::venv::services_required());
        return;
    }
    let env = seamless_tests::launchenv::Env::new();
    std::fs::write(
        env.project().join("seamless.profile.yaml"),
        "- cluster: local\n- execution: process\n- stage remote:\n    - execution: remote\n    - remote: jobserver\n",
    )
    .unwrap();
    // The stage's stores, through the same launcher the binaries use.
    let cfg = load(&LoadOptions {
        workdir: env.project(),
        home: Some(env.home()),
        stage: Some("remote".into()),
        ..LoadOptions::default()
    })
    .unwrap();
    let launcher = Launcher::new(StateDirs::new(env.home())).with_env("PATH", &env.path_env());
    let activate = ActivateOptions {
        main: Some(cfg.current().unwrap()),
        ..ActivateOptions::default()
    };
    let mut buffers = BufferRemote::new();
    buffers.set_launcher(ConfigBufferLauncher::new(
        cfg.clone(),
        launcher.clone(),
        seamless_tests::client_options(),
    ));
    buffers.activate(&activate).unwrap();
    let mut databases = DatabaseRemote::new();
    databases.set_launcher(ConfigDatabaseLauncher::new(
        cfg.clone(),
        launcher,
        seamless_tests::client_options(),
    ));
    databases.activate(&activate).unwrap();
    // A transformation whose result (42) is known to the database but stored nowhere.
    let t = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(20)), ("b", json!(22))],
    );
    for (cs, b) in &t.buffers {
        buffers.active().write_buffer(cs, b.clone()).await.unwrap();
    }
    let result = Checksum::of(b"42\n");
    databases
        .active()
        .set_transformation_result(&t.tf_checksum, &result)
        .await
        .unwrap();
    let path = env.path_env();
    let home = env.home().display().to_string();
    let vars = [("PATH", path.as_str()), ("HOME", home.as_str())];
    let r = result.to_hex();
    let out = run(RESOLVE, &[&r, "--stage", "remote"], &vars, &env.project());
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let out = run(FINGERTIP, &[&r, "--stage", "remote"], &vars, &env.project());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"42\n");
    assert!(
        stderr(&out).contains("Launch jobserver"),
        "the stage's jobserver: {}",
        stderr(&out)
    );
    let out = run(RESOLVE, &[&r, "--stage", "remote"], &vars, &env.project());
    assert_eq!(code(&out), 0, "written back: {}", stderr(&out));
    assert_eq!(out.stdout, b"42\n");
}
