//! The configuration, cross-checked against the Python seamless-config 0.3.2 (and
//! remote-http-launcher 0.4.5's template evaluation) on the same files: the launch descriptions
//! of every service, mode and stage of the examples, and the selection and activation plan of
//! every delegation level.

use std::path::{Path, PathBuf};

use seamless_config::{self as config, Config, Current, LoadOptions, PlanStep, RemoteClients};
use serde_json::{json, Value};

/// A scratch HOME and project directories made from `tests/fixtures/example-config`, with
/// `<scratch-dir>` replaced by a real directory.
struct Example {
    root: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path, scratch: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target, scratch);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(target, text.replace("<scratch-dir>", scratch)).unwrap();
        }
    }
}

impl Example {
    fn new() -> Example {
        let root = tempfile::tempdir().unwrap();
        let fixtures = seamless_tests::venv::workspace_root()
            .join("tests")
            .join("fixtures")
            .join("example-config");
        let scratch = root.path().join("scratch");
        copy_dir(&fixtures, root.path(), scratch.to_str().unwrap());
        Example { root }
    }
    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
    fn load(&self, project: &str, stage: Option<&str>) -> Result<Config, config::ConfigError> {
        config::load(&LoadOptions {
            workdir: self.dir(project),
            home: Some(self.home()),
            stage: stage.map(str::to_string),
            ..LoadOptions::default()
        })
    }
}

fn python(example: &Example, args: &[&str]) -> Option<Value> {
    python_env(example, args, None)
}

