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
    """What callers read of an active server (``url``, ``readonly``, ``directory``,
    ``ensure_initialized_sync()``, ``promise()`` for a write server): a view of the Rust client
    at position ``index`` of the active ``kind`` list."""

    __slots__ = ("_kind", "_index", "url", "readonly", "directory", "_shutdown")

    def __init__(self, kind, index, url, readonly):
        self._kind = kind
        self._index = index
        self.url = url
        self.readonly = readonly
        self.directory = None
        self._shutdown = False

    def ensure_initialized_sync(self, skip_healthcheck=False):
        self.url = _native.buffer_server_url(self._kind, self._index)

    async def promise(self, checksum):
        if self._kind != "write":
            raise RuntimeError("not a write server")
        await _native.buffer_server_promise(self._index, Checksum(checksum).hex())

    def __repr__(self):
        return f"<seamless_remote {self._kind} server {self.url!r} readonly={self.readonly}>"


class _Folder:
    """An active read folder (``directory``; always read-only)."""

    __slots__ = ("directory", "url", "readonly")

    def __init__(self, directory):
        self.directory = directory
        self.url = None
        self.readonly = True

    def ensure_initialized_sync(self, skip_healthcheck=False):
        pass

    def __repr__(self):
        return f"<seamless_remote buffer folder {self.directory!r}>"


_read_server_clients: list = []
_read_folders_clients: list = []
_write_server_clients: list = []


def _refresh():
    _read_server_clients[:] = [
        _Server("read", i, url, readonly)
        for i, (url, readonly) in enumerate(_native.buffer_servers("read"))
    ]
    _write_server_clients[:] = [
        _Server("write", i, url, readonly)
        for i, (url, readonly) in enumerate(_native.buffer_servers("write"))
    ]
    _read_folders_clients[:] = [_Folder(d) for d in _native.buffer_read_folders()]


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
