//! `cargo xtask bench dask`: 100 small independent transformations submitted at once on one
//! LocalCluster daskserver, through the Rust handle (our `submit`: result-cache lookup, input
//! check, `/run-transformation` on the Dask front) vs the Python reference's
//! `SeamlessDaskClient` (in-process, `submit_transformation` + `thin.result()`). Rounds
//! alternate between the two; every round uses fresh inputs, so nothing comes from a cache.
//! Wall time from the first submission to the last result.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use seamless_daskserver_remote::{submit, DaskserverLaunchedHandle, Submission};
use seamless_jobserver_remote::RunRequest;
use seamless_remote_core::{Checksum, ClientOptions};
use seamless_tests::launchenv::{launched_stores, Env};
use seamless_tests::transformation::{mixed_buffer, python, Transformation};
use serde_json::json;

const N: usize = 100;
const ROUNDS: usize = 5;
const CODE: &str = "def add(a, b):\n    return a + b\n";

fn batch(seed: i64, n: usize) -> Vec<Transformation> {
    (0..n)
        .map(|i| python(CODE, &[("a", json!(i)), ("b", json!(seed))]))
        .collect()
}

fn expected(seed: i64, n: usize) -> Vec<Checksum> {
    (0..n)
        .map(|i| Checksum::of(&mixed_buffer(&json!(i as i64 + seed))))
        .collect()
}

/// Entry point.
pub fn run(root: &Path) -> Result<()> {
    let venv = crate::venv::ensure(root)?;
    std::env::set_var("SEAMLESS_TEST_VENV", &venv);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(root))
}

