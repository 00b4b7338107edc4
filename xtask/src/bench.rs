//! `cargo xtask bench`: Rust vs the Python reference, side by side in one run, against the same
//! real services. Each side runs as a child process, measured with `wait4` (wall time, user +
//! system CPU, peak RSS). Results are printed as a markdown table and written to
//! `target/bench/<what>.md`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use seamless_tests::services::{Database, Hashserver, HashserverOptions};

/// One measured child run.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// The scenario's own timing (from its JSON line), without process start-up.
    pub(crate) op_s: f64,
    /// CPU time (user + system) of the whole process, unless the bench says otherwise.
    pub(crate) cpu_s: f64,
    /// Peak resident set size.
    pub(crate) rss_mib: f64,
    /// The JSON line the child printed.
    pub(crate) json: serde_json::Value,
}

/// Runs `cmd` to completion: (wall seconds, CPU seconds, peak RSS MiB, exit ok, stdout).
pub(crate) fn measure(cmd: Command) -> Result<(f64, f64, f64, bool, String)> {
    measure_with(cmd, |_| {})
}

/// As [`measure`], telling `started` the child's pid.
pub(crate) fn measure_with(
    mut cmd: Command,
    started: impl FnOnce(u32),
) -> Result<(f64, f64, f64, bool, String)> {
    cmd.stdout(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    started(child.id());
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    if rc < 0 {
        bail!("wait4 failed for {cmd:?}");
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        wall,
        secs(usage.ru_utime) + secs(usage.ru_stime),
        usage.ru_maxrss as f64 / 1024.0,
        ok,
        out,
    ))
}

pub(crate) fn run_measured(cmd: Command) -> Result<Measured> {
    let desc = format!("{cmd:?}");
    let (wall, cpu_s, rss_mib, ok, out) = measure(cmd)?;
    if !ok {
        bail!("{desc} failed; stdout: {out}");
    }
    let json: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("no JSON result from {desc}: {out}"))?;
    Ok(Measured {
        op_s: json.get("wall_s").and_then(|v| v.as_f64()).unwrap_or(wall),
        cpu_s,
        rss_mib,
        json,
    })
}

pub(crate) fn median(mut v: Vec<Measured>) -> Measured {
    v.sort_by(|a, b| a.op_s.total_cmp(&b.op_s));
    v.swap_remove(v.len() / 2)
}

pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) rust: Measured,
    pub(crate) python: Option<Measured>,
    pub(crate) note: String,
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | Rust wall s | Python wall s | Rust/Python wall | Rust CPU s | Python CPU s | Rust/Python CPU | Rust peak RSS MiB | Python peak RSS MiB | note |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (pw, pc, pr, rw, rc) = match &r.python {
            Some(p) => (
                format!("{:.3}", p.op_s),
                format!("{:.2}", p.cpu_s),
                format!("{:.0}", p.rss_mib),
                format!("{:.3}", r.rust.op_s / p.op_s),
                format!("{:.3}", r.rust.cpu_s / p.cpu_s),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        s += &format!(
            "| {} | {:.3} | {} | {} | {:.2} | {} | {} | {:.0} | {} | {} |\n",
            r.scenario, r.rust.op_s, pw, rw, r.rust.cpu_s, pc, rc, r.rust.rss_mib, pr, r.note
        );
    }
    s
}

fn bench_client(root: &Path) -> Result<PathBuf> {
    let status = crate::cargo()
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "xtask",
            "--bin",
            "bench-client",
        ])
        .status()?;
    if !status.success() {
        bail!("building bench-client failed");
    }
    Ok(root.join("target").join("release").join("bench-client"))
}

pub(crate) fn generate_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < size {
        for c in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        let n = (size - written).min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        written += n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Entry point: `cargo xtask bench [buffer]`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let what = args.first().map(String::as_str).unwrap_or("buffer");
    match what {
        "buffer" => buffer(root),
        "database" => database(root),
        "cli" => crate::bench_cli::run(root),
        "dask" => crate::bench_dask::run(root),
        "python" => crate::bench_python::run(root),
        other => bail!("unknown benchmark {other:?} (buffer, database, cli, dask, python)"),
    }
}