fn python_env(example: &Example, args: &[&str], cache: Option<&Path>) -> Option<Value> {
    let cmd = seamless_tests::venv::python_script("config_dump.py");
    let mut cmd = seamless_tests::require!(cmd)?;
    cmd.env_remove("SEAMLESS_CACHE");
    if let Some(c) = cache {
        cmd.env("SEAMLESS_CACHE", c);
    }
    let out = cmd.args(args).env("HOME", example.home()).output().unwrap();
    assert!(
        out.status.success(),
        "python driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// The Rust launch description of one case, as JSON.
fn rust_launch(example: &Example, project: &str, case: &Value) -> Value {
    let mut cfg = example.load(project, None).unwrap();
    if let Some(c) = s(case, "cluster") {
        cfg.cluster = Some(c);
        cfg.queue = None;
    }
    if let Some(q) = s(case, "queue") {
        cfg.queue = Some(q);
    }
    let base = cfg.current().unwrap();
    let cur = Current {
        subproject: s(case, "subproject"),
        stage: s(case, "stage"),
        substage: s(case, "substage"),
        ..base
    };
    let desc = match case["service"].as_str().unwrap() {
        "hashserver" => cfg.hashserver_launch(case["mode"] == "ro", &cur, None),
        "database" => cfg.database_launch(case["mode"] == "ro", &cur, None),
        "jobserver" => cfg.jobserver_launch(&cur, &RemoteClients::default(), None),
        "daskserver" => cfg.daskserver_launch(&cur, None),
        other => panic!("{other}"),
    }
    .unwrap();
    let mut v = desc.to_json();
    v["status_file"] = json!(desc.status_file());
    v
}

/// The reference's description with our one deliberate change (SECURITY.md, class 2): a
/// database launched on this machine without a `network_interface` binds 127.0.0.1, where the
/// reference lets it bind 0.0.0.0.
fn ours(reference: &Value) -> Value {
    let mut v = reference.clone();
    let command = v["command"].as_str().unwrap_or_default().to_string();
    if command.starts_with("seamless-database ")
        && !command.contains(" --host ")
        && v.get("hostname").is_none()
    {
        v["command"] = json!(command.replacen(" --timeout ", " --host 127.0.0.1 --timeout ", 1));
    }
    v
}

#[test]
fn launch_descriptions_equal_the_reference() {
    let example = Example::new();
    let cases = json!([
        {"service": "hashserver", "mode": "rw"},
        {"service": "hashserver", "mode": "ro", "subproject": "sub1", "stage": "prod"},
        {"service": "database", "mode": "rw"},
        {"service": "database", "mode": "rw", "stage": "prod"},
        {"service": "database", "mode": "ro", "subproject": "a/b"},
        {"service": "jobserver", "stage": "prod", "substage": "gpu"},
        {"service": "jobserver", "substage": "ignored-without-stage"},
        {"service": "daskserver"},
        {"service": "daskserver", "stage": "dask"},
        {"service": "hashserver", "mode": "rw", "cluster": "hpc"},
        {"service": "database", "mode": "ro", "cluster": "hpc", "stage": "prod"},
        {"service": "hashserver", "mode": "rw", "cluster": "hpc", "subproject": "a/b", "stage": "s1"},
        {"service": "daskserver", "cluster": "hpc", "queue": "gpu", "stage": "prod", "substage": "gpu"},
        {"service": "daskserver", "cluster": "hpc"},
    ]);
    let Some(reference) = python(
        &example,
        &[
            "launch",
            example.dir("project").to_str().unwrap(),
            &cases.to_string(),
        ],
    ) else {
        return;
    };
    let cases = cases.as_array().unwrap();
    let reference = reference.as_array().unwrap();
    assert_eq!(reference.len(), cases.len());
    for (case, want) in cases.iter().zip(reference) {
        let got = rust_launch(&example, "project", case);
        assert_eq!(&got, &ours(want), "case {case}");
    }

    // The inline `clusters:` project.
    let inline_cases = json!([
        {"service": "hashserver", "mode": "rw"},
        {"service": "database", "mode": "ro", "stage": "x"},
    ]);
    let reference = python(
        &example,
        &[
            "launch",
            example.dir("inline-project").to_str().unwrap(),
            &inline_cases.to_string(),
        ],
    )
    .unwrap();
    for (case, want) in inline_cases
        .as_array()
        .unwrap()
        .iter()
        .zip(reference.as_array().unwrap())
    {
        assert_eq!(
            &rust_launch(&example, "inline-project", case),
            &ours(want),
            "inline case {case}"
        );
    }
}

fn step_name(step: &PlanStep) -> String {
    match step {
        PlanStep::DeactivatePureDask => "pure_daskserver.deactivate".into(),
        PlanStep::DeactivateDaskserver => "daskserver_remote.deactivate".into(),
        PlanStep::ActivateBuffer => "buffer_remote.activate".into(),
        PlanStep::ActivateDatabase => "database_remote.activate".into(),
        PlanStep::ActivateJobserver => "jobserver_remote.activate".into(),
        PlanStep::ActivateDaskserver => "daskserver_remote.activate".into(),
        PlanStep::ActivatePureDask => "pure_daskserver.activate".into(),
        PlanStep::Spawn(n) => format!("spawn({n})"),
    }
}

/// The Rust equivalent of `set_stage(stage)`: load, check, plan.
fn rust_plan(example: &Example, project: &str, stage: &str) -> Value {
    let stage = (!stage.is_empty()).then_some(stage);
    let mut cfg = match example.load(project, stage) {
        Ok(c) => c,
        Err(e) => return json!({"error": e.to_string()}),
    };
    if let Err(e) = cfg.check_requirements() {
        return json!({"error": e.to_string()});
    }
    let plan = match cfg.plan() {
        Ok(p) => p,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let cur = cfg.current().unwrap();
    json!({
        "current": [cur.cluster, cur.project, cur.subproject, cur.stage, cur.substage],
        "execution": cfg.execution(),
        "persistent": cfg.persistent(),
        "calls": plan.iter().map(step_name).collect::<Vec<_>>(),
    })
}

#[test]
fn selection_and_plans_equal_the_reference() {
    let example = Example::new();
    // The example project at each stage.
    let mut cases: Vec<(String, String)> = ["", "remote", "dask", "other"]
        .iter()
        .map(|s| ("project".to_string(), s.to_string()))
        .collect();
    // Every delegation level (the reference's trace_levels cases).
    let profiles = [
        (
            "L0-cluster-persistent-false",
            "- cluster: local\n- execution: process\n- persistent: false\n",
        ),
        (
            "L2-cluster-process",
            "- cluster: local\n- execution: process\n",
        ),
        ("L2-cluster-spawn", "- cluster: local\n- execution: spawn\n"),
        (
            "L3-jobserver",
            "- cluster: local\n- execution: remote\n- remote: jobserver\n",
        ),
        (
            "L3-daskserver",
            "- cluster: local\n- execution: remote\n- remote: daskserver\n",
        ),
        (
            "L3-no-remote-pinned",
            "- cluster: local\n- execution: remote\n",
        ),
        (
            "pure-dask",
            "- cluster: local\n- execution: remote\n- remote: daskserver\n- persistent: false\n",
        ),
        ("default-exec-with-cluster", "- cluster: local\n"),
        ("remote-without-cluster", "- execution: remote\n"),
    ];
    for (name, profile) in profiles {
        let dir = example.dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("seamless.yaml"), "- project: demo\n").unwrap();
        std::fs::write(dir.join("seamless.profile.yaml"), profile).unwrap();
        cases.push((name.to_string(), "prod".to_string()));
    }
    for (project, stage) in cases {
        let Some(want) = python(
            &example,
            &["plan", example.dir(&project).to_str().unwrap(), &stage],
        ) else {
            return;
        };
        let got = rust_plan(&example, &project, &stage);
        if let Some(err) = want.get("error") {
            let ours = got.get("error").unwrap_or_else(|| {
                panic!("{project}/{stage}: reference fails ({err}), we gave {got}")
            });
            // The reference's message, minus its exception type, is part of ours.
            let msg = err.as_str().unwrap();
            let msg = msg.split_once(": ").map_or(msg, |(_, m)| m);
            assert!(
                ours.as_str().unwrap().contains(msg),
                "{project}/{stage}: {ours} vs {msg}"
            );
        } else {
            assert_eq!(got, want, "{project}/{stage}");
        }
    }
}

#[test]
fn seamless_cache_mode_equals_the_reference() {
    let example = Example::new();
    let cache = example.dir("cache");
    let cases = json!([
        {"service": "hashserver", "mode": "rw"},
        {"service": "database", "mode": "rw"},
        {"service": "hashserver", "mode": "ro", "stage": "s"},
    ]);
    // The project files are ignored in this mode: use the example project directory anyway.
    let Some(reference) = python_env(
        &example,
        &[
            "launch",
            example.dir("project").to_str().unwrap(),
            &cases.to_string(),
        ],
        Some(&cache),
    ) else {
        return;
    };
    let cfg = config::load(&LoadOptions {
        workdir: example.dir("project"),
        home: Some(example.home()),
        seamless_cache: Some(cache.clone()),
        ..LoadOptions::default()
    })
    .unwrap();
    for (case, want) in cases
        .as_array()
        .unwrap()
        .iter()
        .zip(reference.as_array().unwrap())
    {
        let cur = Current {
            stage: s(case, "stage"),
            ..cfg.current().unwrap()
        };
        let desc = match case["service"].as_str().unwrap() {
            "hashserver" => cfg.hashserver_launch(case["mode"] == "ro", &cur, None),
            _ => cfg.database_launch(case["mode"] == "ro", &cur, None),
        }
        .unwrap();
        let mut got = desc.to_json();
        got["status_file"] = json!(desc.status_file());
        assert_eq!(&got, &ours(want), "SEAMLESS_CACHE case {case}");
    }
}

#[test]
fn the_examples_parse_and_select_as_documented() {
    let example = Example::new();
    let cfg = example.load("project", None).unwrap();
    assert_eq!(cfg.clusters.local_cluster.as_deref(), Some("local"));
    let hpc = &cfg.clusters.clusters["hpc"];
    assert!(hpc.tunnel);
    assert_eq!(hpc.queues["gpu"].cores, Some(4));
    assert_eq!(
        hpc.queues["gpu"].walltime, "01:00:00",
        "inherited from TEMPLATE default"
    );
    assert_eq!(cfg.delegation().unwrap().level(), 2);
    let cfg = example.load("project", Some("remote")).unwrap();
    assert_eq!(cfg.delegation().unwrap().level(), 3);
    let cfg = example.load("inline-project", None).unwrap();
    assert_eq!(cfg.cluster.as_deref(), Some("mylocal"));
    assert_eq!(cfg.clusters.local_cluster.as_deref(), Some("mylocal"));
}