async fn bench(root: &Path) -> Result<()> {
    let env = Env::with_dask();
    let (cfg, launcher) = env.dask_config();
    let options = ClientOptions::default();
    let (buffers, databases, _) = launched_stores(&cfg, &launcher, options.clone());
    let (b, d) = (buffers.active(), databases.active());
    let clients =
        seamless_jobserver_remote::launched::live_clients(Arc::new(buffers), Arc::new(databases));
    let handle = DaskserverLaunchedHandle::new(&cfg, &cfg.current()?, launcher, options, clients)?;
    let info = handle.ensure().await?;
    eprintln!(
        "bench dask: LocalCluster at {} ({} Seamless worker per Dask worker)",
        info.scheduler_address, info.cores
    );

    let upload = |ts: Vec<Transformation>| {
        let b = b.clone();
        async move {
            for t in &ts {
                for (cs, buf) in &t.buffers {
                    b.write_buffer(cs, buf.clone()).await?;
                }
            }
            anyhow::Ok(ts)
        }
    };
    let run_rust = |ts: Vec<Transformation>| {
        let (b, d, client) = (b.clone(), d.clone(), handle.client().clone());
        async move {
            let start = Instant::now();
            let jobs = ts.iter().map(|t| {
                let s = Submission::new(t.dict.clone(), Vec::new());
                let (b, d, client) = (b.clone(), d.clone(), client.clone());
                async move { submit::submit(&client, &s, &b, &d).await }
            });
            let results = futures_util::future::join_all(jobs).await;
            let wall = start.elapsed().as_secs_f64();
            let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
            anyhow::Ok((wall, results))
        }
    };
    let run_front = |ts: Vec<Transformation>| {
        let client = handle.client().clone();
        async move {
            let start = Instant::now();
            let jobs = ts.iter().map(|t| {
                let r = RunRequest::new(t.dict.clone(), t.tf_checksum);
                let client = client.clone();
                async move { client.run_transformation(&r).await }
            });
            let results = futures_util::future::join_all(jobs).await;
            let wall = start.elapsed().as_secs_f64();
            let results = results
                .into_iter()
                .map(|r| r.map(|j| j.result_checksum()))
                .collect::<Result<Vec<_>, _>>()?;
            anyhow::Ok((wall, results.into_iter().flatten().collect::<Vec<_>>()))
        }
    };
    let run_python = |rounds: Vec<Vec<Transformation>>| -> Result<Vec<f64>> {
        let jobs: Vec<Vec<_>> = rounds
            .iter()
            .map(|r| r.iter().map(|t| (t.dict.clone(), t.tf_checksum)).collect())
            .collect();
        let v = env.python_on_dask(&jobs).map_err(anyhow::Error::msg)?;
        let mut walls = Vec::new();
        for (round, r) in rounds
            .iter()
            .zip(v["rounds"].as_array().into_iter().flatten())
        {
            let got: Vec<&str> = r["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .collect();
            if got.len() != round.len() || got.iter().any(|g| g.starts_with("error")) {
                bail!("the Python reference gave wrong results: {r}");
            }
            walls.push(r["wall"].as_f64().unwrap_or(f64::NAN));
        }
        Ok(walls)
    };

    // Warm-up, a full batch per side: the workers spawn their Seamless workers and import
    // everything, our connections to the front are open (as in any long-running program).
    let warm = upload(batch(-1000, N)).await?;
    run_rust(warm).await?;
    let mut rows = Vec::new();
    for round in 0..ROUNDS {
        let seed_r = 10_000 * (3 * round as i64 + 1);
        let seed_f = 10_000 * (3 * round as i64 + 2);
        let seed_p = 10_000 * (3 * round as i64 + 3);
        let ours = upload(batch(seed_r, N)).await?;
        let front_only = upload(batch(seed_f, N)).await?;
        let theirs = upload(batch(seed_p, N)).await?;
        let pwarm = upload(batch(-1_000_000 * (round as i64 + 1), N)).await?;
        let (rust_wall, results) = run_rust(ours).await?;
        if results != expected(seed_r, N) {
            bail!("wrong results from the Rust handle");
        }
        let (front_wall, results) = run_front(front_only).await?;
        if results != expected(seed_f, N) {
            bail!("wrong results from the Dask front");
        }
        let walls = run_python(vec![pwarm, theirs])?;
        let python_wall = walls.get(1).copied().unwrap_or(f64::NAN);
        eprintln!(
            "round {}: Rust submit {rust_wall:.2} s, Rust run_transformation {front_wall:.2} s, Python {python_wall:.2} s",
            round + 1
        );
        rows.push((rust_wall, front_wall, python_wall));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::task::spawn_blocking(move || handle.stop_front()).await?;

    let median = |f: fn(&(f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (rm, fm, pm) = (median(|x| x.0), median(|x| x.1), median(|x| x.2));
    let mut report = format!(
        "# cargo xtask bench dask\n\nMachine: {} cores. {N} small independent transformations (`a + b`, fresh inputs every round and every column) submitted at once on one LocalCluster daskserver (1 Dask worker, 1 Seamless worker); wall time from the first submission to the last result. Rust `submit`: the caller side (result-cache lookup in the database, input check, upload of the transformation buffer) then `/run-transformation` on the Dask front. Rust `run_transformation`: the front only, the same work as the Python column. Python: the reference's `SeamlessDaskClient` in-process (`submit_transformation`, `thin.result()`). Rounds alternate, each side after a full warm-up batch.\n\n| round | Rust submit s | Rust run_transformation s | Python SeamlessDaskClient s | submit / Python | run_transformation / Python |\n|---|---|---|---|---|---|\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    for (i, (rw, fw, pw)) in rows.iter().enumerate() {
        report += &format!(
            "| {} | {rw:.2} | {fw:.2} | {pw:.2} | {:.2} | {:.2} |\n",
            i + 1,
            rw / pw,
            fw / pw
        );
    }
    report += &format!(
        "| median | {rm:.2} | {fm:.2} | {pm:.2} | {:.2} | {:.2} |\n",
        rm / pm,
        fm / pm
    );
    let dir = root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("dask.md"), &report)?;
    println!("{report}");
    Ok(())
}
