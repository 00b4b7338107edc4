//! `cargo xtask bench python`: the same Seamless workload on our wheel and on the Python
//! seamless-remote, against the same real services, in alternating runs: (a) 2000 small buffers
//! written and 2000 read through seamless-core's Buffer API, (b) 200 small transformations at
//! delegation level 3, (c) a 1 GiB buffer written and read. Wall time of the workload, client
//! CPU (user + system of the whole process) and peak RSS, as ratios.

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, Result};
use seamless_tests::services::{Database, Hashserver, HashserverOptions, Jobserver};

use crate::bench::{median, run_measured, write_report, Measured, Row};

fn side(python: &Path, script: &Path, args: &[String]) -> Result<Measured> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(args)
        .env_remove("SEAMLESS_REMOTE_CLIENTS")
        .env_remove("SEAMLESS_CACHE");
    run_measured(cmd)
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
    let js = Jobserver::start(&hs.url(), Some(&db.url())).map_err(|e| anyhow!(e))?;
    let urls =
        serde_json::json!({"hashserver": hs.url(), "database": db.url(), "jobserver": js.url()})
            .to_string();

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

    let scenarios: Vec<(&str, Vec<String>, usize, String)> = vec![
        (
            "(a) 2000 small buffers written + 2000 read (Buffer API)",
            vec![
                "buffers".into(),
                urls.clone(),
                read_file.display().to_string(),
            ],
            5,
            "Buffer.write() and Checksum.resolution(), 100 at a time".into(),
        ),
        (
            "(b) 200 small transformations at level 3",
            vec!["transformations".into(), urls.clone()],
            3,
            "seamless-transformer `direct`, one at a time, new inputs each run".into(),
        ),
        (
            "(c) 1 GiB buffer written + read",
            vec!["big".into(), urls.clone(), (1u64 << 30).to_string()],
            2,
            "Buffer.write() then buffer_remote.get_buffer(); the Buffer holds 1 GiB".into(),
        ),
    ];
    let mut rows = Vec::new();
    let mut seed = 1u64;
    for (name, args, runs, note) in scenarios {
        eprintln!("xtask: bench python: {name} ({runs} alternating runs per side)");
        let (mut r, mut p) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let mut args = args.clone();
            let mut next = |args: &mut Vec<String>| {
                if args[0] == "transformations" {
                    args.truncate(2);
                    args.push(seed.to_string());
                    seed += 1;
                }
            };
            // Alternate which side goes first.
            for first_ours in [i % 2 == 0, i % 2 != 0] {
                next(&mut args);
                if first_ours {
                    r.push(side(&ours, &script, &args)?);
                } else {
                    p.push(side(&reference, &script, &args)?);
                }
            }
        }
        rows.push(Row {
            scenario: name.to_string(),
            rust: median(r),
            python: Some(median(p)),
            note,
        });
    }
    write_report(
        root,
        "python",
        "Rust = our wheel (`seamless_remote` in Rust) in place of the Python seamless-remote 0.4.0, with the same released callers; the same hashserver, database and jobserver for both; medians of alternating runs. Wall = the workload's own time; CPU and peak RSS = the whole client process.",
        &rows,
    )?;
    drop((js, db, hs));
    Ok(())
}
