//! `cargo xtask bench python`: the same Seamless workload on our wheel and on the Python
//! seamless-remote, against the same real services, in alternating runs: (a) 2000 small buffers
//! written and 2000 read through seamless-core's Buffer API, (b) 200 small transformations at
//! delegation level 3, (c) a 1 GiB buffer written and read. Wall time and client CPU of the
//! workload (every thread, from the start of the workload; the whole process's CPU and the
//! wheel's transport threads in the note) and peak RSS, as ratios.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use seamless_tests::services::{Database, Hashserver, HashserverOptions, Jobserver};

use crate::bench::{median, write_report, Measured, Row};

/// The longest one run of (a) or (c) may take.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The longest one run of (b) may take (the wheel needs about 8 s, the Python package about
/// 12 s when it does not stall): the Python package can stall on a promised upload that its
/// `close_all_clients` cut (the jobserver then waits up to 600 s for the buffer), which is the
/// bug the wheel fixes; such a run is stopped and reported as stalled.
const TRANSFORMATIONS_LIMIT: Duration = Duration::from_secs(90);

/// How one run ended.
enum Outcome {
    /// The workload finished.
    Finished(Measured),
    /// Stopped after its time limit; with the last progress line it printed, if any.
    Stalled(Option<Measured>),
}

/// The measurement of a run from its last JSON line: the workload's own wall and CPU time
/// (`wall_s`, `cpu_s`); the whole process's CPU (with start-up and imports) as `process_cpu_s`.
fn parse(out: &str, process_cpu_s: f64, rss_mib: f64) -> Option<Measured> {
    let mut json: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())?;
    let op_s = json.get("wall_s")?.as_f64()?;
    let cpu_s = json.get("cpu_s")?.as_f64()?;
    json["process_cpu_s"] = process_cpu_s.into();
    Some(Measured {
        op_s,
        cpu_s,
        rss_mib,
        json,
    })
}

/// One run of `script` with `args` on `python`, stopped after `limit`.
fn side(python: &Path, script: &Path, args: &[String], limit: Duration) -> Result<Outcome> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(args)
        .env_remove("SEAMLESS_REMOTE_CLIENTS")
        .env_remove("SEAMLESS_CACHE")
        .process_group(0);
    // A watchdog thread kills the run's process group if it has not finished after `limit`.
    let pid = Mutex::new(None::<u32>);
    let (finished, wake) = (Mutex::new(false), Condvar::new());
    let stalled = AtomicBool::new(false);
    let measured = std::thread::scope(|scope| {
        scope.spawn(|| {
            let guard = finished.lock().unwrap_or_else(|p| p.into_inner());
            let (guard, wait) = wake
                .wait_timeout_while(guard, limit, |done| !*done)
                .unwrap_or_else(|p| p.into_inner());
            drop(guard);
            if !wait.timed_out() {
                return;
            }
            stalled.store(true, Ordering::SeqCst);
            let child = *pid.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(child) = child.and_then(|c| libc::pid_t::try_from(c).ok()) {
                // SAFETY: kill(2) on the process group of our own child.
                unsafe {
                    libc::kill(-child, libc::SIGKILL);
                }
            }
        });
        let measured = crate::bench::measure_with(cmd, |child| {
            *pid.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        });
        *finished.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        measured
    });
    let (_wall, process_cpu_s, rss_mib, ok, out) = measured?;
    if stalled.load(Ordering::SeqCst) {
        eprintln!(
            "xtask: a run stalled and was stopped after {} s",
            limit.as_secs()
        );
        return Ok(Outcome::Stalled(parse(&out, process_cpu_s, rss_mib)));
    }
    if !ok {
        anyhow::bail!("{} failed; stdout: {out}", script.display());
    }
    parse(&out, process_cpu_s, rss_mib)
        .map(Outcome::Finished)
        .ok_or_else(|| anyhow!("no JSON result: {out}"))
}

/// A stalled run of the transformations workload, scaled from the `done` transformations it
/// finished to the full `total` (wall and CPU; the stall itself is not counted).
fn scaled(mut m: Measured, total: f64) -> Option<Measured> {
    let done = m.json.get("done")?.as_f64()?;
    if done < 1.0 {
        return None;
    }
    m.op_s *= total / done;
    m.cpu_s *= total / done;
    Some(m)
}

/// The whole-process CPU of a run (with the interpreter's start-up and the imports).
fn process_cpu(m: &Measured) -> f64 {
    m.json["process_cpu_s"].as_f64().unwrap_or(0.0)
}

