"""Console scripts: the Rust seamless-resolve and seamless-fingertip, run in-process."""

import os
import sys

from . import _native


def _run(tool: str):
    name = os.path.basename(sys.argv[0]) or f"seamless-{tool}"
    sys.stdout.flush()
    sys.stderr.flush()
    code = _native.run_cli(tool, [name] + sys.argv[1:])
    # Leave at once, as the Rust program would (no interpreter-shutdown hooks of other packages).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def resolve():
    _run("resolve")


def fingertip():
    _run("fingertip")
