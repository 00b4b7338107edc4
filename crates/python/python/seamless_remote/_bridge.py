"""The asyncio side of the bridge from the Rust runtime: one mailbox per event loop.

The Rust side queues a completion and writes a byte to the loop's wake-up pipe; the loop reads
it (``add_reader``) and runs the completions on its own thread. No Python code ever runs on the
Rust runtime's threads.
"""

import os
import weakref

from . import _native

_mailboxes = weakref.WeakKeyDictionary()


def _close(key, r, w):
    _native.bridge_unregister(key)
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def mailbox(loop) -> int:
    """The mailbox key of `loop` (made on first use, in the loop's thread)."""
    entry = _mailboxes.get(loop)
    if entry is not None and entry[1] == os.getpid():
        return entry[0]
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    key = _native.bridge_register(w)

    def drain():
        try:
            while os.read(r, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        _native.bridge_drain(key)

    loop.add_reader(r, drain)
    _mailboxes[loop] = (key, os.getpid())
    # Not at exit: other exit handlers (seamless's buffer-writer flush) still await through it.
    weakref.finalize(loop, _close, key, r, w).atexit = False
    return key