fn buffer(root: &Path) -> Result<()> {
    let venv = crate::venv::ensure(root)?;
    std::env::set_var("SEAMLESS_TEST_VENV", &venv);
    let rust = bench_client(root)?;
    let python = venv.join("bin").join("python");
    let script = root.join("xtask").join("python").join("bench_buffer.py");
    let hs = Hashserver::start(HashserverOptions::default()).map_err(|e| anyhow::anyhow!(e))?;
    let url = hs.url();
    let tmp = tempfile::Builder::new()
        .prefix("seamless-bench-")
        .tempdir()?;
    let r = |args: &[&str]| {
        let mut c = Command::new(&rust);
        c.args(args);
        run_measured(c)
    };
    let p = |args: &[&str]| {
        let mut c = Command::new(&python);
        c.arg(&script).args(args);
        run_measured(c)
    };
    let mut rows = Vec::new();

    eprintln!("bench: 2000 x 4 KiB write then read (3 alternating runs each, median)");
    let (mut rs, mut ps) = (Vec::new(), Vec::new());
    for i in 0..3u32 {
        rs.push(r(&[
            "small",
            &url,
            "2000",
            "4096",
            &(2 * i + 1).to_string(),
        ])?);
        ps.push(p(&[
            "small",
            &url,
            "2000",
            "4096",
            &(2 * i + 2).to_string(),
        ])?);
    }
    let (rm, pm) = (median(rs), median(ps));
    let note = format!(
        "throughput ratio Python/Rust = {:.2}x; Rust write {:.3} s + read {:.3} s",
        pm.op_s / rm.op_s,
        rm.json["write_s"].as_f64().unwrap_or(0.0),
        rm.json["read_s"].as_f64().unwrap_or(0.0)
    );
    rows.push(Row {
        scenario: "2000 x 4 KiB write+read".into(),
        rust: rm,
        python: Some(pm),
        note,
    });

    eprintln!("bench: presence of 100 000 checksums");
    let rm = r(&["has", &url, "100000"])?;
    let pm = p(&["has", &url, "100000"])?;
    rows.push(Row {
        scenario: "presence of 100 000 checksums".into(),
        note: "Rust: /has in concurrent batches of 1000; Python: one /has request".into(),
        rust: rm,
        python: Some(pm),
    });

    eprintln!("bench: 1 GiB upload and download");
    let (fa, fb) = (tmp.path().join("a.bin"), tmp.path().join("b.bin"));
    generate_file(&fa, 1 << 30, 1)?;
    generate_file(&fb, 1 << 30, 2)?;
    let ru = r(&["big-up", &url, fa.to_str().context("path")?])?;
    let pu = p(&["big-up", &url, fb.to_str().context("path")?])?;
    let (csa, csb) = (
        ru.json["checksum"]
            .as_str()
            .context("checksum")?
            .to_string(),
        pu.json["checksum"]
            .as_str()
            .context("checksum")?
            .to_string(),
    );
    std::fs::remove_file(&fa)?;
    std::fs::remove_file(&fb)?;
    rows.push(Row {
        scenario: "upload 1 GiB".into(),
        note: "Rust streams from the file (hash + upload); Python reads it into memory".into(),
        rust: ru,
        python: Some(pu),
    });
    let (oa, ob) = (tmp.path().join("a.out"), tmp.path().join("b.out"));
    let rd = r(&["big-down", &url, &csa, oa.to_str().context("path")?])?;
    let pd = p(&["big-down", &url, &csb, ob.to_str().context("path")?])?;
    rows.push(Row {
        scenario: "download 1 GiB to a file".into(),
        note: "Rust streams to a file while hashing on another thread".into(),
        rust: rd,
        python: Some(pd),
    });
    drop(hs);

    eprintln!("bench: the client's own ceiling against a minimal in-process server");
    let ls = r(&["local-small", "32000"])?;
    let ll = r(&["local-large", "256", "8"])?;
    let (rps, gbs) = (
        ls.json["req_per_s"].as_f64().unwrap_or(0.0),
        ll.json["gb_per_s"].as_f64().unwrap_or(0.0),
    );
    rows.push(Row {
        scenario: "minimal server: 32 000 small GETs".into(),
        note: format!("{rps:.0} verified GETs/s (16 concurrent loops)"),
        rust: ls,
        python: None,
    });
    rows.push(Row {
        scenario: "minimal server: 8 x 256 MiB verified GET".into(),
        note: format!("{gbs:.2} GB/s received and verified"),
        rust: ll,
        python: None,
    });

    let report = format!(
        "# cargo xtask bench buffer\n\nMachine: {} cores. hashserver 1.1.0 on loopback; Python = seamless-remote 0.4.0 (`buffer_remote`, asyncio.gather). Wall = the scenario's own timing (no process start-up); CPU and peak RSS = the whole client process (wait4).\n\n{}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        table(&rows)
    );
    let dir = root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("buffer.md"), &report)?;
    println!("{report}");
    Ok(())
}