/// Entry point.
pub fn run(root: &Path) -> Result<()> {
    let venv = crate::venv::ensure(root)?;
    std::env::set_var("SEAMLESS_TEST_VENV", &venv);
    let wheel = crate::wheel::build(root)?;
    let wheel_venv = crate::wheel::venv(root, &wheel)?;
    let ours = wheel_venv.join("bin").join("python");
    let reference = venv.join("bin").join("python");
    let script = root.join("xtask").join("python").join("bench_python.py");

    let hs = Hashserver::start(HashserverOptions::default()).map_err(|e| anyhow!(e))?;
    let db = Database::start().map_err(|e| anyhow!(e))?;
    // The jobserver is started fresh for each run of (b) (see below); (a) and (c) do not use it.
    let urls_with = |jobserver: &str| {
        serde_json::json!({"hashserver": hs.url(), "database": db.url(), "jobserver": jobserver})
            .to_string()
    };
    let urls = urls_with("(none)");

    // The read set of (a): 2000 small buffers already on the hashserver.
    let rt = tokio::runtime::Runtime::new()?;
    let client = seamless_buffer_remote::BufferClient::new(&hs.url(), false)?;
    let mut read_set = Vec::new();
    rt.block_on(async {
        for i in 0..2000 {
            let data = bytes::Bytes::from(format!("bench read set {i}\n"));
            let cs = seamless_remote_core::Checksum::of(&data);
            client.write(&cs, data).await?;
            read_set.push(cs.to_hex());
        }
        Ok::<(), seamless_buffer_remote::BufferError>(())
    })?;
    let dir = tempfile::tempdir()?;
    let read_file = dir.path().join("read_set.json");
    std::fs::write(&read_file, serde_json::to_string(&read_set)?)?;

    let scenarios: Vec<(&str, Vec<String>, usize, Duration, String)> = vec![
        (
            "(a) 2000 small buffers written + 2000 read (Buffer API)",
            vec![
                "buffers".into(),
                urls.clone(),
                read_file.display().to_string(),
            ],
            5,
            RUN_LIMIT,
            "Buffer.write() and Checksum.resolution(), 100 at a time".into(),
        ),
        (
            "(b) 200 small transformations at level 3",
            vec!["transformations".into(), urls.clone()],
            3,
            TRANSFORMATIONS_LIMIT,
            "seamless-transformer `direct`, one at a time after one warm-up transformation, new inputs each run".into(),
        ),
        (
            "(c) 1 GiB buffer written + read",
            vec!["big".into(), urls.clone(), (1u64 << 30).to_string()],
            2,
            RUN_LIMIT,
            "Buffer.write() then buffer_remote.get_buffer(); the Buffer holds 1 GiB".into(),
        ),
    ];
    let mut rows = Vec::new();
    let mut seed = 1u64;
    for (name, args, runs, limit, note) in scenarios {
        eprintln!("xtask: bench python: {name} ({runs} alternating runs per side)");
        let (mut r, mut p) = (Vec::new(), Vec::new());
        let mut stalls = 0;
        let mut stalled_at = Vec::new();
        for i in 0..runs {
            let mut args = args.clone();
            // Alternate which side goes first.
            for first_ours in [i % 2 == 0, i % 2 != 0] {
                // (b): new inputs each run, on a fresh jobserver (one worker): a run of the
                // Python package that stalled leaves the old one waiting for a promised buffer.
                let _jobserver = if args[0] == "transformations" {
                    let js =
                        Jobserver::start(&hs.url(), Some(&db.url())).map_err(|e| anyhow!(e))?;
                    args.truncate(1);
                    args.push(urls_with(&js.url()));
                    args.push(seed.to_string());
                    seed += 1;
                    Some(js)
                } else {
                    None
                };
                let (python, runs) = if first_ours {
                    (&ours, &mut r)
                } else {
                    (&reference, &mut p)
                };
                match side(python, &script, &args, limit)? {
                    Outcome::Finished(m) => runs.push(m),
                    Outcome::Stalled(_) if first_ours => {
                        anyhow::bail!("a run on the wheel stalled")
                    }
                    Outcome::Stalled(progress) => {
                        stalls += 1;
                        if let Some(m) = progress.and_then(|m| scaled(m, 200.0)) {
                            stalled_at.push(m.json["done"].to_string());
                            runs.push(m);
                        }
                    }
                }
            }
        }
        let mut note = if stalls > 0 {
            format!(
                "{note}; the Python package stalled in {stalls} of {runs} runs (a promised upload cut by close_all_clients: the jobserver waits for the buffer) and was stopped after {} s; a stalled run's wall and CPU are scaled to 200 from the transformations it finished before the stall (after {})",
                limit.as_secs(),
                if stalled_at.is_empty() { "none".to_string() } else { stalled_at.join(", ") }
            )
        } else {
            note
        };
        let (rust, python) = (median(r), (!p.is_empty()).then(|| median(p)));
        note += &format!(
            "; the wheel's transport threads used {:.2} s of its CPU",
            rust.json["transport_threads_cpu_s"].as_f64().unwrap_or(0.0)
        );
        note += &format!(
            "; whole-process CPU with start-up: {:.2} s",
            process_cpu(&rust)
        );
        if let Some(p) = &python {
            note += &format!(" vs {:.2} s", process_cpu(p));
        }
        rows.push(Row {
            scenario: name.to_string(),
            rust,
            python,
            note,
        });
    }
    write_report(
        root,
        "python",
        "Rust = our wheel (`seamless_remote` in Rust) in place of the Python seamless-remote 0.4.0, with the same released callers; the same hashserver, database and jobserver for both; medians of alternating runs. Wall and CPU = the workload's own (CPU of every thread of the client process from the start of the workload: without the interpreter's start-up and the imports, which the note gives as whole-process CPU); peak RSS = the whole client process.",
        &rows,
    )?;
    drop((db, hs));
    Ok(())
}
