"""Buffers from remote sources (read folders, read servers) and to write servers: the
reference's ``seamless_remote.buffer_remote``, on the Rust clients.

Differences from the reference (on purpose): every buffer read is verified against its
checksum; a source that fails is skipped and the next one tried; writes and promises go to all
write servers concurrently; trivial checksums never need a store.
"""

from seamless import Buffer, Checksum

from . import _native
from ._common import current, extras, hex_of, workdir

DISABLED = False  # to disable automatic activation during tests


class _Server:
    """What callers read of an active write server (``url``, ``readonly``)."""

    __slots__ = ("_index", "url", "readonly", "_shutdown")

    def __init__(self, index, url, readonly):
        self._index = index
        self.url = url
        self.readonly = readonly
        self._shutdown = False

    def ensure_initialized_sync(self, skip_healthcheck=False):
        url = _native.buffer_write_server_url(self._index)
        if url is not None:
            self.url = url

    def __repr__(self):
        return f"<seamless_remote buffer server {self.url!r} readonly={self.readonly}>"


_read_server_clients: list = []
_read_folders_clients: list = []
_write_server_clients: list = []


def _refresh():
    _write_server_clients[:] = [
        _Server(i, url, readonly)
        for i, (url, readonly) in enumerate(_native.buffer_write_servers())
    ]


def define_launched_client(readonly, cluster, project, subproject="", stage=""):
    """Launched clients are made on activation (one per launch key), as needed."""


def define_extern_client(
    name, type_, *, params=None, directory=None, url=None, readonly=True
):
    if type_ == "bufferfolder" and not readonly:
        raise AssertionError("a buffer folder is read-only")
    _native.buffer_define_extern_client(
        name, type_, url=url, directory=directory, readonly=readonly
    )


def inspect_launched_clients():
    try:
        _native.buffer_ensure_initialized()
    except Exception:
        pass
    return _native.buffer_inspect_launched_clients()


def inspect_extern_clients():
    return _native.buffer_inspect_extern_clients()


def has_write_server() -> bool:
    return _native.buffer_has_write_server()


def has_read_server() -> bool:
    return _native.buffer_has_read_server()


def activate(
    *, readonly=False, extra_launched_clients=[], extern_clients=[], no_main=False
):
    if DISABLED:
        return
    main = None if no_main else current()
    _native.buffer_activate(
        bool(readonly),
        main,
        extras(extra_launched_clients),
        list(extern_clients or []),
        workdir(),
    )
    _refresh()


def deactivate():
    _native.buffer_deactivate()
    _refresh()


async def get_buffer(checksum: Checksum) -> Buffer | None:
    """The buffer (verified), from the read folders, then the read servers; None if absent."""
    checksum = Checksum(checksum)
    data = await _native.buffer_get(checksum.hex())
    if data is None:
        return None
    return Buffer(data, checksum=checksum)


async def get_buffer_lengths(checksums: list[Checksum]) -> list[int | None]:
    checksums = [Checksum(c) for c in checksums]
    if not checksums:
        return []
    return await _native.buffer_lengths([c.hex() for c in checksums])


async def has_buffers(checksums: list[Checksum]) -> list[bool]:
    """Upstream's newer has_buffers: which checksums a write/read server holds."""
    checksums = [Checksum(c) for c in checksums]
    if not checksums:
        return []
    return await _native.buffer_has([c.hex() for c in checksums])


async def get_filename(checksum: Checksum) -> str | None:
    raise NotImplementedError


async def promise(checksum: Checksum) -> None:
    await _native.buffer_promise(hex_of(checksum))


async def write_buffer(checksum: Checksum, buffer: Buffer) -> bool:
    content = buffer.content if isinstance(buffer, Buffer) else bytes(buffer)
    return await _native.buffer_write(hex_of(checksum), content)


def ensure_initialized():
    _native.buffer_ensure_initialized()
    _refresh()