pub(crate) fn write_report(root: &Path, what: &str, title_note: &str, rows: &[Row]) -> Result<()> {
    let report = format!(
        "# cargo xtask bench {what}\n\nMachine: {} cores. {title_note}\n\n{}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        table(rows)
    );
    let dir = root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{what}.md")), &report)?;
    println!("{report}");
    Ok(())
}

fn database(root: &Path) -> Result<()> {
    let venv = crate::venv::ensure(root)?;
    std::env::set_var("SEAMLESS_TEST_VENV", &venv);
    let rust = bench_client(root)?;
    let python = venv.join("bin").join("python");
    let script = root.join("xtask").join("python").join("bench_database.py");
    let db = Database::start().map_err(|e| anyhow::anyhow!(e))?;
    let url = db.url();
    eprintln!("bench: 10 000 lookups (half hits) + 2000 writes, 3 alternating runs each");
    let (mut rs, mut ps) = (Vec::new(), Vec::new());
    for i in 0..3u32 {
        let mut c = Command::new(&rust);
        // One event-loop thread, like the Python client's asyncio loop.
        c.env("BENCH_RUNTIME", "current-thread");
        c.args(["db", &url, &(2 * i + 1).to_string()]);
        rs.push(run_measured(c)?);
        let mut c = Command::new(&python);
        c.arg(&script).args([&url, &(2 * i + 2).to_string()]);
        ps.push(run_measured(c)?);
    }
    let (r, p) = (median(rs), median(ps));
    let phase = |m: &Measured, k: &str| Measured {
        op_s: m.json[k].as_f64().unwrap_or(0.0),
        ..m.clone()
    };
    let rows = vec![
        Row {
            scenario: "10 000 get_transformation_result (half hits)".into(),
            note: format!(
                "{:.0} vs {:.0} lookups/s",
                10_000.0 / r.json["get_s"].as_f64().unwrap_or(1.0),
                10_000.0 / p.json["get_s"].as_f64().unwrap_or(1.0)
            ),
            rust: phase(&r, "get_s"),
            python: Some(phase(&p, "get_s")),
        },
        Row {
            scenario: "2000 set_transformation_result".into(),
            note: format!(
                "{:.0} vs {:.0} writes/s",
                2000.0 / r.json["set_s"].as_f64().unwrap_or(1.0),
                2000.0 / p.json["set_s"].as_f64().unwrap_or(1.0)
            ),
            rust: phase(&r, "set_s"),
            python: Some(phase(&p, "set_s")),
        },
        Row {
            scenario: "both phases".into(),
            note: format!("throughput ratio Python/Rust = {:.2}x", p.op_s / r.op_s),
            rust: r,
            python: Some(p),
        },
    ];
    write_report(
        root,
        "database",
        "seamless-database 2.1.0 on loopback; both clients at 30 requests in flight and on one event-loop thread (Rust: tokio current-thread runtime); Python = seamless-remote 0.4.0 (`database_remote`, asyncio.gather). Wall = the phase's own timing; CPU and peak RSS = the whole client process, including 5000 untimed writes that prepare the hits (the same on both sides).",
        &rows,
    )
}
