//! `cargo xtask bench cli`: the end-to-end time of `seamless-resolve` and `seamless-fingertip`,
//! Rust vs the Python tools, same servers, same environment (`SEAMLESS_REMOTE_CLIENTS`),
//! alternating runs, median; and the peak RSS of a 1 GiB resolve to a file.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use seamless_buffer_remote::BufferClient;
use seamless_database_remote::DatabaseClient;
use seamless_jobserver_remote::{JobserverClient, RunRequest};
use seamless_remote_core::Checksum;
use seamless_tests::services::{Database, Hashserver, HashserverOptions, Jobserver};
use serde_json::json;

use crate::bench::{generate_file, measure, median, write_report, Measured, Row};

const RUNS: usize = 10;

fn cmd(bin: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = Command::new(bin);
    c.args(args).env_remove("SEAMLESS_CACHE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stderr(std::process::Stdio::null());
    c
}

fn measured(c: Command) -> Result<Measured> {
    let desc = format!("{c:?}");
    let (wall, cpu, rss, ok, _) = measure(c)?;
    if !ok {
        bail!("{desc} failed");
    }
    Ok(Measured {
        op_s: wall,
        cpu_s: cpu,
        rss_mib: rss,
        json: serde_json::Value::Null,
    })
}

/// Entry point.
pub fn run(root: &Path) -> Result<()> {
    let venv = crate::venv::ensure(root)?;
    std::env::set_var("SEAMLESS_TEST_VENV", &venv);
    let status = crate::cargo()
        .current_dir(root)
        .args(["build", "--release", "-q", "-p", "seamless-cli"])
        .status()?;
    if !status.success() {
        bail!("building the binaries failed");
    }
    let rust_resolve = root.join("target/release/seamless-resolve");
    let rust_fingertip = root.join("target/release/seamless-fingertip");
    let py_resolve = venv.join("bin/seamless-resolve");
    let py_fingertip = venv.join("bin/seamless-fingertip");
    let hs = Hashserver::start(HashserverOptions::default()).map_err(|e| anyhow::anyhow!(e))?;
    let db = Database::start().map_err(|e| anyhow::anyhow!(e))?;
    let js = Jobserver::start(&hs.url(), Some(&db.url())).map_err(|e| anyhow::anyhow!(e))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (small, results) = runtime.block_on(prepare(&hs.url(), &db.url(), &js.url()))?;
    // Our fingertip launches its local jobserver under this HOME (stopped at the end).
    let home = tempfile::Builder::new()
        .prefix("seamless-bench-home-")
        .tempdir()?;
    let _launched = seamless_tests::launchenv::LaunchedIn(home.path().to_path_buf());
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let clients = json!({"buffer": [{"remote_url": hs.url(), "readonly": false}],
                         "database": [{"remote_url": db.url(), "readonly": false}]})
    .to_string();
    let env = vec![
        ("SEAMLESS_REMOTE_CLIENTS", clients),
        ("PATH", path),
        ("HOME", home.path().display().to_string()),
    ];
    let mut rows = Vec::new();

    eprintln!("bench: seamless-resolve of a small buffer, {RUNS} alternating runs each");
    let (mut r, mut p) = (Vec::new(), Vec::new());
    let hex = small.to_hex();
    for _ in 0..RUNS {
        r.push(measured(cmd(&rust_resolve, &[&hex], &env))?);
        p.push(measured(cmd(&py_resolve, &[&hex], &env))?);
    }
    let (r, p) = (median(r), median(p));
    rows.push(Row {
        scenario: "seamless-resolve, small buffer (process wall time)".into(),
        note: format!("Rust is {:.1}x faster", p.op_s / r.op_s),
        rust: r,
        python: Some(p),
    });

    eprintln!(
        "bench: seamless-fingertip of {} different deleted results in a row, each tool",
        results.len()
    );
    let files: Vec<_> = results
        .iter()
        .map(|r| {
            let hex = r.to_hex();
            hs.buffer_dir().join(&hex[..2]).join(&hex)
        })
        .collect();
    let delete_all = || {
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
    };
    let in_a_row = |bin: &Path| -> Result<(Measured, Measured)> {
        delete_all();
        let mut all = Vec::new();
        for r in &results {
            all.push(measured(cmd(bin, &[&r.to_hex()], &env))?);
        }
        let first = Measured {
            op_s: all[0].op_s,
            cpu_s: all[0].cpu_s,
            rss_mib: all[0].rss_mib,
            json: serde_json::Value::Null,
        };
        let total = Measured {
            op_s: all.iter().map(|m| m.op_s).sum(),
            cpu_s: all.iter().map(|m| m.cpu_s).sum(),
            rss_mib: all.iter().map(|m| m.rss_mib).fold(0.0, f64::max),
            json: serde_json::Value::Null,
        };
        Ok((first, total))
    };
    // Rust first: its first call launches the local jobserver (then reused); Python second.
    let (r_first, r_total) = in_a_row(&rust_fingertip)?;
    let (p_first, p_total) = in_a_row(&py_fingertip)?;
    // A second round: the local jobserver is already running for Rust.
    let (_, r_total2) = in_a_row(&rust_fingertip)?;
    let (_, p_total2) = in_a_row(&py_fingertip)?;
    rows.push(Row {
        scenario: "seamless-fingertip, first call (Rust: launches its local jobserver)".into(),
        note: format!("ratio {:.2}", r_first.op_s / p_first.op_s),
        rust: r_first,
        python: Some(p_first),
    });
    let n = results.len();
    rows.push(Row {
        scenario: format!("seamless-fingertip, {n} deleted results in a row (total wall, round 1)"),
        note: format!(
            "Rust is {:.1}x faster; it recomputes on the launched local jobserver (reused by every call) and writes each result back; Python recomputes in-process and does not",
            p_total.op_s / r_total.op_s
        ),
        rust: r_total,
        python: Some(p_total),
    });
    rows.push(Row {
        scenario: format!("seamless-fingertip, {n} deleted results in a row (total wall, round 2)"),
        note: format!("Rust is {:.1}x faster", p_total2.op_s / r_total2.op_s),
        rust: r_total2,
        python: Some(p_total2),
    });

    eprintln!("bench: resolve of a 1 GiB buffer to a file");
    let tmp = tempfile::Builder::new()
        .prefix("seamless-bench-cli-")
        .tempdir()?;
    let big = tmp.path().join("big.bin");
    generate_file(&big, 1 << 30, 7)?;
    let big_cs = runtime.block_on(async {
        let c = BufferClient::new(&hs.url(), false)?;
        let cs = hash_file(&big)?;
        c.write_file(&cs, &big).await?;
        Ok::<_, anyhow::Error>(cs)
    })?;
    std::fs::remove_file(&big)?;
    let (ro, po) = (tmp.path().join("rust.out"), tmp.path().join("python.out"));
    let r = measured(cmd(
        &rust_resolve,
        &[&big_cs.to_hex(), "--output", ro.to_str().context("path")?],
        &env,
    ))?;
    std::fs::remove_file(&ro)?;
    let p = measured(cmd(
        &py_resolve,
        &[&big_cs.to_hex(), "--output", po.to_str().context("path")?],
        &env,
    ))?;
    rows.push(Row {
        scenario: "seamless-resolve --output, 1 GiB".into(),
        note: format!(
            "peak RSS: Rust {:.0} MiB, Python {:.0} MiB",
            r.rss_mib, p.rss_mib
        ),
        rust: r,
        python: Some(p),
    });
    drop((hs, db, js));
    write_report(
        root,
        "cli",
        "Real hashserver, database and jobserver on loopback; both tools configured by the same SEAMLESS_REMOTE_CLIENTS; Rust built with --release. Wall = the whole process (start-up included); CPU and peak RSS = the process (wait4).",
        &rows,
    )
}

fn hash_file(path: &Path) -> Result<Checksum> {
    Ok(Checksum::of_reader(std::fs::File::open(path)?)?)
}

/// Stores a small buffer; computes ten different transformations on the jobserver and records
/// them. Returns the small buffer's checksum and the ten results.
async fn prepare(hs: &str, db: &str, js: &str) -> Result<(Checksum, Vec<Checksum>)> {
    let c = BufferClient::new(hs, false)?;
    let small = Bytes::from_static(b"Hello, Seamless!\nsecond line\n");
    let small_cs = Checksum::of(&small);
    c.write(&small_cs, small).await?;
    let mut results = Vec::new();
    for i in 0..10 {
        let t = seamless_tests::transformation::python(
            "def add_and_describe(a, b, label):\n    return {\"sum\": a + b, \"label\": label * 2}\n",
            &[("a", json!(17)), ("b", json!(25 + i)), ("label", json!("xy"))],
        );
        for (cs, b) in &t.buffers {
            c.write(cs, b.clone()).await?;
        }
        let r = JobserverClient::new(js)?
            .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
            .await?
            .result_checksum()
            .context("no result")?;
        DatabaseClient::new(db, false)?
            .set_transformation_result(&t.tf_checksum, &r)
            .await?;
        // Wait until the jobserver's upload of the result is complete.
        for _ in 0..100 {
            if c.get(&r).await?.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        results.push(r);
    }
    Ok((small_cs, results))
}
