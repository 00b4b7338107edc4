//! `cargo xtask demo dask`: the same job on Dask. In a scratch HOME, a local cluster whose stage
//! `dask` says `execution: remote`, `remote: daskserver`; `activate` launches a LocalCluster
//! daskserver and our Dask front (and the hashserver and database), ten transformations are
//! submitted at once and their results read back, `seamless-resolve` shows one of them, and
//! `deactivate` stops the front. Everything it started is stopped at the end.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use seamless_daskserver_remote::remote as dask;
use seamless_daskserver_remote::{ConfigDaskserverLauncher, Submission};
use seamless_remote_core::ClientOptions;
use seamless_tests::launchenv::{launched_stores, Env};
use seamless_tests::transformation::python;
use serde_json::json;

/// Entry point.
pub fn run(root: &Path) -> Result<()> {
    let venv = crate::venv::ensure(root)?;
    std::env::set_var("SEAMLESS_TEST_VENV", &venv);
    crate::demo::build_binaries(root)?;
    let env = Env::with_dask();
    println!(
        "# Seamless remote, in Rust: Dask demo\nscratch HOME: {}",
        env.home().display()
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let (cfg, launcher) = env.dask_config();
        let (buffers, databases, activate) =
            launched_stores(&cfg, &launcher, ClientOptions::default());
        let (b, d) = (buffers.active(), databases.active());
        let clients = seamless_jobserver_remote::launched::live_clients(
            Arc::new(buffers),
            Arc::new(databases),
        );
        dask::set_launcher(ConfigDaskserverLauncher::new(
            cfg,
            launcher,
            ClientOptions::default(),
            clients,
        ));
        println!("\n## activate (launches the daskserver and the Dask front)");
        if let Some(info) = dask::activate(&activate).await? {
            println!("{}", info.dashboard_line());
        }

        println!("\n## ten transformations `x * x`, submitted at once");
        let ts: Vec<_> = (0..10)
            .map(|x| python("def square(x):\n    return x * x\n", &[("x", json!(x))]))
            .collect();
        let jobs = ts.iter().map(|t| {
            let s = Submission::new(t.dict.clone(), t.buffers.clone());
            let (b, d) = (b.clone(), d.clone());
            async move { dask::submit(&s, &b, &d).await }
        });
        let results = futures_util::future::join_all(jobs).await;
        let mut last = None;
        for (x, r) in results.into_iter().enumerate() {
            let r = r?;
            let value = b.get_buffer(&r).await?.unwrap_or_default();
            println!(
                "square({x}) = {}   (result {r})",
                String::from_utf8_lossy(&value).trim()
            );
            last = Some(r);
        }
        anyhow::Ok(last)
    })?;
    if let Some(r) = result {
        let out = env
            .cmd(&root.join("target/debug/seamless-resolve"))
            .args([&r.to_hex(), "--stage", "dask"])
            .current_dir(env.project())
            .env_remove("SEAMLESS_REMOTE_CLIENTS")
            .output()?;
        println!(
            "\n## seamless-resolve {} --stage dask\n{}(exit {})",
            r.to_hex(),
            String::from_utf8_lossy(&out.stdout),
            out.status.code().unwrap_or(-1)
        );
    }
    println!("\n## deactivate (stops our front)");
    dask::deactivate();
    println!("\nStopping the services the demo started.");
    Ok(())
}
