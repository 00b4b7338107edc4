"""Launches (or reuses) a service with the Python reference (seamless-config 0.3.2 +
remote-http-launcher 0.4.5), for the launcher interop tests. HOME and PATH come from the caller.

    launcher_interop.py PROJECT_DIR SERVICE MODE   (SERVICE: hashserver, database; MODE: ro, rw)

Prints {"url", "port", "pid"} (pid from the server file).
"""

import json
import os
import sys
import warnings

warnings.simplefilter("ignore")


def main() -> None:
    project, service, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    import remote_http_launcher
    import seamless_config
    from seamless_config import tools
    from seamless_config.config_files import load_config_files

    seamless_config.set_workdir(project)
    load_config_files()
    conf = tools.configure_hashserver(mode) if service == "hashserver" else tools.configure_database(mode)
    result = remote_http_launcher.run(conf)
    key = result.get("key")
    server_dir = os.path.expanduser("~/.remote-http-launcher/server")
    pid = 0
    for name in os.listdir(server_dir):
        if name.startswith(service) and name.endswith(".json"):
            with open(os.path.join(server_dir, name)) as f:
                pid = json.load(f).get("pid", 0)
    print(json.dumps({"url": f"http://{result['hostname']}:{result['port']}", "port": result["port"], "pid": pid}))


if __name__ == "__main__":
    main()
