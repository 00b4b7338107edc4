//! Test helper: launch (or reuse) one service of a project, as a separate process would.
//!
//! `launch-once PROJECT_DIR SERVICE [ro|rw]` (SERVICE: hashserver, database) with `HOME` naming
//! the home that holds `.seamless/` and `.remote-http-launcher/`. Prints one JSON line:
//! `{"url", "port", "outcome", "pid"}` (pid from the server file).

use seamless_activation::Settings;
use seamless_config::load;
use seamless_launcher::Outcome;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(service)) = (args.first(), args.get(1)) else {
        eprintln!("usage: launch-once PROJECT_DIR SERVICE [ro|rw]");
        std::process::exit(2);
    };
    let readonly = args.get(2).is_some_and(|m| m == "ro");
    let result = (|| -> Result<String, String> {
        let settings = Settings::from_env().install();
        let cfg = load(&settings.load_options(dir)).map_err(|e| e.to_string())?;
        let cur = cfg.current().map_err(|e| e.to_string())?;
        let desc = match service.as_str() {
            "hashserver" => cfg.hashserver_launch(readonly, &cur, None),
            "database" => cfg.database_launch(readonly, &cur, None),
            other => return Err(format!("unknown service {other}")),
        }
        .map_err(|e| e.to_string())?;
        let launcher = settings.launcher();
        let c = launcher.run(&(&desc).into()).map_err(|e| e.to_string())?;
        let server =
            std::fs::read_to_string(launcher.dirs().server_file(&desc.key)).unwrap_or_default();
        let pid = serde_json::from_str::<serde_json::Value>(&server)
            .ok()
            .and_then(|v| v["pid"].as_i64())
            .unwrap_or(0);
        let outcome = match c.outcome {
            Outcome::ReusedLocal => "reused-local",
            Outcome::ReusedRemote => "reused-remote",
            Outcome::Launched => "launched",
        };
        Ok(
            serde_json::json!({"url": c.url(), "port": c.port, "outcome": outcome, "pid": pid})
                .to_string(),
        )
    })();
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("launch-once: {e}");
            std::process::exit(1);
        }
    }
}
