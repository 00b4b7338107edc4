//! Project files (`seamless.yaml`, `seamless.profile.yaml`) and cluster files, and [`load`].
//!
//! Order of evaluation, as seamless-config's `load_config_files`:
//! 1. `SEAMLESS_CACHE` mode replaces everything (a synthetic local cluster);
//! 2. `~/.seamless/clusters.yaml`, then `~/.seamless/clusters/*.yaml` (sorted by name);
//! 3. the project files of the workdir, and of its parents while a directory says
//!    `inherit_from_parent` (topmost first; `seamless.yaml` before `seamless.profile.yaml`), with
//!    `stage NAME:` blocks expanded when NAME is the current stage;
//! 4. the `clusters:` commands first (priority), then every other command in order;
//! 5. explicit selections ([`LoadOptions::project`], [`LoadOptions::subproject`], from command-line
//!    flags) last: **a flag wins over a file** (the reference lets the file silently override it).

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::cluster::RawClusters;
use super::select::{Config, Execution, Remote};
use super::{validate_name, ConfigError};

/// The project file names, in evaluation order.
pub const CONFIG_FILENAMES: [&str; 2] = ["seamless.yaml", "seamless.profile.yaml"];
/// The cluster of `SEAMLESS_CACHE` mode.
pub const SEAMLESS_CACHE_CLUSTER: &str = "__SEAMLESS_CACHE__";
/// The project of `SEAMLESS_CACHE` mode (unless one is selected).
pub const PROJECT_TOPLEVEL: &str = "__TOPLEVEL__";

const KNOWN_COMMANDS: &str = "project, subproject, cluster, execution, remote, persistent, queue, record, node, nparallel, clusters, inherit_from_parent, 'stage NAME:'";

/// What to load, from where.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The project directory (the reference's workdir; the CLIs use the current directory).
    pub workdir: PathBuf,
    /// The home directory holding `.seamless/` (default `$HOME`).
    pub home: Option<PathBuf>,
    /// `SEAMLESS_CACHE` mode: the cache directory.
    pub seamless_cache: Option<PathBuf>,
    /// The current stage.
    pub stage: Option<String>,
    /// The current substage.
    pub substage: Option<String>,
    /// An explicit project (a command-line flag): wins over the files.
    pub project: Option<String>,
    /// An explicit subproject: wins over the files.
    pub subproject: Option<String>,
}

/// The deepest nesting accepted in a configuration file (real files nest 4 or 5 levels).
pub const MAX_YAML_DEPTH: usize = 64;

