"""A small Seamless workflow on whatever seamless_remote is installed (our wheel or the
Python reference), for the wheel tests and `cargo xtask bench python`. HOME and PATH come from
the caller.

    wheel_workflow.py config PROJECT_DIR STAGE      # seamless.yaml + clusters: launched services
    wheel_workflow.py extern PROJECT_DIR URLS_JSON  # extern clients {"hashserver", "database", "jobserver"}

Runs `add(a, b)` for a few inputs at delegation level 3 (on the jobserver, buffers on the
hashserver, results in the database), then the first one again (answered from the result
cache), and prints one JSON line: {"implementation", "results": [...], "repeat": ..., "pid"}.
"""

import json
import os
import sys
import warnings

warnings.simplefilter("ignore")


def configure(mode, project, arg):
    import seamless_config

    if mode == "config":
        seamless_config.set_workdir(project)
        seamless_config.set_stage(arg)
        return
    urls = json.loads(arg)
    from seamless_config.select import select_execution
    from seamless_remote import jobserver_remote

    seamless_config.set_remote_clients(
        {
            "buffer": [{"url": urls["hashserver"], "readonly": False}],
            "database": [{"url": urls["database"], "readonly": False}],
        }
    )
    jobserver_remote.define_extern_client("js", "jobserver", url=urls["jobserver"])
    jobserver_remote.activate(no_main=True, extern_clients=["js"])
    select_execution("remote")


def main():
    mode, project, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    os.chdir(project)
    configure(mode, project, arg)
    import seamless_remote
    from seamless_transformer import direct

    @direct
    def add(a, b):
        return a + b

    results = [add(i, 2 * i + 1) for i in range(3)]
    repeat = add(0, 1)
    print(
        json.dumps(
            {
                "implementation": getattr(seamless_remote, "IMPLEMENTATION", "python"),
                "results": results,
                "repeat": repeat,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
