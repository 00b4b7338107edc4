"""Seamless jobservers (the reference's ``seamless_remote.jobserver_remote``), on the Rust
clients.

``run_transformation`` uses the first reachable jobserver; a failed or canceled job is the
answer (never re-run); cancelling the awaiting task cancels the job on the server.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict

from seamless import Checksum

from . import _native
from ._common import current, extras, hex_of, workdir

DISABLED = False  # to disable automatic activation during tests


def define_launched_client(cluster, project, subproject="", stage="", substage=""):
    """Launched clients are made on activation (one per launch key), as needed."""


def define_extern_client(name, type_, *, url=None):
    if type_ != "jobserver":
        raise TypeError(type_)
    assert url is not None
    _native.jobserver_define_extern_client(name, url)


def activate(
    *,
    extra_launched_clients: list[dict] | None = None,
    extern_clients: list[str] | None = None,
    no_main: bool = False,
):
    if DISABLED:
        return
    main = None if no_main else current()
    _native.jobserver_activate(
        main, extras(extra_launched_clients), list(extern_clients or []), workdir()
    )
    # As the reference: launched jobservers are started (or found) now.
    _native.jobserver_ensure_initialized()


def deactivate():
    _native.jobserver_deactivate()


def _record_mode() -> bool:
    try:
        from seamless_transformer.record_runtime import get_record_mode

        return bool(get_record_mode())
    except ImportError:
        return False


async def run_transformation(
    transformation_dict: Dict[str, Any],
    *,
    tf_checksum: Checksum,
    tf_dunder: Dict[str, Any],
    scratch: bool,
    strict_dunder: bool = False,
):
    if not _native.jobserver_is_active():
        raise RuntimeError("No jobserver clients are available")
    answer = json.loads(
        await _native.jobserver_run_transformation(
            json.dumps(transformation_dict),
            hex_of(tf_checksum),
            json.dumps(tf_dunder or {}),
            bool(scratch),
            bool(strict_dunder),
            _record_mode(),
        )
    )
    if "remote_job_written" in answer:
        return {
            "remote_job_written": answer["remote_job_written"],
            "record_runtime": answer.get("record_runtime"),
        }
    if "checksum" in answer:
        return Checksum(answer["checksum"])
    answer["result_checksum"] = Checksum(answer["result_checksum"])
    return answer


async def cancel_transformation_async(tf_checksum: Checksum) -> bool:
    if not _native.jobserver_is_active():
        raise RuntimeError("No jobserver clients are available")
    return await _native.jobserver_cancel_transformation_async(hex_of(tf_checksum))


def cancel_transformation(tf_checksum: Checksum) -> bool:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None and loop.is_running():
        raise RuntimeError("Cannot block on cancel_transformation() in a running loop")
    if not _native.jobserver_is_active():
        raise RuntimeError("No jobserver clients are available")
    return _native.jobserver_cancel_transformation(hex_of(tf_checksum))


async def transformation_status_async(tf_checksum: Checksum) -> str:
    if not _native.jobserver_is_active():
        raise RuntimeError("No jobserver clients are available")
    return await asyncio.to_thread(
        _native.jobserver_transformation_status, hex_of(tf_checksum)
    )


def transformation_status(tf_checksum: Checksum) -> str:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None and loop.is_running():
        raise RuntimeError("Cannot block on transformation_status() in a running loop")
    if not _native.jobserver_is_active():
        raise RuntimeError("No jobserver clients are available")
    return _native.jobserver_transformation_status(hex_of(tf_checksum))


def inspect_launched_clients():
    return _native.jobserver_inspect_launched_clients()


def ensure_initialized():
    _native.jobserver_ensure_initialized()
