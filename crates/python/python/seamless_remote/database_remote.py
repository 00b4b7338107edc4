"""The result cache and records (the reference's ``seamless_remote.database_remote``), on the
Rust clients. Reads ask the read databases in order (a failing one is skipped); writes go to
every write database concurrently."""

import json

from seamless import Checksum

from . import _native
from ._common import current, extras, hex_of, workdir

DISABLED = False  # to disable automatic activation during tests


def define_launched_client(readonly, cluster, project, subproject="", stage=""):
    """Launched clients are made on activation (one per launch key), as needed."""


def define_extern_client(name, type_, *, params=None, url=None, readonly=True):
    if type_ != "database":
        raise TypeError(type_)
    assert url is not None
    _native.database_define_extern_client(name, url, bool(readonly))


def inspect_launched_clients():
    return _native.database_inspect_launched_clients()


def inspect_extern_clients():
    return _native.database_inspect_extern_clients()


def has_write_server() -> bool:
    return _native.database_has_write_server()


def has_read_server() -> bool:
    return _native.database_has_read_server()


def activate(
    *, readonly=False, extra_launched_clients=[], extern_clients=[], no_main=False
):
    if DISABLED:
        return
    main = None if no_main else current()
    _native.database_activate(
        bool(readonly),
        main,
        extras(extra_launched_clients),
        list(extern_clients or []),
        workdir(),
    )


def deactivate():
    _native.database_deactivate()


async def get_transformation_result(tf_checksum: Checksum) -> Checksum | None:
    result = await _native.database_get_transformation_result(hex_of(tf_checksum))
    return None if result is None else Checksum(result)


async def get_rev_transformations(result_checksum: Checksum) -> list[Checksum] | None:
    tfs = await _native.database_get_rev_transformations(hex_of(result_checksum))
    return None if tfs is None else [Checksum(t) for t in tfs]


async def _get_json(kind, a, b=None):
    text = await _native.database_get_json(kind, a, b)
    return None if text is None else json.loads(text)


async def get_execution_record(tf_checksum: Checksum) -> dict | None:
    return await _get_json("execution_record", hex_of(tf_checksum))


async def get_bucket_probe(bucket_kind: str, label: str) -> dict | None:
    return await _get_json("bucket_probe", bucket_kind, label)


async def get_irreproducible_records(tf_checksum: Checksum, result_checksum=None):
    result = None if result_checksum is None else hex_of(result_checksum)
    return await _get_json("irreproducible", hex_of(tf_checksum), result)


async def set_transformation_result(tf_checksum: Checksum, result_checksum: Checksum):
    return await _native.database_set_transformation_result(
        hex_of(tf_checksum), hex_of(result_checksum)
    )


async def set_execution_record(
    tf_checksum: Checksum, result_checksum: Checksum, record: dict
):
    return await _native.database_set_execution_record(
        hex_of(tf_checksum), hex_of(result_checksum), json.dumps(record)
    )


async def set_bucket_probe(
    bucket_kind: str,
    label: str,
    bucket_checksum: Checksum,
    freshness_tokens: dict,
    captured_at: str,
):
    return await _native.database_set_bucket_probe(
        bucket_kind,
        label,
        hex_of(bucket_checksum),
        json.dumps(freshness_tokens),
        captured_at,
    )


async def undo_transformation_result(tf_checksum: Checksum, result_checksum: Checksum):
    return await _native.database_undo_transformation_result(
        hex_of(tf_checksum), hex_of(result_checksum)
    )


def ensure_initialized():
    pass