/// Reads a configuration file: a regular file (or a pipe) of at most
/// [`CONFIG_FILE_CAP`](seamless_safe_io::fs::CONFIG_FILE_CAP), nested at most [`MAX_YAML_DEPTH`]
/// levels, so that a hostile or broken file fails fast.
fn read_yaml(path: &Path) -> Result<Value, ConfigError> {
    use seamless_safe_io::fs::{read_text_capped, Accept, CONFIG_FILE_CAP};
    let text =
        read_text_capped(path, CONFIG_FILE_CAP, Accept::RegularOrPipe).map_err(|source| {
            ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?;
    parse_yaml(&text).map_err(|detail| ConfigError::Yaml {
        path: path.to_path_buf(),
        detail,
    })
}

/// Parses YAML text after a cheap nesting check ([`MAX_YAML_DEPTH`]).
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    let depth = yaml_depth(text);
    if depth > MAX_YAML_DEPTH {
        return Err(format!(
            "nested {depth} levels deep; at most {MAX_YAML_DEPTH} are accepted"
        ));
    }
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

/// An upper estimate of the nesting depth of YAML text: block levels (indentation and `- `
/// items) plus flow levels (`[` and `{`), ignoring comments. Quoted brackets may overcount,
/// which only matters for files that nest deeply already.
fn yaml_depth(text: &str) -> usize {
    let mut indents: Vec<usize> = Vec::new();
    let mut deepest = 0;
    // Flow collections may span lines.
    let mut flow = 0usize;
    for line in text.lines() {
        let body = line.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while indents.last().is_some_and(|&i| i >= indent) {
            indents.pop();
        }
        indents.push(indent);
        let mut rest = body;
        let mut dashes = 0;
        while let Some(r) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("-\t")) {
            dashes += 1;
            rest = r.trim_start();
        }
        let mut max_flow = flow;
        for c in rest.chars() {
            match c {
                '#' => break,
                '[' | '{' => {
                    flow += 1;
                    max_flow = max_flow.max(flow);
                }
                ']' | '}' => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        deepest = deepest.max(indents.len() + dashes + max_flow);
    }
    deepest
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    #[test]
    fn deep_yaml_fails_fast() {
        assert_eq!(yaml_depth("a:\n  b:\n    c: 1\n"), 3);
        assert!(yaml_depth("- [1, {a: [2]}]") >= 4);
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let e = parse_yaml(&deep).unwrap_err();
        assert!(e.contains("at most 64"), "{e}");
        let multiline = "[\n".repeat(1000);
        assert!(parse_yaml(&multiline).is_err());
        let mut block = String::new();
        for i in 0..200 {
            block += &format!("{}k{i}:\n", " ".repeat(i));
        }
        assert!(parse_yaml(&block).is_err());
    }
}

/// Cluster files: `clusters.yaml`, then `clusters/*.yaml` sorted by name. An empty file is
/// skipped (the reference crashes on one).
fn load_home_clusters(home: &Path, raw: &mut RawClusters) -> Result<(), ConfigError> {
    let dir = home.join(".seamless");
    let mut files = vec![dir.join("clusters.yaml")];
    if let Ok(entries) = std::fs::read_dir(dir.join("clusters")) {
        let mut more: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        more.sort();
        files.extend(more);
    }
    // A path that exists but is not a regular file (a directory, a device) is a clear error.
    for file in files.into_iter().filter(|f| f.exists()) {
        match read_yaml(&file)? {
            Value::Null => continue,
            Value::Mapping(m) => raw.update(&m, &file.display().to_string())?,
            _ => {
                return Err(ConfigError::Yaml {
                    path: file,
                    detail: "expected a mapping of cluster definitions".into(),
                })
            }
        }
    }
    Ok(())
}

/// One command of a project file.
#[derive(Debug, Clone)]
struct Command {
    name: String,
    argument: Value,
    path: PathBuf,
}

fn command_name(entry: &Value) -> Option<&str> {
    match entry {
        Value::String(s) => Some(s),
        Value::Mapping(m) if m.len() == 1 => m.keys().next().and_then(Value::as_str),
        _ => None,
    }
}

/// The command entries of the workdir and, while asked for, its parents (topmost first).
fn collect_entries(workdir: &Path) -> Result<Vec<(PathBuf, Value)>, ConfigError> {
    let mut dir = std::fs::canonicalize(workdir).map_err(|source| ConfigError::Io {
        path: workdir.to_path_buf(),
        source,
    })?;
    let mut by_dir: Vec<Vec<(PathBuf, Value)>> = Vec::new();
    loop {
        let mut entries = Vec::new();
        let mut inherit = false;
        for name in CONFIG_FILENAMES {
            let path = dir.join(name);
            // Absent: skipped; present but not a regular file: a clear error from read_yaml.
            if !path.exists() {
                continue;
            }
            let Value::Sequence(list) = read_yaml(&path)? else {
                return Err(ConfigError::NotAList { path });
            };
            inherit |= list
                .iter()
                .any(|e| command_name(e) == Some("inherit_from_parent"));
            entries.extend(list.into_iter().map(|e| (path.clone(), e)));
        }
        by_dir.push(entries);
        if !inherit {
            break;
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => break,
        }
    }
    Ok(by_dir.into_iter().rev().flatten().collect())
}

/// Parses entries into commands, expanding the stage blocks of the current stage.
fn build_commands(
    entries: Vec<(PathBuf, Value)>,
    stage: Option<&str>,
    out: &mut Vec<Command>,
) -> Result<(), ConfigError> {
    for (path, entry) in entries {
        let bad = |detail: String| ConfigError::Command {
            path: path.clone(),
            detail,
        };
        let (name, argument) = match &entry {
            Value::String(s) => (s.clone(), Value::Null),
            Value::Mapping(m) if m.len() == 1 => {
                let Some((k, v)) = m.iter().next() else {
                    continue;
                };
                let Some(k) = k.as_str() else {
                    return Err(bad("command names must be strings".into()));
                };
                (k.to_string(), v.clone())
            }
            other => {
                return Err(bad(format!(
                    "commands must be strings or single-key mappings, not {}",
                    serde_yaml::to_string(other).unwrap_or_default().trim()
                )))
            }
        };
        if name == "inherit_from_parent" {
            continue;
        }
        if let Some(rest) = name.strip_prefix("stage") {
            let block_stage = rest.trim();
            if block_stage.is_empty() {
                return Err(bad(
                    "'stage' cannot be set from a file: use the --stage option (or set_stage()); to give commands for one stage, write '- stage NAME:' followed by a list".into(),
                ));
            }
            let Value::Sequence(nested) = argument else {
                return Err(bad(format!(
                    "'stage {block_stage}' must be followed by a YAML list of commands"
                )));
            };
            if stage == Some(block_stage) {
                let nested = nested.into_iter().map(|e| (path.clone(), e)).collect();
                build_commands(nested, stage, out)?;
            }
            continue;
        }
        out.push(Command {
            name,
            argument,
            path,
        });
    }
    Ok(())
}

fn execute(cfg: &mut Config, cmd: &Command) -> Result<(), ConfigError> {
    let arg = &cmd.argument;
    let bad = |expected: &str| ConfigError::Command {
        path: cmd.path.clone(),
        detail: format!(
            "'{}' command expects {expected}, got {}",
            cmd.name,
            describe(arg)
        ),
    };
    let named = |e: ConfigError| ConfigError::Command {
        path: cmd.path.clone(),
        detail: format!("'{}' command: {e}", cmd.name),
    };
    match cmd.name.as_str() {
        "project" => {
            let v = arg.as_str().ok_or_else(|| bad("a string"))?;
            validate_name("project", v).map_err(named)?;
            cfg.project = Some(v.to_string());
        }
        "subproject" => {
            let v = arg.as_str().ok_or_else(|| bad("a string"))?;
            validate_name("subproject", v).map_err(named)?;
            cfg.subproject = Some(v.to_string());
        }
        "cluster" => {
            let v = match arg {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(bad("a string or null")),
            };
            if let Some(name) = &v {
                validate_name("cluster", name).map_err(named)?;
                if !cfg.clusters.clusters.contains_key(name) {
                    let known: Vec<&str> =
                        cfg.clusters.clusters.keys().map(String::as_str).collect();
                    return Err(named(ConfigError::Selection(format!(
                        "unknown cluster '{name}' (known: {}); define it in ~/.seamless/clusters.yaml or with a 'clusters:' command",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ))));
                }
            }
            if v != cfg.cluster {
                cfg.queue = None;
            }
            cfg.cluster = v;
        }
        "execution" => {
            let v = arg.as_str().ok_or_else(|| bad("a string"))?;
            let e = Execution::parse(v).ok_or_else(|| bad("one of process, spawn, remote"))?;
            cfg.execution = Some(e);
        }
        "remote" => {
            cfg.remote = match arg {
                Value::Null => None,
                Value::String(s) if s == "jobserver" => Some(Remote::Jobserver),
                Value::String(s) if s == "daskserver" => Some(Remote::Daskserver),
                _ => return Err(bad("null, jobserver or daskserver")),
            };
        }
        "persistent" => cfg.persistent = Some(arg.as_bool().ok_or_else(|| bad("true or false"))?),
        "record" => cfg.record = arg.as_bool().ok_or_else(|| bad("true or false"))?,
        "queue" => {
            let q = arg.as_str().ok_or_else(|| bad("a string"))?;
            let cluster = cfg.cluster.clone().ok_or_else(|| {
                named(ConfigError::Selection(
                    "cannot select a queue without selecting a cluster first".into(),
                ))
            })?;
            let clus = cfg.clusters.get(&cluster).map_err(named)?;
            if clus.queues.is_empty() {
                return Err(named(ConfigError::Selection(format!(
                    "cluster '{cluster}' has no queues"
                ))));
            }
            if !clus.queues.contains_key(q) {
                return Err(named(ConfigError::Selection(format!(
                    "cluster '{cluster}' has no queue '{q}'"
                ))));
            }
            cfg.queue = Some(q.to_string());
        }
        "node" => {
            cfg.node = match arg {
                Value::Null => None,
                Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
                _ => return Err(bad("a non-empty string or null")),
            };
        }
        "nparallel" => {
            let n = arg
                .as_u64()
                .filter(|n| *n >= 1 && *n <= u32::MAX as u64)
                .ok_or_else(|| bad("a positive integer"))?;
            cfg.nparallel = Some(n as u32);
        }
        other => {
            return Err(ConfigError::Command {
                path: cmd.path.clone(),
                detail: format!("unknown command '{other}' (known commands: {KNOWN_COMMANDS})"),
            })
        }
    }
    Ok(())
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{s}'"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

/// Loads the configuration. The result's [`Config::warnings`] holds the reference's warnings;
/// call [`Config::check_requirements`] for the checks that `set_stage` makes.
pub fn load(options: &LoadOptions) -> Result<Config, ConfigError> {
    for (what, v) in [
        ("stage", &options.stage),
        ("substage", &options.substage),
        ("project", &options.project),
        ("subproject", &options.subproject),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            validate_name(what, v)?;
        }
    }
    let mut cfg = Config {
        stage: options.stage.clone().filter(|s| !s.is_empty()),
        substage: options.substage.clone().filter(|s| !s.is_empty()),
        ..Config::default()
    };
    if let Some(cache) = &options.seamless_cache {
        let dir = cache.display().to_string();
        let mut raw = RawClusters::default();
        let mapping: Mapping = serde_yaml::from_value(serde_yaml::to_value(serde_json::json!({
            "local_cluster": SEAMLESS_CACHE_CLUSTER,
            SEAMLESS_CACHE_CLUSTER: {
                "type": "local",
                "frontends": [{"hashserver": {"bufferdir": dir}, "database": {"database_dir": dir}}]
            }
        })).map_err(|e| ConfigError::Selection(e.to_string()))?)
        .map_err(|e| ConfigError::Selection(e.to_string()))?;
        raw.update(&mapping, "SEAMLESS_CACHE")?;
        cfg.clusters = raw.parse()?;
        cfg.cluster = Some(SEAMLESS_CACHE_CLUSTER.into());
        cfg.project = Some(
            options
                .project
                .clone()
                .unwrap_or_else(|| PROJECT_TOPLEVEL.into()),
        );
        cfg.subproject = options.subproject.clone();
        cfg.execution = Some(Execution::Process);
        cfg.persistent = Some(true);
        cfg.seamless_cache = Some(cache.clone());
        return Ok(cfg);
    }
    let mut raw = RawClusters::default();
    if let Some(home) = &options.home {
        load_home_clusters(home, &mut raw)?;
    }
    let mut commands = Vec::new();
    build_commands(
        collect_entries(&options.workdir)?,
        cfg.stage.as_deref(),
        &mut commands,
    )?;
    for cmd in commands.iter().filter(|c| c.name == "clusters") {
        let Value::Mapping(m) = &cmd.argument else {
            return Err(ConfigError::Command {
                path: cmd.path.clone(),
                detail: format!(
                    "'clusters' command expects a mapping, got {}",
                    describe(&cmd.argument)
                ),
            });
        };
        raw.update(m, &format!("{} ('clusters:' command)", cmd.path.display()))?;
    }
    cfg.clusters = raw.parse()?;
    for cmd in commands.iter().filter(|c| c.name != "clusters") {
        execute(&mut cfg, cmd)?;
    }
    if let Some(p) = &options.project {
        cfg.project = Some(p.clone());
    }
    if let Some(s) = &options.subproject {
        cfg.subproject = Some(s.clone());
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn setup() -> (tempfile::TempDir, LoadOptions) {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        write(
            &home.join(".seamless"),
            "clusters.yaml",
            "local_cluster: local\nlocal:\n  type: local\n  workers: 2\n  frontends:\n    - hashserver: {bufferdir: /b}\n      database: {database_dir: /d}\n      jobserver: {conda: null, network_interface: 127.0.0.1, port_start: 1, port_end: 2}\n",
        );
        let project = root.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        let opts = LoadOptions {
            workdir: project,
            home: Some(home),
            ..LoadOptions::default()
        };
        (root, opts)
    }

    #[test]
    fn commands_stages_and_flag_precedence() {
        let (_root, mut opts) = setup();
        write(&opts.workdir, "seamless.yaml", "- project: demo\n");
        write(
            &opts.workdir,
            "seamless.profile.yaml",
            "- cluster: local\n- execution: process\n- stage remote:\n    - execution: remote\n    - remote: jobserver\n",
        );
        let cfg = load(&opts).unwrap();
        assert_eq!(cfg.project.as_deref(), Some("demo"));
        assert_eq!(cfg.execution(), Execution::Process);
        opts.stage = Some("remote".into());
        opts.project = Some("other".into());
        let cfg = load(&opts).unwrap();
        assert_eq!(cfg.execution(), Execution::Remote);
        assert_eq!(cfg.remote, Some(Remote::Jobserver));
        assert_eq!(cfg.project.as_deref(), Some("other"), "the flag wins");
    }

    #[test]
    fn inheritance_runs_parents_first() {
        let (_root, mut opts) = setup();
        write(
            &opts.workdir,
            "seamless.yaml",
            "- project: parent\n- cluster: local\n",
        );
        let child = opts.workdir.join("child");
        write(
            &child,
            "seamless.yaml",
            "- inherit_from_parent\n- project: child\n",
        );
        opts.workdir = child;
        let cfg = load(&opts).unwrap();
        assert_eq!(cfg.project.as_deref(), Some("child"));
        assert_eq!(cfg.cluster.as_deref(), Some("local"));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let (_root, opts) = setup();
        let cases = [
            ("project: demo\n", "expected a YAML list"),
            ("- colour: red\n", "unknown command 'colour'"),
            ("- stage: prod\n", "cannot be set from a file"),
            ("- project: a--b\n", "cannot contain '--'"),
            ("- project: a/b\n", "cannot contain '/'"),
            ("- project: STAGE-x\n", "cannot contain 'STAGE-'"),
            ("- nparallel: 0\n", "positive integer"),
            ("- execution: fast\n", "process, spawn, remote"),
            ("- cluster: nowhere\n", "unknown cluster 'nowhere'"),
            ("- [1, 2]\n", "single-key mappings"),
            ("- project: [\n", "invalid YAML"),
        ];
        for (text, expected) in cases {
            write(&opts.workdir, "seamless.yaml", text);
            let err = load(&opts).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.contains("seamless.yaml"), "{text:?}: {err}");
        }
    }

    #[test]
    fn empty_and_sorted_cluster_files() {
        let (_root, opts) = setup();
        let dir = opts
            .home
            .clone()
            .unwrap()
            .join(".seamless")
            .join("clusters");
        write(&dir, "a.yaml", "");
        write(&dir, "b.yaml", "x:\n  type: local\n  frontends: []\n");
        write(
            &dir,
            "c.yaml",
            "x:\n  type: local\n  workers: 7\n  frontends: []\n",
        );
        write(&opts.workdir, "seamless.yaml", "- project: p\n");
        let cfg = load(&opts).unwrap();
        assert_eq!(
            cfg.clusters.clusters["x"].workers,
            Some(7),
            "c.yaml comes after b.yaml"
        );
    }

    #[test]
    fn seamless_cache_mode() {
        let (_root, mut opts) = setup();
        opts.seamless_cache = Some(PathBuf::from("/data/cache"));
        let cfg = load(&opts).unwrap();
        assert_eq!(cfg.cluster.as_deref(), Some(SEAMLESS_CACHE_CLUSTER));
        assert_eq!(cfg.project.as_deref(), Some(PROJECT_TOPLEVEL));
        assert_eq!(cfg.execution(), Execution::Process);
        assert!(cfg.persistent());
    }
}
