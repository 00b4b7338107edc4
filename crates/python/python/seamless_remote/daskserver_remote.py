"""The Dask backend (the reference's ``seamless_remote.daskserver_remote``).

``activate`` launches (or reuses) the stage's daskserver and our Dask front through the Rust
launcher; transformations then go through the front (the jobserver protocol), so
``jobserver_remote.run_transformation`` reaches Dask.
"""

import sys

from . import _native
from ._common import current, workdir

DISABLED = False  # to disable automatic activation during tests


def activate(*, no_main: bool = False) -> None:
    if DISABLED or no_main:
        return
    line = _native.dask_activate(current(), workdir())
    if line:
        print(line)
        sys.stdout.flush()


def deactivate() -> None:
    _native.dask_deactivate()


def ensure_initialized():
    pass


__all__ = ["activate", "deactivate", "ensure_initialized"]
