"""What seamless-config 0.3.2 (with remote-http-launcher 0.4.5) decides for a project, as JSON,
for the Rust cross-check. HOME must point at the home that holds .seamless/.

    config_dump.py launch WORKDIR CASES_JSON
        CASES_JSON: a list of {"service", "mode", "cluster", "subproject", "stage", "substage",
        "queue"} (missing = null). Prints a list of launch dicts, each with "key" and "command"
        evaluated the way remote-http-launcher evaluates them (and "status_file").
    config_dump.py plan WORKDIR STAGE
        Loads the project at STAGE ("" = none) and prints the selection and the activate() /
        deactivate() calls of the stage change (stubbed: nothing is launched).
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")


def launch(workdir: str, cases: list) -> list:
    import seamless_config
    from seamless_config import select, tools
    from seamless_config.config_files import load_config_files
    from remote_http_launcher import (
        Configuration,
        LocalExecutor,
        NullObserver,
        RemoteState,
        _default_server_directory,
    )

    seamless_config.set_workdir(workdir)
    load_config_files()
    out = []
    base_cluster = select.get_selected_cluster()
    for case in cases:
        service = case["service"]
        cluster = case.get("cluster")
        select.select_cluster(cluster or base_cluster)
        if case.get("queue"):
            select.select_queue(case["queue"])
        kw = {k: case.get(k) for k in ("cluster", "subproject", "stage")}
        if service == "hashserver":
            d = tools.configure_hashserver(case["mode"], **kw)
        elif service == "database":
            d = tools.configure_database(case["mode"], **kw)
        elif service == "jobserver":
            d = tools.configure_jobserver(substage=case.get("substage"), **kw)
        elif service == "daskserver":
            d = tools.configure_daskserver(substage=case.get("substage"), **kw)
        else:
            raise SystemExit(f"unknown service {service}")
        evaluated = {k: v for k, v in d.items() if k not in ("log_level", "log_file", "debug_log_file")}
        cfg = Configuration.from_mapping(evaluated)
        rs = RemoteState(LocalExecutor(NullObserver()), cfg, _default_server_directory().as_posix())
        d = dict(d)
        d["key"] = cfg.key
        d["command"] = rs.evaluate_command()
        d["status_file"] = rs.json_path
        out.append(d)
        select.select_cluster(base_cluster)
    return out


def plan(workdir: str, stage: str) -> dict:
    calls = []
    import seamless_remote.buffer_remote as br
    import seamless_remote.database_remote as dr
    import seamless_remote.jobserver_remote as jr
    import seamless_remote.daskserver_remote as dsr
    import seamless_config.pure_daskserver as pd

    mods = [(br, "buffer_remote"), (dr, "database_remote"), (jr, "jobserver_remote"),
            (dsr, "daskserver_remote"), (pd, "pure_daskserver")]
    for mod, name in mods:
        for fn in ("activate", "deactivate"):
            if hasattr(mod, fn):
                setattr(mod, fn, (lambda n=f"{name}.{fn}": (lambda *a, **k: calls.append(n)))())
    try:
        import seamless.transformer as st

        st.spawn = lambda n: calls.append(f"spawn({n})")
    except ImportError:
        pass
    import seamless_config
    from seamless_config import select

    seamless_config.set_workdir(workdir)
    try:
        seamless_config.set_stage(stage or None)
        cur = list(select.get_current())
        return {
            "current": cur,
            "execution": select.get_execution(),
            "persistent": select.get_persistent(),
            "calls": calls,
        }
    except Exception as e:  # the error is part of what is compared
        return {"error": f"{type(e).__name__}: {e}", "calls": calls}


def main() -> None:
    cmd, workdir = sys.argv[1], sys.argv[2]
    if cmd == "launch":
        print(json.dumps(launch(workdir, json.loads(sys.argv[3]))))
    elif cmd == "plan":
        print(json.dumps(plan(workdir, sys.argv[3])))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
